//! A provider in miniature for login, logout and certification tests: signing keys that publish
//! themselves as a JWK set, tokens minted with any header and claims, and a login carried from
//! `start_login` to the point where the token response arrives.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::danger::InsecureSeededRandom;
use oidc_core::login::token::{TokenResponse, parse_token_response};
use oidc_core::login::{
    self, CallbackParams, ClientAuthMethod, ClientCredentials, IdTokenError, LoginConfig,
    LoginExpectation, LoginOutcome, LoginRequest, ProviderEndpoints,
};
use oidc_core::{Issuer, KeySet, Policy, UnixTime};
use serde_json::{Value, json};
use url::Url;

pub const ISSUER: &str = "https://op.example";
pub const CLIENT_ID: &str = "rp-client";
pub const CLIENT_SECRET: &str = "rp-secret";
pub const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
pub const ACCESS_TOKEN: &str = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A provider signing key: RS256 or ES256, with or without a `kid`.
#[derive(Clone)]
pub struct TestKey {
    pub kid: Option<String>,
    pub alg: &'static str,
    signer: Arc<Signer>,
}

/// RSA generation is slow without optimisation: each test binary makes three keys once.
fn rsa_pkcs8(index: usize) -> Vec<u8> {
    static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..3)
            .map(|_| {
                use aws_lc_rs::encoding::AsDer;
                let pair =
                    aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().unwrap();
                der.as_ref().to_vec()
            })
            .collect()
    });
    keys[index % keys.len()].clone()
}

impl TestKey {
    /// The `index`-th RSA key (0..3) for RS256.
    pub fn rsa(index: usize, kid: Option<&str>) -> Self {
        let pair = RsaKeyPair::from_pkcs8(&rsa_pkcs8(index)).unwrap();
        TestKey {
            kid: kid.map(str::to_owned),
            alg: "RS256",
            signer: Arc::new(Signer::Rsa(pair)),
        }
    }

    /// A fresh P-256 key for ES256.
    pub fn ec(kid: Option<&str>) -> Self {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
        TestKey {
            kid: kid.map(str::to_owned),
            alg: "ES256",
            signer: Arc::new(Signer::Ec(pair)),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &*self.signer {
            Signer::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Signer::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
        };
        jwk["use"] = json!("sig");
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The default header: `alg`, `typ: JWT`, and the `kid` when the key has one.
    pub fn header(&self) -> Value {
        let mut header = json!({ "alg": self.alg, "typ": "JWT" });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        header
    }

    /// A compact JWS of `claims` under the default header.
    pub fn mint(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    /// A compact JWS of `claims` under `header`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &*self.signer {
            Signer::Rsa(pair) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut out,
                )
                .unwrap();
                out
            }
            Signer::Ec(pair) => pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The JWK set publishing `keys`.
pub fn key_set(keys: &[&TestKey]) -> KeySet {
    let document = json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    KeySet::parse(document.to_string().as_bytes()).unwrap()
}

/// An unsigned token (`alg: none`).
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none" }).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Flips a bit of the signature so it no longer verifies.
pub fn corrupt_signature(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn endpoints() -> ProviderEndpoints {
    let mut endpoints = ProviderEndpoints::new(
        Issuer::new(ISSUER).unwrap(),
        Url::parse("https://op.example/authorize").unwrap(),
        Url::parse("https://op.example/token").unwrap(),
    );
    endpoints.userinfo_endpoint = Some(Url::parse("https://op.example/userinfo").unwrap());
    endpoints.end_session_endpoint = Some(Url::parse("https://op.example/logout").unwrap());
    endpoints
}

pub fn config() -> LoginConfig {
    LoginConfig::new(
        ClientCredentials::new(
            CLIENT_ID,
            ClientAuthMethod::ClientSecretBasic(CLIENT_SECRET.into()),
        ),
        Url::parse("https://rp.example/callback").unwrap(),
    )
    .scopes(["email", "profile"])
}

pub fn id_token_policy() -> Policy {
    login::id_token_policy(Issuer::new(ISSUER).unwrap(), CLIENT_ID).unwrap()
}

/// A login that has gone through the redirect and the callback, waiting for its token response.
pub struct StartedLogin {
    pub authorization_url: Url,
    pub token_request: http::Request<Vec<u8>>,
    pub expectation: LoginExpectation,
}

impl StartedLogin {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(config: LoginConfig) -> Self {
        let mut random = InsecureSeededRandom::new(42);
        let redirect = login::start_login(
            &endpoints(),
            &config,
            &LoginRequest::new("/after-login"),
            NOW,
            &mut random,
        )
        .unwrap();
        let params = CallbackParams::from_query(&format!(
            "code=the-code&state={}&iss={ISSUER}",
            redirect.pending.state()
        ))
        .unwrap();
        let exchange = login::handle_callback(
            &endpoints(),
            &config,
            redirect.pending,
            &params,
            NOW.saturating_add(secs(5)),
            &mut random,
        )
        .unwrap();
        StartedLogin {
            authorization_url: redirect.url,
            token_request: exchange.request,
            expectation: exchange.expectation,
        }
    }

    /// The claims of a valid ID token for this login.
    pub fn claims(&self) -> Value {
        json!({
            "iss": ISSUER,
            "sub": "user-1",
            "aud": CLIENT_ID,
            "iat": NOW.as_secs(),
            "exp": NOW.as_secs() + 300,
            "nonce": self.expectation.nonce().expose(),
            "email": "user@example.com",
        })
    }

    /// Completes the login with a token response carrying `id_token`.
    pub fn finish(&self, id_token: &str, keys: &KeySet) -> Result<LoginOutcome, IdTokenError> {
        login::finish_login(
            &self.expectation,
            token_response(id_token),
            keys,
            &id_token_policy(),
            NOW.saturating_add(secs(10)),
        )
    }
}

/// A token endpoint answer with `id_token`, [`ACCESS_TOKEN`] and a refresh token.
pub fn token_response(id_token: &str) -> TokenResponse {
    let body = json!({
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "refresh-1",
        "id_token": id_token,
    });
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap();
    parse_token_response(&response).unwrap()
}

/// A JSON answer with status 200.
pub fn json_response(body: &Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap()
}
