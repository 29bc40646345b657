//! What the provider says about itself: the discovery document (RFC 8414 / OpenID Connect
//! Discovery) and the signing keys (JWKS), with the cache lifetime the keys are served with.

use axum::extract::State;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::App;
use super::device::DEVICE_CODE_GRANT;
use super::faults::injected_fault;
use super::respond::{html_response, json_response};
use crate::html;
use crate::provider::{Endpoint, lock};

pub(super) async fn index(State(app): State<App>) -> Response {
    html_response(
        StatusCode::OK,
        html::message_page(
            "Development OpenID Provider",
            &format!(
                "Issuer {}. Discovery at {}.",
                app.issuer,
                app.url("/.well-known/openid-configuration")
            ),
        ),
    )
}

pub(super) async fn discovery(State(app): State<App>) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Discovery).await {
        return response;
    }
    json_response(StatusCode::OK, &discovery_document(&app))
}

/// The smallest discovery document a relying party accepts for `issuer`, for tests and
/// benchmarks that serve a provider of their own: every endpoint under the issuer (without its
/// trailing `/`), the keys at `{issuer}/jwks`, ID tokens signed with `signing_alg`. Add fields
/// to the returned object as needed.
///
/// ```
/// let document = oidc_dev_provider::minimal_discovery_document("http://127.0.0.1:8080", "ES256");
/// assert_eq!(document["jwks_uri"], "http://127.0.0.1:8080/jwks");
/// assert_eq!(document["id_token_signing_alg_values_supported"][0], "ES256");
/// ```
pub fn minimal_discovery_document(issuer: &str, signing_alg: &str) -> Value {
    let base = issuer.trim_end_matches('/');
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [signing_alg],
    })
}

fn discovery_document(app: &App) -> Value {
    let mut document = base_discovery_document(app);
    let par = app.shared.settings.pushed_authorization;
    if par.offered {
        document["pushed_authorization_request_endpoint"] = json!(app.url("/par"));
        document["require_pushed_authorization_requests"] = json!(par.required);
    }
    document
}

fn base_discovery_document(app: &App) -> Value {
    json!({
        "issuer": app.issuer.as_str(),
        "authorization_endpoint": app.url("/authorize"),
        "token_endpoint": app.url("/token"),
        "userinfo_endpoint": app.url("/userinfo"),
        "jwks_uri": app.url("/jwks"),
        "end_session_endpoint": app.url("/end_session"),
        "introspection_endpoint": app.url("/introspect"),
        "revocation_endpoint": app.url("/revoke"),
        "device_authorization_endpoint": app.url("/device_authorization"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "azp",
            "name", "preferred_username", "email", "email_verified", "groups"
        ],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"],
        "prompt_values_supported": ["none", "login"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}

pub(super) async fn jwks(State(app): State<App>) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Jwks).await {
        return response;
    }
    let body = lock(&app.shared.keys).jwks();
    let mut response = json_response(StatusCode::OK, &body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    let max_age = format!(
        "public, max-age={}",
        app.shared.settings.jwks_max_age.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&max_age) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}
