//! The sample token in `examples/tokens/`: how it is minted, so that the committed files can be
//! regenerated (`cargo run -p oidc-cli --example mint_sample_token`) and checked by the tests.
//!
//! RS256 signatures (RSASSA-PKCS1-v1_5) are deterministic, so the same key and claims always
//! give the same token, byte for byte.

use std::path::PathBuf;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The issuer the sample token names.
pub(crate) const SAMPLE_ISSUER: &str = "https://op.example";
/// The audience the sample token is for.
pub(crate) const SAMPLE_AUDIENCE: &str = "mlflow";
/// The sample key's id.
pub(crate) const SAMPLE_KID: &str = "sample-2025";
/// 2100-01-01T00:00:00Z: the sample token's expiry, so that it verifies on any day.
pub(crate) const SAMPLE_EXP: u64 = 4_102_444_800;

/// `examples/tokens/` in the workspace.
pub(crate) fn tokens_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/tokens")
}

/// The sample signing key (a throwaway RSA-2048 key committed for examples and tests) as
/// PKCS#1 DER, read from its PEM file.
pub(crate) fn signing_key_der() -> Vec<u8> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(tokens_dir().join("sample-signing-key.pem")).expect("key");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}

/// The sample token's claims.
pub(crate) fn sample_claims() -> Value {
    json!({
        "iss": SAMPLE_ISSUER,
        "sub": "alice",
        "aud": SAMPLE_AUDIENCE,
        "iat": 1_735_689_600u64,
        "nbf": 1_735_689_600u64,
        "exp": SAMPLE_EXP,
        "email": "alice@example.com",
        "email_verified": true,
        "name": "Alice Example",
        "groups": ["ml-engineers"],
    })
}

/// Signs `claims` with the sample key (RS256, kid [`SAMPLE_KID`]).
pub(crate) fn mint(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_der(&signing_key_der());
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(SAMPLE_KID.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("signing")
}

/// The sample token.
pub(crate) fn sample_token() -> String {
    mint(&sample_claims())
}

/// The public key set that verifies the sample token, as pretty JSON.
pub(crate) fn sample_jwks() -> Value {
    let key = EncodingKey::from_rsa_der(&signing_key_der());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("public key");
    jwk.common.key_id = Some(SAMPLE_KID.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(JwkSet { keys: vec![jwk] }).expect("JSON")
}

/// The sample files' contents: (file name, contents).
pub(crate) fn sample_files() -> Vec<(&'static str, String)> {
    vec![
        ("sample.jwt", format!("{}\n", sample_token())),
        (
            "jwks.json",
            format!(
                "{}\n",
                serde_json::to_string_pretty(&sample_jwks()).expect("JSON")
            ),
        ),
    ]
}
