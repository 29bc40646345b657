//! JSON Web Key Sets: which published keys may verify tokens, and when to fetch them again.
//!
//! A [`KeySet`] is built once from the provider's `jwks_uri` answer and never changes; keys are
//! parsed into verification-ready form at that moment, so validating a token does no key
//! parsing. Keys that cannot or must not be used are skipped, not fatal, and each skip is
//! recorded with a reason ([`KeySet::skipped`]): unknown `kty` or curve, `use` other than `sig`,
//! `key_ops` without `verify`, an `alg` that does not fit the key, RSA moduli under 2048 bits,
//! points off the curve, and symmetric (`oct`) keys, which are only ever configured locally
//! through [`KeySet::hmac`].
//!
//! Freshness is a decision, not a timer: [`KeySet::from_response`] computes [`KeySet::refresh_at`]
//! from `Cache-Control` within the bounds of a [`FreshnessPolicy`]; when the set is fetched
//! again, and whether an unknown `kid` may trigger a fetch now, is decided by
//! [`crate::refresh::Refresh`].

use std::fmt;
use std::time::Duration;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value};

use crate::ErrorKind;
use crate::jws::{Algorithm, KeyFamily, strict_json};
use crate::provider_response::{self, MAX_PROVIDER_RESPONSE_BYTES, ResponseError};
use crate::{Secret, UnixTime};

/// The most usable keys one set holds; further keys are skipped.
pub const MAX_KEYS: usize = 100;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;

/// The largest RSA modulus accepted, in bits (the limit of the verifier).
pub const MAX_RSA_BITS: u32 = 8192;

/// A set of verification keys, immutable once built; share it behind an `Arc`.
///
/// Inputs: [`KeySet::parse`], [`KeySet::from_response`] or [`KeySet::hmac`]. Getters:
/// [`KeySet::keys`], [`KeySet::skipped`]. Freshness decisions: [`KeySet::refresh_at`],
/// [`KeySet::is_stale`]. Validation uses it through [`crate::validation::validate`].
pub struct KeySet {
    keys: Vec<KeyInfo>,
    verifiers: Vec<Vec<(Algorithm, Verifier)>>,
    skipped: Vec<SkippedKey>,
    refresh_at: UnixTime,
}

/// The public description of one usable key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key id, if the key has one.
    pub kid: Option<String>,
    /// The key type: `RSA`, `EC`, `OKP` or `oct`.
    pub kty: String,
    /// The algorithm the key is restricted to, if the key set said so.
    pub alg: Option<String>,
    /// The key's `use`, if stated (only `sig` keys are usable).
    pub key_use: Option<String>,
    /// The modulus size for RSA, the curve size for EC/OKP, the secret size for `oct`.
    pub size_bits: Option<u32>,
    /// The curve for EC and OKP keys.
    pub curve: Option<String>,
    /// The RFC 7638 thumbprint (base64url SHA-256). Empty for a shared secret, so that no
    /// function of the secret is ever shown.
    pub thumbprint: String,
}

/// A key that was left out of the set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedKey {
    /// The key id, if the entry had a string one.
    pub kid: Option<String>,
    /// Why the key was skipped.
    pub reason: String,
}

/// How long a fetched key set stays fresh.
///
/// A plain configuration value, deliberately exhaustive so that callers can write
/// `FreshnessPolicy { max_ttl, ..Default::default() }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreshnessPolicy {
    /// Used when the answer carries no `Cache-Control: max-age`.
    pub default_ttl: Duration,
    /// The shortest freshness honoured, also used for `no-cache` / `no-store`.
    pub min_ttl: Duration,
    /// The longest freshness honoured, however long `max-age` is.
    pub max_ttl: Duration,
}

impl Default for FreshnessPolicy {
    /// Ten minutes by default, at least one minute, at most one day.
    fn default() -> Self {
        FreshnessPolicy {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl FreshnessPolicy {
    /// A policy with the given bounds.
    pub fn new(default_ttl: Duration, min_ttl: Duration, max_ttl: Duration) -> Self {
        FreshnessPolicy {
            default_ttl,
            min_ttl,
            max_ttl,
        }
    }

    /// How long an answer with these headers stays fresh.
    pub fn ttl_for(&self, headers: &http::HeaderMap) -> Duration {
        let mut ttl = self.default_ttl;
        for value in headers.get_all(http::header::CACHE_CONTROL) {
            let Ok(text) = value.to_str() else { continue };
            for directive in text.split(',').map(str::trim) {
                let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
                let name = name.trim();
                if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                    return self.min_ttl;
                }
                if name.eq_ignore_ascii_case("max-age")
                    && let Ok(secs) = argument.trim().trim_matches('"').parse::<u64>()
                {
                    ttl = Duration::from_secs(secs);
                }
            }
        }
        ttl.min(self.max_ttl).max(self.min_ttl)
    }
}

/// Why a key set could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The HTTP answer was not usable (status, media type, size).
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The body is not JSON, or names a member twice.
    #[error("the key set is not valid JSON: {reason}")]
    Malformed {
        /// What the JSON parser said.
        reason: String,
    },
    /// The JSON is not an object with a `keys` array.
    #[error("the document is not a JWK set (no \"keys\" array)")]
    NotAKeySet,
    /// A local key set mixes shared secrets with public keys.
    #[error("the key set mixes shared secrets with public keys")]
    MixedSymmetricAndPublicKeys,
    /// Not one key in the set is usable.
    #[error("the key set holds no usable key ({} skipped)", skipped.len())]
    NoUsableKeys {
        /// Every key, with the reason it was skipped.
        skipped: Vec<SkippedKey>,
    },
}

impl JwksError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JwksError::Response(inner) => inner.kind(),
            JwksError::Malformed { .. } => ErrorKind::JwksMalformed,
            JwksError::NotAKeySet => ErrorKind::JwksNotAKeySet,
            JwksError::NoUsableKeys { .. } => ErrorKind::JwksNoUsableKeys,
            JwksError::MixedSymmetricAndPublicKeys => ErrorKind::JwksMixedSymmetric,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The request for the key set at `jwks_uri`.
pub fn jwks_request(jwks_uri: &url::Url) -> http::Request<Vec<u8>> {
    let mut request = provider_response::json_get_request(jwks_uri);
    request.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/jwk-set+json, application/json"),
    );
    request
}

impl KeySet {
    /// Parses a JWK set document. Unusable keys are skipped and listed in [`KeySet::skipped`];
    /// a set without a single usable key is an error. The set carries no freshness
    /// information: [`KeySet::refresh_at`] is the epoch, so it is always stale.
    pub fn parse(json: &[u8]) -> Result<KeySet, JwksError> {
        KeySet::parse_with(json, false)
    }

    /// Parses a JWK set from local configuration (a file the operator wrote, never a fetched
    /// document): `oct` keys are accepted as shared secrets for HS256/HS384/HS512, each at least
    /// as long as its hash (RFC 7518 §3.2). A set mixing shared secrets with public keys is
    /// refused, so that no token can choose between the two kinds.
    pub fn parse_local(json: &[u8]) -> Result<KeySet, JwksError> {
        let set = KeySet::parse_with(json, true)?;
        let symmetric = set.keys.iter().filter(|k| k.kty == "oct").count();
        if symmetric > 0 && symmetric < set.keys.len() {
            return Err(JwksError::MixedSymmetricAndPublicKeys);
        }
        Ok(set)
    }

    fn parse_with(json: &[u8], allow_symmetric: bool) -> Result<KeySet, JwksError> {
        let document = strict_json::parse_strict(json).map_err(|e| JwksError::Malformed {
            reason: e.to_string(),
        })?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(JwksError::NotAKeySet);
        };
        let mut set = KeySet {
            keys: Vec::new(),
            verifiers: Vec::new(),
            skipped: Vec::new(),
            refresh_at: UnixTime::EPOCH,
        };
        for entry in entries {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
            if set.keys.len() >= MAX_KEYS {
                set.skipped.push(SkippedKey {
                    kid,
                    reason: format!("the set already holds {MAX_KEYS} keys"),
                });
                continue;
            }
            match parse_jwk(entry, allow_symmetric) {
                Ok((info, verifiers)) => {
                    set.keys.push(info);
                    set.verifiers.push(verifiers);
                }
                Err(reason) => set.skipped.push(SkippedKey { kid, reason }),
            }
        }
        if set.keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                skipped: set.skipped,
            });
        }
        Ok(set)
    }

    /// Checks the provider's answer to [`jwks_request`] and parses it; fresh until `now` plus
    /// the TTL `freshness` derives from `Cache-Control`.
    pub fn from_response<B: AsRef<[u8]>>(
        response: &http::Response<B>,
        now: UnixTime,
        freshness: &FreshnessPolicy,
    ) -> Result<KeySet, JwksError> {
        let body = provider_response::checked_json_body(
            response,
            StatusCode::OK,
            &["application/jwk-set+json"],
            MAX_PROVIDER_RESPONSE_BYTES,
        )?;
        let set = KeySet::parse(body)?;
        Ok(set.with_refresh_at(now.saturating_add(freshness.ttl_for(response.headers()))))
    }

    /// A set holding one shared secret for HS256/HS384/HS512, with no `kid`.
    ///
    /// RFC 7518 §3.2 requires a secret at least as long as the hash: a 32-byte secret allows
    /// HS256, 48 bytes HS384 as well, 64 bytes all three. A shorter secret yields an empty set
    /// whose [`KeySet::skipped`] says why, and every token is then rejected. The set never goes
    /// stale ([`KeySet::refresh_at`] is the far future).
    pub fn hmac(secret: &Secret) -> KeySet {
        let bytes = secret.expose().as_bytes();
        let verifiers = hmac_verifiers(bytes, None);
        let mut set = KeySet {
            keys: Vec::new(),
            verifiers: Vec::new(),
            skipped: Vec::new(),
            refresh_at: UnixTime::from_secs(u64::MAX),
        };
        if verifiers.is_empty() {
            set.skipped.push(SkippedKey {
                kid: None,
                reason: short_secret_reason(bytes.len(), None),
            });
        } else {
            set.keys.push(KeyInfo {
                kid: None,
                kty: "oct".into(),
                alg: None,
                key_use: Some("sig".into()),
                size_bits: u32::try_from(bytes.len().saturating_mul(8)).ok(),
                curve: None,
                thumbprint: String::new(),
            });
            set.verifiers.push(verifiers);
        }
        set
    }

    /// The same keys, fresh until `refresh_at`.
    #[must_use]
    pub fn with_refresh_at(mut self, refresh_at: UnixTime) -> KeySet {
        self.refresh_at = refresh_at;
        self
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }

    /// The keys left out, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// When the set should be fetched again.
    pub fn refresh_at(&self) -> UnixTime {
        self.refresh_at
    }

    /// Whether the set should be fetched again at `now`.
    pub fn is_stale(&self, now: UnixTime) -> bool {
        now >= self.refresh_at
    }

    /// Whether some usable key has this `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Each usable key with its verifiers, in the order of [`KeySet::keys`].
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&KeyInfo, &[(Algorithm, Verifier)])> {
        self.keys
            .iter()
            .zip(self.verifiers.iter().map(Vec::as_slice))
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys)
            .field("skipped", &self.skipped)
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// A key ready to check signatures of one algorithm.
pub(crate) enum Verifier {
    /// A parsed public key bound to one algorithm.
    Public(ParsedPublicKey),
    /// A shared secret bound to one hash.
    Hmac(Box<hmac::Key>),
}

impl Verifier {
    /// Whether `signature` is valid for `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

type ParsedJwk = (KeyInfo, Vec<(Algorithm, Verifier)>);

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

fn parse_jwk(entry: &Value, allow_symmetric: bool) -> Result<ParsedJwk, String> {
    let Value::Object(members) = entry else {
        return Err("the entry is not a JSON object".into());
    };
    let kid = optional_str(members, "kid")?;
    let kty = required_str(members, "kty")?;
    let key_use = optional_str(members, "use")?;
    if let Some(u) = key_use
        && u != "sig"
    {
        return Err(format!("\"use\" is {u:?}, not \"sig\""));
    }
    if let Some(ops) = members.get("key_ops") {
        let ops = ops
            .as_array()
            .filter(|ops| ops.iter().all(Value::is_string))
            .ok_or("\"key_ops\" is not an array of strings")?;
        if !ops.iter().any(|op| op == "verify") {
            return Err("\"key_ops\" does not include \"verify\"".into());
        }
    }
    let alg_name = optional_str(members, "alg")?;
    let alg = match alg_name {
        None => None,
        // RFC 9864's fully-specified name for Ed25519 signatures.
        Some("Ed25519") => Some(Algorithm::EdDSA),
        Some(name) => match name.parse::<Algorithm>() {
            Ok(alg) => Some(alg),
            Err(_) => {
                return Err(format!(
                    "\"alg\" {:?} is not a supported signature algorithm",
                    shorten(name)
                ));
            }
        },
    };
    let fits = |family: KeyFamily| -> Result<(), String> {
        match alg {
            Some(alg) if alg.key_family() != family => Err(format!(
                "\"alg\" {} does not fit a key of type {kty}{}",
                alg.as_str(),
                match family {
                    KeyFamily::Ec(curve) => format!(" on {curve}"),
                    _ => String::new(),
                }
            )),
            _ => Ok(()),
        }
    };
    let (info, verifiers) = match kty {
        "RSA" => {
            fits(KeyFamily::Rsa)?;
            rsa_key(members, alg)?
        }
        "EC" => ec_key(members, &fits)?,
        "OKP" => {
            let curve = required_str(members, "crv")?;
            if curve != "Ed25519" {
                return Err(format!("OKP curve {:?} is not supported", shorten(curve)));
            }
            fits(KeyFamily::Ed25519)?;
            let x_text = required_str(members, "x")?;
            let x = decode_member("x", x_text)?;
            if x.len() != 32 {
                return Err(format!("Ed25519 \"x\" is {} bytes, not 32", x.len()));
            }
            let key = ParsedPublicKey::new(&sig::ED25519, &x)
                .map_err(|_| "\"x\" is not an Ed25519 public key".to_owned())?;
            let thumbprint = thumbprint(&[("crv", curve), ("kty", "OKP"), ("x", x_text)]);
            (
                partial_info(256, Some(curve), thumbprint),
                vec![(Algorithm::EdDSA, Verifier::Public(key))],
            )
        }
        "oct" if allow_symmetric => {
            fits(KeyFamily::Hmac)?;
            let secret = decode_member("k", required_str(members, "k")?)?;
            let verifiers = hmac_verifiers(&secret, alg);
            if verifiers.is_empty() {
                return Err(short_secret_reason(secret.len(), alg));
            }
            let bits = u32::try_from(secret.len().saturating_mul(8)).ok();
            let info = KeyInfo {
                size_bits: bits,
                ..partial_info(0, None, String::new())
            };
            (info, verifiers)
        }
        "oct" => {
            return Err(
                "symmetric keys are never taken from a fetched key set; configure a shared secret"
                    .into(),
            );
        }
        other => return Err(format!("key type {:?} is not supported", shorten(other))),
    };
    Ok((
        KeyInfo {
            kid: kid.map(str::to_owned),
            kty: kty.to_owned(),
            alg: alg_name.map(str::to_owned),
            key_use: key_use.map(str::to_owned),
            ..info
        },
        verifiers,
    ))
}

fn rsa_key(members: &Map<String, Value>, alg: Option<Algorithm>) -> Result<ParsedJwk, String> {
    let n_text = required_str(members, "n")?;
    let e_text = required_str(members, "e")?;
    let n_bytes = decode_member("n", n_text)?;
    let e_bytes = decode_member("e", e_text)?;
    let n = strip_leading_zeros(&n_bytes);
    let e = strip_leading_zeros(&e_bytes);
    let bits = bit_length(n);
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA modulus of {bits} bits is under the {MIN_RSA_BITS}-bit minimum"
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!(
            "RSA modulus of {bits} bits is over the {MAX_RSA_BITS}-bit maximum"
        ));
    }
    if has_roca_fingerprint(n) {
        return Err("RSA modulus has the ROCA fingerprint (CVE-2017-15361)".into());
    }
    let exponent_ok =
        (1..=4).contains(&e.len()) && e.last().is_some_and(|b| b & 1 == 1) && bit_length(e) >= 2;
    if !exponent_ok {
        return Err("RSA exponent is not an odd number from 3 to 2^32-1".into());
    }
    let components = RsaPublicKeyComponents { n, e };
    let algorithms: &[Algorithm] = match alg {
        Some(ref one) => std::slice::from_ref(one),
        None => &RSA_ALGORITHMS,
    };
    let mut verifiers = Vec::with_capacity(algorithms.len());
    for &alg in algorithms {
        let params = match alg {
            Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            _ => &sig::RSA_PSS_2048_8192_SHA512,
        };
        let key = components
            .to_parsed_public_key(params)
            .map_err(|_| "the RSA components do not form a public key".to_owned())?;
        verifiers.push((alg, Verifier::Public(key)));
    }
    let thumbprint = thumbprint(&[("e", e_text), ("kty", "RSA"), ("n", n_text)]);
    Ok((partial_info(bits, None, thumbprint), verifiers))
}

fn ec_key(
    members: &Map<String, Value>,
    fits: &dyn Fn(KeyFamily) -> Result<(), String>,
) -> Result<ParsedJwk, String> {
    let curve = required_str(members, "crv")?;
    let (key_alg, verification, size, bits): (_, &'static sig::EcdsaVerificationAlgorithm, _, _) =
        match curve {
            "P-256" => (Algorithm::ES256, &sig::ECDSA_P256_SHA256_FIXED, 32, 256),
            "P-384" => (Algorithm::ES384, &sig::ECDSA_P384_SHA384_FIXED, 48, 384),
            "P-521" => (Algorithm::ES512, &sig::ECDSA_P521_SHA512_FIXED, 66, 521),
            other => return Err(format!("EC curve {:?} is not supported", shorten(other))),
        };
    fits(key_alg.key_family())?;
    let x_text = required_str(members, "x")?;
    let y_text = required_str(members, "y")?;
    let x = decode_member("x", x_text)?;
    let y = decode_member("y", y_text)?;
    if x.len() != size || y.len() != size {
        return Err(format!(
            "{curve} coordinates must be {size} bytes each (x: {}, y: {})",
            x.len(),
            y.len()
        ));
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key = ParsedPublicKey::new(verification, &point)
        .map_err(|_| format!("the point is not on {curve}"))?;
    let thumbprint = thumbprint(&[("crv", curve), ("kty", "EC"), ("x", x_text), ("y", y_text)]);
    Ok((
        partial_info(bits, Some(curve), thumbprint),
        vec![(key_alg, Verifier::Public(key))],
    ))
}

/// HMAC verifiers for a secret: every HS algorithm (or only `alg`) whose hash is no longer
/// than the secret.
fn hmac_verifiers(secret: &[u8], alg: Option<Algorithm>) -> Vec<(Algorithm, Verifier)> {
    [
        (Algorithm::HS256, hmac::HMAC_SHA256, 32),
        (Algorithm::HS384, hmac::HMAC_SHA384, 48),
        (Algorithm::HS512, hmac::HMAC_SHA512, 64),
    ]
    .into_iter()
    .filter(|(a, _, min)| secret.len() >= *min && alg.is_none_or(|wanted| wanted == *a))
    .map(|(a, hash, _)| (a, Verifier::Hmac(Box::new(hmac::Key::new(hash, secret)))))
    .collect()
}

fn short_secret_reason(len: usize, alg: Option<Algorithm>) -> String {
    let needed = match alg {
        Some(Algorithm::HS384) => 48,
        Some(Algorithm::HS512) => 64,
        _ => 32,
    };
    format!("the shared secret is {len} bytes; HMAC needs at least {needed}")
}

/// Whether an RSA modulus has the structure of keys from the Infineon library broken by ROCA
/// (CVE-2017-15361): modulo each small prime it lies in the subgroup generated by 65537.
/// A random modulus passes this for all 38 primes with negligible probability.
fn has_roca_fingerprint(modulus: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let residue = modulus
            .iter()
            .fold(0u32, |acc, &byte| (acc * 256 + u32::from(byte)) % p);
        let generator = 65537 % p;
        let mut power = 1;
        loop {
            if power == residue {
                return true;
            }
            power = power * generator % p;
            if power == 1 {
                return false;
            }
        }
    })
}

fn partial_info(size_bits: u32, curve: Option<&str>, thumbprint: String) -> KeyInfo {
    KeyInfo {
        kid: None,
        kty: String::new(),
        alg: None,
        key_use: None,
        size_bits: Some(size_bits),
        curve: curve.map(str::to_owned),
        thumbprint,
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
pub(crate) fn thumbprint(members: &[(&str, &str)]) -> String {
    let mut canonical = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(*value).to_string());
    }
    canonical.push('}');
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

fn optional_str<'a>(
    members: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn required_str<'a>(members: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    optional_str(members, name)?.ok_or_else(|| format!("\"{name}\" is missing"))
}

fn decode_member(name: &str, text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("\"{name}\" is not canonical unpadded base64url"))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_length(big_endian: &[u8]) -> u32 {
    match big_endian.first() {
        None => 0,
        Some(&first) => {
            let bytes = u32::try_from(big_endian.len()).unwrap_or(u32::MAX / 8);
            (bytes - 1) * 8 + (8 - first.leading_zeros())
        }
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<KeySet>();
    }

    #[test]
    fn bit_lengths_ignore_leading_zeros() {
        assert_eq!(bit_length(strip_leading_zeros(&[0, 0, 1])), 1);
        assert_eq!(bit_length(strip_leading_zeros(&[0x80, 0])), 16);
        assert_eq!(bit_length(strip_leading_zeros(&[0, 0])), 0);
        assert_eq!(bit_length(&[]), 0);
    }

    #[test]
    fn thumbprint_is_sha256_of_the_sorted_members() {
        // RFC 8037 §A.3: the Ed25519 example key's thumbprint.
        assert_eq!(
            thumbprint(&[
                ("crv", "Ed25519"),
                ("kty", "OKP"),
                ("x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            ]),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn roca_fingerprint_needs_every_residue_in_the_subgroup() {
        // A power of 65537 lies in the subgroup modulo every prime.
        let square = (65537u64 * 65537).to_be_bytes();
        assert!(has_roca_fingerprint(&square));
        // A multiple of 3 is 0 modulo 3, never in a multiplicative subgroup.
        assert!(!has_roca_fingerprint(&(3u64 * 65537).to_be_bytes()));
    }

    #[test]
    fn hmac_verifiers_follow_secret_length_and_alg() {
        let algs = |secret: &[u8], alg| -> Vec<Algorithm> {
            hmac_verifiers(secret, alg)
                .into_iter()
                .map(|(a, _)| a)
                .collect()
        };
        assert_eq!(algs(&[0; 31], None), vec![]);
        assert_eq!(algs(&[0; 32], None), vec![Algorithm::HS256]);
        assert_eq!(
            algs(&[0; 48], None),
            vec![Algorithm::HS256, Algorithm::HS384]
        );
        assert_eq!(
            algs(&[0; 64], Some(Algorithm::HS384)),
            vec![Algorithm::HS384]
        );
        assert_eq!(
            short_secret_reason(3, Some(Algorithm::HS384)),
            "the shared secret is 3 bytes; HMAC needs at least 48"
        );
    }

    #[test]
    fn error_codes_are_distinct() {
        let codes = [
            JwksError::Response(ResponseError::NotJson { content_type: None }).code(),
            JwksError::Malformed {
                reason: String::new(),
            }
            .code(),
            JwksError::NotAKeySet.code(),
            JwksError::MixedSymmetricAndPublicKeys.code(),
            JwksError::NoUsableKeys {
                skipped: Vec::new(),
            }
            .code(),
        ];
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
    }
}
