//! Tower middleware and I/O for [`oidc_core`]: OpenID Connect in front of Rust services and of
//! services that cannot do it themselves.
//!
//! The core decides; this crate does. It sends the core's requests over the network
//! ([`http_client`]), reads the clocks ([`clock`]) and the system random generator ([`random`]), keeps
//! provider metadata and keys fresh in the background and validates tokens through a shared,
//! cheaply cloned handle ([`provider`]), and puts it all in front of a web service:
//!
//! - [`auth`]: one [`auth::Authenticator`] (built from an [`auth::AuthConfig`]) shared by
//!   - [`auth::BearerAuthLayer`] for APIs (`Authorization: Bearer`, RFC 6750 answers, JWTs and
//!     introspected opaque tokens, claims in request extensions and an axum extractor),
//!   - [`auth::OidcLoginLayer`] for browsers (sign-in redirect, callback, sign-out, userinfo,
//!     back-channel logout, transparent single-flight refresh, identity headers upstream),
//!   - [`auth::ForwardAuth`] for Caddy `forward_auth`, nginx `auth_request` and Traefik
//!     ForwardAuth, with oauth2-proxy's contract;
//! - [`proxy`]: a streaming reverse proxy, so the login layer in front of it is a sidecar;
//! - [`sidecar`]: the whole sidecar as one service (health, forward-auth, login layer,
//!   upstream), exactly what `oidc proxy` serves;
//! - [`store`]: server-side session stores (memory, Redis) with revocation by session, subject
//!   and provider session;
//! - [`device`] and [`loopback`]: sign-in for command-line and desktop tools, by the device
//!   authorization grant or through the browser and a loopback redirect receiver;
//! - the parts the front-ends share: [`bearer_response`], [`identity_headers`], [`routes`],
//!   [`request_kind`], [`forwarded`], [`metrics`] and [`health`];
//! - [`ErrorKind`] (from [`oidc_core`]): every failure's stable code, and [`error_status`]: the
//!   HTTP status a layer answers with for it.
//!
//! # Example: an axum API behind the bearer layer
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use oidc_tower::auth::{AuthConfig, Authenticated, BearerAuthLayer};
//!
//! async fn whoami(caller: Authenticated) -> String {
//!     caller.identity.user
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Fails within seconds, with the provider's error, on a mistyped issuer.
//! let auth = AuthConfig::from_issuer("https://login.example.com/realms/main", "my-api")
//!     .await?
//!     .required_scopes(["mlflow.read"])
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .layer(BearerAuthLayer::new(auth));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! [`auth::AuthConfig::new`] takes a [`provider::Provider`] and an [`HttpClient`] of your own
//! for everything else (several issuers, a custom client, sign-in). Why a request was refused
//! is read from the answer with [`auth::AuthFailure::from_response`]: a typed failure with its
//! [`oidc_core::ErrorKind`] and stable code (every code: `docs/error-codes.md`).
//!
//! The login layer and forward-auth modules show browser sign-in and the sidecar, each with a
//! runnable example against the in-process development provider.
#![deny(missing_docs)]

pub mod auth;
pub mod bearer_response;
pub mod clock;
pub mod device;
pub mod error_status;
mod fingerprint;
mod fingerprint_cache;
pub mod forwarded;
pub mod health;
pub mod http_client;
pub mod identity_assertion;
pub mod identity_headers;
pub mod loopback;
pub mod metrics;
pub mod provider;
pub mod proxy;
pub mod random;
pub mod request_kind;
pub mod routes;
pub mod sidecar;
pub mod store;

pub use http_client::{HttpClient, HttpError, ReqwestHttpClient};
/// The sans-IO protocol core this crate drives, re-exported so that one dependency is enough.
pub use oidc_core;
pub use oidc_core::ErrorKind;

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
pub use random::SystemRandom;
