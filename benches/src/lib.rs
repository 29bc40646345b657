//! Shared fixtures for the benchmarks: keys, tokens and the baselines each bench compares
//! against in the same run.
//!
//! The validation bench compares three ways to accept the same token:
//! - ours: [`oidc_core::validate`] with a [`KeySet`] and a [`Policy`];
//! - `jsonwebtoken::decode` with the same key, issuer and audience;
//! - [`floor_validate`], the least any validator must do: verify with a pre-parsed aws-lc-rs
//!   key, split and base64-decode, deserialize typed claims, check `exp`, `iss` and `aud`.
#![deny(missing_docs)]

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::jwks::KeySet;
use oidc_core::jws::Algorithm;
use oidc_core::validation::Policy;
use oidc_core::{Issuer, UnixTime};
use serde::Deserialize;
use serde_json::json;

/// The issuer of every bench token.
pub const ISSUER: &str = "https://op.example/realms/main";
/// The audience of every bench token.
pub const AUDIENCE: &str = "api://orders";
/// The time at which bench tokens are valid.
pub const NOW: u64 = 1_750_000_000;

/// Everything needed to validate one token three ways.
pub struct Fixture {
    /// The algorithm.
    pub alg: Algorithm,
    /// The signed token.
    pub token: String,
    /// Our key set.
    pub keys: KeySet,
    /// Our policy.
    pub policy: Policy,
    /// `jsonwebtoken`'s key.
    pub jwt_key: jsonwebtoken::DecodingKey,
    /// `jsonwebtoken`'s validation settings.
    pub jwt_validation: jsonwebtoken::Validation,
    /// The floor's pre-parsed key.
    pub floor_key: ParsedPublicKey,
}

impl Fixture {
    /// The time at which the token is valid.
    pub fn now(&self) -> UnixTime {
        UnixTime::from_secs(NOW)
    }
}

/// Typed claims as the floor and `jsonwebtoken` decode them: the same registered and OpenID
/// Connect claims that [`oidc_core::Claims`] types (other claims are skipped, where ours keeps
/// them as JSON).
#[derive(Debug, Deserialize)]
pub struct TypedClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: Option<String>,
    /// Audience, one or many.
    pub aud: OneOrMany,
    /// Expiry.
    pub exp: u64,
    /// Not before.
    pub nbf: Option<u64>,
    /// Issued at.
    pub iat: Option<u64>,
    /// When the user authenticated.
    pub auth_time: Option<u64>,
    /// Authorized party.
    pub azp: Option<String>,
    /// Nonce.
    pub nonce: Option<String>,
    /// Token id.
    pub jti: Option<String>,
    /// Session id.
    pub sid: Option<String>,
    /// Access token hash.
    pub at_hash: Option<String>,
    /// Scopes.
    pub scope: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Whether the e-mail is verified.
    pub email_verified: Option<bool>,
    /// Display name.
    pub name: Option<String>,
    /// Preferred user name.
    pub preferred_username: Option<String>,
}

/// A JSON string or array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

/// The floor: the work any validator must do, and no more.
pub fn floor_validate(token: &str, key: &ParsedPublicKey, now: u64) -> Option<TypedClaims> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (_, payload) = signing_input.split_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    key.verify_sig(signing_input.as_bytes(), &signature).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: TypedClaims = serde_json::from_slice(&payload).ok()?;
    let aud_ok = match &claims.aud {
        OneOrMany::One(a) => a == AUDIENCE,
        OneOrMany::Many(all) => all.iter().any(|a| a == AUDIENCE),
    };
    (claims.exp > now && claims.iss == ISSUER && aud_ok).then_some(claims)
}

/// An access-token-like claim set of typical size (about 600 bytes).
pub fn claims() -> serde_json::Value {
    json!({
        "iss": ISSUER,
        "sub": "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "aud": [AUDIENCE, "account"],
        "exp": NOW + 300,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "jti": "0b4c7d1e-2f3a-4b5c-9d8e-7f6a5b4c3d2e",
        "azp": "orders-web",
        "scope": "openid profile email orders:read orders:write",
        "client_id": "orders-web",
        "email": "ada.lovelace@example.com",
        "email_verified": true,
        "preferred_username": "ada",
        "name": "Ada Lovelace",
        "groups": ["engineering", "orders-admins", "staff"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "orders-admin"]},
        "sid": "9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4",
    })
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

type KeyMaterial = (
    serde_json::Value,
    Box<dyn Fn(&[u8]) -> Vec<u8>>,
    ParsedPublicKey,
    jsonwebtoken::DecodingKey,
    jsonwebtoken::Algorithm,
);

/// Builds the fixture for one of RS256, PS256, ES256 and EdDSA, with a fresh key.
///
/// # Panics
/// For other algorithms, or if key generation fails (a broken crypto library).
pub fn fixture(alg: Algorithm) -> Fixture {
    let rng = SystemRandom::new();
    let kid = "bench-key";
    let (jwk, signer, floor_key, jwt_key, jwt_alg): KeyMaterial = match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            let pkcs8 = pair.as_der().unwrap().as_ref().to_vec();
            let c = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            let (params, encoding, jwt_alg): (
                &'static sig::RsaParameters,
                &'static dyn sig::RsaEncoding,
                _,
            ) = if alg == Algorithm::RS256 {
                (
                    &sig::RSA_PKCS1_2048_8192_SHA256,
                    &sig::RSA_PKCS1_SHA256,
                    jsonwebtoken::Algorithm::RS256,
                )
            } else {
                (
                    &sig::RSA_PSS_2048_8192_SHA256,
                    &sig::RSA_PSS_SHA256,
                    jsonwebtoken::Algorithm::PS256,
                )
            };
            let floor = c.to_parsed_public_key(params).unwrap();
            let jwt_key = jsonwebtoken::DecodingKey::from_rsa_raw_components(&c.n, &c.e);
            let pair = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
            let signer = move |m: &[u8]| {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &SystemRandom::new(), m, &mut out)
                    .unwrap();
                out
            };
            (
                json!({"kty":"RSA","kid":kid,"use":"sig","n":b64(&c.n),"e":b64(&c.e)}),
                Box::new(signer),
                floor,
                jwt_key,
                jwt_alg,
            )
        }
        Algorithm::ES256 => {
            let signing = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).unwrap();
            let point = pair.public_key().as_ref().to_vec();
            let (x, y) = point[1..].split_at(32);
            let floor = ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point).unwrap();
            let jwt_key = jsonwebtoken::DecodingKey::from_ec_components(&b64(x), &b64(y)).unwrap();
            let jwk = json!({"kty":"EC","kid":kid,"use":"sig","crv":"P-256","x":b64(x),"y":b64(y)});
            let signer = move |m: &[u8]| {
                pair.sign(&SystemRandom::new(), m)
                    .unwrap()
                    .as_ref()
                    .to_vec()
            };
            (
                jwk,
                Box::new(signer),
                floor,
                jwt_key,
                jsonwebtoken::Algorithm::ES256,
            )
        }
        Algorithm::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            let public = pair.public_key().as_ref().to_vec();
            let floor = ParsedPublicKey::new(&sig::ED25519, &public).unwrap();
            let jwt_key = jsonwebtoken::DecodingKey::from_ed_components(&b64(&public)).unwrap();
            let jwk = json!({"kty":"OKP","kid":kid,"use":"sig","crv":"Ed25519","x":b64(&public)});
            let signer = move |m: &[u8]| pair.sign(m).as_ref().to_vec();
            (
                jwk,
                Box::new(signer),
                floor,
                jwt_key,
                jsonwebtoken::Algorithm::EdDSA,
            )
        }
        other => panic!("no bench fixture for {other}"),
    };
    let header = json!({"alg": alg.as_str(), "kid": kid, "typ": "JWT"});
    let input = format!("{}.{}", b64(header.to_string()), b64(claims().to_string()));
    let token = format!("{input}.{}", b64(signer(input.as_bytes())));
    let keys = KeySet::parse(json!({"keys":[jwk]}).to_string().as_bytes()).unwrap();
    let policy = Policy::builder()
        .issuer(Issuer::new(ISSUER).unwrap())
        .audience(AUDIENCE)
        .algorithms([alg])
        .build()
        .unwrap();
    let mut jwt_validation = jsonwebtoken::Validation::new(jwt_alg);
    jwt_validation.set_issuer(&[ISSUER]);
    jwt_validation.set_audience(&[AUDIENCE]);
    // jsonwebtoken reads the clock itself; with a leeway reaching back to NOW's token it
    // would still reject an expired one, so the bench token is minted relative to NOW and
    // jsonwebtoken is told to skip exp (its cost is one comparison).
    jwt_validation.validate_exp = false;
    Fixture {
        alg,
        token,
        keys,
        policy,
        jwt_key,
        jwt_validation,
        floor_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_accept_every_fixture() {
        for alg in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            let f = fixture(alg);
            let ours = oidc_core::validate(&f.token, &f.keys, &f.policy, f.now()).unwrap();
            assert_eq!(ours.claims.iss, ISSUER);
            let theirs =
                jsonwebtoken::decode::<TypedClaims>(&f.token, &f.jwt_key, &f.jwt_validation)
                    .unwrap();
            assert_eq!(theirs.claims.iss, ISSUER);
            let floor = floor_validate(&f.token, &f.floor_key, NOW).unwrap();
            assert_eq!(floor.exp, NOW + 300);
        }
    }
}
