//! The forward-auth service: answers the sub-requests of Caddy `forward_auth`, nginx
//! `auth_request` and Traefik ForwardAuth with oauth2-proxy's contract.
//!
//! `{prefix}/auth` answers `202 Accepted` with `X-Auth-Request-User`, `-Email`,
//! `-Preferred-Username` and `-Groups` (and `-Access-Token` when configured), every one of them
//! always present, empty when unknown, because a proxy that copies a missing header may pass a
//! literal placeholder on. It answers 401 without a session, 403 when the user is signed in but
//! not allowed, 503 when the session store or provider is down, and adds `Set-Cookie` when the
//! session was refreshed during the check. With
//! [`AuthConfig::forward_auth_redirect`](super::AuthConfig::forward_auth_redirect), browser
//! navigations get a 302 to sign in that returns to the original URL, read from
//! `X-Forwarded-Method/Proto/Host/Uri` of trusted proxies only: its path when it is on the
//! callback URL's origin, its absolute URL when another host is allowed by the
//! [redirect policy](super::AuthConfig::redirect_policy). Without `X-Forwarded-Proto`, the
//! scheme is [`AuthConfig::external_scheme`](super::AuthConfig::external_scheme). The other endpoints under the
//! prefix (`start`, `callback`, `sign_out`, `userinfo`, `backchannel_logout`) are served too, so
//! one service is the whole sidecar.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, StatusCode};
//! use oidc_core::cookie::CookieSettings;
//! use oidc_core::login::{ClientAuthMethod, ClientCredentials};
//! use oidc_core::{Policy, Secret};
//! use oidc_dev_provider::{DevClient, DevProvider, DevUser};
//! use oidc_tower::auth::{AuthConfig, ForwardAuth, LoginSettings};
//! use oidc_tower::provider::{Provider, ProviderConfig};
//! use oidc_tower::ReqwestHttpClient;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let callback = "http://127.0.0.1:4180/oauth2/callback";
//! let op = DevProvider::builder()
//!     .user(DevUser::new("alice", "pw").email("alice@example.com"))
//!     .client(DevClient::confidential("app", "app-secret").redirect_uri(callback))
//!     .build()?
//!     .serve("127.0.0.1:0".parse()?)
//!     .await?;
//! let http = Arc::new(ReqwestHttpClient::new()?);
//! let policy = Policy::builder().issuer(op.issuer().clone()).audience("app").build()?;
//! let provider = Provider::start(ProviderConfig::new(op.issuer().clone(), policy), http.clone());
//! provider.wait_ready().await;
//! let credentials = ClientCredentials::new("app", ClientAuthMethod::ClientSecretBasic(Secret::new("app-secret")));
//! let secrets = vec![Secret::new("a cookie secret of at least thirty-two bytes")];
//! let auth = AuthConfig::new(provider, http)
//!     .login(LoginSettings::new(credentials, callback.parse()?, secrets))
//!     .session_cookie(CookieSettings::new("oidc_session").insecure_allow_plain_http(&callback.parse()?)?)
//!     .build()?;
//! let forward_auth = ForwardAuth::new(auth)?;
//!
//! let check = Request::get("/oauth2/auth").header("host", "auth.internal").body(String::new())?;
//! assert_eq!(forward_auth.clone().oneshot(check).await?.status(), StatusCode::UNAUTHORIZED);
//!
//! let token = op.mint_access_token("alice", "app")?;
//! let check = Request::get("/oauth2/auth")
//!     .header("host", "auth.internal")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(String::new())?;
//! let answer = forward_auth.oneshot(check).await?;
//! assert_eq!(answer.status(), StatusCode::ACCEPTED);
//! assert_eq!(answer.headers()["x-auth-request-email"], "alice@example.com");
//! assert_eq!(answer.headers()["x-auth-request-groups"], "");
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, request};
use http_body::Body;
use http_body_util::Full;
use oidc_core::ErrorKind;
use tower_service::Service;
use url::Url;

use super::answer::{ResponseFuture, append_cookies, error_answer};
use super::authenticator::Authenticator;
use super::config::AuthConfigError;
use super::endpoints::Endpoint;
use crate::error_status::answer_status;
use crate::forwarded::OriginalRequest;
use crate::identity_headers::{forward_auth_header_names, strip_identity_headers};
use crate::metrics::RequestOutcome;
use crate::proxy::{BoxError, PeerAddr};
use oidc_core::identity_assertion::ASSERTION_HEADER;

/// The forward-auth service (see the [module docs](self) for a runnable example). Cheap to
/// clone; serve it with [`crate::proxy::serve`] or mount it in axum.
#[derive(Clone, Debug)]
pub struct ForwardAuth {
    auth: Authenticator,
}

impl ForwardAuth {
    /// A forward-auth service deciding with `auth`, which must have sign-in configured.
    pub fn new(auth: Authenticator) -> Result<Self, AuthConfigError> {
        if !auth.has_login() {
            return Err(AuthConfigError::LoginNotConfigured);
        }
        Ok(ForwardAuth { auth })
    }

    /// The authenticator behind it.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    async fn check(&self, parts: request::Parts) -> Response<Bytes> {
        let started = Instant::now();
        let auth = &self.auth;
        let front_end = auth.front_end();
        let metrics = auth.metrics();
        let peer = peer_ip(&parts.extensions);
        let original = match OriginalRequest::from_parts(
            &parts.method,
            &parts.uri,
            &parts.headers,
            peer,
            &front_end.trusted_proxies,
            front_end.direct_scheme,
        ) {
            Ok(original) => original,
            Err(error) => {
                tracing::warn!(code = error.code(), "forward-auth request malformed");
                metrics.record_request(
                    RequestOutcome::Rejected,
                    Some(error.code()),
                    started.elapsed(),
                );
                return error_answer(
                    StatusCode::BAD_REQUEST,
                    error.code(),
                    "The proxy's X-Forwarded headers are malformed.",
                    &parts.headers,
                );
            }
        };
        let original_uri: Uri = original
            .path_and_query()
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        let with_assertion = front_end.identity_assertion.is_some();
        if front_end
            .skip_auth
            .matches_request(original.method(), &original_uri)
        {
            metrics.record_request(RequestOutcome::Skipped, None, started.elapsed());
            let mut response = accepted();
            if front_end.forward_auth_identity_headers {
                complete_identity_headers(
                    response.headers_mut(),
                    front_end.forward_auth_access_token,
                    with_assertion,
                );
            }
            return response;
        }
        let original_url = || Url::parse(&original.url()).ok();
        match auth
            .authenticate_request(original.method(), original_url, &parts.headers, None, false)
            .await
        {
            Ok(authentication) => {
                let mut response = accepted();
                if let Err(error) = front_end.forward_auth_headers.apply(
                    response.headers_mut(),
                    &authentication.authenticated.identity,
                ) {
                    tracing::warn!(code = error.code(), "identity cannot be sent as headers");
                    metrics.record_request(
                        RequestOutcome::Rejected,
                        Some(error.code()),
                        started.elapsed(),
                    );
                    return error_answer(
                        answer_status(error.kind()).unwrap_or(StatusCode::FORBIDDEN),
                        error.code(),
                        "Your identity cannot be passed to this application.",
                        &parts.headers,
                    );
                }
                complete_identity_headers(
                    response.headers_mut(),
                    front_end.forward_auth_access_token,
                    with_assertion,
                );
                if !front_end.forward_auth_identity_headers {
                    // The assertion vouches on its own; only the plain headers are unwanted.
                    let assertion = response.headers_mut().remove(ASSERTION_HEADER);
                    strip_identity_headers(response.headers_mut());
                    if let Some(assertion) = assertion {
                        response.headers_mut().insert(ASSERTION_HEADER, assertion);
                    }
                }
                append_cookies(&mut response, authentication.set_cookies);
                metrics.record_request(RequestOutcome::Allowed, None, started.elapsed());
                tracing::debug!(
                    source = authentication.authenticated.source.as_str(),
                    "forward-auth allowed"
                );
                response
            }
            Err(failure) => {
                let return_to = front_end
                    .forward_auth_redirect
                    .then(|| auth.forward_auth_return_to(&original));
                let mut response = auth.login_failure_response(
                    &failure,
                    original.method(),
                    &original_uri,
                    &parts.headers,
                    return_to.as_deref(),
                );
                strip_identity_headers(response.headers_mut());
                let outcome = if response.status() == StatusCode::FOUND {
                    RequestOutcome::Redirected
                } else {
                    RequestOutcome::Rejected
                };
                tracing::info!(
                    code = failure.code(),
                    status = response.status().as_u16(),
                    "forward-auth refused"
                );
                metrics.record_request(outcome, Some(failure.code()), started.elapsed());
                response
            }
        }
    }
}

impl<B> Service<Request<B>> for ForwardAuth
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        ResponseFuture::new(async move {
            let (parts, body) = request.into_parts();
            let response = match service.auth.endpoint_for(parts.uri.path()) {
                Some(Endpoint::Auth) => service.check(parts).await,
                Some(endpoint) => service.auth.serve_endpoint(endpoint, parts, body).await,
                None => error_answer(
                    StatusCode::NOT_FOUND,
                    ErrorKind::NotFound.code(),
                    "Nothing is served here.",
                    &parts.headers,
                ),
            };
            Ok(response.map(Full::new))
        })
    }
}

impl Authenticator {
    /// The absolute URL a request was addressed to, as its client saw it (scheme and host from
    /// trusted proxies' `X-Forwarded-*`): what a DPoP proof must name.
    pub(crate) fn request_url(&self, parts: &request::Parts) -> Option<Url> {
        let original = OriginalRequest::from_parts(
            &parts.method,
            &parts.uri,
            &parts.headers,
            peer_ip(&parts.extensions),
            &self.front_end().trusted_proxies,
            self.front_end().direct_scheme,
        )
        .ok()?;
        Url::parse(&original.url()).ok()
    }

    /// Where a browser returns after signing in on behalf of `original`: its path when it is
    /// on the callback URL's origin; otherwise its absolute URL when the redirect policy allows
    /// that host, else its path (on the callback's origin) as the best place left.
    pub(crate) fn forward_auth_return_to(&self, original: &OriginalRequest) -> String {
        let front_end = self.front_end();
        let policy = &front_end.redirect_policy;
        let path = original.path_and_query();
        let same_origin = front_end.callback_origin.as_ref().is_none_or(|callback| {
            Url::parse(&original.url()).is_ok_and(|url| url.origin() == *callback)
        });
        if same_origin {
            return policy.return_to_or_root(Some(path));
        }
        policy
            .validate(&original.url())
            .unwrap_or_else(|_| policy.return_to_or_root(Some(path)))
    }
}

fn accepted() -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// Adds every documented identity header that is missing, empty.
fn complete_identity_headers(
    headers: &mut HeaderMap,
    with_access_token: bool,
    with_assertion: bool,
) {
    for name in forward_auth_header_names(with_access_token, with_assertion) {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), HeaderValue::from_static(""));
        }
    }
}

/// The TCP peer of the request: [`PeerAddr`] (set by [`crate::proxy::serve`]) or axum's
/// `ConnectInfo`; unknown peers are never trusted proxies.
pub(crate) fn peer_ip(extensions: &http::Extensions) -> IpAddr {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return addr.ip();
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return addr.ip();
    }
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identity_header_is_present() {
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-request-user", HeaderValue::from_static("alice"));
        complete_identity_headers(&mut headers, true, true);
        assert_eq!(headers["x-auth-request-user"], "alice");
        for name in [
            "x-auth-request-user",
            "x-auth-request-email",
            "x-auth-request-preferred-username",
            "x-auth-request-groups",
        ] {
            assert!(headers.contains_key(name), "{name}");
        }
        assert_eq!(headers["x-auth-request-access-token"], "");
        assert_eq!(headers["x-identity-assertion"], "");
    }

    #[test]
    fn unknown_peers_are_unspecified() {
        assert_eq!(
            peer_ip(&http::Extensions::new()),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
        let mut extensions = http::Extensions::new();
        extensions.insert(PeerAddr("10.0.0.1:5".parse().unwrap()));
        assert_eq!(peer_ip(&extensions), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
