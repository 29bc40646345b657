//! The tower crate's integration tests, linked as one test binary so that `cargo test`
//! links a few binaries instead of one per file. A file here is one topic; the shared helpers
//! live beside this folder.
//!
//! `hardening_sigterm` (signals its own process) and `proxy_streaming` (reads its own peak RSS)
//! stay binaries of their own.

#[path = "../hardening_support/mod.rs"]
mod hardening_support;
#[path = "../proxy_common/mod.rs"]
mod proxy_common;
#[path = "../support/mod.rs"]
mod support;

mod fuzz_regressions;
mod hardening_hostile;
mod hardening_identity;
mod hardening_provider;
mod hardening_redis;
mod hardening_upstream;
mod layers_assertion;
mod layers_bearer;
mod layers_forward_auth;
mod layers_keys;
mod layers_login;
mod layers_par;
mod layers_redis;
mod layers_roles;
mod login_native;
mod parts_proptest;
mod provider_discovery;
mod provider_keys;
mod proxy_behaviour;
mod proxy_idle;
mod proxy_tls;
mod redis_ha;
mod store_redis;
