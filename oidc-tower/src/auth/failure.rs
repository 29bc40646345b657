//! How each front-end answers an [`AuthFailure`]: RFC 6750 challenges for bearer clients,
//! a redirect to sign-in for browser navigations, 401 JSON for API calls, 403 for refusals and
//! 503 for outages.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use oidc_core::cookie::RequestCookies;

use super::answer::{append_cookies, error_answer};
use super::authenticator::{AuthFailure, Authenticator};
use crate::bearer_response::{BearerRejection, DpopRejection};
use crate::request_kind::{RequestKind, classify};

impl Authenticator {
    /// The bearer layer's answer: an RFC 6750 challenge, or 503 when the provider or store is
    /// unavailable.
    pub(crate) fn bearer_failure_response(
        &self,
        failure: &AuthFailure,
        headers: &HeaderMap,
    ) -> Response<Bytes> {
        if failure.is_dpop_failure() {
            return self.dpop_failure_response(failure);
        }
        let rejection = match failure {
            AuthFailure::BadBearer(error) => BearerRejection::InvalidRequest(error.clone()),
            AuthFailure::TokenRejected(_)
            | AuthFailure::IntrospectionRejected(_)
            | AuthFailure::OpaqueTokenUnsupported => BearerRejection::invalid_token(failure.code()),
            AuthFailure::InsufficientScope { required, .. } => {
                BearerRejection::insufficient_scope(required)
            }
            AuthFailure::Forbidden(_) => {
                BearerRejection::insufficient_scope(&self.config().required_scopes)
            }
            AuthFailure::ProviderUnavailable { .. } | AuthFailure::StoreUnavailable(_) => {
                return unavailable(failure, headers);
            }
            _ => BearerRejection::MissingToken,
        };
        let mut response = rejection.response(&self.config().realm, headers);
        response.extensions_mut().insert(failure.clone());
        response
    }

    /// An RFC 9449 §7.1 answer: a `DPoP` challenge naming the accepted proof algorithms, and a
    /// `Bearer` one beside it.
    fn dpop_failure_response(&self, failure: &AuthFailure) -> Response<Bytes> {
        let rejection = match failure {
            AuthFailure::BadDpop(error) => DpopRejection::InvalidRequest(error.clone()),
            AuthFailure::DpopRejected(error) => DpopRejection::invalid_proof(error.code()),
            _ => DpopRejection::invalid_token(failure.code()),
        };
        let algorithms = self.inner.dpop_policy.allowed_algorithms();
        let mut response = rejection.response(&self.config().realm, algorithms, true);
        response.extensions_mut().insert(failure.clone());
        response
    }

    /// The login layer's (and forward-auth's) answer to a request that may not pass.
    ///
    /// `original` is the request the user made (for forward-auth, reconstructed from the
    /// trusted `X-Forwarded-*` headers); `sign_in_return_to` is where a browser navigation
    /// returns after signing in (already checked against the redirect policy), or `None` when
    /// navigations get 401 like API calls instead of a redirect to sign in.
    pub(crate) fn login_failure_response(
        &self,
        failure: &AuthFailure,
        method: &Method,
        original: &Uri,
        headers: &HeaderMap,
        sign_in_return_to: Option<&str>,
    ) -> Response<Bytes> {
        if failure.is_bearer_failure() {
            return self.bearer_failure_response(failure, headers);
        }
        let mut response = match failure {
            AuthFailure::Forbidden(denied) => {
                tracing::info!(
                    code = denied.code(),
                    "access denied by the authorization rules"
                );
                error_answer(
                    StatusCode::FORBIDDEN,
                    denied.code(),
                    "You are signed in, but your account is not allowed to use this application.",
                    headers,
                )
            }
            AuthFailure::ProviderUnavailable { .. } | AuthFailure::StoreUnavailable(_) => {
                unavailable(failure, headers)
            }
            _ => {
                let on_api_route = self.config().api_routes.matches_request(method, original);
                let kind = classify(method, headers, on_api_route);
                if let (Some(return_to), RequestKind::Navigation) = (sign_in_return_to, kind) {
                    self.begin_login(headers, return_to)
                } else {
                    let mut response = error_answer(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "Sign in, or send a bearer token.",
                        headers,
                    );
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        BearerRejection::MissingToken.www_authenticate(&self.config().realm),
                    );
                    response
                }
            }
        };
        if failure.session_is_gone()
            && let Some(login) = self.login_parts()
        {
            let cookies = RequestCookies::from_headers(headers);
            append_cookies(
                &mut response,
                login.session_codec.clear(&cookies).unwrap_or_default(),
            );
        }
        response.extensions_mut().insert(failure.clone());
        response
    }
}

/// 503 with a clear message; the session, if any, is kept.
fn unavailable(failure: &AuthFailure, headers: &HeaderMap) -> Response<Bytes> {
    let message = match failure {
        AuthFailure::StoreUnavailable(_) => {
            "The session store is unavailable, so your session cannot be checked. Please try again shortly."
        }
        _ => "The identity provider is unavailable. Please try again shortly.",
    };
    tracing::warn!(code = failure.code(), "answering 503");
    let mut response = error_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        failure.code(),
        message,
        headers,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response.extensions_mut().insert(failure.clone());
    response
}
