//! The `callback` endpoint: the provider's answer to a sign-in, checked against its pending
//! login, redeemed once (a replayed callback never sends its code again), and turned into a
//! session.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, request};
use oidc_core::cookie::RequestCookies;
use oidc_core::login::token::{TokenError, TokenErrorCode, parse_token_response};
use oidc_core::login::{
    CallbackError, CallbackParams, PendingLogin, cookie_suffix_for_state, finish_login,
    handle_callback,
};

use super::{not_configured, provider_not_ready};
use crate::auth::answer::{append_cookies, error_answer, redirect};
use crate::auth::authenticator::{Authenticator, CreateSessionError};
use crate::random::SystemRandom;

impl Authenticator {
    pub(super) async fn callback(&self, parts: &request::Parts, body: &[u8]) -> Response<Bytes> {
        let headers = &parts.headers;
        let Some(login) = self.login_flow() else {
            return not_configured(headers);
        };
        let params = if parts.method == Method::POST {
            CallbackParams::from_form_post(body)
        } else {
            CallbackParams::from_query(parts.uri.query().unwrap_or_default())
        };
        let params = match params {
            Ok(params) => params,
            Err(error) => return callback_failed(&error, headers, Vec::new()),
        };
        let Some(state) = params.state.clone() else {
            return callback_failed(&CallbackError::StateMissing, headers, Vec::new());
        };
        let now = self.now();
        let cookies = RequestCookies::from_headers(headers);
        let codec = match login.pending_codec(&cookie_suffix_for_state(&state)) {
            Ok(codec) => codec,
            Err(error) => {
                return error_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error.code(),
                    "Sign-in is misconfigured.",
                    headers,
                );
            }
        };
        // The pending login is consumed whatever happens next.
        let clear_pending = codec.clear(&cookies).unwrap_or_default();
        let pending = match codec.decode::<PendingLogin>(&cookies, now) {
            Ok(Some(pending)) => pending,
            Ok(None) | Err(_) => {
                tracing::info!(
                    code = "login_not_found",
                    "callback without its pending login"
                );
                return error_clearing(
                    StatusCode::BAD_REQUEST,
                    "login_not_found",
                    "This sign-in has expired or was already completed. Please start again.",
                    headers,
                    clear_pending,
                );
            }
        };
        let Some(endpoints) = self.endpoints() else {
            return provider_not_ready(headers);
        };
        let login_expires_at = pending.expires_at();
        let exchange = match handle_callback(
            &endpoints,
            &login.login_config,
            pending,
            &params,
            now,
            &mut SystemRandom,
        ) {
            Ok(exchange) => exchange,
            Err(error) => return callback_failed(&error, headers, clear_pending),
        };
        if !self.complete_login_once(&state, login_expires_at, now) {
            tracing::info!(
                code = "login_already_completed",
                "callback replayed; its code is not sent again"
            );
            return error_clearing(
                StatusCode::BAD_REQUEST,
                "login_already_completed",
                "This sign-in was already completed. Please start again.",
                headers,
                clear_pending,
            );
        }
        let response = match self.http().execute(exchange.request).await {
            Ok(response) => response,
            Err(error) => {
                self.metrics().record_provider_error(error.code());
                return error_clearing(
                    StatusCode::BAD_GATEWAY,
                    error.code(),
                    "The identity provider could not be reached to complete sign-in.",
                    headers,
                    clear_pending,
                );
            }
        };
        let tokens = match parse_token_response(&response) {
            Ok(tokens) => tokens,
            Err(TokenError::Provider {
                error: TokenErrorCode::InvalidGrant,
                ..
            }) => {
                // The code was used, expired or revoked: the browser's answer is stale, which
                // starting again cures (another replica may have redeemed it).
                tracing::info!(
                    code = "invalid_grant",
                    "code exchange refused: invalid_grant"
                );
                return error_clearing(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "This sign-in has expired or was already completed. Please start again.",
                    headers,
                    clear_pending,
                );
            }
            Err(error) => {
                tracing::warn!(code = error.code(), "code exchange refused");
                return error_clearing(
                    StatusCode::BAD_GATEWAY,
                    error.code(),
                    "The identity provider refused to complete sign-in.",
                    headers,
                    clear_pending,
                );
            }
        };
        let expectation = exchange.expectation;
        let outcome = self
            .with_fresh_keys(|keys| {
                finish_login(&expectation, tokens.clone(), keys, &login.id_policy, now)
            })
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                let mut answer = if error.is_outage() {
                    tracing::warn!(code = error.code(), "ID token keys unavailable");
                    error_answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        error.code(),
                        "The identity provider's keys could not be fetched to complete sign-in. Please try again shortly.",
                        headers,
                    )
                } else {
                    tracing::warn!(code = error.code(), "ID token refused");
                    error_answer(
                        StatusCode::FORBIDDEN,
                        error.code(),
                        "The identity provider's answer could not be verified.",
                        headers,
                    )
                };
                append_cookies(&mut answer, clear_pending);
                return answer;
            }
        };
        let return_to = self
            .front_end()
            .redirect_policy
            .return_to_or_root(Some(&outcome.return_to));
        let session = login.session_from(outcome);
        // A new sign-in always gets a new session; one the request carried is ended.
        if let Ok(Some(previous)) = self.load_session(&cookies, now).await {
            let _ = self.end_session(&previous).await;
        }
        let set_cookies = match self.create_session(session, &cookies, now).await {
            Ok((_, set_cookies)) => set_cookies,
            Err(error) => {
                tracing::error!(code = error.code(), "session could not be created");
                let status = match &error {
                    CreateSessionError::Store(e) if e.is_unavailable() => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                return error_clearing(
                    status,
                    error.code(),
                    "Your session could not be stored. Please try again shortly.",
                    headers,
                    clear_pending,
                );
            }
        };
        tracing::info!("signed in");
        let mut response = redirect(&return_to);
        append_cookies(&mut response, clear_pending);
        append_cookies(&mut response, set_cookies);
        response
    }
}

fn callback_failed(
    error: &CallbackError,
    headers: &HeaderMap,
    clear: Vec<HeaderValue>,
) -> Response<Bytes> {
    tracing::warn!(code = error.code(), "callback refused");
    let (status, message) = match error {
        CallbackError::Provider { .. } => (
            StatusCode::FORBIDDEN,
            "The identity provider did not sign you in.",
        ),
        CallbackError::PendingLoginExpired { .. } => (
            StatusCode::BAD_REQUEST,
            "This sign-in took too long. Please start again.",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "This sign-in answer is not valid. Please start again.",
        ),
    };
    error_clearing(status, error.code(), message, headers, clear)
}

/// An error page that also clears the pending-login cookies the request carried.
fn error_clearing(
    status: StatusCode,
    code: &str,
    message: &str,
    headers: &HeaderMap,
    clear: Vec<HeaderValue>,
) -> Response<Bytes> {
    let mut response = error_answer(status, code, message, headers);
    append_cookies(&mut response, clear);
    response
}
