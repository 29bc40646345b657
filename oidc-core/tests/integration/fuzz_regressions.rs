//! Inputs found by the fuzz targets in `fuzz/`, replayed with their exact outcomes.
//!
//! The inputs live in `tests/data/fuzz-regressions/`, named after what they exercise.

use std::time::Duration;

use oidc_core::UnixTime;
use oidc_core::introspection::{IntrospectionPolicy, parse_introspection};

const NOW: u64 = 1_750_000_000;
const ISSUER: &str = "https://op.example/realms/main";

const INTROSPECTION_HUGE_EXP: &[u8] =
    include_bytes!("../data/fuzz-regressions/introspection-huge-exp.json");
const INTROSPECTION_NO_ISS: &[u8] =
    include_bytes!("../data/fuzz-regressions/introspection-no-iss.json");

fn json_response(body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

fn strict_policy() -> IntrospectionPolicy {
    IntrospectionPolicy::new()
        .issuer(ISSUER)
        .audience("client-1")
        .leeway(Duration::from_secs(5))
}

/// fuzz target `introspection_response`: an `exp` of 1.75e89 saturates to the largest time
/// instead of overflowing, and the answer is cached no longer than the policy's maximum.
#[test]
fn introspection_exp_beyond_u64_saturates() {
    let response = json_response(INTROSPECTION_HUGE_EXP.to_vec());
    let token = parse_introspection(&response, &strict_policy(), UnixTime::from_secs(NOW)).unwrap();
    assert_eq!(token.claims.exp, Some(UnixTime::from_secs(u64::MAX)));
    assert_eq!(token.claims.iat, Some(UnixTime::EPOCH));
    assert_eq!(token.claims.iss.as_deref(), Some(ISSUER));
    assert_eq!(token.cache_until, UnixTime::from_secs(NOW + 60));
}

/// fuzz target `introspection_response`: `iss` is optional in RFC 7662, so an active answer
/// without it passes a policy that names an issuer; the misspelled member stays in `extra`.
#[test]
fn introspection_without_iss_passes_an_issuer_policy() {
    let response = json_response(INTROSPECTION_NO_ISS.to_vec());
    let token = parse_introspection(&response, &strict_policy(), UnixTime::from_secs(NOW)).unwrap();
    assert_eq!(token.claims.iss, None);
    assert_eq!(token.claims.aud, vec!["client-1".to_owned()]);
    assert_eq!(token.claims.exp, Some(UnixTime::from_secs(32_500_000_000)));
    assert!(token.claims.extra.contains_key("isw"));
    assert_eq!(token.cache_until, UnixTime::from_secs(NOW + 60));
}

/// The same answer naming another issuer is refused.
#[test]
fn introspection_with_wrong_iss_is_refused() {
    let body = String::from_utf8(INTROSPECTION_NO_ISS.to_vec())
        .unwrap()
        .replace("\"isw\"", "\"iss\"");
    let response = json_response(body.into_bytes());
    let error =
        parse_introspection(&response, &strict_policy(), UnixTime::from_secs(NOW)).unwrap_err();
    assert_eq!(error.code(), "introspection_issuer_mismatch");
}
