//! The development provider's integration tests, linked as one test binary so that `cargo test`
//! links a few binaries instead of one per file. A file here is one topic; the shared helpers
//! live beside this folder.

#[path = "../common/mod.rs"]
mod common;

mod code_flow;
mod dpop;
mod operations;
