//! The sidecar as one service: what `oidc proxy` answers per request, in the order it decides,
//! for a Rust program to mount exactly as the binary does.
//!
//! 1. `/healthz` and `/ping` (liveness), `/readyz` and `/ready` (readiness): never
//!    authenticated, never forwarded.
//! 2. `{prefix}/auth`: [forward-auth](crate::auth::ForwardAuth) for Caddy, nginx and Traefik
//!    (404 when switched off).
//! 3. Everything else: the [login layer](crate::auth::OidcLoginLayer) (its endpoints under the
//!    prefix, sessions, bearer tokens of every accepted issuer) in front of the upstream.
//!
//! Who may pass is the [`Authenticator`]'s decision at every door; this service only routes.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode};
//! use oidc_core::cookie::CookieSettings;
//! use oidc_core::login::{ClientAuthMethod, ClientCredentials};
//! use oidc_core::{Policy, Secret};
//! use oidc_dev_provider::{DevClient, DevProvider, DevUser};
//! use oidc_tower::auth::{AuthConfig, LoginSettings};
//! use oidc_tower::health::Readiness;
//! use oidc_tower::provider::{Provider, ProviderConfig};
//! use oidc_tower::sidecar::Sidecar;
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
//! let upstream = tower::service_fn(|request: Request<String>| async move {
//!     let user = request.headers()["x-forwarded-user"].to_str().unwrap_or("").to_owned();
//!     Ok::<_, std::convert::Infallible>(Response::new(user))
//! });
//! let readiness = Readiness::new();
//! let sidecar = Sidecar::new(auth, upstream, readiness.clone())?;
//!
//! let probe = Request::get("/ready").body(String::new())?;
//! assert_eq!(sidecar.clone().oneshot(probe).await?.status(), StatusCode::SERVICE_UNAVAILABLE);
//! readiness.set_ready(true);
//! let probe = Request::get("/ready").body(String::new())?;
//! assert_eq!(sidecar.clone().oneshot(probe).await?.status(), StatusCode::OK);
//!
//! let token = op.mint_access_token("alice", "app")?;
//! let call = Request::get("/api/x").header("authorization", format!("Bearer {token}")).body(String::new())?;
//! assert_eq!(sidecar.clone().oneshot(call).await?.status(), StatusCode::OK);
//! let check = Request::get("/oauth2/auth").header("host", "app.internal").body(String::new())?;
//! assert_eq!(sidecar.oneshot(check).await?.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```

use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Either;
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::{
    AuthBody, AuthConfigError, Authenticator, ForwardAuth, OidcLogin, OidcLoginLayer,
    ResponseFuture,
};
use crate::health::{Readiness, health_response};
use crate::proxy::BoxError;

/// The sidecar service (see the [module docs](self)). Cheap to clone when the upstream is.
#[derive(Clone, Debug)]
pub struct Sidecar<S> {
    login: OidcLogin<S>,
    forward_auth: Option<ForwardAuth>,
    forward_auth_path: String,
    readiness: Readiness,
}

impl<S> Sidecar<S> {
    /// The sidecar deciding with `auth` (which must have sign-in configured) in front of
    /// `upstream`; readiness answers follow `readiness`. Forward-auth is on.
    pub fn new(
        auth: Authenticator,
        upstream: S,
        readiness: Readiness,
    ) -> Result<Self, AuthConfigError> {
        let forward_auth_path = format!("{}/auth", auth.prefix());
        Ok(Sidecar {
            login: OidcLoginLayer::new(auth.clone())?.layer(upstream),
            forward_auth: Some(ForwardAuth::new(auth)?),
            forward_auth_path,
            readiness,
        })
    }

    /// Switches forward-auth off: `{prefix}/auth` answers 404.
    #[must_use]
    pub fn without_forward_auth(mut self) -> Self {
        self.forward_auth = None;
        self
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Sidecar<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.login.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if let Some(answer) = health_response(path, &self.readiness) {
            return ResponseFuture::new(async move { Ok(answer.map(own_body)) });
        }
        if path == self.forward_auth_path {
            let Some(forward_auth) = self.forward_auth.clone() else {
                let mut answer =
                    Response::new(bytes::Bytes::from_static(b"forward-auth is switched off\n"));
                *answer.status_mut() = StatusCode::NOT_FOUND;
                return ResponseFuture::new(async move { Ok(answer.map(own_body)) });
            };
            let mut forward_auth = forward_auth;
            let answer = forward_auth.call(request);
            return ResponseFuture::new(async move {
                let Ok(answer) = answer.await;
                Ok(answer.map(Either::Left))
            });
        }
        self.login.call(request)
    }
}

fn own_body<B>(bytes: bytes::Bytes) -> AuthBody<B> {
    Either::Left(http_body_util::Full::new(bytes))
}
