//! The userinfo endpoint: which bearer tokens it answers, with which claims, and the
//! `WWW-Authenticate` challenge it refuses the others with (RFC 6750 §3).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::faults::injected_fault;
use super::respond::json_response;
use super::{App, has_scope};
use crate::provider::{Endpoint, lock};
use crate::store::Subject;

pub(super) async fn userinfo(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Userinfo).await {
        return response;
    }
    let bearer_error = |status: StatusCode, error: &str, description: &str| {
        let mut response = json_response(
            status,
            &json!({"error": error, "error_description": description}),
        );
        let challenge = format!(
            "Bearer realm=\"oidc-dev-provider\", error=\"{error}\", error_description=\"{description}\""
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"oidc-dev-provider\""),
        );
        return response;
    };
    let now = app.shared.now();
    let store = lock(&app.shared.store);
    let Some((_, grant)) = store.active_access(token.trim(), now) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is unknown, expired or revoked",
        );
    };
    let (Subject::User { username, .. }, true) =
        (&grant.subject, has_scope(&grant.scope, "openid"))
    else {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "userinfo needs a user's token with scope openid",
        );
    };
    let Some(user) = app.shared.users.get(username) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the user no longer exists",
        );
    };
    json_response(
        StatusCode::OK,
        &Value::Object(user.claims_for_scope(&grant.scope)),
    )
}
