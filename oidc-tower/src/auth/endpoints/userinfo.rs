//! The `userinfo` endpoint: who the caller is, as JSON, by the same decision as every other
//! door (`authenticate`).

use bytes::Bytes;
use http::{Response, StatusCode, request};

use crate::auth::answer::{append_cookies, json_answer};
use crate::auth::authenticator::{AuthFailure, Authenticator};

impl Authenticator {
    pub(super) async fn userinfo(&self, parts: &request::Parts) -> Response<Bytes> {
        match self.authenticate(&parts.headers, None, false).await {
            Ok(authentication) => {
                let identity = &authentication.authenticated.identity;
                let mut response = json_answer(
                    StatusCode::OK,
                    &serde_json::json!({
                        "user": identity.user,
                        "email": identity.email,
                        "preferred_username": identity.preferred_username,
                        "groups": identity.groups,
                        "source": authentication.authenticated.source.as_str(),
                    }),
                );
                append_cookies(&mut response, authentication.set_cookies);
                response
            }
            Err(failure) => {
                let status = if failure.needs_sign_in() || failure.is_bearer_failure() {
                    StatusCode::UNAUTHORIZED
                } else if matches!(failure, AuthFailure::Forbidden(_)) {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                json_answer(
                    status,
                    &serde_json::json!({ "error": failure.code(), "error_description": "not signed in" }),
                )
            }
        }
    }
}
