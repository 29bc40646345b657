//! Validation of well-formed tokens: algorithms and keys, then every claim check.

use std::time::Duration;

use crate::validation_support::*;
use oidc_core::issuer::IssuerTemplate;
use oidc_core::jwks::KeySet;
use oidc_core::jws::Algorithm;
use oidc_core::validation::{Policy, PolicyError, ValidationError, validate};
use oidc_core::{Issuer, Secret, UnixTime};
use serde_json::json;

fn reject(token: &str, keys: &KeySet, policy: &Policy) -> ValidationError {
    validate(token, keys, policy, now()).unwrap_err()
}

#[test]
fn every_algorithm_validates_with_its_key() {
    let rsa = TestKey::rsa("rsa");
    let p256 = TestKey::ec("p256", false);
    let p384 = TestKey::ec("p384", true);
    let p521 = TestKey::p521("p521");
    let ed = TestKey::ed25519("ed");
    let keys = key_set(&[&rsa, &p256, &p384, &p521, &ed]);
    assert_eq!(keys.keys().len(), 5);
    let cases = [
        (&rsa, Algorithm::RS256),
        (&rsa, Algorithm::RS384),
        (&rsa, Algorithm::RS512),
        (&rsa, Algorithm::PS256),
        (&rsa, Algorithm::PS384),
        (&rsa, Algorithm::PS512),
        (&p256, Algorithm::ES256),
        (&p384, Algorithm::ES384),
        (&p521, Algorithm::ES512),
        (&ed, Algorithm::EdDSA),
    ];
    for (key, alg) in cases {
        let token = key.sign(alg, &claims());
        let valid = validate(&token, &keys, &policy(), now()).unwrap();
        assert_eq!(valid.header.alg, alg);
        assert_eq!(valid.header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(valid.claims.iss, ISSUER);
        assert_eq!(valid.claims.sub.as_deref(), Some("user-1"));
        assert_eq!(valid.claims.aud, vec![AUDIENCE.to_owned()]);
        assert_eq!(valid.claims.exp, Some(UnixTime::from_secs(NOW + 300)));
        assert_eq!(valid.claims.email.as_deref(), Some("ada@example.com"));
        assert_eq!(valid.claims.extra["groups"], json!(["admins", "users"]));
        assert!(!valid.claims.extra.contains_key("iss"));
    }
}

#[test]
fn tokens_minted_by_jsonwebtoken_validate() {
    let rsa = TestKey::rsa("rsa");
    let ec = TestKey::ec("ec", false);
    let ed = TestKey::ed25519("ed");
    let keys = key_set(&[&rsa, &ec, &ed]);
    let cases = [
        (
            jsonwebtoken::EncodingKey::from_rsa_der(&rsa.jsonwebtoken_der),
            jsonwebtoken::Algorithm::PS256,
            "rsa",
        ),
        (
            jsonwebtoken::EncodingKey::from_ec_der(&ec.jsonwebtoken_der),
            jsonwebtoken::Algorithm::ES256,
            "ec",
        ),
        (
            jsonwebtoken::EncodingKey::from_ed_der(&ed.jsonwebtoken_der),
            jsonwebtoken::Algorithm::EdDSA,
            "ed",
        ),
    ];
    for (key, alg, kid) in cases {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.into());
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        let valid = validate(&token, &keys, &policy(), now()).unwrap();
        assert_eq!(valid.header.kid.as_deref(), Some(kid));
        assert_eq!(valid.claims.sub.as_deref(), Some("user-1"));
    }
}

#[test]
fn hmac_needs_a_configured_secret_and_an_hmac_policy() {
    let secret = Secret::new("0123456789abcdef0123456789abcdef");
    let keys = KeySet::hmac(&secret);
    let hs256 = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .algorithms([Algorithm::HS256])
        .build()
        .unwrap();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(secret.expose().as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(validate(&token, &keys, &hs256, now()).is_ok());
    // The default policy does not allow HMAC at all.
    assert_eq!(
        reject(&token, &keys, &policy()),
        ValidationError::AlgorithmNotAllowed {
            alg: Algorithm::HS256
        }
    );
    // A 32-byte secret is too short for HS512.
    let policy512 = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .algorithms([Algorithm::HS512])
        .build()
        .unwrap();
    let token512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(secret.expose().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        reject(&token512, &keys, &policy512),
        ValidationError::NoMatchingKey {
            kid: None,
            alg: Algorithm::HS512
        }
    );
    // A short secret yields an empty set that says why.
    let short = KeySet::hmac(&Secret::new("short"));
    assert!(short.keys().is_empty());
    assert_eq!(
        short.skipped()[0].reason,
        "the shared secret is 5 bytes; HMAC needs at least 32"
    );
    assert_eq!(reject(&token, &short, &hs256).code(), "no_matching_key");
    // A token with a kid still finds the kid-less shared secret.
    let header = json!({"alg":"HS256","kid":"anything"}).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims().to_string()));
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose().as_bytes()),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", b64(tag.as_ref()));
    assert!(validate(&token, &keys, &hs256, now()).is_ok());
}

#[test]
fn policy_configuration_mistakes_are_typed() {
    let issuer = Issuer::new(ISSUER).unwrap();
    assert_eq!(
        Policy::builder().audience("a").build().unwrap_err(),
        PolicyError::NoIssuer
    );
    assert_eq!(
        Policy::builder()
            .issuer(issuer.clone())
            .build()
            .unwrap_err(),
        PolicyError::NoAudience
    );
    assert!(
        Policy::builder()
            .issuer(issuer.clone())
            .insecure_skip_audience()
            .build()
            .is_ok()
    );
    assert_eq!(
        Policy::builder()
            .issuer(issuer.clone())
            .audience("a")
            .algorithms([])
            .build()
            .unwrap_err(),
        PolicyError::NoAlgorithms
    );
    let mixed = Policy::builder()
        .issuer(issuer.clone())
        .audience("a")
        .algorithms([Algorithm::RS256, Algorithm::HS256])
        .build()
        .unwrap_err();
    assert_eq!(
        mixed,
        PolicyError::MixedHmacAndPublicKey {
            hmac: Algorithm::HS256,
            public_key: Algorithm::RS256
        }
    );
    assert_eq!(mixed.code(), "policy_mixed_hmac");
    assert_eq!(
        Policy::builder()
            .issuer(issuer)
            .audience("a")
            .max_token_bytes(0)
            .build()
            .unwrap_err()
            .code(),
        "policy_zero_token_limit"
    );
}

#[test]
fn algorithm_must_be_in_the_policy_and_fit_the_key() {
    let rsa = TestKey::rsa("rsa");
    let ec = TestKey::ec("ec", false);
    let keys = key_set(&[&rsa, &ec]);
    let only_es256 = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .algorithms([Algorithm::ES256])
        .build()
        .unwrap();
    let token = rsa.sign(Algorithm::RS256, &claims());
    assert_eq!(
        reject(&token, &keys, &only_es256),
        ValidationError::AlgorithmNotAllowed {
            alg: Algorithm::RS256
        }
    );
    // An RSA signature presented under the EC key's kid.
    let header = json!({"alg":"RS256","kid":"ec"}).to_string();
    let token = rsa.sign_raw(Algorithm::RS256, &header, &claims().to_string());
    assert_eq!(
        reject(&token, &keys, &policy()),
        ValidationError::NoMatchingKey {
            kid: Some("ec".into()),
            alg: Algorithm::RS256
        }
    );
    // A key restricted to RS256 does not verify PS256.
    let restricted = KeySet::parse(&jwks(&[&rsa.jwk_with(json!({"alg":"RS256"}))])).unwrap();
    let token = rsa.sign(Algorithm::PS256, &claims());
    assert_eq!(
        reject(&token, &restricted, &policy()).code(),
        "no_matching_key"
    );
    assert!(
        validate(
            &rsa.sign(Algorithm::RS256, &claims()),
            &restricted,
            &policy(),
            now()
        )
        .is_ok()
    );
}

#[test]
fn key_selection_by_kid_and_without_kid() {
    let a = TestKey::ec("a", false);
    let b = TestKey::ec("b", false);
    let keys = key_set(&[&a, &b]);
    // Unknown kid: the caller may refetch.
    let header = json!({"alg":"ES256","kid":"rotated"}).to_string();
    let token = a.sign_raw(Algorithm::ES256, &header, &claims().to_string());
    let err = reject(&token, &keys, &policy());
    assert_eq!(
        err,
        ValidationError::UnknownKid {
            kid: "rotated".into()
        }
    );
    assert!(err.is_unknown_kid());
    // Right kid, wrong key.
    let header = json!({"alg":"ES256","kid":"b"}).to_string();
    let token = a.sign_raw(Algorithm::ES256, &header, &claims().to_string());
    assert_eq!(
        reject(&token, &keys, &policy()),
        ValidationError::BadSignature
    );
    // No kid: every fitting key is tried.
    let header = json!({"alg":"ES256"}).to_string();
    let token = b.sign_raw(Algorithm::ES256, &header, &claims().to_string());
    assert!(validate(&token, &keys, &policy(), now()).is_ok());
    // No kid and more than four candidates: ambiguous.
    let many: Vec<TestKey> = (0..5)
        .map(|i| TestKey::ec(&format!("k{i}"), false))
        .collect();
    let refs: Vec<&TestKey> = many.iter().collect();
    let five = key_set(&refs);
    let token = many[4].sign_raw(Algorithm::ES256, &header, &claims().to_string());
    assert_eq!(
        reject(&token, &five, &policy()),
        ValidationError::AmbiguousKey { candidates: 5 }
    );
    // No kid and no fitting key.
    let ed = TestKey::ed25519("ed");
    let header = json!({"alg":"EdDSA"}).to_string();
    let token = ed.sign_raw(Algorithm::EdDSA, &header, &claims().to_string());
    assert_eq!(
        reject(&token, &keys, &policy()),
        ValidationError::NoMatchingKey {
            kid: None,
            alg: Algorithm::EdDSA
        }
    );
    // A key set entry without kid is tried for a token whose kid is unknown.
    let kidless = KeySet::parse(&jwks(&[&ed.jwk_with(json!({"kid": null}))])).unwrap();
    let header = json!({"alg":"EdDSA","kid":"whatever"}).to_string();
    let token = ed.sign_raw(Algorithm::EdDSA, &header, &claims().to_string());
    assert!(validate(&token, &kidless, &policy(), now()).is_ok());
}

#[test]
fn issuer_is_compared_exactly_or_through_a_tenant_template() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let trailing = key.sign(
        Algorithm::EdDSA,
        &claims_with(json!({"iss": format!("{ISSUER}/")})),
    );
    assert_eq!(
        reject(&trailing, &keys, &policy()),
        ValidationError::WrongIssuer {
            found: format!("{ISSUER}/")
        }
    );
    let missing = key.sign(Algorithm::EdDSA, &claims_with(json!({"iss": null})));
    assert_eq!(
        reject(&missing, &keys, &policy()),
        ValidationError::MissingClaim { name: "iss".into() }
    );
    let second = Policy::builder()
        .issuer(Issuer::new("https://other.example").unwrap())
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .build()
        .unwrap();
    assert!(
        validate(
            &key.sign(Algorithm::EdDSA, &claims()),
            &keys,
            &second,
            now()
        )
        .is_ok()
    );

    let template = Policy::builder()
        .issuer_template(
            IssuerTemplate::new("https://login.microsoftonline.com/{tenantid}/v2.0").unwrap(),
        )
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let entra = claims_with(json!({
        "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
        "tid": tid,
    }));
    assert!(validate(&key.sign(Algorithm::EdDSA, &entra), &keys, &template, now()).is_ok());
    let other_tenant = claims_with(json!({
        "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    }));
    assert_eq!(
        reject(&key.sign(Algorithm::EdDSA, &other_tenant), &keys, &template).code(),
        "wrong_issuer"
    );
    let no_tid = claims_with(json!({
        "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
    }));
    assert_eq!(
        reject(&key.sign(Algorithm::EdDSA, &no_tid), &keys, &template).code(),
        "wrong_issuer"
    );
}

#[test]
fn audience_as_string_or_array() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let array = claims_with(json!({"aud": ["other", AUDIENCE]}));
    assert_eq!(
        validate(&key.sign(Algorithm::EdDSA, &array), &keys, &policy(), now())
            .unwrap()
            .claims
            .aud,
        vec!["other".to_owned(), AUDIENCE.to_owned()]
    );
    let wrong = claims_with(json!({"aud": ["other", "api://order"]}));
    assert_eq!(
        reject(&key.sign(Algorithm::EdDSA, &wrong), &keys, &policy()),
        ValidationError::WrongAudience {
            found: vec!["other".into(), "api://order".into()]
        }
    );
    let missing = claims_with(json!({"aud": null}));
    assert_eq!(
        reject(&key.sign(Algorithm::EdDSA, &missing), &keys, &policy()),
        ValidationError::MissingClaim { name: "aud".into() }
    );
    let empty = claims_with(json!({"aud": []}));
    assert_eq!(
        reject(&key.sign(Algorithm::EdDSA, &empty), &keys, &policy()).code(),
        "missing_claim"
    );
    let skip = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .insecure_skip_audience()
        .build()
        .unwrap();
    assert!(validate(&key.sign(Algorithm::EdDSA, &missing), &keys, &skip, now()).is_ok());
    assert!(validate(&key.sign(Algorithm::EdDSA, &wrong), &keys, &skip, now()).is_ok());
}

#[test]
fn azp_must_name_the_client() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let policy = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .require_azp("web-client")
        .build()
        .unwrap();
    let sign = |changes| key.sign(Algorithm::EdDSA, &claims_with(changes));
    assert!(validate(&sign(json!({})), &keys, &policy, now()).is_ok());
    assert!(validate(&sign(json!({"azp":"web-client"})), &keys, &policy, now()).is_ok());
    assert_eq!(
        reject(&sign(json!({"azp":"evil"})), &keys, &policy),
        ValidationError::AzpMismatch {
            found: "evil".into(),
            expected: "web-client".into()
        }
    );
    assert_eq!(
        reject(&sign(json!({"aud":[AUDIENCE, "x"]})), &keys, &policy),
        ValidationError::MissingClaim { name: "azp".into() }
    );
}

#[test]
fn time_claims_with_leeway() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let sign = |changes| key.sign(Algorithm::EdDSA, &claims_with(changes));
    let leeway = Duration::from_secs(60);
    // exp: valid until exp + leeway (exclusive).
    assert!(validate(&sign(json!({"exp": NOW - 59})), &keys, &policy(), now()).is_ok());
    assert_eq!(
        reject(&sign(json!({"exp": NOW - 60})), &keys, &policy()),
        ValidationError::Expired {
            exp: UnixTime::from_secs(NOW - 60),
            now: now(),
            leeway
        }
    );
    // Fractional NumericDate values are accepted.
    assert!(
        validate(
            &sign(json!({"exp": (NOW + 10) as f64 + 0.5})),
            &keys,
            &policy(),
            now()
        )
        .is_ok()
    );
    assert_eq!(
        reject(&sign(json!({"exp": null})), &keys, &policy()),
        ValidationError::MissingClaim { name: "exp".into() }
    );
    let relaxed = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .allow_missing_exp()
        .build()
        .unwrap();
    assert!(validate(&sign(json!({"exp": null})), &keys, &relaxed, now()).is_ok());
    // nbf
    assert!(validate(&sign(json!({"nbf": NOW + 60})), &keys, &policy(), now()).is_ok());
    assert_eq!(
        reject(&sign(json!({"nbf": NOW + 61})), &keys, &policy()),
        ValidationError::NotYetValid {
            nbf: UnixTime::from_secs(NOW + 61),
            now: now(),
            leeway
        }
    );
    // iat in the future
    assert_eq!(
        reject(&sign(json!({"iat": NOW + 61})), &keys, &policy()),
        ValidationError::IssuedInFuture {
            iat: UnixTime::from_secs(NOW + 61),
            now: now(),
            leeway
        }
    );
    // max age
    let fresh = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .max_age(Duration::from_secs(600))
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    assert!(validate(&sign(json!({"iat": NOW - 600})), &keys, &fresh, now()).is_ok());
    assert_eq!(
        reject(&sign(json!({"iat": NOW - 601})), &keys, &fresh),
        ValidationError::TooOld {
            iat: UnixTime::from_secs(NOW - 601),
            now: now(),
            max_age: Duration::from_secs(600)
        }
    );
    assert_eq!(
        reject(&sign(json!({"iat": null})), &keys, &fresh),
        ValidationError::MissingClaim { name: "iat".into() }
    );
    assert_eq!(
        reject(&sign(json!({"exp": NOW})), &keys, &fresh).code(),
        "expired"
    );
}

#[test]
fn claim_types_are_checked() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let sign = |changes| key.sign(Algorithm::EdDSA, &claims_with(changes));
    let cases = [
        (json!({"exp": "1750000300"}), "exp", "is not a number"),
        (json!({"exp": 1e300}), "exp", "is out of range"),
        (json!({"exp": -5}), "exp", "is negative"),
        (json!({"exp": -0.5}), "exp", "is out of range"),
        (json!({"exp": 253_402_300_801u64}), "exp", "is out of range"),
        (json!({"nbf": true}), "nbf", "is not a number"),
        (json!({"iat": [1]}), "iat", "is not a number"),
        (
            json!({"aud": 7}),
            "aud",
            "is not a string or an array of strings",
        ),
        (
            json!({"aud": ["a", 7]}),
            "aud",
            "is not a string or an array of strings",
        ),
        (json!({"iss": 1}), "iss", "is not a string"),
        (json!({"sub": {"id": 1}}), "sub", "is not a string"),
        (
            json!({"email_verified": "yes"}),
            "email_verified",
            "is not a boolean",
        ),
    ];
    for (changes, name, reason) in cases {
        assert_eq!(
            reject(&sign(changes.clone()), &keys, &policy()),
            ValidationError::InvalidClaim {
                name: name.into(),
                reason
            },
            "{changes}"
        );
    }
    let valid = validate(
        &sign(json!({"email_verified": "true", "name": null, "auth_time": NOW - 100})),
        &keys,
        &policy(),
        now(),
    )
    .unwrap();
    assert_eq!(valid.claims.email_verified, Some(true));
    assert_eq!(valid.claims.name, None);
    assert_eq!(valid.claims.auth_time, Some(UnixTime::from_secs(NOW - 100)));
}

#[test]
fn required_claims_and_expected_type() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let policy = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .require_claim("sub")
        .require_claim("groups")
        .expected_type("at+jwt")
        .build()
        .unwrap();
    let at = |typ: Option<&str>, claims: serde_json::Value| {
        let mut header = json!({"alg":"EdDSA","kid":"k"});
        if let Some(t) = typ {
            header["typ"] = json!(t);
        }
        key.sign_raw(Algorithm::EdDSA, &header.to_string(), &claims.to_string())
    };
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+Jwt",
    ] {
        assert!(
            validate(&at(Some(typ), claims()), &keys, &policy, now()).is_ok(),
            "{typ}"
        );
    }
    assert_eq!(
        reject(&at(Some("JWT"), claims()), &keys, &policy),
        ValidationError::WrongType {
            found: Some("JWT".into()),
            expected: "at+jwt".into()
        }
    );
    assert_eq!(
        reject(&at(None, claims()), &keys, &policy),
        ValidationError::WrongType {
            found: None,
            expected: "at+jwt".into()
        }
    );
    assert_eq!(
        reject(
            &at(Some("at+jwt"), claims_with(json!({"groups": null}))),
            &keys,
            &policy
        ),
        ValidationError::MissingClaim {
            name: "groups".into()
        }
    );
    assert_eq!(
        reject(
            &at(Some("at+jwt"), claims_with(json!({"sub": null}))),
            &keys,
            &policy
        ),
        ValidationError::MissingClaim { name: "sub".into() }
    );
}

#[test]
fn claims_accessors_and_serialization() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let token = key.sign(Algorithm::EdDSA, &claims_with(json!({"tid": "t1"})));
    let claims = validate(&token, &keys, &policy(), now()).unwrap().claims;
    assert_eq!(claims.get("aud"), Some(json!([AUDIENCE])));
    assert_eq!(claims.get("exp"), Some(json!(NOW + 300)));
    assert_eq!(claims.get("tid"), Some(json!("t1")));
    assert_eq!(claims.get("nonce"), None);
    assert!(claims.contains("groups"));
    assert!(!claims.contains("jti"));
    let round = serde_json::to_value(&claims).unwrap();
    assert_eq!(round["iss"], ISSUER);
    assert_eq!(round["exp"], NOW + 300);
    assert_eq!(round["groups"], json!(["admins", "users"]));
    assert!(round.get("nonce").is_none());
}

#[test]
fn nonce_must_match_the_authentication_request() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let nonce_policy = policy().with_nonce("n-0S6_WzA2Mj");
    let sign = |changes| key.sign(Algorithm::EdDSA, &claims_with(changes));
    assert!(
        validate(
            &sign(json!({"nonce":"n-0S6_WzA2Mj"})),
            &keys,
            &nonce_policy,
            now()
        )
        .is_ok()
    );
    assert_eq!(
        reject(&sign(json!({"nonce":"n-0S6_WzA2Mk"})), &keys, &nonce_policy),
        ValidationError::NonceMismatch
    );
    assert_eq!(
        reject(&sign(json!({})), &keys, &nonce_policy),
        ValidationError::MissingClaim {
            name: "nonce".into()
        }
    );
    // Without with_nonce, a nonce is not checked.
    assert!(validate(&sign(json!({"nonce":"anything"})), &keys, &policy(), now()).is_ok());
}
