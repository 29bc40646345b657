//! Token validation: token + [`KeySet`] + [`Policy`] + `now` → typed [`Claims`] or a typed
//! [`ValidationError`].
//!
//! Every check lives here, in this order: size, structure and header ([`crate::jws`]), the
//! algorithm (allowed by the policy AND bound to the key: a key only verifies the algorithms of
//! its own type, and `alg` on the key narrows that further), `typ`, key selection, signature,
//! then the claims: types, `iss`, `aud`, `azp`, `exp`, `nbf`, `iat`, maximum age and required
//! claims. The claims are decoded only after the signature holds.
//!
//! Key selection: a token with a `kid` uses the keys with that `kid`; when no key has it, keys
//! without a `kid` are tried (RFC 7515 calls `kid` a hint), and when there are none either the
//! error is [`ValidationError::UnknownKid`], which tells the caller that fetching the key set
//! again may help. A token without a `kid` is tried against every key that fits its algorithm,
//! at most [`MAX_CANDIDATE_KEYS`] of them; with more, it is rejected as ambiguous. Two keys
//! under the token's `kid` that both fit are ambiguous too.
//!
//! ```
//! use oidc_core::jws::Algorithm;
//! use oidc_core::jwks::KeySet;
//! use oidc_core::validation::{Policy, validate};
//! use oidc_core::{Issuer, Secret, UnixTime};
//!
//! let keys = KeySet::hmac(&Secret::new("a shared secret of at least 32 bytes!!"));
//! let policy = Policy::builder()
//!     .issuer(Issuer::new("https://op.example")?)
//!     .audience("my-api")
//!     .algorithms([Algorithm::HS256])
//!     .build()?;
//! let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
//!     eyJpc3MiOiJodHRwczovL29wLmV4YW1wbGUiLCJhdWQiOiJteS1hcGkiLCJzdWIiOiJhZGEiLCJleHAiOjE3NTAwMDAzMDB9.\
//!     3XQ3pDzxenQiOTG0gJ7RI6o7RTWmzlQ-Z61tomU-MzI";
//!
//! let valid = validate(token, &keys, &policy, UnixTime::from_secs(1_750_000_000))?;
//! assert_eq!(valid.claims.sub.as_deref(), Some("ada"));
//!
//! let late = validate(token, &keys, &policy, UnixTime::from_secs(1_750_000_400)).unwrap_err();
//! assert_eq!(late.code(), "expired");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::ErrorKind;
use crate::issuer::IssuerTemplate;
use crate::jwks::{KeySet, Verifier};
use crate::jws::{self, Algorithm, Header, JwsError, Part, strict_json};
use crate::{Issuer, UnixTime};

/// The default largest token accepted (16 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The default clock leeway (60 seconds).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// How many keys a token without `kid` is tried against at most.
pub const MAX_CANDIDATE_KEYS: usize = 4;

/// The algorithms a policy allows unless told otherwise: every asymmetric one. Each key still
/// verifies only the algorithms of its own type.
pub const DEFAULT_ALGORITHMS: [Algorithm; 10] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
];

/// What a token must satisfy. Build it with [`Policy::builder`].
#[derive(Clone, Debug)]
pub struct Policy {
    issuers: Vec<Issuer>,
    issuer_templates: Vec<IssuerTemplate>,
    audiences: Vec<String>,
    skip_audience: bool,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    max_age: Option<Duration>,
    required_claims: Vec<String>,
    expected_type: Option<String>,
    max_token_bytes: usize,
    azp: Option<String>,
    nonce: Option<String>,
    require_exp: bool,
}

/// Builds a [`Policy`]; see each method for its default.
#[derive(Clone, Debug)]
#[must_use]
pub struct PolicyBuilder {
    policy: Policy,
}

/// Why a policy could not be built (a configuration mistake, not a token problem).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Neither an issuer nor an issuer template was given.
    #[error("the policy names no issuer")]
    NoIssuer,
    /// No audience was given and the audience check was not explicitly turned off.
    #[error("the policy names no audience")]
    NoAudience,
    /// The algorithm list is empty.
    #[error("the policy allows no algorithm")]
    NoAlgorithms,
    /// HMAC and public-key algorithms were mixed, which invites key confusion.
    #[error("the policy mixes HMAC ({hmac}) with public-key algorithms ({public_key})")]
    MixedHmacAndPublicKey {
        /// An HMAC algorithm in the list.
        hmac: Algorithm,
        /// A public-key algorithm in the list.
        public_key: Algorithm,
    },
    /// The token size limit is zero.
    #[error("the token size limit must be above zero")]
    ZeroTokenLimit,
}

impl PolicyError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PolicyError::NoIssuer => ErrorKind::PolicyNoIssuer,
            PolicyError::NoAudience => ErrorKind::PolicyNoAudience,
            PolicyError::NoAlgorithms => ErrorKind::PolicyNoAlgorithms,
            PolicyError::MixedHmacAndPublicKey { .. } => ErrorKind::PolicyMixedHmac,
            PolicyError::ZeroTokenLimit => ErrorKind::PolicyZeroTokenLimit,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl Policy {
    /// Starts a policy: no issuer, no audience (both must be given), [`DEFAULT_ALGORITHMS`],
    /// [`DEFAULT_LEEWAY`], no maximum age, `exp` required, [`DEFAULT_MAX_TOKEN_BYTES`].
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder {
            policy: Policy {
                issuers: Vec::new(),
                issuer_templates: Vec::new(),
                audiences: Vec::new(),
                skip_audience: false,
                algorithms: DEFAULT_ALGORITHMS.to_vec(),
                leeway: DEFAULT_LEEWAY,
                max_age: None,
                required_claims: Vec::new(),
                expected_type: None,
                max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                azp: None,
                nonce: None,
                require_exp: true,
            },
        }
    }

    /// The algorithms allowed.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The clock leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The issuers accepted exactly.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The audiences accepted.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Whether the audience check is switched off
    /// ([`PolicyBuilder::insecure_skip_audience`]).
    pub fn skips_audience(&self) -> bool {
        self.skip_audience
    }

    /// This policy, also accepting `audiences` (those it accepts already are not repeated): one
    /// issuer's tokens meant for several services behind the same door.
    #[must_use]
    pub fn with_audiences<I, S>(&self, audiences: I) -> Policy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut policy = self.clone();
        for audience in audiences {
            let audience = audience.into();
            if !policy.audiences.contains(&audience) {
                policy.audiences.push(audience);
            }
        }
        policy
    }

    /// This policy, also requiring the `nonce` claim to equal `nonce` (the value sent in the
    /// authentication request, OpenID Connect Core §3.1.3.7). For ID tokens at the callback.
    #[must_use]
    pub fn with_nonce(&self, nonce: impl Into<String>) -> Policy {
        Policy {
            nonce: Some(nonce.into()),
            ..self.clone()
        }
    }
}

impl PolicyBuilder {
    /// Accepts tokens whose `iss` equals this issuer exactly. Repeatable.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.policy.issuers.push(issuer);
        self
    }

    /// Accepts tokens whose `iss` is this template filled with the token's own `tid` claim.
    pub fn issuer_template(mut self, template: IssuerTemplate) -> Self {
        self.policy.issuer_templates.push(template);
        self
    }

    /// Accepts tokens whose `aud` (string or array) contains this value. Repeatable: one match
    /// is enough.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.policy.audiences.push(audience.into());
        self
    }

    /// Replaces the allowed algorithms (default [`DEFAULT_ALGORITHMS`]). HMAC algorithms may
    /// not be mixed with public-key ones; they verify only with [`KeySet::hmac`].
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let mut list: Vec<Algorithm> = algorithms.into_iter().collect();
        list.sort();
        list.dedup();
        self.policy.algorithms = list;
        self
    }

    /// Clock leeway for `exp`, `nbf`, `iat` and the maximum age (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.policy.leeway = leeway;
        self
    }

    /// Rejects tokens issued (`iat`) longer ago than this; `iat` becomes required.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.policy.max_age = Some(max_age);
        self
    }

    /// Requires this claim to be present (any value). Repeatable.
    pub fn require_claim(mut self, name: impl Into<String>) -> Self {
        self.policy.required_claims.push(name.into());
        self
    }

    /// Requires the header `typ` to be this media type (e.g. `at+jwt`, RFC 9068), compared
    /// case-insensitively with the `application/` prefix optional (RFC 7515 §4.1.9).
    pub fn expected_type(mut self, typ: impl Into<String>) -> Self {
        self.policy.expected_type = Some(typ.into());
        self
    }

    /// The largest token accepted, in bytes (default 16 KiB); checked before anything else.
    pub fn max_token_bytes(mut self, limit: usize) -> Self {
        self.policy.max_token_bytes = limit;
        self
    }

    /// Requires `azp`, when present, to equal this client id, and to be present when the token
    /// has several audiences (OpenID Connect Core §3.1.3.7).
    pub fn require_azp(mut self, client_id: impl Into<String>) -> Self {
        self.policy.azp = Some(client_id.into());
        self
    }

    /// Accepts tokens without `exp` (by default `exp` is required). A present `exp` is
    /// always checked.
    pub fn allow_missing_exp(mut self) -> Self {
        self.policy.require_exp = false;
        self
    }

    /// Turns the audience check off.
    ///
    /// # Security warning
    /// Without it, any token the issuer minted for any client is accepted, including tokens
    /// meant for other services. Use only where the issuer serves this relying party alone.
    pub fn insecure_skip_audience(mut self) -> Self {
        self.policy.skip_audience = true;
        self
    }

    /// Checks the configuration and builds the policy.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let policy = self.policy;
        if policy.issuers.is_empty() && policy.issuer_templates.is_empty() {
            return Err(PolicyError::NoIssuer);
        }
        if policy.audiences.is_empty() && !policy.skip_audience {
            return Err(PolicyError::NoAudience);
        }
        let hmac = policy.algorithms.iter().find(|a| a.is_hmac());
        let public_key = policy.algorithms.iter().find(|a| !a.is_hmac());
        match (hmac, public_key) {
            (None, None) => return Err(PolicyError::NoAlgorithms),
            (Some(&hmac), Some(&public_key)) => {
                return Err(PolicyError::MixedHmacAndPublicKey { hmac, public_key });
            }
            _ => {}
        }
        if policy.max_token_bytes == 0 {
            return Err(PolicyError::ZeroTokenLimit);
        }
        Ok(policy)
    }
}

/// A token whose signature and claims passed the policy.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ValidatedToken {
    /// The protected header.
    pub header: Header,
    /// The claims.
    pub claims: Claims,
}

/// The claims of a token: registered and common OpenID Connect claims typed, the rest as JSON.
///
/// A claim present with `null` counts as absent. `email_verified` also accepts the strings
/// `"true"` and `"false"`, which some providers send. Deliberately exhaustive and `Default`, so
/// that tests elsewhere can build claims with `Claims { sub, ..Default::default() }`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences (a single string in the token becomes one element).
    pub aud: Vec<String>,
    /// Expiry.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub exp: Option<UnixTime>,
    /// Not before.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub nbf: Option<UnixTime>,
    /// Issued at.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub iat: Option<UnixTime>,
    /// When the user authenticated.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub auth_time: Option<UnixTime>,
    /// Authorized party.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// The nonce of the authentication request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Access token hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Space-separated scopes (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Client the token was issued to (access tokens, RFC 9068).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// E-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the provider verified the e-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Preferred user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Every other claim (`groups`, `roles`, `tid`, `events`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// Any claim by name as JSON, typed ones included (`aud` as an array, times as numbers).
    pub fn get(&self, name: &str) -> Option<Value> {
        let string = |s: &Option<String>| s.clone().map(Value::String);
        let time = |t: &Option<UnixTime>| t.map(|t| Value::from(t.as_secs()));
        match name {
            "iss" => Some(Value::String(self.iss.clone())),
            "sub" => string(&self.sub),
            "aud" => Some(Value::from(self.aud.clone())),
            "exp" => time(&self.exp),
            "nbf" => time(&self.nbf),
            "iat" => time(&self.iat),
            "auth_time" => time(&self.auth_time),
            "azp" => string(&self.azp),
            "nonce" => string(&self.nonce),
            "jti" => string(&self.jti),
            "sid" => string(&self.sid),
            "at_hash" => string(&self.at_hash),
            "scope" => string(&self.scope),
            "client_id" => string(&self.client_id),
            "email" => string(&self.email),
            "email_verified" => self.email_verified.map(Value::Bool),
            "name" => string(&self.name),
            "preferred_username" => string(&self.preferred_username),
            other => self.extra.get(other).cloned(),
        }
    }

    /// Whether the claim is present (`iss` and `aud` count when non-empty).
    pub fn contains(&self, name: &str) -> bool {
        match name {
            "iss" => !self.iss.is_empty(),
            "aud" => !self.aud.is_empty(),
            _ => self.get(name).is_some(),
        }
    }
}

fn serialize_time<S: serde::Serializer>(
    time: &Option<UnixTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => serializer.serialize_u64(t.as_secs()),
        None => serializer.serialize_none(),
    }
}

/// Why a token was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The token is larger than the policy allows.
    #[error("the token is {len} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The limit applied.
        limit: usize,
    },
    /// The token is not a well-formed, acceptable JWS (see [`JwsError`]).
    #[error(transparent)]
    Malformed(JwsError),
    /// The header's algorithm is not in the policy.
    #[error("the algorithm {alg} is not allowed by the policy")]
    AlgorithmNotAllowed {
        /// The algorithm the token names.
        alg: Algorithm,
    },
    /// The header's `typ` is not the expected one.
    #[error("the token type is {found:?}, expected {expected:?}")]
    WrongType {
        /// The `typ` found, if any.
        found: Option<String>,
        /// The `typ` the policy expects.
        expected: String,
    },
    /// No key has the token's `kid`; fetching the key set again may help.
    #[error("no key has the id {kid:?}")]
    UnknownKid {
        /// The key id the token names (at most 64 characters).
        kid: String,
    },
    /// Keys exist for the token's `kid` (or no `kid` was given), but none verifies its algorithm.
    #[error("no key for {alg} matches the token (kid {kid:?})")]
    NoMatchingKey {
        /// The key id the token names, if any.
        kid: Option<String>,
        /// The token's algorithm.
        alg: Algorithm,
    },
    /// Several keys fit the token: more than [`MAX_CANDIDATE_KEYS`] without a `kid`, or more
    /// than one under the token's `kid`.
    #[error("{candidates} keys fit the token's key id and algorithm")]
    AmbiguousKey {
        /// How many keys fit.
        candidates: usize,
    },
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// A required claim is absent.
    #[error("the claim {name:?} is missing")]
    MissingClaim {
        /// The claim.
        name: String,
    },
    /// A claim is present with the wrong type or an impossible value.
    #[error("the claim {name:?} {reason}")]
    InvalidClaim {
        /// The claim.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `iss` is not an accepted issuer.
    #[error("the issuer {found:?} is not accepted")]
    WrongIssuer {
        /// The `iss` found.
        found: String,
    },
    /// `aud` contains no accepted audience.
    #[error("the audience {found:?} is not accepted")]
    WrongAudience {
        /// The `aud` found.
        found: Vec<String>,
    },
    /// `azp` is not the configured client.
    #[error("the authorized party is {found:?}, expected {expected:?}")]
    AzpMismatch {
        /// The `azp` found.
        found: String,
        /// The client id expected.
        expected: String,
    },
    /// `nonce` is not the one sent in the authentication request.
    #[error("the nonce does not match the authentication request")]
    NonceMismatch,
    /// The token has expired.
    #[error("the token expired at {exp} (now {now}, leeway {}s)", leeway.as_secs())]
    Expired {
        /// Its `exp`.
        exp: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The leeway applied.
        leeway: Duration,
    },
    /// The token is not valid yet.
    #[error("the token is not valid before {nbf} (now {now}, leeway {}s)", leeway.as_secs())]
    NotYetValid {
        /// Its `nbf`.
        nbf: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The leeway applied.
        leeway: Duration,
    },
    /// The token claims to be issued in the future.
    #[error("the token is issued at {iat}, in the future (now {now}, leeway {}s)", leeway.as_secs())]
    IssuedInFuture {
        /// Its `iat`.
        iat: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The leeway applied.
        leeway: Duration,
    },
    /// The token was issued longer ago than the policy's maximum age.
    #[error("the token was issued at {iat}, more than {}s before {now}", max_age.as_secs())]
    TooOld {
        /// Its `iat`.
        iat: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The maximum age.
        max_age: Duration,
    },
}

impl ValidationError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ValidationError::TooLarge { .. } => ErrorKind::TokenTooLarge,
            ValidationError::Malformed(inner) => inner.kind(),
            ValidationError::AlgorithmNotAllowed { .. } => ErrorKind::AlgNotAllowed,
            ValidationError::WrongType { .. } => ErrorKind::WrongTyp,
            ValidationError::UnknownKid { .. } => ErrorKind::UnknownKid,
            ValidationError::NoMatchingKey { .. } => ErrorKind::NoMatchingKey,
            ValidationError::AmbiguousKey { .. } => ErrorKind::AmbiguousKey,
            ValidationError::BadSignature => ErrorKind::BadSignature,
            ValidationError::MissingClaim { .. } => ErrorKind::MissingClaim,
            ValidationError::InvalidClaim { .. } => ErrorKind::InvalidClaim,
            ValidationError::WrongIssuer { .. } => ErrorKind::WrongIssuer,
            ValidationError::WrongAudience { .. } => ErrorKind::WrongAudience,
            ValidationError::AzpMismatch { .. } => ErrorKind::AzpMismatch,
            ValidationError::NonceMismatch => ErrorKind::NonceMismatch,
            ValidationError::Expired { .. } => ErrorKind::Expired,
            ValidationError::NotYetValid { .. } => ErrorKind::NotYetValid,
            ValidationError::IssuedInFuture { .. } => ErrorKind::IssuedInFuture,
            ValidationError::TooOld { .. } => ErrorKind::TooOld,
        }
    }

    /// A stable snake_case code for this error; for [`ValidationError::Malformed`] it is the
    /// code of the [`JwsError`] inside (e.g. `alg_none`).
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Whether fetching the key set again may make the token verify (its `kid` is unknown).
    pub fn is_unknown_kid(&self) -> bool {
        matches!(self, ValidationError::UnknownKid { .. })
    }
}

impl From<JwsError> for ValidationError {
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::TooLarge { len, limit } => ValidationError::TooLarge { len, limit },
            other => ValidationError::Malformed(other),
        }
    }
}

/// The largest signature any supported key produces (RSA-8192: 1024 bytes).
const MAX_SIGNATURE_BYTES: usize = 1024;

/// A JWS whose header and signature passed the policy; its payload is not interpreted.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedJws {
    /// The protected header.
    pub header: Header,
    /// The payload, as signed.
    pub payload: Vec<u8>,
}

/// Validates a compact JWS token against the keys and the policy at time `now`.
pub fn validate(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    now: UnixTime,
) -> Result<ValidatedToken, ValidationError> {
    let VerifiedJws { header, payload } = verify(token, keys, policy, false)?;
    let claims = parse_claims(&payload)?;
    check_claims(&claims, policy, now)?;
    Ok(ValidatedToken { header, claims })
}

/// Checks a compact JWS's structure, header, algorithm, `typ` and signature as [`validate`]
/// does, but leaves the payload uninterpreted (it need not be JSON, and may be empty). For
/// signed content that is not a claim set; tokens go through [`validate`].
pub fn verify_jws(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
) -> Result<VerifiedJws, ValidationError> {
    verify(token, keys, policy, true)
}

fn verify(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    allow_empty_payload: bool,
) -> Result<VerifiedJws, ValidationError> {
    let parts = jws::split_compact(token, policy.max_token_bytes)?;
    let header = jws::parse_header(&jws::decode_segment(Part::Header, parts.header)?)?;
    if parts.payload.is_empty() && !allow_empty_payload {
        return Err(JwsError::EmptyPayload.into());
    }
    if parts.signature.is_empty() {
        return Err(JwsError::EmptySignature.into());
    }
    if !policy.algorithms.contains(&header.alg) {
        return Err(ValidationError::AlgorithmNotAllowed { alg: header.alg });
    }
    if let Some(expected) = &policy.expected_type
        && !header
            .typ
            .as_deref()
            .is_some_and(|t| same_media_type(t, expected))
    {
        return Err(ValidationError::WrongType {
            found: header.typ.clone(),
            expected: expected.clone(),
        });
    }
    // Anything longer than the largest signature cannot verify; base64 of 1024 bytes is 1366.
    if parts.signature.len() > 1366 {
        return Err(ValidationError::BadSignature);
    }
    let mut signature = [0u8; MAX_SIGNATURE_BYTES];
    let signature_len = jws::decode_segment_into(Part::Signature, parts.signature, &mut signature)?;
    let signature = signature.get(..signature_len).unwrap_or_default();
    // Decode the payload's base64 before spending a signature check on a malformed token.
    let payload = jws::decode_segment(Part::Payload, parts.payload)?;
    verify_signature(keys, &header, parts.signing_input.as_bytes(), signature)?;
    Ok(VerifiedJws { header, payload })
}

/// Parses a claim set with the same rules [`validate`] applies (types checked, duplicates
/// refused), without verifying anything. Useful for tokens whose signature was checked
/// elsewhere.
pub fn parse_claims(json: &[u8]) -> Result<Claims, ValidationError> {
    let RawClaims { claims, invalid } = serde_json::from_slice(json)
        .map_err(|e| ValidationError::Malformed(jws::json_error(Part::Payload, &e)))?;
    match invalid {
        Some((name, reason)) => Err(ValidationError::InvalidClaim {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(claims),
    }
}

fn same_media_type(found: &str, expected: &str) -> bool {
    fn strip(t: &str) -> &str {
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => t.get(12..).unwrap_or(t),
            _ => t,
        }
    }
    strip(found).eq_ignore_ascii_case(strip(expected))
}

fn verify_signature(
    keys: &KeySet,
    header: &Header,
    message: &[u8],
    signature: &[u8],
) -> Result<(), ValidationError> {
    let alg = header.alg;
    if let Some(kid) = header.kid.as_deref() {
        let mut kid_known = false;
        let mut fitting = None;
        let mut candidates = 0;
        for (info, verifiers) in keys.entries() {
            if info.kid.as_deref() != Some(kid) {
                continue;
            }
            kid_known = true;
            if let Some(verifier) = verifier_for(verifiers, alg) {
                candidates += 1;
                fitting = Some(verifier);
            }
        }
        // Two keys under one kid that both fit: the set is ambiguous, and trying both would let
        // whoever controls either key pass.
        if candidates > 1 {
            return Err(ValidationError::AmbiguousKey { candidates });
        }
        if let Some(verifier) = fitting {
            return if verifier.verify(message, signature) {
                Ok(())
            } else {
                Err(ValidationError::BadSignature)
            };
        }
        if kid_known {
            return Err(ValidationError::NoMatchingKey {
                kid: Some(kid.to_owned()),
                alg,
            });
        }
    }
    // No kid, or a kid no key has: try the keys without a kid (or all keys, without a kid).
    let wanted_kid_less = header.kid.is_some();
    let candidates = || {
        keys.entries()
            .filter(move |(info, _)| !wanted_kid_less || info.kid.is_none())
            .filter_map(|(_, verifiers)| verifier_for(verifiers, alg))
    };
    let count = candidates().take(MAX_CANDIDATE_KEYS + 1).count();
    if count == 0 {
        return Err(match header.kid.as_deref() {
            Some(kid) if !keys.entries().any(|(info, _)| info.kid.is_none()) => {
                ValidationError::UnknownKid {
                    kid: kid.chars().take(64).collect(),
                }
            }
            kid => ValidationError::NoMatchingKey {
                kid: kid.map(str::to_owned),
                alg,
            },
        });
    }
    if count > MAX_CANDIDATE_KEYS {
        return Err(ValidationError::AmbiguousKey {
            candidates: candidates().count(),
        });
    }
    if candidates().any(|v| v.verify(message, signature)) {
        Ok(())
    } else {
        Err(ValidationError::BadSignature)
    }
}

fn verifier_for(verifiers: &[(Algorithm, Verifier)], alg: Algorithm) -> Option<&Verifier> {
    verifiers.iter().find(|(a, _)| *a == alg).map(|(_, v)| v)
}

fn check_claims(claims: &Claims, policy: &Policy, now: UnixTime) -> Result<(), ValidationError> {
    if claims.iss.is_empty() {
        return Err(missing("iss"));
    }
    let issuer_ok = policy.issuers.iter().any(|i| i.matches(&claims.iss))
        || match claims.extra.get("tid") {
            Some(Value::String(tid)) => policy
                .issuer_templates
                .iter()
                .any(|t| t.matches(&claims.iss, tid)),
            _ => false,
        };
    if !issuer_ok {
        return Err(ValidationError::WrongIssuer {
            found: claims.iss.clone(),
        });
    }
    if !policy.skip_audience {
        if claims.aud.is_empty() {
            return Err(missing("aud"));
        }
        if !claims.aud.iter().any(|a| policy.audiences.contains(a)) {
            return Err(ValidationError::WrongAudience {
                found: claims.aud.clone(),
            });
        }
    }
    if let Some(client_id) = &policy.azp {
        match &claims.azp {
            Some(azp) if azp != client_id => {
                return Err(ValidationError::AzpMismatch {
                    found: azp.clone(),
                    expected: client_id.clone(),
                });
            }
            None if claims.aud.len() > 1 => return Err(missing("azp")),
            _ => {}
        }
    }
    if let Some(expected) = &policy.nonce {
        let found = claims.nonce.as_deref().ok_or_else(|| missing("nonce"))?;
        if !crate::secret::constant_time_eq(found.as_bytes(), expected.as_bytes()) {
            return Err(ValidationError::NonceMismatch);
        }
    }
    let leeway = policy.leeway;
    match claims.exp {
        Some(exp) if now >= exp.saturating_add(leeway) => {
            return Err(ValidationError::Expired { exp, now, leeway });
        }
        None if policy.require_exp => return Err(missing("exp")),
        _ => {}
    }
    if let Some(nbf) = claims.nbf
        && nbf > now.saturating_add(leeway)
    {
        return Err(ValidationError::NotYetValid { nbf, now, leeway });
    }
    if let Some(iat) = claims.iat
        && iat > now.saturating_add(leeway)
    {
        return Err(ValidationError::IssuedInFuture { iat, now, leeway });
    }
    if let Some(max_age) = policy.max_age {
        let iat = claims.iat.ok_or_else(|| missing("iat"))?;
        if now.duration_since(iat) > max_age.saturating_add(leeway) {
            return Err(ValidationError::TooOld { iat, now, max_age });
        }
    }
    if let Some(name) = policy.required_claims.iter().find(|n| !claims.contains(n)) {
        return Err(missing(name));
    }
    Ok(())
}

fn missing(name: &str) -> ValidationError {
    ValidationError::MissingClaim {
        name: name.to_owned(),
    }
}

/// Claims as decoded, with the first claim of the wrong type noted instead of failing the
/// parse, so that the error can name it.
struct RawClaims {
    claims: Claims,
    invalid: Option<(&'static str, &'static str)>,
}

impl<'de> Deserialize<'de> for RawClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

/// The typed claims, in the order of the bits that record which were seen.
const TYPED_CLAIMS: [&str; 18] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "auth_time",
    "azp",
    "nonce",
    "jti",
    "sid",
    "at_hash",
    "scope",
    "client_id",
    "email",
    "email_verified",
    "name",
    "preferred_username",
];

/// The position of a typed claim in [`TYPED_CLAIMS`].
fn typed_claim_index(name: &str) -> Option<usize> {
    Some(match name {
        "iss" => 0,
        "sub" => 1,
        "aud" => 2,
        "exp" => 3,
        "nbf" => 4,
        "iat" => 5,
        "auth_time" => 6,
        "azp" => 7,
        "nonce" => 8,
        "jti" => 9,
        "sid" => 10,
        "at_hash" => 11,
        "scope" => 12,
        "client_id" => 13,
        "email" => 14,
        "email_verified" => 15,
        "name" => 16,
        "preferred_username" => 17,
        _ => return None,
    })
}

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = RawClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
        let mut claims = Claims::default();
        let mut invalid: Option<(&'static str, &'static str)> = None;
        let mut seen: u32 = 0;
        while let Some(strict_json::MemberName(name)) = map.next_key()? {
            let Some(index) = typed_claim_index(&name) else {
                let strict_json::StrictValue(value) = map.next_value()?;
                strict_json::insert_unique(&mut claims.extra, name.into_owned(), value)?;
                continue;
            };
            let claim = TYPED_CLAIMS.get(index).copied().unwrap_or_default();
            if seen & (1 << index) != 0 {
                return Err(de::Error::custom(format_args!(
                    "{}{claim:?}",
                    strict_json::DUPLICATE_MEMBER
                )));
            }
            seen |= 1 << index;
            let value: Value = map.next_value()?;
            let mut note = |reason: &'static str| {
                if invalid.is_none() {
                    invalid = Some((claim, reason));
                }
            };
            match claim {
                "aud" => {
                    claims.aud = audience(value).unwrap_or_else(|r| {
                        note(r);
                        Vec::new()
                    })
                }
                "exp" | "nbf" | "iat" | "auth_time" => {
                    let time = numeric_date(value).unwrap_or_else(|r| {
                        note(r);
                        None
                    });
                    match claim {
                        "exp" => claims.exp = time,
                        "nbf" => claims.nbf = time,
                        "iat" => claims.iat = time,
                        _ => claims.auth_time = time,
                    }
                }
                "email_verified" => {
                    claims.email_verified = boolean(value).unwrap_or_else(|r| {
                        note(r);
                        None
                    })
                }
                _ => {
                    let text = string(value).unwrap_or_else(|r| {
                        note(r);
                        None
                    });
                    match claim {
                        "iss" => claims.iss = text.unwrap_or_default(),
                        "sub" => claims.sub = text,
                        "azp" => claims.azp = text,
                        "nonce" => claims.nonce = text,
                        "jti" => claims.jti = text,
                        "sid" => claims.sid = text,
                        "at_hash" => claims.at_hash = text,
                        "scope" => claims.scope = text,
                        "client_id" => claims.client_id = text,
                        "email" => claims.email = text,
                        "name" => claims.name = text,
                        _ => claims.preferred_username = text,
                    }
                }
            }
        }
        Ok(RawClaims { claims, invalid })
    }
}

fn string(value: Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err("is not a string"),
    }
}

fn boolean(value: Value) -> Result<Option<bool>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s == "true" => Ok(Some(true)),
        Value::String(s) if s == "false" => Ok(Some(false)),
        _ => Err("is not a boolean"),
    }
}

/// The largest NumericDate accepted: the year 10000, far beyond any real token.
const MAX_NUMERIC_DATE: u64 = 253_402_300_800;

fn numeric_date(value: Value) -> Result<Option<UnixTime>, &'static str> {
    let Value::Number(number) = value else {
        return match value {
            Value::Null => Ok(None),
            _ => Err("is not a number"),
        };
    };
    let secs = if let Some(secs) = number.as_u64() {
        secs
    } else if number.as_i64().is_some() {
        return Err("is negative");
    } else {
        // JSON allows fractions; the float is finite because JSON cannot spell infinity.
        let float = number.as_f64().unwrap_or(f64::NAN);
        if !(0.0..=MAX_NUMERIC_DATE as f64).contains(&float) {
            return Err("is out of range");
        }
        // In range and non-negative, so truncation is exact to the second.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = float as u64;
        whole
    };
    if secs > MAX_NUMERIC_DATE {
        return Err("is out of range");
    }
    Ok(Some(UnixTime::from_secs(secs)))
}

fn audience(value: Value) -> Result<Vec<String>, &'static str> {
    const WRONG: &str = "is not a string or an array of strings";
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(WRONG),
            })
            .collect(),
        _ => Err(WRONG),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_results_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Policy>();
        shareable::<ValidatedToken>();
        shareable::<ValidationError>();
    }

    #[test]
    fn typed_claim_table_and_index_agree() {
        for (i, name) in TYPED_CLAIMS.iter().enumerate() {
            assert_eq!(typed_claim_index(name), Some(i));
        }
        assert_eq!(typed_claim_index("groups"), None);
    }

    #[test]
    fn numeric_dates() {
        let date = |v: Value| numeric_date(v);
        assert_eq!(date(Value::from(5)), Ok(Some(UnixTime::from_secs(5))));
        assert_eq!(date(Value::from(5.9)), Ok(Some(UnixTime::from_secs(5))));
        assert_eq!(date(Value::Null), Ok(None));
        assert_eq!(date(Value::from(-1)), Err("is negative"));
        assert_eq!(date(Value::from(-0.5)), Err("is out of range"));
        assert_eq!(date(Value::from(1e19)), Err("is out of range"));
        assert_eq!(date(Value::from(u64::MAX)), Err("is out of range"));
        assert_eq!(
            date(Value::from(MAX_NUMERIC_DATE)),
            Ok(Some(UnixTime::from_secs(MAX_NUMERIC_DATE)))
        );
        assert_eq!(date(Value::from("5")), Err("is not a number"));
    }

    #[test]
    fn media_types_compare_without_the_application_prefix() {
        assert!(same_media_type("at+jwt", "at+jwt"));
        assert!(same_media_type("application/AT+JWT", "at+jwt"));
        assert!(same_media_type("at+jwt", "application/at+jwt"));
        assert!(!same_media_type("jwt", "at+jwt"));
        assert!(!same_media_type("text/at+jwt", "at+jwt"));
        assert!(!same_media_type("application/", "at+jwt"));
    }

    #[test]
    fn claim_parsing_notes_the_first_wrong_type() {
        let err = parse_claims(br#"{"iss":1,"exp":"x"}"#).unwrap_err();
        assert_eq!(
            err,
            ValidationError::InvalidClaim {
                name: "iss".into(),
                reason: "is not a string"
            }
        );
        assert_eq!(
            parse_claims(br#"{"exp":1,"exp":2}"#).unwrap_err(),
            ValidationError::Malformed(JwsError::DuplicateMember {
                part: Part::Payload,
                name: "exp".into()
            })
        );
        let claims = parse_claims(br#"{"iss":"i","aud":null,"x\u0041":1}"#).unwrap();
        assert!(claims.aud.is_empty());
        assert_eq!(claims.extra["xA"], 1);
    }

    #[test]
    fn policy_getters_and_defaults() {
        let policy = Policy::builder()
            .issuer(Issuer::new("https://op.example").unwrap())
            .audience("a")
            .algorithms([Algorithm::ES256, Algorithm::ES256, Algorithm::RS256])
            .build()
            .unwrap();
        assert_eq!(policy.algorithms(), &[Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(policy.leeway(), DEFAULT_LEEWAY);
        assert_eq!(policy.issuers()[0].as_str(), "https://op.example");
        assert_eq!(policy.audiences(), &["a".to_owned()]);
        let wider = policy.with_audiences(["b", "a", "c"]);
        assert_eq!(wider.audiences(), &["a", "b", "c"]);
        assert_eq!(policy.audiences(), &["a".to_owned()]);
    }

    #[test]
    fn error_codes_are_distinct_and_snake_case() {
        let t = UnixTime::EPOCH;
        let d = Duration::ZERO;
        let errors = [
            ValidationError::TooLarge { len: 0, limit: 0 },
            ValidationError::Malformed(JwsError::Encrypted),
            ValidationError::AlgorithmNotAllowed {
                alg: Algorithm::RS256,
            },
            ValidationError::WrongType {
                found: None,
                expected: String::new(),
            },
            ValidationError::UnknownKid { kid: String::new() },
            ValidationError::NoMatchingKey {
                kid: None,
                alg: Algorithm::RS256,
            },
            ValidationError::AmbiguousKey { candidates: 2 },
            ValidationError::BadSignature,
            ValidationError::MissingClaim {
                name: String::new(),
            },
            ValidationError::InvalidClaim {
                name: String::new(),
                reason: "",
            },
            ValidationError::WrongIssuer {
                found: String::new(),
            },
            ValidationError::WrongAudience { found: Vec::new() },
            ValidationError::AzpMismatch {
                found: String::new(),
                expected: String::new(),
            },
            ValidationError::Expired {
                exp: t,
                now: t,
                leeway: d,
            },
            ValidationError::NotYetValid {
                nbf: t,
                now: t,
                leeway: d,
            },
            ValidationError::IssuedInFuture {
                iat: t,
                now: t,
                leeway: d,
            },
            ValidationError::TooOld {
                iat: t,
                now: t,
                max_age: d,
            },
        ];
        let codes: std::collections::BTreeSet<&str> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), errors.len());
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        assert_eq!(errors[1].code(), "encrypted_token");
        assert!(errors[4].is_unknown_kid());
        assert!(!errors[7].is_unknown_kid());
        assert_eq!(
            ValidationError::Expired {
                exp: UnixTime::from_secs(10),
                now: UnixTime::from_secs(100),
                leeway: Duration::from_secs(60)
            }
            .to_string(),
            "the token expired at 10 (now 100, leeway 60s)"
        );
    }
}
