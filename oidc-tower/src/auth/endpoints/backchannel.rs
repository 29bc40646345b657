//! The `backchannel_logout` endpoint: a provider's logout token, validated (with one key
//! refetch for an unknown `kid`) and turned into revoking the sessions it names.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header, request};
use oidc_core::logout::{LogoutTokenError, logout_token_from_form};
use oidc_core::validation::ValidationError;

use super::not_configured;
use crate::auth::answer::json_answer;
use crate::auth::authenticator::{Authenticator, lock};

impl Authenticator {
    pub(super) async fn backchannel_logout(
        &self,
        parts: &request::Parts,
        body: &[u8],
    ) -> Response<Bytes> {
        let headers = &parts.headers;
        let Some(login) = self.login_flow() else {
            return not_configured(headers);
        };
        if parts.method != Method::POST {
            let mut response = json_answer(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({ "error": "invalid_request", "error_description": "POST a logout_token" }),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let refuse = |code: &str| {
            json_answer(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "error": "invalid_request", "error_description": code }),
            )
        };
        let token = match logout_token_from_form(body) {
            Ok(token) => token,
            Err(error) => return refuse(error.code()),
        };
        let Some(keys) = self.provider().keys() else {
            return json_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "error": "temporarily_unavailable" }),
            );
        };
        let validate = |keys: &oidc_core::KeySet| {
            let mut seen = lock(&login.seen_jtis);
            login
                .logout_validator
                .validate(token.expose(), keys, self.now(), &mut seen)
        };
        let mut verdict = validate(&keys);
        if let Err(LogoutTokenError::Invalid(ValidationError::UnknownKid { kid })) = &verdict {
            // A failed fetch leaves the unknown-kid refusal standing: the provider retries.
            if let Ok(fresh) = self.refresh_keys_for_unknown_kid(kid).await {
                verdict = validate(&fresh);
            }
        }
        let target = match verdict {
            Ok(target) => target,
            Err(error) => {
                tracing::warn!(code = error.code(), "back-channel logout token refused");
                return refuse(error.code());
            }
        };
        match self
            .revoke(target.sub.as_deref(), target.sid.as_deref())
            .await
        {
            Ok(removed) => {
                tracing::info!(
                    removed,
                    by_sid = target.sid.is_some(),
                    "back-channel logout"
                );
                let mut response = Response::new(Bytes::new());
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            Err(error) => {
                tracing::error!(code = error.code(), "back-channel logout could not revoke");
                json_answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({ "error": "temporarily_unavailable", "error_description": error.code() }),
                )
            }
        }
    }
}
