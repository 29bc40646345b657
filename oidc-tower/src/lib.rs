//! (to be written)
#![deny(missing_docs)]

pub mod routes;
pub mod request_kind;
pub mod forwarded;
pub mod bearer_response;
pub mod identity_headers;
