//! Compact JWS/JWT parsing and validation.
//!
//! Input is either a token (any bytes; UTF-8 ones are checked against the fixed key sets and
//! policies, and decoded without verification), or `header-json \0 claims-json`, which the target
//! signs with the fixture's Ed25519 key so that fuzzed headers and claims reach the claim checks.
//! An accepted token must satisfy the policy it was accepted under.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_core::jws;
use oidc_core::validation::{self, Policy, ValidatedToken};
use oidc_fuzz::{CLIENT_ID, ISSUER, now, policy, public_keys, shared_key_policy, shared_keys};

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        check_token(token);
    }
    if let Some((header, claims)) = oidc_fuzz::split_sign_input(data) {
        let token = oidc_fuzz::sign_ed25519(header, claims);
        check_token(&token);
    }
});

fn check_token(token: &str) {
    if let Ok(decoded) = oidc_core::danger::decode_unverified(token) {
        assert!(decoded.header.is_object() && decoded.claims.is_object());
    }
    let _ = jws::decode_header(token);
    for policy in [policy(), oidc_fuzz::strict_policy()] {
        if let Ok(validated) = validation::validate(token, public_keys(), policy, now()) {
            assert_accepted(&validated, policy);
        }
        if let Ok(verified) = validation::verify_jws(token, public_keys(), policy) {
            assert!(policy.algorithms().contains(&verified.header.alg));
        }
    }
    if let Ok(validated) = validation::validate(token, shared_keys(), shared_key_policy(), now()) {
        assert_accepted(&validated, shared_key_policy());
    }
    let _ = validation::verify_jws(token, shared_keys(), shared_key_policy());
}

/// What every accepted token must satisfy, whatever its bytes.
fn assert_accepted(validated: &ValidatedToken, policy: &Policy) {
    let claims = &validated.claims;
    let leeway = policy.leeway().as_secs();
    assert!(policy.algorithms().contains(&validated.header.alg));
    assert_eq!(claims.iss, ISSUER);
    assert!(
        claims.aud.iter().any(|aud| aud == CLIENT_ID),
        "aud {:?}",
        claims.aud
    );
    let exp = claims.exp.expect("exp is required").as_secs();
    assert!(
        exp.saturating_add(leeway) > oidc_fuzz::NOW,
        "expired token accepted: exp {exp}"
    );
    if let Some(nbf) = claims.nbf {
        assert!(
            nbf.as_secs() <= oidc_fuzz::NOW + leeway,
            "token not yet valid accepted"
        );
    }
    if let Some(iat) = claims.iat {
        assert!(
            iat.as_secs() <= oidc_fuzz::NOW + leeway,
            "token from the future accepted"
        );
    }
}
