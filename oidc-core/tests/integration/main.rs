//! The core's integration tests, linked as one test binary so that `cargo test`
//! links a few binaries instead of one per file. A file here is one topic; the shared helpers
//! live beside this folder.

#[path = "../login_support/mod.rs"]
mod login_support;
#[path = "../validation_support/mod.rs"]
mod validation_support;

mod authorization_identity;
mod cookie_props;
mod discovery_oidf_rp;
mod discovery_proptest;
mod dpop_proofs;
mod fuzz_regressions;
mod hostile_tokens;
mod introspection_exchange;
mod jwks_parsing;
mod login_flow;
mod logout_backchannel;
mod oidf_rp_certification;
mod open_redirects;
mod peer_vectors;
mod redirect_props;
mod session_cookie;
mod validation_claims;
mod validation_proptest;
