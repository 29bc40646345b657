//! DPoP (RFC 9449) on the resource-server side: whether a `DPoP` proof proves possession of the
//! key an access token is bound to, for the very request that carries both.
//!
//! [`verify_proof`] decides, in this order, refusing at the first failure:
//! 1. the proof is a compact JWS of at most [`MAX_PROOF_BYTES`], without duplicate members;
//! 2. its header has `typ` `dpop+jwt`, an asymmetric `alg` from the [`DpopPolicy`] allow-list,
//!    no `crit`, and a public `jwk` (no private members) that is a usable key for that `alg`;
//! 3. the signature verifies with that embedded key;
//! 4. `htm` equals the request method and `htu` the request URI without query and fragment
//!    (both normalized: scheme and host case, default port, dot segments);
//! 5. `iat` lies within [`DpopPolicy::iat_window`] of `now` (either side);
//! 6. `ath` is base64url(SHA-256(access token)) when an access token comes with the proof, and
//!    the key's RFC 7638 thumbprint equals the token's `cnf.jkt` when the token is bound;
//! 7. `jti` has not been seen in the window ([`SeenJtis`], bounded, passed in), and is then
//!    recorded: only a proof that passed every other check consumes its `jti`.
//!
//! A token bound to a key ([`bound_key_thumbprint`]: a `cnf.jkt` claim) must never be accepted
//! as a plain bearer token; the adapter answers such an attempt with a `DPoP` challenge.

use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use url::Url;

use crate::ErrorKind;
use crate::jwks::KeySet;
use crate::jws::{self, Algorithm, JwsError, Part, strict_json};
use crate::logout::SeenJtis;
use crate::secret::constant_time_eq;
use crate::time::UnixTime;

/// The largest proof looked at (8 KiB): a header with an RSA-4096 key and a few claims.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// The longest `jti` accepted (RFC 9449 suggests 96 bits of randomness; 256 characters is ample).
pub const MAX_JTI_CHARS: usize = 256;

/// How far `iat` may lie from `now`, either side, unless configured otherwise (60 seconds).
pub const DEFAULT_IAT_WINDOW: Duration = Duration::from_secs(60);

/// The algorithms a proof may use unless told otherwise: every asymmetric one.
pub const DEFAULT_DPOP_ALGORITHMS: [Algorithm; 10] = crate::validation::DEFAULT_ALGORITHMS;

/// Members that only a private or symmetric JWK has; a proof's key must carry none of them.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must satisfy besides the request itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopPolicy {
    algorithms: Vec<Algorithm>,
    iat_window: Duration,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        DpopPolicy {
            algorithms: DEFAULT_DPOP_ALGORITHMS.to_vec(),
            iat_window: DEFAULT_IAT_WINDOW,
        }
    }
}

impl DpopPolicy {
    /// Every asymmetric algorithm, a 60-second `iat` window.
    pub fn new() -> Self {
        DpopPolicy::default()
    }

    /// Allows only these algorithms; HMAC algorithms are dropped (a proof is signed with a
    /// private key, never a shared secret).
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|alg| !alg.is_hmac())
            .collect();
        self
    }

    /// How far `iat` may lie from `now`, either side; also how long a `jti` is remembered.
    #[must_use]
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = window;
        self
    }

    /// The allowed algorithms.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The `iat` window.
    pub fn window(&self) -> Duration {
        self.iat_window
    }
}

/// The request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequest<'a> {
    /// The HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// The request's absolute URI as the client addressed it (scheme and host as seen from
    /// outside, e.g. through `X-Forwarded-*` from trusted proxies).
    pub uri: &'a Url,
    /// The access token presented with the proof (`Authorization: DPoP <token>`), if any.
    pub access_token: Option<&'a str>,
    /// The thumbprint the access token is bound to (`cnf.jkt`), if known.
    pub bound_jkt: Option<&'a str>,
}

/// A proof that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The proof's algorithm.
    pub algorithm: Algorithm,
    /// The proof's `jti` (now recorded as seen).
    pub jti: String,
    /// The proof's `iat`.
    pub issued_at: UnixTime,
}

/// Why a DPoP proof was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The proof is longer than [`MAX_PROOF_BYTES`].
    #[error("the DPoP proof is {len} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The proof's length.
        len: usize,
        /// The limit applied.
        limit: usize,
    },
    /// The proof is not a well-formed compact JWS with JSON objects.
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(JwsError),
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ is {found:?}, not \"dpop+jwt\"")]
    WrongType {
        /// The `typ` found.
        found: Option<String>,
    },
    /// `alg` is missing, unknown, symmetric or not allowed.
    #[error("the DPoP proof's algorithm {alg:?} is not allowed")]
    AlgorithmNotAllowed {
        /// The `alg` found (at most 64 characters).
        alg: String,
    },
    /// The header marks an extension critical; none is understood.
    #[error("the DPoP proof marks extensions critical; none is understood")]
    UnsupportedCritical,
    /// The header has no `jwk` object.
    #[error("the DPoP proof has no jwk header")]
    MissingKey,
    /// The embedded key has a private (or symmetric) member.
    #[error("the DPoP proof's jwk holds the private member {member:?}")]
    PrivateKey {
        /// The member found.
        member: &'static str,
    },
    /// The embedded key is not a usable public key for the proof's algorithm.
    #[error("the DPoP proof's jwk is not usable: {reason}")]
    UnusableKey {
        /// Why.
        reason: String,
    },
    /// The signature does not verify with the embedded key.
    #[error("the DPoP proof's signature does not verify")]
    BadSignature,
    /// A required claim is missing.
    #[error("the DPoP proof has no {name}")]
    MissingClaim {
        /// `jti`, `htm`, `htu`, `iat` or `ath`.
        name: &'static str,
    },
    /// A claim has the wrong type or form.
    #[error("the DPoP proof's {name} {reason}")]
    InvalidClaim {
        /// The claim.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `htm` is not the request's method.
    #[error("the DPoP proof is for method {found:?}, the request is {expected}")]
    MethodMismatch {
        /// The request's method.
        expected: String,
        /// The proof's `htm` (at most 64 characters).
        found: String,
    },
    /// `htu` is not the request's URI.
    #[error("the DPoP proof is for {found:?}, the request is for {expected}")]
    UriMismatch {
        /// The request URI, without query and fragment.
        expected: String,
        /// The proof's `htu` (at most 256 characters).
        found: String,
    },
    /// `iat` is further in the past than the window allows.
    #[error("the DPoP proof was issued at {iat}, more than {}s before {now}", .window.as_secs())]
    TooOld {
        /// The proof's `iat`.
        iat: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The window.
        window: Duration,
    },
    /// `iat` is further in the future than the window allows.
    #[error("the DPoP proof was issued at {iat}, more than {}s after {now}", .window.as_secs())]
    IssuedInFuture {
        /// The proof's `iat`.
        iat: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The window.
        window: Duration,
    },
    /// `ath` does not hash the presented access token.
    #[error("the DPoP proof's ath does not match the access token")]
    AccessTokenHashMismatch,
    /// The proof's key is not the one the access token is bound to.
    #[error("the DPoP proof's key is not the one the token is bound to")]
    KeyMismatch,
    /// The `jti` was already used within the window.
    #[error("the DPoP proof was already used")]
    Replayed,
}

impl DpopError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DpopError::TooLarge { .. } => ErrorKind::DpopProofTooLarge,
            DpopError::Malformed(_) => ErrorKind::DpopMalformed,
            DpopError::WrongType { .. } => ErrorKind::DpopWrongTyp,
            DpopError::AlgorithmNotAllowed { .. } => ErrorKind::DpopAlgNotAllowed,
            DpopError::UnsupportedCritical => ErrorKind::DpopUnsupportedCrit,
            DpopError::MissingKey => ErrorKind::DpopMissingJwk,
            DpopError::PrivateKey { .. } => ErrorKind::DpopPrivateJwk,
            DpopError::UnusableKey { .. } => ErrorKind::DpopUnusableJwk,
            DpopError::BadSignature => ErrorKind::DpopBadSignature,
            DpopError::MissingClaim { .. } => ErrorKind::DpopMissingClaim,
            DpopError::InvalidClaim { .. } => ErrorKind::DpopInvalidClaim,
            DpopError::MethodMismatch { .. } => ErrorKind::DpopHtmMismatch,
            DpopError::UriMismatch { .. } => ErrorKind::DpopHtuMismatch,
            DpopError::TooOld { .. } => ErrorKind::DpopIatTooOld,
            DpopError::IssuedInFuture { .. } => ErrorKind::DpopIatInFuture,
            DpopError::AccessTokenHashMismatch => ErrorKind::DpopAthMismatch,
            DpopError::KeyMismatch => ErrorKind::DpopJktMismatch,
            DpopError::Replayed => ErrorKind::DpopReplayed,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// A proof's parts after the structural checks, before anything about the request.
#[derive(Debug)]
pub struct ParsedProof {
    algorithm: Algorithm,
    keys: KeySet,
    signing_input: String,
    signature: Vec<u8>,
    claims: Map<String, Value>,
}

impl ParsedProof {
    /// The proof's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The RFC 7638 thumbprint of the embedded key.
    pub fn jkt(&self) -> &str {
        self.keys
            .keys()
            .first()
            .map(|key| key.thumbprint.as_str())
            .unwrap_or_default()
    }

    /// The proof's claims, as sent (not yet checked against a request).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// Parses a proof and checks steps 1 and 2 of the module docs (shape, header, embedded key),
/// without verifying the signature or looking at a request. Never panics.
pub fn parse_proof(proof: &str, policy: &DpopPolicy) -> Result<ParsedProof, DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::TooLarge {
            len: proof.len(),
            limit: MAX_PROOF_BYTES,
        });
    }
    let parts = jws::split_compact(proof, MAX_PROOF_BYTES).map_err(DpopError::Malformed)?;
    let header_bytes =
        jws::decode_segment(Part::Header, parts.header).map_err(DpopError::Malformed)?;
    if header_bytes.len() > jws::MAX_HEADER_BYTES {
        return Err(DpopError::Malformed(JwsError::HeaderTooLarge {
            len: header_bytes.len(),
            limit: jws::MAX_HEADER_BYTES,
        }));
    }
    let header = strict_object(Part::Header, &header_bytes)?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(DpopError::WrongType {
            found: header.get("typ").map(|t| match t {
                Value::String(s) => s.chars().take(64).collect(),
                other => other.to_string().chars().take(64).collect(),
            }),
        });
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let algorithm = alg_name
        .parse::<Algorithm>()
        .ok()
        .filter(|alg| policy.algorithms.contains(alg) && !alg.is_hmac())
        .ok_or_else(|| DpopError::AlgorithmNotAllowed {
            alg: alg_name.chars().take(64).collect(),
        })?;
    if header.contains_key("crit") {
        return Err(DpopError::UnsupportedCritical);
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(DpopError::MissingKey);
    };
    if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| jwk.contains_key(*m)) {
        return Err(DpopError::PrivateKey { member });
    }
    let keys = KeySet::parse(json!({ "keys": [jwk] }).to_string().as_bytes()).map_err(|e| {
        DpopError::UnusableKey {
            reason: match e {
                crate::jwks::JwksError::NoUsableKeys { skipped } => skipped
                    .first()
                    .map(|s| s.reason.clone())
                    .unwrap_or_else(|| "no usable key".to_owned()),
                other => other.to_string(),
            },
        }
    })?;
    let fits = keys
        .entries()
        .any(|(_, verifiers)| verifiers.iter().any(|(alg, _)| *alg == algorithm));
    if !fits {
        return Err(DpopError::UnusableKey {
            reason: format!("the key does not verify {algorithm}"),
        });
    }
    if parts.signature.is_empty() {
        return Err(DpopError::Malformed(JwsError::EmptySignature));
    }
    let signature =
        jws::decode_segment(Part::Signature, parts.signature).map_err(DpopError::Malformed)?;
    let payload =
        jws::decode_segment(Part::Payload, parts.payload).map_err(DpopError::Malformed)?;
    let claims = strict_object(Part::Payload, &payload)?;
    Ok(ParsedProof {
        algorithm,
        keys,
        signing_input: parts.signing_input.to_owned(),
        signature,
        claims,
    })
}

/// Verifies a DPoP proof for `request` at `now` (see the module docs for the checks and their
/// order), recording its `jti` in `seen` only when every check passed.
pub fn verify_proof(
    proof: &str,
    request: &DpopRequest<'_>,
    policy: &DpopPolicy,
    seen: &mut SeenJtis,
    now: UnixTime,
) -> Result<VerifiedProof, DpopError> {
    let parsed = parse_proof(proof, policy)?;
    let verified = parsed.keys.entries().any(|(_, verifiers)| {
        verifiers.iter().any(|(alg, v)| {
            *alg == parsed.algorithm && v.verify(parsed.signing_input.as_bytes(), &parsed.signature)
        })
    });
    if !verified {
        return Err(DpopError::BadSignature);
    }
    let claims = &parsed.claims;
    let jti = required_string(claims, "jti")?;
    if jti.is_empty() || jti.chars().count() > MAX_JTI_CHARS {
        return Err(DpopError::InvalidClaim {
            name: "jti",
            reason: "is empty or longer than 256 characters",
        });
    }
    let htm = required_string(claims, "htm")?;
    if htm != request.method {
        return Err(DpopError::MethodMismatch {
            expected: request.method.to_owned(),
            found: htm.chars().take(64).collect(),
        });
    }
    let htu = required_string(claims, "htu")?;
    let expected = without_query(request.uri);
    let matches = Url::parse(htu).is_ok_and(|found| without_query(&found) == expected);
    if !matches {
        return Err(DpopError::UriMismatch {
            expected,
            found: htu.chars().take(256).collect(),
        });
    }
    let iat = match claims.get("iat") {
        None => return Err(DpopError::MissingClaim { name: "iat" }),
        Some(value) => value
            .as_u64()
            .map(UnixTime::from_secs)
            .ok_or(DpopError::InvalidClaim {
                name: "iat",
                reason: "is not a non-negative integer",
            })?,
    };
    let window = policy.iat_window;
    if iat.saturating_add(window) < now {
        return Err(DpopError::TooOld { iat, now, window });
    }
    if iat > now.saturating_add(window) {
        return Err(DpopError::IssuedInFuture { iat, now, window });
    }
    if let Some(token) = request.access_token {
        let ath = required_string(claims, "ath")?;
        if !constant_time_eq(ath.as_bytes(), access_token_hash(token).as_bytes()) {
            return Err(DpopError::AccessTokenHashMismatch);
        }
    }
    let jkt = parsed.jkt().to_owned();
    if let Some(bound) = request.bound_jkt
        && !constant_time_eq(bound.as_bytes(), jkt.as_bytes())
    {
        return Err(DpopError::KeyMismatch);
    }
    // Remembered until the proof could no longer pass the iat check anyway.
    let until = iat
        .saturating_add(window)
        .saturating_add(Duration::from_secs(1));
    if !seen.insert(jti, until, now) {
        return Err(DpopError::Replayed);
    }
    Ok(VerifiedProof {
        jkt,
        algorithm: parsed.algorithm,
        jti: jti.to_owned(),
        issued_at: iat,
    })
}

/// `ath`: base64url(SHA-256(access token)), RFC 9449 §4.2.
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// The key thumbprint a token is bound to: its `cnf.jkt` claim (RFC 9449 §6), when present
/// as a string. A token with one must only be accepted together with a matching proof.
pub fn bound_key_thumbprint(claims: &Map<String, Value>) -> Option<&str> {
    claims
        .get("cnf")
        .and_then(Value::as_object)
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str)
}

/// The `htu` comparison form of a URI: normalized by the URL parser, without query and
/// fragment.
fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

fn strict_object(part: Part, bytes: &[u8]) -> Result<Map<String, Value>, DpopError> {
    match strict_json::parse_strict(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(DpopError::Malformed(JwsError::InvalidJson {
            part,
            reason: "not an object".into(),
        })),
        Err(e) => Err(DpopError::Malformed(jws::json_error(part, &e))),
    }
}

fn required_string<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<&'c str, DpopError> {
    match claims.get(name) {
        None => Err(DpopError::MissingClaim { name }),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(DpopError::InvalidClaim {
            name,
            reason: "is not a string",
        }),
    }
}
