//! (to be written)
#![deny(missing_docs)]

pub mod proxy;
pub mod store;
