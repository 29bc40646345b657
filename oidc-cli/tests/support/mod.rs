//! Helpers shared by the CLI tests.
pub(crate) mod ports;
pub(crate) mod sample;
