//! DPoP proofs (RFC 9449) through `dpop::parse_proof` and `dpop::verify_proof`.
//!
//! Input: a compact proof, or `header-json \0 claims-json` that the target signs with the
//! fixture's Ed25519 key (its public JWK is put in the header when the header has no `jwk`).
//! An accepted proof is for `GET https://api.example/runs` with the fixture access token, was
//! issued within the window of the fixture clock, names its key's thumbprint, and is refused
//! as a replay the second time.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use oidc_core::dpop::{DpopError, DpopPolicy, DpopRequest, parse_proof, verify_proof};
use oidc_core::logout::SeenJtis;
use oidc_fuzz::{NOW, now};
use url::Url;

const ACCESS_TOKEN: &str = "fuzz-access-token";

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = std::str::from_utf8(data) {
        check_proof(proof);
    }
    if let Some((header, claims)) = oidc_fuzz::split_sign_input(data) {
        let header = match serde_json::from_slice::<serde_json::Value>(header) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.entry("jwk").or_insert_with(oidc_fuzz::signing_jwk);
                serde_json::Value::Object(map).to_string().into_bytes()
            }
            _ => header.to_vec(),
        };
        check_proof(&oidc_fuzz::sign_ed25519(&header, claims));
    }
});

fn check_proof(proof: &str) {
    let policy = DpopPolicy::new();
    let parsed = parse_proof(proof, &policy);
    let uri = Url::parse("https://api.example/runs").expect("fixture URI");
    let request = DpopRequest {
        method: "GET",
        uri: &uri,
        access_token: Some(ACCESS_TOKEN),
        bound_jkt: None,
    };
    let mut seen = SeenJtis::new(4);
    let Ok(verified) = verify_proof(proof, &request, &policy, &mut seen, now()) else {
        assert!(seen.is_empty(), "a refused proof consumed its jti");
        return;
    };
    let parsed = parsed.expect("a verified proof parses");
    assert_eq!(parsed.jkt(), verified.jkt);
    assert_eq!(verified.jkt.len(), 43, "base64url of a SHA-256 thumbprint");
    let window = policy.window().as_secs();
    let iat = verified.issued_at.as_secs();
    assert!(iat + window >= NOW && iat <= NOW + window, "iat {iat} outside the window");
    assert_eq!(seen.len(), 1);
    match verify_proof(proof, &request, &policy, &mut seen, now()) {
        Err(DpopError::Replayed) => {}
        other => panic!("a replayed proof gave {other:?}"),
    }
    let bound = DpopRequest {
        bound_jkt: Some("another-thumbprint-another-thumbprint-00000"),
        ..request
    };
    let later = now().saturating_add(Duration::from_secs(1));
    assert!(verify_proof(proof, &bound, &policy, &mut SeenJtis::new(4), later).is_err());
}
