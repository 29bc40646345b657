//! The `oidc` binary's integration tests, linked as one test binary so that `cargo test`
//! links a few binaries instead of one per file. A file here is one topic; the shared helpers
//! live beside this folder.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod demo;
mod dev_provider;
mod login;
mod one_decision;
mod proxy;
mod replicas;
