//! RFC 7662 introspection as a resource server drives it: the request on the wire, then the
//! decision and cache lifetime for answers shaped like real providers'.

use oidc_core::danger::InsecureSeededRandom;
use oidc_core::introspection::{
    IntrospectionError, IntrospectionPolicy, TokenTypeHint, introspection_request,
    parse_introspection,
};
use oidc_core::login::{ClientAuthMethod, ClientCredentials};
use oidc_core::{Secret, UnixTime};
use serde_json::json;
use std::time::Duration;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn answer(body: &serde_json::Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string().into_bytes())
        .unwrap()
}

fn policy() -> IntrospectionPolicy {
    IntrospectionPolicy::new()
        .issuer("https://op.example/realms/main")
        .audience("mlflow")
        .max_cache(Duration::from_secs(30))
}

#[test]
fn client_secret_post_request_on_the_wire() {
    let request = introspection_request(
        &url::Url::parse("https://op.example/realms/main/introspect").unwrap(),
        &ClientCredentials::new(
            "mlflow",
            ClientAuthMethod::ClientSecretPost("s&cret".into()),
        ),
        &Secret::new("opaque+token/="),
        Some(TokenTypeHint::RefreshToken),
        NOW,
        &mut InsecureSeededRandom::new(1),
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "token=opaque%2Btoken%2F%3D&token_type_hint=refresh_token&client_id=mlflow&client_secret=s%26cret"
    );
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
}

#[test]
fn keycloak_shaped_answer_is_accepted_and_cached_briefly() {
    let token = parse_introspection(
        &answer(&json!({
            "active": true, "exp": NOW.as_secs() + 300, "iat": NOW.as_secs() - 10,
            "iss": "https://op.example/realms/main", "aud": ["mlflow", "account"],
            "sub": "f1d2", "typ": "Bearer", "azp": "cli", "scope": "openid email",
            "client_id": "cli", "username": "alice", "token_type": "Bearer",
        })),
        &policy(),
        NOW,
    )
    .unwrap();
    assert_eq!(token.claims.username.as_deref(), Some("alice"));
    assert_eq!(token.claims.extra["azp"], "cli");
    assert_eq!(
        token.cache_until,
        NOW.saturating_add(Duration::from_secs(30))
    );
}

#[test]
fn an_answer_without_aud_binds_by_the_client_it_names() {
    // An opaque token another application of the provider obtained: active, but not ours.
    let other = json!({ "active": true, "client_id": "airflow", "sub": "alice" });
    let err = parse_introspection(&answer(&other), &policy().client("mlflow"), NOW).unwrap_err();
    assert_eq!(err.code(), "wrong_client");
    let ours = json!({ "active": true, "client_id": "mlflow", "sub": "alice" });
    parse_introspection(&answer(&ours), &policy().client("mlflow"), NOW).unwrap();
    let cli = json!({ "active": true, "azp": "mlflow-cli", "sub": "alice" });
    parse_introspection(
        &answer(&cli),
        &policy().client("mlflow").client("mlflow-cli"),
        NOW,
    )
    .unwrap();
}

#[test]
fn an_answer_for_another_audience_or_an_inactive_token_is_refused() {
    let err = parse_introspection(
        &answer(&json!({ "active": true, "aud": "grafana" })),
        &policy(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        IntrospectionError::AudienceMismatch {
            expected: vec!["mlflow".into()],
            received: vec!["grafana".into()]
        }
    );
    let err =
        parse_introspection(&answer(&json!({ "active": false })), &policy(), NOW).unwrap_err();
    assert_eq!(err.code(), "token_inactive");
    let unauthorized = http::Response::builder()
        .status(401)
        .body(b"{\"error\":\"invalid_client\"}".to_vec())
        .unwrap();
    assert_eq!(
        parse_introspection(&unauthorized, &policy(), NOW)
            .unwrap_err()
            .code(),
        "provider_unexpected_status"
    );
}
