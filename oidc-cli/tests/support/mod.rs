//! Helpers shared by the CLI tests.
pub(crate) mod sample;
