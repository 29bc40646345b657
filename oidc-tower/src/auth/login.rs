//! The login layer: browsers sign in at the provider, and the upstream learns who they are.
//!
//! [`OidcLoginLayer`] serves the endpoints under the prefix (default `/oauth2`): `start?rd=`,
//! `callback`, `sign_out?rd=`, `userinfo` and `backchannel_logout`. Every other request has
//! its client-sent identity headers removed (every spelling), then passes when it matches a
//! skip-auth rule, or when it carries a session cookie (refreshed transparently, one refresh
//! per session at a time) or, if accepted, a bearer token. The upstream then gets
//! `X-Forwarded-User`, `-Email`, `-Preferred-Username` and `-Groups` (and the access token when
//! configured), never our own cookies. An unauthenticated browser navigation is redirected to
//! the provider; an API-looking request gets 401; a refused user gets 403; an unreachable
//! session store gives 503.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode, header};
//! use oidc_core::cookie::CookieSettings;
//! use oidc_core::login::{ClientAuthMethod, ClientCredentials};
//! use oidc_core::{Policy, Secret};
//! use oidc_dev_provider::{DevClient, DevProvider, DevUser};
//! use oidc_tower::auth::{AuthConfig, LoginSettings, OidcLoginLayer};
//! use oidc_tower::provider::{Provider, ProviderConfig};
//! use oidc_tower::ReqwestHttpClient;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let callback = "http://127.0.0.1:4180/oauth2/callback";
//! let op = DevProvider::builder()
//!     .user(DevUser::new("alice", "pw"))
//!     .client(DevClient::confidential("app", "app-secret").redirect_uri(callback))
//!     .build()?
//!     .serve("127.0.0.1:0".parse()?)
//!     .await?;
//! let http = Arc::new(ReqwestHttpClient::new()?);
//! let policy = Policy::builder().issuer(op.issuer().clone()).audience("app").build()?;
//! let provider = Provider::start(ProviderConfig::new(op.issuer().clone(), policy), http.clone());
//! provider.wait_ready().await;
//! let credentials = ClientCredentials::new(
//!     "app",
//!     ClientAuthMethod::ClientSecretBasic(Secret::new("app-secret")),
//! );
//! let secrets = vec![Secret::new("a cookie secret of at least thirty-two bytes")];
//! let auth = AuthConfig::new(provider, http)
//!     .login(LoginSettings::new(credentials, callback.parse()?, secrets))
//!     .session_cookie(CookieSettings::new("oidc_session").insecure_allow_plain_http(&callback.parse()?)?)
//!     .build()?;
//!
//! let app = ServiceBuilder::new()
//!     .layer(OidcLoginLayer::new(auth)?)
//!     .service_fn(|_: Request<String>| async { Ok::<_, std::convert::Infallible>(Response::new(String::new())) });
//!
//! // A browser navigation without a session is sent to the provider...
//! let page = Request::get("/experiments").header(header::ACCEPT, "text/html").body(String::new())?;
//! let response = app.clone().oneshot(page).await?;
//! assert_eq!(response.status(), StatusCode::FOUND);
//! assert!(response.headers()[header::LOCATION].to_str()?.starts_with(op.issuer().as_str()));
//!
//! // ...and an API call gets 401.
//! let call = Request::get("/api/2.0/mlflow/runs").header(header::ACCEPT, "application/json").body(String::new())?;
//! assert_eq!(app.oneshot(call).await?.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```

use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response, StatusCode};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::answer::{AuthBody, ResponseFuture, append_cookies, error_answer, own, passed};
use super::authenticator::Authenticator;
use super::config::AuthConfigError;
use super::endpoints::Endpoint;
use crate::error_status::answer_status;
use crate::identity_headers::{strip_identity_headers, strip_own_cookies};
use crate::metrics::RequestOutcome;
use crate::proxy::BoxError;

/// A layer putting browser sign-in (and, if configured, bearer tokens) in front of a service.
/// See the [module docs](self) for a runnable example.
#[derive(Clone, Debug)]
#[must_use]
pub struct OidcLoginLayer {
    auth: Authenticator,
}

impl OidcLoginLayer {
    /// A layer deciding with `auth`, which must have sign-in configured
    /// ([`AuthConfig::login`](super::AuthConfig::login)).
    pub fn new(auth: Authenticator) -> Result<Self, AuthConfigError> {
        if !auth.has_login() {
            return Err(AuthConfigError::LoginNotConfigured);
        }
        Ok(OidcLoginLayer { auth })
    }
}

impl<S> Layer<S> for OidcLoginLayer {
    type Service = OidcLogin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OidcLogin {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service of [`OidcLoginLayer`].
#[derive(Clone, Debug)]
pub struct OidcLogin<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> OidcLogin<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the wrapper.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OidcLogin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let auth = self.auth.clone();
        ResponseFuture::new(async move {
            let started = Instant::now();
            let metrics = auth.metrics().clone();
            let (mut parts, body) = request.into_parts();
            if let Some(endpoint) = auth.endpoint_for(parts.uri.path())
                && endpoint != Endpoint::Auth
            {
                return Ok(own(auth.serve_endpoint(endpoint, parts, body).await));
            }
            strip_identity_headers(&mut parts.headers);
            let own_cookies = auth.login_flow().map(|login| &login.own_cookies);
            let strip_cookies = |headers: &mut http::HeaderMap| {
                if let Some(prefixes) = own_cookies {
                    strip_own_cookies(headers, |name| prefixes.matches(name));
                }
            };
            let front_end = auth.front_end();
            if front_end
                .skip_auth
                .matches_request(&parts.method, &parts.uri)
            {
                strip_cookies(&mut parts.headers);
                metrics.record_request(RequestOutcome::Skipped, None, started.elapsed());
                return inner
                    .call(Request::from_parts(parts, body))
                    .await
                    .map(passed);
            }
            let url = || auth.request_url(&parts);
            match auth
                .authenticate_request(&parts.method, url, &parts.headers, None, false)
                .await
            {
                Ok(authentication) => {
                    let authenticated = authentication.authenticated;
                    if let Err(error) = front_end
                        .upstream_headers
                        .apply_to_stripped(&mut parts.headers, &authenticated.identity)
                    {
                        tracing::warn!(code = error.code(), "identity cannot be sent upstream");
                        metrics.record_request(
                            RequestOutcome::Rejected,
                            Some(error.code()),
                            started.elapsed(),
                        );
                        return Ok(own(error_answer(
                            answer_status(error.kind()).unwrap_or(StatusCode::FORBIDDEN),
                            error.code(),
                            "Your identity cannot be passed to this application.",
                            &parts.headers,
                        )));
                    }
                    strip_cookies(&mut parts.headers);
                    tracing::debug!(source = authenticated.source.as_str(), "request allowed");
                    metrics.record_request(RequestOutcome::Allowed, None, started.elapsed());
                    parts.extensions.insert(authenticated);
                    let mut response = inner.call(Request::from_parts(parts, body)).await?;
                    append_cookies(&mut response, authentication.set_cookies);
                    Ok(passed(response))
                }
                Err(failure) => {
                    let target = parts.uri.path_and_query().map(|pq| pq.as_str());
                    let return_to = front_end.redirect_policy.return_to_or_root(target);
                    let response = auth.login_failure_response(
                        &failure,
                        &parts.method,
                        &parts.uri,
                        &parts.headers,
                        Some(&return_to),
                    );
                    let outcome = if response.status() == StatusCode::FOUND {
                        RequestOutcome::Redirected
                    } else {
                        RequestOutcome::Rejected
                    };
                    tracing::info!(
                        code = failure.code(),
                        status = response.status().as_u16(),
                        "request not authenticated"
                    );
                    metrics.record_request(outcome, Some(failure.code()), started.elapsed());
                    Ok(own(response))
                }
            }
        })
    }
}
