//! Keys and token minting shared by the validation test files.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::jwks::KeySet;
use oidc_core::jws::Algorithm;
use oidc_core::validation::Policy;
use oidc_core::{Issuer, UnixTime};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://op.example/realms/main";
pub const AUDIENCE: &str = "api://orders";
pub const NOW: u64 = 1_750_000_000;

pub fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub jwk: Value,
    /// DER the `jsonwebtoken` crate takes for this key type (PKCS#1 for RSA, PKCS#8 otherwise).
    pub jsonwebtoken_der: Vec<u8>,
    signer: Signer,
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

fn rsa_pkcs8() -> &'static [u8] {
    static PKCS8: OnceLock<Vec<u8>> = OnceLock::new();
    PKCS8.get_or_init(|| {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        pair.as_der().unwrap().as_ref().to_vec()
    })
}

impl TestKey {
    /// The RSA-2048 key of this test binary (generated once), under `kid`.
    pub fn rsa(kid: &str) -> TestKey {
        let pkcs8 = rsa_pkcs8();
        let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        TestKey {
            kid: kid.into(),
            jwk: json!({"kty":"RSA","kid":kid,"n":b64(&components.n),"e":b64(&components.e)}),
            jsonwebtoken_der: pkcs1_from_pkcs8(pkcs8),
            signer: Signer::Rsa(pair),
        }
    }

    /// A fresh P-256 (`p384 == false`) or P-384 key.
    pub fn ec(kid: &str, p384: bool) -> TestKey {
        let (signing, crv, size) = if p384 {
            (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
        } else {
            (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
        };
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = point[1..].split_at(size);
        TestKey {
            kid: kid.into(),
            jwk: json!({"kty":"EC","kid":kid,"crv":crv,"x":b64(x),"y":b64(y)}),
            jsonwebtoken_der: pkcs8.as_ref().to_vec(),
            signer: Signer::Ec(pair),
        }
    }

    /// A fresh P-521 key (ES512).
    pub fn p521(kid: &str) -> TestKey {
        let signing = &sig::ECDSA_P521_SHA512_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = point[1..].split_at(66);
        TestKey {
            kid: kid.into(),
            jwk: json!({"kty":"EC","kid":kid,"crv":"P-521","x":b64(x),"y":b64(y)}),
            jsonwebtoken_der: pkcs8.as_ref().to_vec(),
            signer: Signer::Ec(pair),
        }
    }

    /// A fresh Ed25519 key.
    pub fn ed25519(kid: &str) -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        TestKey {
            kid: kid.into(),
            jwk: json!({"kty":"OKP","kid":kid,"crv":"Ed25519","x":b64(pair.public_key().as_ref())}),
            jsonwebtoken_der: pkcs8.as_ref().to_vec(),
            signer: Signer::Ed(pair),
        }
    }

    /// The JWK with extra members merged in (or removed, with `null`).
    pub fn jwk_with(&self, changes: Value) -> Value {
        let mut jwk = self.jwk.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                jwk.as_object_mut().unwrap().remove(k);
            } else {
                jwk[k] = v.clone();
            }
        }
        jwk
    }

    /// Signs `header_json.payload_json` exactly as given, with the algorithm `alg`.
    pub fn sign_raw(&self, alg: Algorithm, header_json: &str, payload_json: &str) -> String {
        let input = format!("{}.{}", b64(header_json), b64(payload_json));
        format!("{input}.{}", b64(self.signature(alg, input.as_bytes())))
    }

    /// Signs `claims` with a header `{"alg", "kid", "typ":"JWT"}`.
    pub fn sign(&self, alg: Algorithm, claims: &Value) -> String {
        let header = json!({"alg": alg.as_str(), "kid": self.kid, "typ": "JWT"});
        self.sign_raw(alg, &header.to_string(), &claims.to_string())
    }

    pub fn signature(&self, alg: Algorithm, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(pair) => {
                let encoding: &'static dyn sig::RsaEncoding = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    other => panic!("{other} is not an RSA algorithm"),
                };
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &rng, message, &mut out).unwrap();
                out
            }
            Signer::Ec(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }
}

/// Minimal DER walk: PrivateKeyInfo ::= SEQUENCE { version, algorithm, OCTET STRING key }.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    fn header(der: &[u8]) -> (u8, usize, usize) {
        let tag = der[0];
        let first = der[1] as usize;
        if first < 0x80 {
            (tag, 2, first)
        } else {
            let n = first & 0x7f;
            let len = der[2..2 + n]
                .iter()
                .fold(0usize, |a, b| a << 8 | *b as usize);
            (tag, 2 + n, len)
        }
    }
    let (_, off, _) = header(pkcs8);
    let mut rest = &pkcs8[off..];
    for _ in 0..2 {
        let (_, h, len) = header(rest);
        rest = &rest[h + len..];
    }
    let (tag, h, len) = header(rest);
    assert_eq!(tag, 0x04, "PKCS#8 private key is an OCTET STRING");
    rest[h..h + len].to_vec()
}

/// A JWK set document holding these JWKs.
pub fn jwks(keys: &[&Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

pub fn key_set(keys: &[&TestKey]) -> KeySet {
    let jwks: Vec<&Value> = keys.iter().map(|k| &k.jwk).collect();
    KeySet::parse(&self::jwks(&jwks)).unwrap()
}

/// Claims that pass [`policy`] at [`NOW`].
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "user-1",
        "aud": AUDIENCE,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "email": "ada@example.com",
        "groups": ["admins", "users"],
    })
}

/// `claims()` with members replaced (or removed, with `null`).
pub fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

pub fn policy() -> Policy {
    Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .build()
        .unwrap()
}
