//! Hostile tokens, each with the exact rejection it must get.

use crate::validation_support::*;
use oidc_core::jwks::KeySet;
use oidc_core::jws::{Algorithm, JwsError, MAX_HEADER_BYTES, Part};
use oidc_core::validation::{Policy, ValidationError, validate};
use oidc_core::{Issuer, Secret};
use serde_json::json;

fn rejection(token: &str, keys: &KeySet) -> ValidationError {
    validate(token, keys, &policy(), now()).unwrap_err()
}

fn malformed(error: JwsError) -> ValidationError {
    ValidationError::Malformed(error)
}

fn payload() -> String {
    claims().to_string()
}

#[test]
fn alg_none_in_any_spelling() {
    let key = TestKey::rsa("rsa");
    let keys = key_set(&[&key]);
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "kid": "rsa"}).to_string();
        let unsigned = format!("{}.{}.", b64(&header), b64(payload()));
        assert_eq!(
            rejection(&unsigned, &keys),
            malformed(JwsError::NoneAlgorithm { alg: alg.into() })
        );
        // With a (real RS256) signature appended it is still refused for its header.
        let signed = format!(
            "{}.{}",
            &unsigned[..unsigned.len() - 1],
            b64(key.signature(Algorithm::RS256, &unsigned.as_bytes()[..unsigned.len() - 1]))
        );
        assert_eq!(rejection(&signed, &keys).code(), "alg_none");
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_as_secret() {
    let key = TestKey::rsa("rsa");
    let keys = key_set(&[&key]);
    let header = json!({"alg":"HS256","kid":"rsa"}).to_string();
    let input = format!("{}.{}", b64(&header), b64(payload()));
    for secret in [
        key.jwk.to_string(),
        key.jwk["n"].as_str().unwrap().to_owned(),
    ] {
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(
            rejection(&token, &keys),
            ValidationError::AlgorithmNotAllowed {
                alg: Algorithm::HS256
            }
        );
        // Even a policy allowing HS256 finds no key: an RSA key never verifies HMAC.
        let hs = Policy::builder()
            .issuer(Issuer::new(ISSUER).unwrap())
            .audience(AUDIENCE)
            .algorithms([Algorithm::HS256])
            .build()
            .unwrap();
        assert_eq!(
            validate(&token, &keys, &hs, now()).unwrap_err(),
            ValidationError::NoMatchingKey {
                kid: Some("rsa".into()),
                alg: Algorithm::HS256
            }
        );
    }
    // And an `oct` key published in the key set is never used.
    let published = KeySet::parse(&jwks(&[
        &key.jwk,
        &json!({"kty":"oct","kid":"sym","k": b64("0123456789abcdef0123456789abcdef")}),
    ]))
    .unwrap();
    assert_eq!(published.keys().len(), 1);
    assert_eq!(published.skipped()[0].kid.as_deref(), Some("sym"));
    let _ = Secret::new("unused");
}

#[test]
fn key_carrying_headers_are_never_trusted() {
    let attacker = TestKey::ed25519("attacker");
    let victim = TestKey::ed25519("victim");
    let keys = key_set(&[&victim]);
    let cases = [
        ("jwk", json!(attacker.jwk)),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
    ];
    for (member, value) in cases {
        let mut header = json!({"alg":"EdDSA","kid":"victim"});
        header[member] = value;
        let token = attacker.sign_raw(Algorithm::EdDSA, &header.to_string(), &payload());
        assert_eq!(
            rejection(&token, &keys),
            malformed(JwsError::UntrustedKeyReference {
                member: match member {
                    "jwk" => "jwk",
                    "jku" => "jku",
                    _ => "x5u",
                }
            })
        );
    }
    // x5c is informational only: the embedded certificate is ignored and the kid decides.
    let header = json!({"alg":"EdDSA","kid":"victim","x5c":["MIIB..."]}).to_string();
    let token = attacker.sign_raw(Algorithm::EdDSA, &header, &payload());
    assert_eq!(rejection(&token, &keys), ValidationError::BadSignature);
}

#[test]
fn crit_and_b64_false() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let sign =
        |header: serde_json::Value| key.sign_raw(Algorithm::EdDSA, &header.to_string(), &payload());
    assert_eq!(
        rejection(
            &sign(
                json!({"alg":"EdDSA","kid":"k","crit":["http://example.invalid/x"],"http://example.invalid/x":1})
            ),
            &keys
        ),
        malformed(JwsError::UnsupportedCritical {
            names: vec!["http://example.invalid/x".into()]
        })
    );
    assert_eq!(
        rejection(
            &sign(json!({"alg":"EdDSA","kid":"k","crit":["exp"],"exp":1})),
            &keys
        )
        .code(),
        "unsupported_crit"
    );
    assert_eq!(
        rejection(
            &sign(json!({"alg":"EdDSA","kid":"k","b64":false,"crit":["b64"]})),
            &keys
        ),
        malformed(JwsError::UnencodedPayload)
    );
    assert_eq!(
        rejection(&sign(json!({"alg":"EdDSA","kid":"k","b64":false})), &keys),
        malformed(JwsError::UnencodedPayload)
    );
}

#[test]
fn segment_counts() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let token = key.sign(Algorithm::EdDSA, &claims());
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn";
    assert_eq!(rejection(jwe, &keys), malformed(JwsError::Encrypted));
    assert_eq!(
        rejection(&format!("{token}.extra"), &keys),
        malformed(JwsError::WrongSegmentCount { segments: 4 })
    );
    assert_eq!(
        rejection(&format!("{token}.a.b.c"), &keys),
        malformed(JwsError::WrongSegmentCount { segments: 6 })
    );
    let two = token.rsplit_once('.').unwrap().0;
    assert_eq!(
        rejection(two, &keys),
        malformed(JwsError::WrongSegmentCount { segments: 2 })
    );
    assert_eq!(
        rejection("", &keys),
        malformed(JwsError::WrongSegmentCount { segments: 1 })
    );
    assert_eq!(
        rejection("..", &keys),
        malformed(JwsError::InvalidJson {
            part: Part::Header,
            reason: "EOF while parsing a value at line 1 column 0".into()
        })
    );
    // Detached payload.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        rejection(&format!("{}..{}", parts[0], parts[2]), &keys),
        malformed(JwsError::EmptyPayload)
    );
}

#[test]
fn empty_truncated_and_zeroed_signatures() {
    let ec = TestKey::ec("ec", false);
    let rsa = TestKey::rsa("rsa");
    let keys = key_set(&[&ec, &rsa]);
    for (key, alg) in [(&ec, Algorithm::ES256), (&rsa, Algorithm::RS256)] {
        let token = key.sign(alg, &claims());
        let (input, signature) = token.rsplit_once('.').unwrap();
        assert_eq!(
            rejection(&format!("{input}."), &keys),
            malformed(JwsError::EmptySignature)
        );
        // Truncated by a few bytes, re-encoded canonically.
        let mut bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
                .unwrap();
        bytes.truncate(bytes.len() - 3);
        let truncated = b64(&bytes);
        assert_eq!(
            rejection(&format!("{input}.{truncated}"), &keys),
            ValidationError::BadSignature
        );
        let length = key.signature(alg, b"x").len();
        let zeros = b64(vec![0u8; length]);
        assert_eq!(
            rejection(&format!("{input}.{zeros}"), &keys),
            ValidationError::BadSignature
        );
        // A valid signature over a different message.
        let other = b64(key.signature(alg, b"something else"));
        assert_eq!(
            rejection(&format!("{input}.{other}"), &keys),
            ValidationError::BadSignature
        );
    }
    // ECDSA r = 0, s = 0 (the "psychic signature", CVE-2022-21449).
    let token = ec.sign(Algorithm::ES256, &claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    let r_s_zero = b64([0u8; 64]);
    assert_eq!(
        rejection(&format!("{input}.{r_s_zero}"), &keys),
        ValidationError::BadSignature
    );
    // r = s = n (the group order) is out of range as well.
    let order = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let n: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&order[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let r_s_n = b64([n.clone(), n].concat());
    assert_eq!(
        rejection(&format!("{input}.{r_s_n}"), &keys),
        ValidationError::BadSignature
    );
    // An over-long signature is refused without decoding it.
    let huge = "A".repeat(2000);
    assert_eq!(
        rejection(&format!("{input}.{huge}"), &keys),
        ValidationError::BadSignature
    );
}

#[test]
fn signature_does_not_carry_over_to_another_header() {
    let rsa = TestKey::rsa("rsa");
    let keys = key_set(&[&rsa]);
    let token = rsa.sign(Algorithm::RS256, &claims());
    let (_, rest) = token.split_once('.').unwrap();
    let ps_header = b64(json!({"alg":"PS256","kid":"rsa","typ":"JWT"}).to_string());
    assert_eq!(
        rejection(&format!("{ps_header}.{rest}"), &keys),
        ValidationError::BadSignature
    );
    let modified = key_set(&[&rsa]);
    let (input, sig) = token.rsplit_once('.').unwrap();
    let (h, _) = input.split_once('.').unwrap();
    let evil = b64(claims_with(json!({"sub":"admin"})).to_string());
    assert_eq!(
        rejection(&format!("{h}.{evil}.{sig}"), &modified),
        ValidationError::BadSignature
    );
}

#[test]
fn non_canonical_base64url() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let token = key.sign(Algorithm::EdDSA, &claims());
    let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let with = |index: usize, value: String| {
        let mut p = parts.clone();
        p[index] = value;
        p.join(".")
    };
    // An Ed25519 signature is 64 bytes: 86 characters, the last carrying 2 spare bits.
    let sig = &parts[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let tweaked = alphabet.chars().nth(index ^ 1).unwrap();
    let non_canonical = format!("{}{tweaked}", &sig[..sig.len() - 1]);
    assert_eq!(
        rejection(&with(2, non_canonical), &keys),
        malformed(JwsError::InvalidBase64 {
            part: Part::Signature
        })
    );
    assert_eq!(
        rejection(&with(2, format!("{sig}==")), &keys),
        malformed(JwsError::InvalidBase64 {
            part: Part::Signature
        })
    );
    assert_eq!(
        rejection(&with(1, format!("{}=", parts[1])), &keys),
        malformed(JwsError::InvalidBase64 {
            part: Part::Payload
        })
    );
    assert_eq!(
        rejection(
            &with(1, parts[1].replace('_', "/").replace('-', "+") + "+/"),
            &keys
        ),
        malformed(JwsError::InvalidBase64 {
            part: Part::Payload
        })
    );
    assert_eq!(
        rejection(&with(0, format!(" {}", parts[0])), &keys),
        malformed(JwsError::InvalidBase64 { part: Part::Header })
    );
}

#[test]
fn oversized_tokens_and_headers() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let big = claims_with(json!({"pad": "x".repeat(20_000)}));
    let token = key.sign(Algorithm::EdDSA, &big);
    assert_eq!(
        rejection(&token, &keys),
        ValidationError::TooLarge {
            len: token.len(),
            limit: 16 * 1024
        }
    );
    let roomy = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .max_token_bytes(1 << 20)
        .build()
        .unwrap();
    assert!(validate(&token, &keys, &roomy, now()).is_ok());
    let header = json!({"alg":"EdDSA","kid":"k","pad":"y".repeat(MAX_HEADER_BYTES)}).to_string();
    let token = key.sign_raw(Algorithm::EdDSA, &header, &payload());
    assert_eq!(
        validate(&token, &keys, &roomy, now()).unwrap_err(),
        malformed(JwsError::HeaderTooLarge {
            len: header.len(),
            limit: MAX_HEADER_BYTES
        })
    );
}

#[test]
fn deep_and_duplicate_json() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let claims_text = payload();
    let deep = format!(
        "{},\"deep\":{}{}}}",
        &claims_text[..claims_text.len() - 1],
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let roomy = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .max_token_bytes(1 << 20)
        .build()
        .unwrap();
    let token = key.sign_raw(Algorithm::EdDSA, r#"{"alg":"EdDSA","kid":"k"}"#, &deep);
    match validate(&token, &keys, &roomy, now()).unwrap_err() {
        ValidationError::Malformed(JwsError::InvalidJson { part, reason }) => {
            assert_eq!(part, Part::Payload);
            assert!(reason.starts_with("recursion limit exceeded"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let deep_header = format!(
        r#"{{"alg":"EdDSA","kid":"k","x":{}{}}}"#,
        "{\"a\":".repeat(200),
        "}".repeat(200)
    );
    let token = key.sign_raw(Algorithm::EdDSA, &deep_header, &payload());
    assert_eq!(rejection(&token, &keys).code(), "invalid_json");

    let cases = [
        (
            r#"{"alg":"EdDSA","kid":"k","kid":"other"}"#.to_owned(),
            payload(),
            Part::Header,
            "kid",
        ),
        (
            r#"{"alg":"EdDSA","kid":"k"}"#.to_owned(),
            format!(
                "{},\"sub\":\"admin\"}}",
                &claims_text[..claims_text.len() - 1]
            ),
            Part::Payload,
            "sub",
        ),
        (
            r#"{"alg":"EdDSA","kid":"k"}"#.to_owned(),
            format!(
                "{},\"groups\":[\"root\"]}}",
                &claims_text[..claims_text.len() - 1]
            ),
            Part::Payload,
            "groups",
        ),
        (
            r#"{"alg":"EdDSA","kid":"k"}"#.to_owned(),
            format!(
                "{},\"realm\":{{\"role\":\"a\",\"role\":\"b\"}}}}",
                &claims_text[..claims_text.len() - 1]
            ),
            Part::Payload,
            "role",
        ),
    ];
    for (header, claims, part, name) in cases {
        let token = key.sign_raw(Algorithm::EdDSA, &header, &claims);
        assert_eq!(
            rejection(&token, &keys),
            malformed(JwsError::DuplicateMember {
                part,
                name: name.into()
            })
        );
    }
    // Claims that are not an object, but signed.
    for body in ["[]", "\"text\"", "7", "null"] {
        let token = key.sign_raw(Algorithm::EdDSA, r#"{"alg":"EdDSA","kid":"k"}"#, body);
        assert_eq!(rejection(&token, &keys).code(), "invalid_json", "{body}");
    }
}

#[test]
fn kid_with_path_or_sql_characters() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1' --",
        "k\0",
        "/dev/null",
        "k; DROP TABLE keys",
        "%2e%2e%2f",
    ] {
        let header = json!({"alg":"EdDSA","kid": kid}).to_string();
        let token = key.sign_raw(Algorithm::EdDSA, &header, &payload());
        assert_eq!(
            rejection(&token, &keys),
            ValidationError::UnknownKid { kid: kid.into() }
        );
    }
    let long = "a".repeat(5000);
    let header = json!({"alg":"EdDSA","kid": long}).to_string();
    let token = key.sign_raw(Algorithm::EdDSA, &header, &payload());
    assert_eq!(
        rejection(&token, &keys),
        ValidationError::UnknownKid {
            kid: "a".repeat(64)
        }
    );
}

#[test]
fn wrong_issuer_by_a_trailing_slash_and_audience_mismatch() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    let token = key.sign(
        Algorithm::EdDSA,
        &claims_with(json!({"iss": format!("{ISSUER}/")})),
    );
    assert_eq!(
        rejection(&token, &keys),
        ValidationError::WrongIssuer {
            found: format!("{ISSUER}/")
        }
    );
    let token = key.sign(
        Algorithm::EdDSA,
        &claims_with(json!({"aud": "api://orders/"})),
    );
    assert_eq!(
        rejection(&token, &keys),
        ValidationError::WrongAudience {
            found: vec!["api://orders/".into()]
        }
    );
}

#[test]
fn unsupported_algorithms_are_refused_by_name() {
    let key = TestKey::ed25519("k");
    let keys = key_set(&[&key]);
    for alg in ["ES521", "RS1", "HS1", "ES256K", "Ed25519X", ""] {
        let header = json!({"alg": alg, "kid":"k"}).to_string();
        let token = format!("{}.{}.AAAA", b64(&header), b64(payload()));
        assert_eq!(
            rejection(&token, &keys),
            malformed(JwsError::UnsupportedAlgorithm { alg: alg.into() })
        );
    }
}
