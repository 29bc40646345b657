//! (to be written)
#![deny(missing_docs)]

pub mod bearer_response;
pub mod forwarded;
pub mod health;
pub mod identity_headers;
pub mod metrics;
pub mod proxy;
pub mod request_kind;
pub mod routes;
pub mod store;
