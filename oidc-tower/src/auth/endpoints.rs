//! The endpoints under the prefix: `start`, `callback`, `sign_out`, `signed_out`, `userinfo`,
//! `backchannel_logout` and, when identity assertions are on, `jwks` (their public keys),
//! shared by the login layer and forward-auth.
//!
//! Sign-out returns the browser to the application: `sign_out?rd=TARGET` checks `TARGET` with
//! the same redirect policy as sign-in targets; when the provider's session is ended too, the
//! target travels as the logout request's `state` to the configured post-logout redirect URI
//! (`{prefix}/signed_out`), which checks it again and redirects there.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header, request};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use oidc_core::ErrorKind;
use oidc_core::cookie::{CookieCodec, RequestCookies};
use oidc_core::login::par::{
    parse_pushed_authorization_response, pushed_authorization_endpoint,
    pushed_authorization_request, pushed_authorization_url,
};
use oidc_core::login::token::{TokenError, TokenErrorCode, parse_token_response};
use oidc_core::login::{
    AuthorizationRedirect, CallbackError, CallbackParams, LoginOutcome, LoginRequest, PendingLogin,
    cookie_suffix_for_state, finish_login, handle_callback, start_login,
};
use oidc_core::logout::{EndSessionRequest, LogoutTokenError, logout_token_from_form};
use oidc_core::validation::ValidationError;
use oidc_core::{Session, UnixTime};
use serde_json::Map;

use super::answer::{append_cookies, error_answer, json_answer, redirect};
use super::authenticator::{AuthFailure, Authenticator, lock, now};
use crate::proxy::BoxError;
use crate::random::SystemRandom;

/// The largest request body an endpoint reads (callback `form_post`, logout token).
const MAX_ENDPOINT_BODY_BYTES: usize = 64 * 1024;

/// An endpoint under the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Start,
    Callback,
    SignOut,
    SignedOut,
    Userinfo,
    BackchannelLogout,
    Auth,
    Jwks,
}

/// How a login begins: a redirect with every parameter, a push first (to this endpoint), or
/// an answer instead (misconfiguration, provider not ready).
enum LoginStart {
    Plain(AuthorizationRedirect),
    Push(AuthorizationRedirect, url::Url),
    Answered(Response<Bytes>),
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Start => "start",
            Endpoint::Callback => "callback",
            Endpoint::SignOut => "sign_out",
            Endpoint::SignedOut => "signed_out",
            Endpoint::Userinfo => "userinfo",
            Endpoint::BackchannelLogout => "backchannel_logout",
            Endpoint::Auth => "auth",
            Endpoint::Jwks => "jwks",
        }
    }
}

impl Authenticator {
    /// The endpoint a path names, if it is one of ours.
    pub(crate) fn endpoint_for(&self, path: &str) -> Option<Endpoint> {
        match endpoint_under(self.prefix(), path) {
            Some(Endpoint::Jwks) if self.config().identity_assertion.is_none() => None,
            endpoint => endpoint,
        }
    }

    /// Serves one of the sign-in endpoints (not `auth`, which forward-auth answers).
    pub(crate) async fn serve_endpoint<B>(
        &self,
        endpoint: Endpoint,
        parts: request::Parts,
        body: B,
    ) -> Response<Bytes>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        tracing::debug!(endpoint = endpoint.name(), "serving endpoint");
        let needs_body = parts.method == Method::POST
            && matches!(endpoint, Endpoint::Callback | Endpoint::BackchannelLogout);
        if needs_body && has_content_coding(&parts.headers) {
            // Never inflated: a few kilobytes of gzip could stand for gigabytes.
            return error_answer(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorKind::ContentEncodingUnsupported.code(),
                "Compressed request bodies are not accepted here.",
                &parts.headers,
            );
        }
        let body = if needs_body {
            match Limited::new(body, MAX_ENDPOINT_BODY_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return error_answer(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorKind::BodyTooLarge.code(),
                        "The request body is too large or could not be read.",
                        &parts.headers,
                    );
                }
            }
        } else {
            Bytes::new()
        };
        match endpoint {
            Endpoint::Start => {
                let target = query_param(parts.uri.query(), "rd");
                let return_to = self
                    .config()
                    .redirect_policy
                    .return_to_or_root(target.as_deref());
                self.begin_login_pushing(&parts.headers, &return_to).await
            }
            Endpoint::Callback => self.callback(&parts, &body).await,
            Endpoint::SignOut => self.sign_out(&parts).await,
            Endpoint::SignedOut => {
                // Whatever arrives here was also acceptable as `sign_out?rd=`: checked again.
                let target = query_param(parts.uri.query(), "state");
                redirect(
                    &self
                        .config()
                        .redirect_policy
                        .return_to_or_root(target.as_deref()),
                )
            }
            Endpoint::Userinfo => self.userinfo(&parts).await,
            Endpoint::BackchannelLogout => self.backchannel_logout(&parts, &body).await,
            Endpoint::Auth => error_answer(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound.code(),
                "This endpoint is served by forward-auth only.",
                &parts.headers,
            ),
            Endpoint::Jwks => match &self.config().identity_assertion {
                Some(assertion) => assertion_key_set(assertion.key_set_json().clone()),
                None => error_answer(
                    StatusCode::NOT_FOUND,
                    ErrorKind::NotFound.code(),
                    "Identity assertions are not configured.",
                    &parts.headers,
                ),
            },
        }
    }

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
    async fn begin_login_pushing(&self, headers: &HeaderMap, return_to: &str) -> Response<Bytes> {
        let (started, push_to) = match self.start_login_now(headers, return_to) {
            LoginStart::Plain(started) => {
                return self.redirect_to_provider(headers, started.pending, &started.url);
            }
            LoginStart::Push(started, push_to) => (started, push_to),
            LoginStart::Answered(answer) => return answer,
        };
        let Some(login) = self.login_parts() else {
            return not_configured(headers);
        };
        let Some(endpoints) = self.endpoints() else {
            return provider_not_ready(headers);
        };
        let pushed = match pushed_authorization_request(
            &push_to,
            &login.login_config,
            &started,
            now(),
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
        let Some(login) = self.login_parts() else {
            return LoginStart::Answered(not_configured(headers));
        };
        let Some(mut endpoints) = self.endpoints() else {
            return LoginStart::Answered(provider_not_ready(headers));
        };
        if let Some(metadata) = self.provider().metadata() {
            endpoints.read_pushed_authorization(&metadata);
        }
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
            now(),
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
        let Some(login) = self.login_parts() else {
            return not_configured(headers);
        };
        let now = now();
        let cookies = RequestCookies::from_headers(headers);
        let mut set_cookies = self.evict_pending_logins(&cookies, now);
        let sealed = login
            .pending_codec(self.config(), &pending.cookie_suffix())
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

    /// Clearing cookies for the oldest pending logins, so that with the new one at most the
    /// configured number remain; unreadable pending cookies are always cleared.
    fn evict_pending_logins(
        &self,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Vec<HeaderValue> {
        let Some(login) = self.login_parts() else {
            return Vec::new();
        };
        let mut pending: Vec<(Option<UnixTime>, CookieCodec)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for name in cookies.names() {
            let Some(suffix) = name.strip_prefix(login.pending_prefix.as_str()) else {
                continue;
            };
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let Ok(codec) = login.pending_codec(self.config(), suffix) else {
                continue;
            };
            let created = codec
                .decode::<PendingLogin>(cookies, now)
                .ok()
                .flatten()
                .map(|pending| pending.created_at());
            pending.push((created, codec));
        }
        let keep = self.config().max_pending_logins.saturating_sub(1);
        if pending.len() <= keep {
            return pending
                .iter()
                .filter(|(created, _)| created.is_none())
                .flat_map(|(_, codec)| codec.clear(cookies).unwrap_or_default())
                .collect();
        }
        // Unreadable first (None sorts first), then oldest first.
        pending.sort_by_key(|(created, _)| *created);
        let drop = pending.len() - keep;
        tracing::debug!(
            dropped = drop,
            "too many pending logins: dropping the oldest"
        );
        pending
            .iter()
            .take(drop)
            .flat_map(|(_, codec)| codec.clear(cookies).unwrap_or_default())
            .collect()
    }

    async fn callback(&self, parts: &request::Parts, body: &[u8]) -> Response<Bytes> {
        let headers = &parts.headers;
        let Some(login) = self.login_parts() else {
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
        let now = now();
        let cookies = RequestCookies::from_headers(headers);
        let codec = match login.pending_codec(self.config(), &cookie_suffix_for_state(&state)) {
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
        let login_remaining = pending.expires_at().duration_since(now);
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
        if !self.complete_login_once(&state, login_remaining) {
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
        let response = match self.config().http.execute(exchange.request).await {
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
            .config()
            .redirect_policy
            .return_to_or_root(Some(&outcome.return_to));
        let session = self.session_from(outcome);
        // A new sign-in always gets a new session; one the request carried is ended.
        if let Ok(Some(previous)) = self.load_session(&cookies, now).await {
            let _ = self.end_session(&previous).await;
        }
        let set_cookies = match self.create_session(session, &cookies, now).await {
            Ok((_, set_cookies)) => set_cookies,
            Err(error) => {
                tracing::error!(code = error.code(), "session could not be created");
                let status = match &error {
                    super::authenticator::CreateSessionError::Store(e) if e.is_unavailable() => {
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

    fn session_from(&self, outcome: LoginOutcome) -> Session {
        let config = self.config();
        let claims = super::authenticator::claims_map(&outcome.claims);
        let groups = oidc_core::authorization::groups_from_claims(&claims, &config.groups_claim);
        let mut kept = Map::new();
        let wanted = config
            .keep_claims
            .iter()
            .chain(config.rules.required_claims.iter().map(|rule| &rule.claim));
        for name in wanted {
            let top = name.split('.').next().unwrap_or(name);
            if let Some(value) = claims.get(top) {
                kept.insert(top.to_owned(), value.clone());
            }
        }
        let mut session = outcome.into_session(config.session_lifetime);
        session.groups = groups;
        session.extra_claims = kept;
        config
            .rules
            .identity_claims
            .apply_to_session(&mut session, &claims);
        session
    }

    async fn sign_out(&self, parts: &request::Parts) -> Response<Bytes> {
        let headers = &parts.headers;
        let Some(login) = self.login_parts() else {
            return not_configured(headers);
        };
        let now = now();
        let cookies = RequestCookies::from_headers(headers);
        let target = query_param(parts.uri.query(), "rd");
        let return_to = self
            .config()
            .redirect_policy
            .return_to_or_root(target.as_deref());
        let loaded = match self.load_session(&cookies, now).await {
            Ok(loaded) => loaded,
            Err(AuthFailure::StoreUnavailable(error)) => {
                tracing::error!(
                    code = error.code(),
                    "sign-out impossible: session store unavailable"
                );
                return error_answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error.code(),
                    "Signing out is not possible right now: the session store is unavailable. Please try again shortly.",
                    headers,
                );
            }
            Err(_) => None,
        };
        if let Some(loaded) = &loaded
            && let Err(error) = self.end_session(loaded).await
        {
            tracing::error!(code = error.code(), "sign-out could not revoke the session");
            return error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                error.code(),
                "Signing out is not possible right now: the session store is unavailable. Please try again shortly.",
                headers,
            );
        }
        let mut clear = login.session_codec.clear(&cookies).unwrap_or_default();
        for name in cookies.names() {
            if let Some(suffix) = name.strip_prefix(login.pending_prefix.as_str())
                && let Ok(codec) = login.pending_codec(self.config(), suffix)
            {
                clear.extend(codec.clear(&cookies).unwrap_or_default());
            }
        }
        let provider_url = loaded
            .as_ref()
            .filter(|_| self.config().provider_logout)
            .and_then(|loaded| {
                let endpoint = self.provider().metadata()?.end_session_endpoint.clone()?;
                let mut request = EndSessionRequest::new(login.settings.credentials.client_id());
                if let Some(id_token) = &loaded.session.id_token {
                    request = request.id_token_hint(id_token.clone());
                }
                if let Some(uri) = &self.config().post_logout_redirect_uri {
                    // The provider hands `state` back to `{prefix}/signed_out`, which goes on to it.
                    request = request
                        .post_logout_redirect_uri(uri.clone())
                        .state(return_to.clone());
                }
                request.url(Some(&endpoint))
            });
        tracing::info!(
            had_session = loaded.is_some(),
            provider_logout = provider_url.is_some(),
            "signed out"
        );
        let mut response = match provider_url {
            Some(url) => redirect(url.as_str()),
            None => redirect(&return_to),
        };
        append_cookies(&mut response, clear);
        response
    }

    async fn userinfo(&self, parts: &request::Parts) -> Response<Bytes> {
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

    async fn backchannel_logout(&self, parts: &request::Parts, body: &[u8]) -> Response<Bytes> {
        let headers = &parts.headers;
        let Some(login) = self.login_parts() else {
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
            let mut seen = lock(&self.inner.seen_jtis);
            login
                .logout_validator
                .validate(token.expose(), keys, now(), &mut seen)
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

/// The endpoint `path` names under `prefix`: an exact match of `{prefix}/{name}`, nothing else.
pub(crate) fn endpoint_under(prefix: &str, path: &str) -> Option<Endpoint> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
    match rest {
        "start" => Some(Endpoint::Start),
        "callback" => Some(Endpoint::Callback),
        "sign_out" => Some(Endpoint::SignOut),
        "signed_out" => Some(Endpoint::SignedOut),
        "userinfo" => Some(Endpoint::Userinfo),
        "backchannel_logout" => Some(Endpoint::BackchannelLogout),
        "auth" => Some(Endpoint::Auth),
        "jwks" => Some(Endpoint::Jwks),
        _ => None,
    }
}

/// The identity assertions' public keys: public, and cacheable for a few minutes (an upstream
/// meeting an unknown `kid` fetches them again).
fn assertion_key_set(json: Bytes) -> Response<Bytes> {
    let mut response = Response::new(json);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// Whether the body is declared as compressed (any `Content-Encoding` but `identity`).
fn has_content_coding(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .any(|coding| {
            let coding = coding.trim_ascii();
            !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
        })
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

fn not_configured(headers: &HeaderMap) -> Response<Bytes> {
    error_answer(
        StatusCode::NOT_FOUND,
        "login_not_configured",
        "Sign-in is not configured here.",
        headers,
    )
}

fn provider_not_ready(headers: &HeaderMap) -> Response<Bytes> {
    error_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_not_ready",
        "The identity provider is not reachable yet. Please try again shortly.",
        headers,
    )
}

/// The first value of a query parameter, decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn endpoints_match_exact_paths_only() {
        assert_eq!(
            endpoint_under("/oauth2", "/oauth2/start"),
            Some(Endpoint::Start)
        );
        assert_eq!(
            endpoint_under("/oauth2", "/oauth2/auth"),
            Some(Endpoint::Auth)
        );
        assert_eq!(endpoint_under("/oauth2", "/oauth2/start/"), None);
        assert_eq!(endpoint_under("/oauth2", "/oauth2start"), None);
        assert_eq!(endpoint_under("/oauth2", "/x/oauth2/start"), None);
        assert_eq!(endpoint_under("/oauth2", "/oauth2/START"), None);
    }

    #[test]
    fn only_identity_counts_as_uncompressed() {
        let coded = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(
                    header::CONTENT_ENCODING,
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            has_content_coding(&headers)
        };
        assert!(!coded(&[]));
        assert!(!coded(&["identity"]));
        assert!(!coded(&[" IDENTITY , "]));
        assert!(coded(&["gzip"]));
        assert!(coded(&["identity, br"]));
        assert!(coded(&["identity", "deflate"]));
        assert!(coded(&["x-anything"]));
    }

    proptest! {
        #[test]
        fn endpoint_matching_never_panics_and_is_exact(path in "\\PC{0,64}") {
            if let Some(endpoint) = endpoint_under("/oauth2", &path) {
                prop_assert_eq!(path, format!("/oauth2/{}", endpoint.name()));
            }
        }

        #[test]
        fn query_parsing_never_panics(query in proptest::collection::vec(any::<u8>(), 0..256)) {
            let query = String::from_utf8_lossy(&query);
            let _ = query_param(Some(&query), "rd");
        }
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&rd=%2Fx%3Fy%3D1"), "rd").as_deref(),
            Some("/x?y=1")
        );
        assert_eq!(query_param(Some("rd"), "rd").as_deref(), Some(""));
        assert_eq!(query_param(None, "rd"), None);
        assert_eq!(query_param(Some("x=%ff"), "x").as_deref(), Some("\u{fffd}"));
    }
}
