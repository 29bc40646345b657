//! Fixed keys, policies and helpers shared by the fuzz targets.
//!
//! Every target checks its parser against the same provider: one issuer, one client, one clock
//! reading, an Ed25519 key the targets can sign with (so that fuzzed headers and claims reach
//! the claim checks behind the signature), and the RFC 7520 cookbook public keys (so that the
//! cookbook's signed examples verify).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue};
use oidc_core::jwks::KeySet;
use oidc_core::validation::Policy;
use oidc_core::{Issuer, UnixTime};

/// The issuer every fixture trusts.
pub const ISSUER: &str = "https://op.example/realms/main";
/// The client id, also the expected audience.
pub const CLIENT_ID: &str = "client-1";
/// The clock reading of every check.
pub const NOW: u64 = 1_750_000_000;
/// The `kid` of the Ed25519 signing key.
pub const SIGNING_KID: &str = "fuzz-ed25519";

/// The byte that separates a header from a payload in the targets' "sign this" inputs.
pub const SIGN_SEPARATOR: u8 = 0;

const ED25519_SEED: [u8; 32] = [7; 32];

/// The clock reading as a [`UnixTime`].
pub fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

/// The trusted issuer.
pub fn issuer() -> Issuer {
    Issuer::new(ISSUER).expect("the fixture issuer is a valid https URL")
}

/// Unpadded base64url.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_key() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).expect("a 32-byte Ed25519 seed")
    })
}

/// The public JWK of the Ed25519 signing key.
pub fn signing_jwk() -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "kid": SIGNING_KID, "use": "sig",
        "x": b64(signing_key().public_key().as_ref()),
    })
}

/// The public JWK set: the Ed25519 signing key plus the RFC 7520 cookbook RSA and EC keys.
pub fn jwks_document() -> Vec<u8> {
    let ed = signing_jwk();
    let rsa: serde_json::Value = serde_json::from_str(include_str!(
        "../../oidc-core/tests/data/jose-cookbook/jwk/3_3.rsa_public_key.json"
    ))
    .expect("cookbook RSA key");
    let ec: serde_json::Value = serde_json::from_str(include_str!(
        "../../oidc-core/tests/data/jose-cookbook/jwk/3_1.ec_public_key.json"
    ))
    .expect("cookbook EC key");
    serde_json::json!({ "keys": [ed, rsa, ec] })
        .to_string()
        .into_bytes()
}

/// The public key set parsed from [`jwks_document`].
pub fn public_keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::parse(&jwks_document()).expect("the fixture key set parses"))
}

/// The cookbook's shared HS256 key (RFC 7520 §3.5) as a local key set.
pub fn shared_keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let jwk: serde_json::Value = serde_json::from_str(include_str!(
            "../../oidc-core/tests/data/jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json"
        ))
        .expect("cookbook symmetric key");
        let doc = serde_json::json!({ "keys": [jwk] }).to_string();
        KeySet::parse_local(doc.as_bytes()).expect("the cookbook symmetric key set parses")
    })
}

/// The default access-token policy for [`ISSUER`] and [`CLIENT_ID`].
pub fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::builder()
            .issuer(issuer())
            .audience(CLIENT_ID)
            .build()
            .expect("the fixture policy builds")
    })
}

/// A stricter policy: `typ` `at+jwt`, `azp`, a required claim and a maximum age.
pub fn strict_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::builder()
            .issuer(issuer())
            .audience(CLIENT_ID)
            .expected_type("at+jwt")
            .require_azp(CLIENT_ID)
            .require_claim("scope")
            .max_age(std::time::Duration::from_secs(3600))
            .build()
            .expect("the strict fixture policy builds")
    })
}

/// A policy that allows HS256 only, for the cookbook's shared key.
pub fn shared_key_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::builder()
            .issuer(issuer())
            .audience(CLIENT_ID)
            .algorithms([oidc_core::Algorithm::HS256])
            .build()
            .expect("the shared-key policy builds")
    })
}

/// Signs `header_json` and `payload_json`, exactly as given, with the Ed25519 key.
pub fn sign_ed25519(header_json: &[u8], payload_json: &[u8]) -> String {
    let input = format!("{}.{}", b64(header_json), b64(payload_json));
    let signature = signing_key().sign(input.as_bytes());
    format!("{input}.{}", b64(signature.as_ref()))
}

/// Splits a "sign this" input `header \0 payload` into its halves.
pub fn split_sign_input(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = data.iter().position(|b| *b == SIGN_SEPARATOR)?;
    Some((&data[..at], &data[at + 1..]))
}

/// Builds a header map from `name: value` lines, skipping lines that are not valid headers.
/// Lines end with `\n`; a `\r` before it is kept in the value (and so makes it invalid).
pub fn header_map_from_lines(text: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

/// A provider response with `status`, a JSON content type (or `content_type`) and `body`.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// The loopback peer address used where a TCP peer is needed.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
