//! DPoP proofs (RFC 9449) as a resource server checks them: every check of `dpop::verify_proof`
//! refuses with its own code, a good proof passes for each key type, and replay is caught.

use std::time::Duration;

use crate::validation_support::*;
use oidc_core::UnixTime;
use oidc_core::dpop::{
    DpopPolicy, DpopRequest, access_token_hash, bound_key_thumbprint, parse_proof, verify_proof,
};
use oidc_core::jws::Algorithm;
use oidc_core::logout::SeenJtis;
use proptest::prelude::*;
use serde_json::{Value, json};
use url::Url;

const TOKEN: &str = "an-access-token";
const URI: &str = "https://api.example.com/v1/runs";

fn public_jwk(key: &TestKey) -> Value {
    key.jwk_with(json!({"kid": null}))
}

fn header(key: &TestKey, alg: Algorithm) -> Value {
    json!({"typ": "dpop+jwt", "alg": alg.as_str(), "jwk": public_jwk(key)})
}

fn claims(jti: &str) -> Value {
    json!({
        "jti": jti,
        "htm": "GET",
        "htu": URI,
        "iat": NOW,
        "ath": access_token_hash(TOKEN),
    })
}

fn proof(key: &TestKey, alg: Algorithm, header: &Value, claims: &Value) -> String {
    key.sign_raw(alg, &header.to_string(), &claims.to_string())
}

fn with(mut value: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            value.as_object_mut().unwrap().remove(k);
        } else {
            value[k] = v.clone();
        }
    }
    value
}

fn check(proof: &str, bound: Option<&str>, seen: &mut SeenJtis) -> Result<String, &'static str> {
    let uri = Url::parse(URI).unwrap();
    let request = DpopRequest {
        method: "GET",
        uri: &uri,
        access_token: Some(TOKEN),
        bound_jkt: bound,
    };
    verify_proof(proof, &request, &DpopPolicy::new(), seen, now())
        .map(|verified| verified.jkt)
        .map_err(|e| e.code())
}

fn thumbprint_of(key: &TestKey) -> String {
    key_set(&[key]).keys()[0].thumbprint.clone()
}

#[test]
fn a_good_proof_passes_for_every_key_type() {
    let cases = [
        (TestKey::ec("e", false), Algorithm::ES256),
        (TestKey::ec("e", true), Algorithm::ES384),
        (TestKey::p521("e"), Algorithm::ES512),
        (TestKey::rsa("r"), Algorithm::PS256),
        (TestKey::rsa("r"), Algorithm::RS256),
        (TestKey::ed25519("d"), Algorithm::EdDSA),
    ];
    for (i, (key, alg)) in cases.iter().enumerate() {
        let jkt = thumbprint_of(key);
        let p = proof(key, *alg, &header(key, *alg), &claims(&format!("j{i}")));
        let mut seen = SeenJtis::new(16);
        assert_eq!(check(&p, Some(&jkt), &mut seen), Ok(jkt.clone()), "{alg}");
        assert_eq!(parse_proof(&p, &DpopPolicy::new()).unwrap().jkt(), jkt);
    }
}

#[test]
fn the_header_must_be_a_dpop_header_with_a_public_key() {
    let key = TestKey::ec("e", false);
    let other = TestKey::ec("o", false);
    let alg = Algorithm::ES256;
    let good = header(&key, alg);
    let cases = [
        (with(good.clone(), json!({"typ": "JWT"})), "dpop_wrong_typ"),
        (with(good.clone(), json!({"typ": null})), "dpop_wrong_typ"),
        (
            with(good.clone(), json!({"alg": "HS256"})),
            "dpop_alg_not_allowed",
        ),
        (
            with(good.clone(), json!({"alg": "none"})),
            "dpop_alg_not_allowed",
        ),
        (
            with(good.clone(), json!({"alg": "ES256K"})),
            "dpop_alg_not_allowed",
        ),
        (
            with(good.clone(), json!({"crit": ["exp"]})),
            "dpop_unsupported_crit",
        ),
        (with(good.clone(), json!({"jwk": null})), "dpop_missing_jwk"),
        (
            with(good.clone(), json!({"jwk": "a string"})),
            "dpop_missing_jwk",
        ),
        (
            with(
                good.clone(),
                json!({"jwk": with(public_jwk(&key), json!({"d": "AAAA"}))}),
            ),
            "dpop_private_jwk",
        ),
        (
            with(
                good.clone(),
                json!({"jwk": {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}),
            ),
            "dpop_private_jwk",
        ),
        (
            with(
                good.clone(),
                json!({"jwk": with(public_jwk(&key), json!({"y": b64([1u8; 32])}))}),
            ),
            "dpop_unusable_jwk",
        ),
        (
            with(good.clone(), json!({"alg": "ES384"})),
            "dpop_unusable_jwk",
        ),
        (
            with(good.clone(), json!({"jwk": public_jwk(&other)})),
            "dpop_bad_signature",
        ),
    ];
    for (h, code) in cases {
        let signing_alg = if h["alg"] == "ES384" {
            Algorithm::ES256
        } else {
            alg
        };
        let p = proof(&key, signing_alg, &h, &claims("j"));
        assert_eq!(check(&p, None, &mut SeenJtis::new(4)), Err(code), "{h}");
    }
    let duplicate = format!(
        "{}.{}.AAAA",
        b64(r#"{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256"}"#),
        b64(claims("j").to_string())
    );
    assert_eq!(
        check(&duplicate, None, &mut SeenJtis::new(4)),
        Err("dpop_malformed")
    );
    let big = "a".repeat(9000);
    assert_eq!(
        check(&big, None, &mut SeenJtis::new(4)),
        Err("dpop_proof_too_large")
    );
}

#[test]
fn the_claims_must_match_the_request() {
    let key = TestKey::ec("e", false);
    let h = header(&key, Algorithm::ES256);
    let good = claims("j");
    let cases = [
        (json!({"htm": "POST"}), "dpop_htm_mismatch"),
        (json!({"htm": "get"}), "dpop_htm_mismatch"),
        (json!({"htm": null}), "dpop_missing_claim"),
        (
            json!({"htu": "https://api.example.com/v1/other"}),
            "dpop_htu_mismatch",
        ),
        (
            json!({"htu": "http://api.example.com/v1/runs"}),
            "dpop_htu_mismatch",
        ),
        (
            json!({"htu": "https://evil.example/v1/runs"}),
            "dpop_htu_mismatch",
        ),
        (json!({"htu": "/v1/runs"}), "dpop_htu_mismatch"),
        (json!({"htu": 5}), "dpop_invalid_claim"),
        (json!({"jti": null}), "dpop_missing_claim"),
        (json!({"jti": ""}), "dpop_invalid_claim"),
        (json!({"jti": "x".repeat(257)}), "dpop_invalid_claim"),
        (json!({"iat": NOW - 61}), "dpop_iat_too_old"),
        (json!({"iat": NOW + 61}), "dpop_iat_in_future"),
        (json!({"iat": "1750000000"}), "dpop_invalid_claim"),
        (json!({"iat": null}), "dpop_missing_claim"),
        (
            json!({"ath": access_token_hash("another token")}),
            "dpop_ath_mismatch",
        ),
        (json!({"ath": null}), "dpop_missing_claim"),
    ];
    for (changes, code) in cases {
        let c = with(good.clone(), changes.clone());
        let p = proof(&key, Algorithm::ES256, &h, &c);
        assert_eq!(
            check(&p, None, &mut SeenJtis::new(4)),
            Err(code),
            "{changes}"
        );
    }
    // Inside the window either side, and htu compared without query and fragment, normalized.
    for (i, changes) in [
        json!({"iat": NOW - 60}),
        json!({"iat": NOW + 60}),
        json!({"htu": "https://api.example.com/v1/runs?page=2#top"}),
        json!({"htu": "HTTPS://API.Example.COM:443/v1/x/../runs"}),
    ]
    .into_iter()
    .enumerate()
    {
        let c = with(claims(&format!("ok{i}")), changes.clone());
        let p = proof(&key, Algorithm::ES256, &h, &c);
        assert!(check(&p, None, &mut SeenJtis::new(4)).is_ok(), "{changes}");
    }
}

#[test]
fn the_key_must_be_the_one_the_token_is_bound_to() {
    let key = TestKey::ec("e", false);
    let other = TestKey::ec("o", false);
    let p = proof(
        &key,
        Algorithm::ES256,
        &header(&key, Algorithm::ES256),
        &claims("j"),
    );
    let mut seen = SeenJtis::new(4);
    assert_eq!(
        check(&p, Some(&thumbprint_of(&other)), &mut seen),
        Err("dpop_jkt_mismatch")
    );
    assert_eq!(seen.len(), 0, "a refused proof consumes no jti");
    let bound = json!({"cnf": {"jkt": thumbprint_of(&key)}});
    let claims_map = bound.as_object().unwrap();
    assert_eq!(
        bound_key_thumbprint(claims_map),
        Some(thumbprint_of(&key).as_str())
    );
    assert_eq!(
        bound_key_thumbprint(json!({"cnf": {"x5t#S256": "a"}}).as_object().unwrap()),
        None
    );
    assert_eq!(
        check(&p, bound_key_thumbprint(claims_map), &mut seen),
        Ok(thumbprint_of(&key))
    );
}

#[test]
fn a_proof_is_good_once_and_a_refused_one_consumes_nothing() {
    let key = TestKey::ec("e", false);
    let h = header(&key, Algorithm::ES256);
    let p = proof(&key, Algorithm::ES256, &h, &claims("once"));
    let mut seen = SeenJtis::new(4);
    assert!(check(&p, None, &mut seen).is_ok());
    assert_eq!(check(&p, None, &mut seen), Err("dpop_replayed"));
    // A different proof reusing the jti is a replay too.
    let again = proof(
        &key,
        Algorithm::ES256,
        &h,
        &with(claims("once"), json!({"iat": NOW - 1})),
    );
    assert_eq!(check(&again, None, &mut seen), Err("dpop_replayed"));
    // Once the window has passed, the jti is forgotten, and the proof is too old anyway.
    let uri = Url::parse(URI).unwrap();
    let later = UnixTime::from_secs(NOW).saturating_add(Duration::from_secs(120));
    let request = DpopRequest {
        method: "GET",
        uri: &uri,
        access_token: Some(TOKEN),
        bound_jkt: None,
    };
    let err = verify_proof(&p, &request, &DpopPolicy::new(), &mut seen, later).unwrap_err();
    assert_eq!(err.code(), "dpop_iat_too_old");
}

#[test]
fn a_proof_without_a_token_needs_no_ath_and_the_policy_narrows_algorithms() {
    let key = TestKey::rsa("r");
    let c = with(claims("t"), json!({"ath": null, "htm": "POST"}));
    let p = proof(&key, Algorithm::PS256, &header(&key, Algorithm::PS256), &c);
    let uri = Url::parse(URI).unwrap();
    let request = DpopRequest {
        method: "POST",
        uri: &uri,
        access_token: None,
        bound_jkt: None,
    };
    assert!(
        verify_proof(
            &p,
            &request,
            &DpopPolicy::new(),
            &mut SeenJtis::new(4),
            now()
        )
        .is_ok()
    );
    let only_ec = DpopPolicy::new().algorithms([Algorithm::ES256, Algorithm::HS256]);
    assert_eq!(only_ec.allowed_algorithms(), [Algorithm::ES256]);
    let err = verify_proof(&p, &request, &only_ec, &mut SeenJtis::new(4), now()).unwrap_err();
    assert_eq!(err.code(), "dpop_alg_not_allowed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never panics the parser and is never accepted.
    #[test]
    fn arbitrary_proofs_never_panic(text in ".{0,300}") {
        let uri = Url::parse(URI).unwrap();
        let request = DpopRequest { method: "GET", uri: &uri, access_token: Some(TOKEN), bound_jkt: None };
        prop_assert!(verify_proof(&text, &request, &DpopPolicy::new(), &mut SeenJtis::new(4), now()).is_err());
    }

    /// A good proof with any one byte of its signature changed is refused.
    #[test]
    fn altered_signatures_are_refused(index in 0usize..64, bit in 0u8..8) {
        let key = TestKey::ec("e", false);
        let p = proof(&key, Algorithm::ES256, &header(&key, Algorithm::ES256), &claims("j"));
        let (signed, signature) = p.rsplit_once('.').unwrap();
        let mut bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
        bytes[index] ^= 1 << bit;
        let altered = format!("{signed}.{}", b64(bytes));
        prop_assert_eq!(check(&altered, None, &mut SeenJtis::new(4)), Err("dpop_bad_signature"));
    }

    /// Headers and claims made of arbitrary JSON values never panic.
    #[test]
    fn arbitrary_members_never_panic(
        typ in prop_oneof![Just(json!("dpop+jwt")), Just(json!(1)), Just(json!(null))],
        jwk in prop_oneof![Just(json!({})), Just(json!({"kty":"EC"})), Just(json!({"kty":"RSA","n":"AQAB","e":"AQAB"})), Just(json!([1]))],
        iat in prop_oneof![Just(json!(-1)), Just(json!(1.5)), Just(json!(u64::MAX)), Just(json!("x"))],
    ) {
        let h = json!({"typ": typ, "alg": "ES256", "jwk": jwk});
        let c = with(claims("j"), json!({"iat": iat}));
        let text = format!("{}.{}.{}", b64(h.to_string()), b64(c.to_string()), b64([7u8; 64]));
        prop_assert!(check(&text, None, &mut SeenJtis::new(4)).is_err());
    }
}
