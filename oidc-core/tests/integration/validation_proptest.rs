//! Property tests: the parsers never panic on any input, and what is signed comes back intact.

use crate::validation_support::*;
use oidc_core::jwks::KeySet;
use oidc_core::jws::{self, Algorithm};
use oidc_core::validation::{parse_claims, validate};
use proptest::prelude::*;
use serde_json::json;
use std::sync::OnceLock;

fn fixture() -> &'static (TestKey, KeySet) {
    static FIXTURE: OnceLock<(TestKey, KeySet)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = TestKey::ed25519("k");
        let set = key_set(&[&key]);
        (key, set)
    })
}

/// Strings made of the characters tokens are made of, plus a few that are not.
fn token_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9_\\-.=+/ ]{0,300}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = oidc_core::danger::decode_unverified(&text);
        let _ = jws::decode_header(&text);
        let _ = jws::parse_header(&bytes);
        let _ = parse_claims(&bytes);
        let _ = KeySet::parse(&bytes);
        let _ = KeySet::parse_local(&bytes);
    }

    #[test]
    fn validation_never_panics_and_never_accepts_garbage(text in token_like()) {
        let (_, keys) = fixture();
        prop_assert!(validate(&text, keys, &policy(), now()).is_err());
    }

    #[test]
    fn validation_of_random_segments_never_accepts(
        header in proptest::collection::vec(any::<u8>(), 0..200),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        signature in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let (_, keys) = fixture();
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(validate(&token, keys, &policy(), now()).is_err());
        let _ = oidc_core::danger::decode_unverified(&token);
    }

    #[test]
    fn headers_with_random_members_never_panic(
        alg in prop_oneof![Just("EdDSA".to_owned()), "[A-Za-z0-9]{0,8}"],
        name in "[a-z0-9]{1,6}",
        value in prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            "[ -~]{0,20}".prop_map(|s| json!(s)),
            Just(json!(null)),
            Just(json!([])),
        ],
    ) {
        let (key, keys) = fixture();
        let header = json!({"alg": alg, "kid": "k", name: value}).to_string();
        let token = key.sign_raw(Algorithm::EdDSA, &header, &claims().to_string());
        let _ = validate(&token, keys, &policy(), now());
    }

    #[test]
    fn jwk_entries_with_random_members_never_panic(
        kty in prop_oneof![Just("RSA"), Just("EC"), Just("OKP"), Just("oct"), Just("x")],
        crv in prop_oneof![Just("P-256"), Just("P-384"), Just("Ed25519"), Just("P-521")],
        n in proptest::collection::vec(any::<u8>(), 0..300),
        e in proptest::collection::vec(any::<u8>(), 0..6),
        x in proptest::collection::vec(any::<u8>(), 0..70),
        y in proptest::collection::vec(any::<u8>(), 0..70),
        alg in prop_oneof![Just(json!(null)), Just(json!("RS256")), Just(json!("ES256")), Just(json!("ES512")), Just(json!("EdDSA")), Just(json!(5))],
    ) {
        let jwk = json!({"kty":kty,"crv":crv,"n":b64(&n),"e":b64(&e),"x":b64(&x),"y":b64(&y),"k":b64(&x),"alg":alg});
        let doc = json!({"keys":[jwk]}).to_string();
        let _ = KeySet::parse(doc.as_bytes());
        let _ = KeySet::parse_local(doc.as_bytes());
    }

    #[test]
    fn signed_claims_round_trip(
        sub in "[ -~]{1,40}",
        email in "[a-z]{1,10}@[a-z]{1,10}\\.example",
        groups in proptest::collection::vec("[a-zA-Z0-9_-]{1,12}", 0..6),
        exp_offset in 0u64..1_000_000,
        extra in any::<i64>(),
    ) {
        let (key, keys) = fixture();
        let claims = claims_with(json!({
            "sub": sub, "email": email, "groups": groups,
            "exp": NOW + 60 + exp_offset, "custom": extra,
        }));
        let token = key.sign(Algorithm::EdDSA, &claims);
        let valid = validate(&token, keys, &policy(), now()).unwrap();
        prop_assert_eq!(valid.claims.sub.as_deref(), Some(sub.as_str()));
        prop_assert_eq!(valid.claims.email.as_deref(), Some(email.as_str()));
        prop_assert_eq!(&valid.claims.extra["groups"], &json!(groups));
        prop_assert_eq!(&valid.claims.extra["custom"], &json!(extra));
        prop_assert_eq!(valid.claims.exp.unwrap().as_secs(), NOW + 60 + exp_offset);
        // And the unverified view shows the same JSON.
        let unverified = oidc_core::danger::decode_unverified(&token).unwrap();
        prop_assert_eq!(unverified.claims, claims);
    }

    #[test]
    fn any_single_character_change_is_rejected(index in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.-]") {
        let (key, keys) = fixture();
        let token = key.sign(Algorithm::EdDSA, &claims());
        let position = index.index(token.len());
        let original = &token[position..position + 1];
        prop_assume!(original != replacement);
        let changed = format!("{}{}{}", &token[..position], replacement, &token[position + 1..]);
        prop_assert!(validate(&changed, keys, &policy(), now()).is_err());
    }
}
