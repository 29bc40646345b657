//! Sending a browser to the provider to sign in: the `start` endpoint and the redirect every
//! front-end answers a browser that must sign in with. Decides whether the authorization request
//! is pushed first (RFC 9126); the login flow says which older pending logins to clear.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use oidc_core::cookie::RequestCookies;
use oidc_core::login::par::{
    parse_pushed_authorization_response, pushed_authorization_endpoint,
    pushed_authorization_request, pushed_authorization_url,
};
use oidc_core::login::{AuthorizationRedirect, LoginRequest, PendingLogin, start_login};

use super::{not_configured, provider_not_ready};
use crate::auth::answer::{append_cookies, error_answer, redirect};
use crate::auth::authenticator::Authenticator;
use crate::random::SystemRandom;

/// How a login begins: a redirect with every parameter, a push first (to this endpoint), or
/// an answer instead (misconfiguration, provider not ready).
enum LoginStart {
    Plain(AuthorizationRedirect),
    Push(AuthorizationRedirect, url::Url),
    Answered(Response<Bytes>),
}

impl Authenticator {
    /// Redirects the browser to the provider to sign in, returning to `return_to` (already
    /// checked against the redirect policy) afterwards. Keeps at most the configured number
    /// of pending logins: the oldest cookies are cleared. When the login pushes its request
    /// (RFC 9126), which needs a round trip to the provider, the browser goes to the `start`
    /// endpoint first, which pushes.
    pub(crate) fn begin_login(&self, headers: &HeaderMap, return_to: &str) -> Response<Bytes> {
        match self.start_login_now(headers, return_to) {
            LoginStart::Plain(started) => {
                self.redirect_to_provider(headers, started.pending, &started.url)
            }
            LoginStart::Push(..) => {
                let mut start = format!("{}/start?", self.prefix());
                start.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("rd", return_to)
                        .finish(),
                );
                redirect(&start)
            }
            LoginStart::Answered(answer) => answer,
        }
    }

    /// The `start` endpoint: [`Self::begin_login`], pushing the authorization request first
    /// when the provider advertises (or requires) pushed authorization requests.
    pub(super) async fn begin_login_pushing(
        &self,
        headers: &HeaderMap,
        return_to: &str,
    ) -> Response<Bytes> {
        let (started, push_to) = match self.start_login_now(headers, return_to) {
            LoginStart::Plain(started) => {
                return self.redirect_to_provider(headers, started.pending, &started.url);
            }
            LoginStart::Push(started, push_to) => (started, push_to),
            LoginStart::Answered(answer) => return answer,
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
            Ok(request) => match self.config().http.execute(request).await {
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
                self.redirect_to_provider(headers, started.pending, &url)
            }
            Err(code) => {
                tracing::error!(code, "the pushed authorization request failed");
                self.config().metrics.record_provider_error(code);
                error_answer(
                    StatusCode::BAD_GATEWAY,
                    code,
                    "The identity provider could not start the sign-in. Please try again shortly.",
                    headers,
                )
            }
        }
    }

    /// Starts a login and decides whether it is pushed; a misconfiguration or a provider not
    /// ready yet is answered at once.
    fn start_login_now(&self, headers: &HeaderMap, return_to: &str) -> LoginStart {
        let Some(login) = self.login_flow() else {
            return LoginStart::Answered(not_configured(headers));
        };
        let Some(endpoints) = self.endpoints() else {
            return LoginStart::Answered(provider_not_ready(headers));
        };
        let misconfigured = |code: &'static str| {
            tracing::error!(code, "login could not start");
            LoginStart::Answered(error_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                "Sign-in is misconfigured.",
                headers,
            ))
        };
        let push_to = match pushed_authorization_endpoint(
            &endpoints,
            login.login_config.pushed_authorization_mode(),
        ) {
            Ok(push_to) => push_to.cloned(),
            Err(e) => return misconfigured(e.code()),
        };
        let started = match start_login(
            &endpoints,
            &login.login_config,
            &LoginRequest::new(return_to),
            self.now(),
            &mut SystemRandom,
        ) {
            Ok(started) => started,
            Err(e) => return misconfigured(e.code()),
        };
        match push_to {
            Some(push_to) => LoginStart::Push(started, push_to),
            None => LoginStart::Plain(started),
        }
    }

    /// Seals the pending login into its cookie and sends the browser to `url`.
    fn redirect_to_provider(
        &self,
        headers: &HeaderMap,
        pending: PendingLogin,
        url: &url::Url,
    ) -> Response<Bytes> {
        let Some(login) = self.login_flow() else {
            return not_configured(headers);
        };
        let now = self.now();
        let cookies = RequestCookies::from_headers(headers);
        let mut set_cookies = login.evict_pending(&cookies, now);
        let sealed = login
            .pending_codec(&pending.cookie_suffix())
            .map_err(|e| e.code())
            .and_then(|codec| {
                codec
                    .encode(
                        &pending,
                        pending.expires_at(),
                        now,
                        &mut SystemRandom,
                        &RequestCookies::empty(),
                    )
                    .map_err(|e| e.code())
            });
        match sealed {
            Ok(cookies) => set_cookies.extend(cookies),
            Err(code) => {
                tracing::error!(code, "pending login could not be sealed");
                return error_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code,
                    "Sign-in could not start.",
                    headers,
                );
            }
        }
        tracing::info!("redirecting to the provider to sign in");
        let mut response = redirect(url.as_str());
        append_cookies(&mut response, set_cookies);
        response
    }
}
