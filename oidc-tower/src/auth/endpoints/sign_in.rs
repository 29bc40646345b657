//! Sending a browser to the provider to sign in: the `start` endpoint and the redirect every
//! front-end answers a browser that must sign in with. The login flow decides how the login
//! starts ([`LoginFlow::start`](crate::auth::authenticator::LoginFlow::start)); this file turns
//! its answer into HTTP and, when the authorization request is pushed (RFC 9126), does the push
//! round trip.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use oidc_core::cookie::RequestCookies;
use oidc_core::login::par::{
    parse_pushed_authorization_response, pushed_authorization_request, pushed_authorization_url,
};

use super::{not_configured, provider_not_ready};
use crate::auth::answer::{append_cookies, error_answer, redirect};
use crate::auth::authenticator::{Authenticator, CannotStart, LoginStart};
use crate::random::SystemRandom;

impl Authenticator {
    /// Redirects the browser to the provider to sign in, returning to `return_to` (already
    /// checked against the redirect policy) afterwards. Keeps at most the configured number
    /// of pending logins: the oldest cookies are cleared. When the login pushes its request
    /// (RFC 9126), which needs a round trip to the provider, the browser goes to the `start`
    /// endpoint first, which pushes.
    pub(crate) fn begin_login(&self, headers: &HeaderMap, return_to: &str) -> Response<Bytes> {
        match self.start_login(headers, return_to) {
            Ok(LoginStart::Redirect { url, set_cookies }) => to_provider(&url, set_cookies),
            Ok(LoginStart::Push { .. }) => {
                let mut start = format!("{}/start?", self.prefix());
                start.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("rd", return_to)
                        .finish(),
                );
                redirect(&start)
            }
            Err(not_started) => not_started.answer(headers),
        }
    }

    /// The `start` endpoint: [`Self::begin_login`], pushing the authorization request first
    /// when the provider advertises (or requires) pushed authorization requests.
    pub(super) async fn begin_login_pushing(
        &self,
        headers: &HeaderMap,
        return_to: &str,
    ) -> Response<Bytes> {
        let (started, push_to) = match self.start_login(headers, return_to) {
            Ok(LoginStart::Redirect { url, set_cookies }) => return to_provider(&url, set_cookies),
            Ok(LoginStart::Push { started, push_to }) => (started, push_to),
            Err(not_started) => return not_started.answer(headers),
        };
        let Some(login) = self.login_flow() else {
            return not_configured(headers);
        };
        let Some(endpoints) = self.endpoints() else {
            return provider_not_ready(headers);
        };
        let pushed = match pushed_authorization_request(
            &push_to,
            &login.login_config,
            &started,
            self.now(),
            &mut SystemRandom,
        ) {
            Ok(request) => match self.http().execute(request).await {
                Ok(response) => {
                    parse_pushed_authorization_response(&response).map_err(|e| e.code())
                }
                Err(e) => Err(e.code()),
            },
            Err(e) => Err(e.code()),
        };
        match pushed {
            Ok(pushed) => {
                let client_id = login.login_config.credentials().client_id();
                let url = pushed_authorization_url(&endpoints, client_id, &pushed);
                tracing::debug!(
                    expires_in = pushed.expires_in,
                    "authorization request pushed"
                );
                let cookies = RequestCookies::from_headers(headers);
                match login.pending_cookies(
                    &started.pending,
                    &cookies,
                    self.now(),
                    &mut SystemRandom,
                ) {
                    Ok(set_cookies) => to_provider(&url, set_cookies),
                    Err(reason) => cannot_start(reason, headers),
                }
            }
            Err(code) => {
                tracing::error!(code, "the pushed authorization request failed");
                self.metrics().record_provider_error(code);
                error_answer(
                    StatusCode::BAD_GATEWAY,
                    code,
                    "The identity provider could not start the sign-in. Please try again shortly.",
                    headers,
                )
            }
        }
    }

    /// Asks the login flow to start a login with this request's cookies, on the authenticator's
    /// clock; without sign-in, a provider not ready yet or a login that cannot start, the
    /// answer instead.
    fn start_login(&self, headers: &HeaderMap, return_to: &str) -> Result<LoginStart, NotStarted> {
        let login = self.login_flow().ok_or(NotStarted::NotConfigured)?;
        let endpoints = self.endpoints().ok_or(NotStarted::ProviderNotReady)?;
        let cookies = RequestCookies::from_headers(headers);
        login
            .start(
                &endpoints,
                &cookies,
                return_to,
                self.now(),
                &mut SystemRandom,
            )
            .map_err(NotStarted::Cannot)
    }
}

/// Why no login started.
enum NotStarted {
    NotConfigured,
    ProviderNotReady,
    Cannot(CannotStart),
}

impl NotStarted {
    fn answer(self, headers: &HeaderMap) -> Response<Bytes> {
        match self {
            NotStarted::NotConfigured => not_configured(headers),
            NotStarted::ProviderNotReady => provider_not_ready(headers),
            NotStarted::Cannot(reason) => cannot_start(reason, headers),
        }
    }
}

/// Sends the browser to the provider at `url`, setting the pending-login cookies.
fn to_provider(url: &url::Url, set_cookies: Vec<HeaderValue>) -> Response<Bytes> {
    tracing::info!("redirecting to the provider to sign in");
    let mut response = redirect(url.as_str());
    append_cookies(&mut response, set_cookies);
    response
}

/// The answer to a login that cannot start.
fn cannot_start(reason: CannotStart, headers: &HeaderMap) -> Response<Bytes> {
    match reason {
        CannotStart::Misconfigured(code) => {
            tracing::error!(code, "login could not start");
            error_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                "Sign-in is misconfigured.",
                headers,
            )
        }
        CannotStart::Unsealed(code) => {
            tracing::error!(code, "pending login could not be sealed");
            error_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                "Sign-in could not start.",
                headers,
            )
        }
    }
}
