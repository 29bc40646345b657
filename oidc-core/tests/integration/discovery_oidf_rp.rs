//! The OpenID Foundation's relying-party discovery cases (rohe/oidctest `rp-discovery-*`),
//! replayed against the core's discovery checks with canned provider answers.

use oidc_core::Issuer;
use oidc_core::discovery::{DiscoveryError, DiscoveryOptions, discovery_request, parse_discovery};
use oidc_core::issuer::IssuerTemplate;
use serde_json::{Value, json};

const ISSUER: &str = "https://rp.certification.example/oidc-rp/rp-discovery";

fn certification_metadata(issuer: &str) -> Value {
    // The capabilities every rp-discovery case advertises.
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{ISSUER}/authorization"),
        "token_endpoint": format!("{ISSUER}/token"),
        "userinfo_endpoint": format!("{ISSUER}/userinfo"),
        "jwks_uri": format!("{ISSUER}/static/jwks.json"),
        "response_types_supported": [
            "code", "id_token", "id_token token", "code id_token", "code token",
            "code id_token token"
        ],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "name", "email"],
        "end_session_endpoint": format!("{ISSUER}/end_session")
    })
}

fn answer(doc: &Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(doc).unwrap())
        .unwrap()
}

#[test]
fn rp_discovery_openid_configuration() {
    let issuer = Issuer::new(ISSUER).unwrap();
    let request = discovery_request(&issuer);
    assert_eq!(
        request.uri().to_string(),
        format!("{ISSUER}/.well-known/openid-configuration")
    );
    let metadata = parse_discovery(
        &issuer,
        &DiscoveryOptions::new(),
        &answer(&certification_metadata(ISSUER)),
    )
    .unwrap();
    assert_eq!(metadata.issuer, ISSUER);
    assert_eq!(
        metadata.authorization_endpoint.as_str(),
        format!("{ISSUER}/authorization")
    );
    assert_eq!(
        metadata.token_endpoint.as_ref().unwrap().as_str(),
        format!("{ISSUER}/token")
    );
    assert_eq!(metadata.response_types_supported.len(), 6);
    assert_eq!(metadata.subject_types_supported, ["public", "pairwise"]);
    assert_eq!(metadata.claims_supported, ["sub", "name", "email"]);
    assert!(metadata.supports_s256_pkce());
    assert_eq!(metadata.warnings(), vec![]);
}

#[test]
fn rp_discovery_issuer_not_matching_config() {
    let issuer = Issuer::new(ISSUER).unwrap();
    let other = "https://rp.certification.example/oidc-rp/someone-else";
    for stated in [
        other,
        "https://rp.certification.example/oidc-rp/rp-discovery/",
    ] {
        let err = parse_discovery(
            &issuer,
            &DiscoveryOptions::new(),
            &answer(&certification_metadata(stated)),
        )
        .unwrap_err();
        assert_eq!(
            err,
            DiscoveryError::IssuerMismatch {
                expected: ISSUER.into(),
                found: stated.into()
            }
        );
        assert_eq!(err.code(), "discovery_issuer_mismatch");
    }
}

#[test]
fn rp_discovery_jwks_uri_keys() {
    let issuer = Issuer::new(ISSUER).unwrap();
    let metadata = parse_discovery(
        &issuer,
        &DiscoveryOptions::new(),
        &answer(&certification_metadata(ISSUER)),
    )
    .unwrap();
    // The keys come from the discovered jwks_uri, not from a guessed location.
    let keys_request = oidc_core::provider_response::json_get_request(&metadata.jwks_uri);
    assert_eq!(
        keys_request.uri().to_string(),
        format!("{ISSUER}/static/jwks.json")
    );
}

#[test]
fn multi_tenant_template_is_accepted_only_when_configured() {
    let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
    let issuer = Issuer::new("https://login.microsoftonline.com/organizations/v2.0").unwrap();
    let mut doc = certification_metadata(template);
    doc["authorization_endpoint"] =
        json!("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize");
    doc["token_endpoint"] =
        json!("https://login.microsoftonline.com/organizations/oauth2/v2.0/token");
    doc["jwks_uri"] = json!("https://login.microsoftonline.com/organizations/discovery/v2.0/keys");

    let err = parse_discovery(&issuer, &DiscoveryOptions::new(), &answer(&doc)).unwrap_err();
    assert_eq!(err.code(), "discovery_issuer_mismatch");

    let options = DiscoveryOptions::new().issuer_template(IssuerTemplate::new(template).unwrap());
    let metadata = parse_discovery(&issuer, &options, &answer(&doc)).unwrap();
    assert_eq!(metadata.issuer, template);

    // The template still has to be the one configured.
    let other = DiscoveryOptions::new()
        .issuer_template(IssuerTemplate::new("https://sts.windows.net/{tenantid}/").unwrap());
    assert_eq!(
        parse_discovery(&issuer, &other, &answer(&doc))
            .unwrap_err()
            .code(),
        "discovery_issuer_mismatch"
    );
}

#[test]
fn non_200_and_non_json_answers_are_typed() {
    let issuer = Issuer::new(ISSUER).unwrap();
    let options = DiscoveryOptions::new();
    let not_found = http::Response::builder()
        .status(404)
        .body(b"no such realm".to_vec())
        .unwrap();
    assert_eq!(
        parse_discovery(&issuer, &options, &not_found)
            .unwrap_err()
            .code(),
        "provider_unexpected_status"
    );
    let html = http::Response::builder()
        .header("content-type", "text/html")
        .body(b"<html>login</html>".to_vec())
        .unwrap();
    assert_eq!(
        parse_discovery(&issuer, &options, &html)
            .unwrap_err()
            .code(),
        "provider_not_json"
    );
    let broken = http::Response::new(b"{\"issuer\":".to_vec());
    assert_eq!(
        parse_discovery(&issuer, &options, &broken)
            .unwrap_err()
            .code(),
        "provider_response_malformed"
    );
}
