//! The bearer layer: APIs that accept `Authorization: Bearer` access tokens.
//!
//! [`BearerAuthLayer`] wraps a service so that every request must carry a valid token: a JWT
//! validated with the provider's keys, or an opaque token validated by RFC 7662 introspection
//! (cached until the token expires or the configured limit, whichever is sooner). Failures get
//! RFC 6750 answers: 401 `invalid_token` with `WWW-Authenticate`, 400 `invalid_request`, 403
//! `insufficient_scope` when required scopes or the authorization rules are not met, 503 when
//! the provider cannot be reached. The [`Authenticated`](super::Authenticated) caller goes into the request
//! extensions, where handlers read it (in axum, as an extractor). Identity headers a client sent
//! (`X-Forwarded-User`, `Remote-User` and the rest, in every spelling) are removed, as the other
//! front-ends remove them.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode};
//! use oidc_core::{Issuer, Policy};
//! use oidc_dev_provider::{DevClient, DevProvider, DevUser};
//! use oidc_tower::auth::{AuthConfig, Authenticated, BearerAuthLayer};
//! use oidc_tower::provider::{Provider, ProviderConfig};
//! use oidc_tower::ReqwestHttpClient;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let op = DevProvider::builder()
//!     .user(DevUser::new("alice", "pw").email("alice@example.com"))
//!     .client(DevClient::confidential("api", "secret"))
//!     .build()?
//!     .serve("127.0.0.1:0".parse()?)
//!     .await?;
//! let http = Arc::new(ReqwestHttpClient::new()?);
//! let policy = Policy::builder().issuer(op.issuer().clone()).audience("api").build()?;
//! let provider = Provider::start(ProviderConfig::new(op.issuer().clone(), policy), http.clone());
//! provider.wait_ready().await;
//! let auth = AuthConfig::new(provider, http).build()?;
//!
//! let api = ServiceBuilder::new()
//!     .layer(BearerAuthLayer::new(auth))
//!     .service_fn(|request: Request<String>| async move {
//!         let caller = request.extensions().get::<Authenticated>().expect("set by the layer");
//!         Ok::<_, std::convert::Infallible>(Response::new(caller.identity.user.clone()))
//!     });
//!
//! let anonymous = api.clone().oneshot(Request::new(String::new())).await?;
//! assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
//!
//! let token = op.mint_access_token("alice", "api")?;
//! let request = Request::get("/").header("authorization", format!("Bearer {token}")).body(String::new())?;
//! assert_eq!(api.oneshot(request).await?.status(), StatusCode::OK);
//! # Ok(()) }
//! ```

use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::answer::{AuthBody, ResponseFuture, own, passed};
use super::authenticator::Authenticator;
use crate::identity_headers::strip_identity_headers;
use crate::metrics::RequestOutcome;

/// A layer requiring a valid bearer token on every request (except skip-auth routes). See the
/// [module docs](self) for a runnable example.
#[derive(Clone, Debug)]
#[must_use]
pub struct BearerAuthLayer {
    auth: Authenticator,
}

impl BearerAuthLayer {
    /// A layer deciding with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        BearerAuthLayer { auth }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service of [`BearerAuthLayer`]: validates the token, then calls the inner service with
/// the [`Authenticated`](super::Authenticated) caller in the request extensions.
#[derive(Clone, Debug)]
pub struct BearerAuth<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> BearerAuth<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
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
            // A handler, or a proxy behind it, never sees an identity a client claimed itself.
            strip_identity_headers(&mut parts.headers);
            if auth
                .front_end()
                .skip_auth
                .matches_request(&parts.method, &parts.uri)
            {
                metrics.record_request(RequestOutcome::Skipped, None, started.elapsed());
                return inner
                    .call(Request::from_parts(parts, body))
                    .await
                    .map(passed);
            }
            let url = || auth.request_url(&parts);
            match auth
                .authenticate_request(&parts.method, url, &parts.headers, parts.uri.query(), true)
                .await
            {
                Ok(authentication) => {
                    let authenticated = authentication.authenticated;
                    tracing::debug!(
                        source = authenticated.source.as_str(),
                        "bearer token accepted"
                    );
                    metrics.record_request(RequestOutcome::Allowed, None, started.elapsed());
                    parts.extensions.insert(authenticated);
                    inner
                        .call(Request::from_parts(parts, body))
                        .await
                        .map(passed)
                }
                Err(failure) => {
                    tracing::info!(code = failure.code(), "bearer request refused");
                    metrics.record_request(
                        RequestOutcome::Rejected,
                        Some(failure.code()),
                        started.elapsed(),
                    );
                    Ok(own(auth.bearer_failure_response(&failure, &parts.headers)))
                }
            }
        })
    }
}
