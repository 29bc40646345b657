//! Key sets: which keys are usable, which are skipped and why, freshness and refetch decisions.

use std::time::Duration;

use crate::validation_support::*;
use http::{Response, StatusCode, header};
use oidc_core::UnixTime;
use oidc_core::jwks::{FreshnessPolicy, JwksError, KeySet, jwks_request};
use serde_json::{Value, json};

fn reasons(set: &KeySet) -> Vec<(Option<String>, String)> {
    set.skipped()
        .iter()
        .map(|s| (s.kid.clone(), s.reason.clone()))
        .collect()
}

#[test]
fn usable_keys_are_described() {
    let rsa = TestKey::rsa("rsa");
    let p256 = TestKey::ec("p256", false);
    let p384 = TestKey::ec("p384", true);
    let p521 = TestKey::p521("p521");
    let ed = TestKey::ed25519("ed");
    let set = KeySet::parse(&jwks(&[
        &rsa.jwk_with(json!({"alg":"RS256","use":"sig","key_ops":["verify"]})),
        &p256.jwk,
        &p384.jwk_with(json!({"alg":"ES384"})),
        &p521.jwk_with(json!({"alg":"ES512"})),
        &ed.jwk_with(json!({"alg":"Ed25519"})),
    ]))
    .unwrap();
    assert!(set.skipped().is_empty());
    let described: Vec<_> = set
        .keys()
        .iter()
        .map(|k| {
            (
                k.kid.as_deref(),
                k.kty.as_str(),
                k.alg.as_deref(),
                k.size_bits,
                k.curve.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            (Some("rsa"), "RSA", Some("RS256"), Some(2048), None),
            (Some("p256"), "EC", None, Some(256), Some("P-256")),
            (Some("p384"), "EC", Some("ES384"), Some(384), Some("P-384")),
            (Some("p521"), "EC", Some("ES512"), Some(521), Some("P-521")),
            (
                Some("ed"),
                "OKP",
                Some("Ed25519"),
                Some(256),
                Some("Ed25519")
            ),
        ]
    );
    assert_eq!(set.keys()[0].key_use.as_deref(), Some("sig"));
    for key in set.keys() {
        assert_eq!(key.thumbprint.len(), 43, "base64url of 32 bytes");
    }
    assert!(set.contains_kid("p384"));
    assert!(!set.contains_kid("nope"));
}

#[test]
fn unusable_keys_are_skipped_with_a_reason() {
    let rsa = TestKey::rsa("rsa");
    let ec = TestKey::ec("ec", false);
    let ed = TestKey::ed25519("ed");
    let small_n = b64([0xc1u8; 128]); // 1024 bits
    let entries: Vec<Value> = vec![
        json!("not an object"),
        json!({"kid":"no-kty"}),
        json!({"kid":7,"kty":"RSA"}),
        rsa.jwk_with(json!({"kid":"enc","use":"enc"})),
        rsa.jwk_with(json!({"kid":"ops","key_ops":["encrypt"]})),
        rsa.jwk_with(json!({"kid":"ops-type","key_ops":"verify"})),
        rsa.jwk_with(json!({"kid":"oaep","alg":"RSA-OAEP"})),
        rsa.jwk_with(json!({"kid":"none","alg":"none"})),
        rsa.jwk_with(json!({"kid":"rsa-as-es","alg":"ES256"})),
        rsa.jwk_with(json!({"kid":"small","n":small_n})),
        rsa.jwk_with(json!({"kid":"e1","e":"AQ"})),
        rsa.jwk_with(json!({"kid":"padded","n": format!("{}=", rsa.jwk["n"].as_str().unwrap())})),
        ec.jwk_with(json!({"kid":"p521-short","crv":"P-521"})),
        ec.jwk_with(json!({"kid":"k1","crv":"secp256k1"})),
        ec.jwk_with(json!({"kid":"es384-on-p256","alg":"ES384"})),
        ec.jwk_with(json!({"kid":"short-x","x":"AAAA"})),
        ec.jwk_with(json!({"kid":"off-curve","y": b64([1u8; 32])})),
        ed.jwk_with(json!({"kid":"x25519","crv":"X25519"})),
        ed.jwk_with(json!({"kid":"ed-short","x":"AAAA"})),
        json!({"kty":"oct","kid":"sym","k":"c2VjcmV0"}),
        json!({"kty":"PQC","kid":"future"}),
        ed.jwk.clone(),
    ];
    let refs: Vec<&Value> = entries.iter().collect();
    let set = KeySet::parse(&jwks(&refs)).unwrap();
    assert_eq!(set.keys().len(), 1);
    assert_eq!(set.keys()[0].kid.as_deref(), Some("ed"));
    let s = |kid: Option<&str>, reason: &str| (kid.map(str::to_owned), reason.to_owned());
    assert_eq!(
        reasons(&set),
        vec![
            s(None, "the entry is not a JSON object"),
            s(Some("no-kty"), "\"kty\" is missing"),
            s(None, "\"kid\" is not a string"),
            s(Some("enc"), "\"use\" is \"enc\", not \"sig\""),
            s(Some("ops"), "\"key_ops\" does not include \"verify\""),
            s(Some("ops-type"), "\"key_ops\" is not an array of strings"),
            s(
                Some("oaep"),
                "\"alg\" \"RSA-OAEP\" is not a supported signature algorithm"
            ),
            s(
                Some("none"),
                "\"alg\" \"none\" is not a supported signature algorithm"
            ),
            s(
                Some("rsa-as-es"),
                "\"alg\" ES256 does not fit a key of type RSA"
            ),
            s(
                Some("small"),
                "RSA modulus of 1024 bits is under the 2048-bit minimum"
            ),
            s(
                Some("e1"),
                "RSA exponent is not an odd number from 3 to 2^32-1"
            ),
            s(Some("padded"), "\"n\" is not canonical unpadded base64url"),
            s(
                Some("p521-short"),
                "P-521 coordinates must be 66 bytes each (x: 32, y: 32)"
            ),
            s(Some("k1"), "EC curve \"secp256k1\" is not supported"),
            s(
                Some("es384-on-p256"),
                "\"alg\" ES384 does not fit a key of type EC on P-256"
            ),
            s(
                Some("short-x"),
                "P-256 coordinates must be 32 bytes each (x: 3, y: 32)"
            ),
            s(Some("off-curve"), "the point is not on P-256"),
            s(Some("x25519"), "OKP curve \"X25519\" is not supported"),
            s(Some("ed-short"), "Ed25519 \"x\" is 3 bytes, not 32"),
            s(
                Some("sym"),
                "symmetric keys are never taken from a fetched key set; configure a shared secret"
            ),
            s(Some("future"), "key type \"PQC\" is not supported"),
        ]
    );
}

#[test]
fn documents_that_are_not_key_sets() {
    assert_eq!(KeySet::parse(b"{").unwrap_err().code(), "jwks_malformed");
    assert_eq!(
        KeySet::parse(br#"{"keys":{}}"#).unwrap_err(),
        JwksError::NotAKeySet
    );
    assert_eq!(KeySet::parse(b"[]").unwrap_err(), JwksError::NotAKeySet);
    assert_eq!(
        KeySet::parse(br#"{"keys":[],"keys":[]}"#)
            .unwrap_err()
            .code(),
        "jwks_malformed"
    );
    match KeySet::parse(br#"{"keys":[{"kty":"oct","k":"AA"}]}"#).unwrap_err() {
        JwksError::NoUsableKeys { skipped } => assert_eq!(skipped.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn local_key_sets_may_hold_shared_secrets_but_not_mixed() {
    let secret = b64([7u8; 32]);
    let set = KeySet::parse_local(
        json!({"keys":[{"kty":"oct","kid":"s","k":secret,"alg":"HS256"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(set.keys()[0].kty, "oct");
    assert_eq!(set.keys()[0].size_bits, Some(256));
    assert_eq!(
        set.keys()[0].thumbprint,
        "",
        "no function of a secret is shown"
    );
    let short = KeySet::parse_local(
        json!({"keys":[{"kty":"oct","kid":"s","k":secret,"alg":"HS512"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap_err();
    match short {
        JwksError::NoUsableKeys { skipped } => assert_eq!(
            skipped[0].reason,
            "the shared secret is 32 bytes; HMAC needs at least 64"
        ),
        other => panic!("unexpected {other:?}"),
    }
    let ed = TestKey::ed25519("ed");
    let mixed = json!({"keys":[{"kty":"oct","kid":"s","k":secret}, ed.jwk]});
    assert_eq!(
        KeySet::parse_local(mixed.to_string().as_bytes()).unwrap_err(),
        JwksError::MixedSymmetricAndPublicKeys
    );
}

#[test]
fn at_most_max_keys_are_kept() {
    let ed = TestKey::ed25519("ed");
    let entries: Vec<Value> = (0..105)
        .map(|i| ed.jwk_with(json!({"kid": format!("k{i}")})))
        .collect();
    let refs: Vec<&Value> = entries.iter().collect();
    let set = KeySet::parse(&jwks(&refs)).unwrap();
    assert_eq!(set.keys().len(), oidc_core::jwks::MAX_KEYS);
    assert_eq!(set.skipped().len(), 5);
    assert_eq!(set.skipped()[0].reason, "the set already holds 100 keys");
}

fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Response<Vec<u8>> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

#[test]
fn freshness_follows_cache_control_within_bounds() {
    let ed = TestKey::ed25519("ed");
    let body = jwks(&[&ed.jwk]);
    let policy = FreshnessPolicy::default();
    let t0 = UnixTime::from_secs(1_000_000);
    let cases: [(&[(&str, &str)], u64); 7] = [
        (&[], 600),
        (&[("cache-control", "public, max-age=3600")], 3600),
        (&[("cache-control", "max-age=5")], 60),
        (&[("cache-control", "max-age=999999999")], 86_400),
        (&[("cache-control", "no-store")], 60),
        (
            &[("cache-control", "max-age=\"120\", must-revalidate")],
            120,
        ),
        (&[("cache-control", "max-age=abc")], 600),
    ];
    for (headers, ttl) in cases {
        let set =
            KeySet::from_response(&response(200, headers, body.clone()), t0, &policy).unwrap();
        assert_eq!(
            set.refresh_at(),
            UnixTime::from_secs(1_000_000 + ttl),
            "{headers:?}"
        );
        assert!(!set.is_stale(UnixTime::from_secs(1_000_000 + ttl - 1)));
        assert!(set.is_stale(UnixTime::from_secs(1_000_000 + ttl)));
    }
    let jwk_set_type = response(
        200,
        &[("content-type", "application/jwk-set+json")],
        body.clone(),
    );
    assert!(KeySet::from_response(&jwk_set_type, t0, &policy).is_ok());
    let html = response(200, &[("content-type", "text/html")], body.clone());
    assert_eq!(
        KeySet::from_response(&html, t0, &policy)
            .unwrap_err()
            .code(),
        "provider_not_json"
    );
    let error = response(503, &[], b"down".to_vec());
    assert_eq!(
        KeySet::from_response(&error, t0, &policy)
            .unwrap_err()
            .code(),
        "provider_unexpected_status"
    );
    // A parsed set has no freshness; a shared secret never goes stale.
    assert!(KeySet::parse(&body).unwrap().is_stale(UnixTime::EPOCH));
    assert!(
        !KeySet::hmac(&oidc_core::Secret::new("k".repeat(32)))
            .is_stale(UnixTime::from_secs(u64::MAX - 1))
    );
    let custom = FreshnessPolicy::new(
        Duration::from_secs(30),
        Duration::from_secs(10),
        Duration::from_secs(40),
    );
    assert_eq!(
        custom.ttl_for(&http::HeaderMap::new()),
        Duration::from_secs(30)
    );
}

#[test]
fn request_asks_for_a_key_set() {
    let url = url::Url::parse("https://op.example/jwks").unwrap();
    let request = jwks_request(&url);
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(request.uri(), "https://op.example/jwks");
    assert_eq!(
        request.headers()[header::ACCEPT],
        "application/jwk-set+json, application/json"
    );
    let _ = StatusCode::OK;
}

#[test]
fn rotation_new_kid_is_unknown_until_the_set_is_refetched() {
    let old = TestKey::ed25519("2025-01");
    let new = TestKey::ed25519("2025-02");
    let before = key_set(&[&old]);
    let token = new.sign(oidc_core::Algorithm::EdDSA, &claims());
    let err = oidc_core::validate(&token, &before, &policy(), now()).unwrap_err();
    assert!(err.is_unknown_kid());
    let after = key_set(&[&old, &new]);
    assert!(oidc_core::validate(&token, &after, &policy(), now()).is_ok());
    let old_token = old.sign(oidc_core::Algorithm::EdDSA, &claims());
    assert!(oidc_core::validate(&old_token, &after, &policy(), now()).is_ok());
}

#[test]
fn roca_moduli_are_refused() {
    let suite: Value =
        serde_json::from_str(include_str!("../data/wycheproof/json_web_key_test.json")).unwrap();
    let group = suite["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["comment"] == "jws_rsa_roca_key")
        .unwrap();
    let err = KeySet::parse(group["public"].to_string().as_bytes()).unwrap_err();
    match err {
        JwksError::NoUsableKeys { skipped } => assert_eq!(
            skipped[0].reason,
            "RSA modulus has the ROCA fingerprint (CVE-2017-15361)"
        ),
        other => panic!("unexpected {other:?}"),
    }
    // A freshly generated modulus does not have it.
    assert_eq!(key_set(&[&TestKey::rsa("fresh")]).keys().len(), 1);
}
