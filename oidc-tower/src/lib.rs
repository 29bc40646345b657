//! Tower middleware and I/O for [`oidc_core`].
//!
//! The core decides; this crate does. It sends the core's requests over the network
//! ([`http_client`]), reads the clock and the system random generator ([`random`]), keeps
//! provider metadata and keys fresh in the background and validates tokens through a shared,
//! cheaply cloned handle ([`provider`]), and provides the layers and services that put it all in
//! front of a web service: the reverse proxy and forward-auth ([`proxy`]) and session stores
//! ([`store`]).
#![deny(missing_docs)]

pub mod auth;
pub mod bearer_response;
pub mod forwarded;
pub mod health;
pub mod http_client;
pub mod identity_headers;
pub mod metrics;
pub mod provider;
pub mod proxy;
pub mod random;
pub mod request_kind;
pub mod routes;
pub mod store;

pub use http_client::{HttpClient, HttpError, ReqwestHttpClient};
pub use random::SystemRandom;
