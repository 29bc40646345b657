//! The JWS compact serialization: how a token splits into header, payload and signature, which
//! headers the core accepts, and which it refuses before any key is looked at.
//!
//! This module decides the shape of a token, never whether to trust it: signatures are checked
//! in [`crate::validation`]. Refused here, whatever the policy says: `alg` `none` (in any case),
//! algorithms outside [`Algorithm`], encrypted tokens (five segments), `b64=false` (RFC 7797),
//! any `crit` extension (none is understood), the key-locating headers `jku`, `x5u` and `jwk`
//! (a token must never choose its own key), duplicate JSON members, non-canonical base64url
//! and empty signatures. `x5t`, `x5c` and other informational headers are kept in
//! [`Header::extra`] and never used to find or build a key.

pub(crate) mod strict_json;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::ErrorKind;

/// The largest token [`crate::danger::decode_unverified`] looks at (1 MiB). Validation applies
/// the policy's own, much smaller limit first.
pub const MAX_UNVERIFIED_TOKEN_BYTES: usize = 1024 * 1024;

/// The largest decoded JOSE header accepted (8 KiB). Real headers are under 1 KiB.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// A JWS signature algorithm the core can verify (RFC 7518 §3, RFC 8037 for `EdDSA`).
///
/// `none` is not an algorithm here. Whether an algorithm is accepted for a token is decided by the
/// validation policy together with the key, never by the token's header alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256 (shared secret).
    HS256,
    /// HMAC with SHA-384 (shared secret).
    HS384,
    /// HMAC with SHA-512 (shared secret).
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

/// The kind of key an [`Algorithm`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFamily {
    /// A shared secret (`kty` `oct`).
    Hmac,
    /// An RSA public key.
    Rsa,
    /// An elliptic-curve public key on the named curve (`P-256`, `P-384` or `P-521`).
    Ec(&'static str),
    /// An Ed25519 public key (`kty` `OKP`).
    Ed25519,
}

impl Algorithm {
    /// Every supported algorithm, in declaration order.
    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
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

    /// The registered name (`"RS256"`, `"EdDSA"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The kind of key that verifies this algorithm.
    pub fn key_family(&self) -> KeyFamily {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyFamily::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 => KeyFamily::Ec("P-256"),
            Algorithm::ES384 => KeyFamily::Ec("P-384"),
            Algorithm::ES512 => KeyFamily::Ec("P-521"),
            Algorithm::EdDSA => KeyFamily::Ed25519,
        }
    }

    /// Whether this is an HMAC algorithm, which needs a configured shared secret.
    pub fn is_hmac(&self) -> bool {
        self.key_family() == KeyFamily::Hmac
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = JwsError;

    /// Parses a registered name exactly (names are case-sensitive); `none` in any spelling
    /// gives [`JwsError::NoneAlgorithm`], anything else unknown [`JwsError::UnsupportedAlgorithm`].
    fn from_str(name: &str) -> Result<Self, JwsError> {
        if let Some(alg) = Algorithm::ALL.into_iter().find(|a| a.as_str() == name) {
            return Ok(alg);
        }
        if name.eq_ignore_ascii_case("none") {
            Err(JwsError::NoneAlgorithm {
                alg: name.to_owned(),
            })
        } else {
            Err(JwsError::UnsupportedAlgorithm { alg: shorten(name) })
        }
    }
}

/// The protected header of a JWS, after the checks listed in the module docs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Header {
    /// The signature algorithm the token claims; only a hint until the policy and key agree.
    pub alg: Algorithm,
    /// The key id, used to pick the key.
    pub kid: Option<String>,
    /// The media type of the whole token (`JWT`, `at+jwt`, ...).
    pub typ: Option<String>,
    /// The media type of the payload (`JWT` for nested tokens, which are refused as claims).
    pub cty: Option<String>,
    /// Every other member, kept for display; never used to find a key.
    pub extra: Map<String, Value>,
}

/// Which segment of a compact JWS an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The protected header (first segment).
    Header,
    /// The payload, i.e. the claims (second segment).
    Payload,
    /// The signature (third segment).
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// Why a string is not an acceptable compact JWS.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// The token is longer than the limit applied.
    #[error("the token is {len} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The limit applied.
        limit: usize,
    },
    /// The token has five segments: it is encrypted (JWE), which the core does not decrypt.
    #[error("the token is encrypted (JWE, five segments); only signed tokens are accepted")]
    Encrypted,
    /// The token does not have the three segments of a compact JWS.
    #[error("a signed token has 3 dot-separated segments, this one has {segments}")]
    WrongSegmentCount {
        /// How many `.`-separated segments there were.
        segments: usize,
    },
    /// A segment is not canonical, unpadded base64url.
    #[error("the {part} is not canonical unpadded base64url")]
    InvalidBase64 {
        /// The segment.
        part: Part,
    },
    /// A segment is not a JSON object.
    #[error("the {part} is not a JSON object: {reason}")]
    InvalidJson {
        /// The segment.
        part: Part,
        /// What the JSON parser said.
        reason: String,
    },
    /// A JSON object names the same member twice.
    #[error("the {part} names the member {name:?} twice")]
    DuplicateMember {
        /// The segment.
        part: Part,
        /// The repeated member name.
        name: String,
    },
    /// The decoded header is larger than [`MAX_HEADER_BYTES`].
    #[error("the header is {len} bytes, over the {limit}-byte limit")]
    HeaderTooLarge {
        /// The decoded header's length.
        len: usize,
        /// The limit applied.
        limit: usize,
    },
    /// The header has no `alg`.
    #[error("the header has no \"alg\"")]
    MissingAlgorithm,
    /// `alg` is `none` (in some spelling): unsigned tokens are never accepted.
    #[error("the token is unsigned (alg {alg:?})")]
    NoneAlgorithm {
        /// The spelling found.
        alg: String,
    },
    /// `alg` names an algorithm the core does not verify.
    #[error("the algorithm {alg:?} is not supported")]
    UnsupportedAlgorithm {
        /// The name found (at most 64 characters).
        alg: String,
    },
    /// A header member the core reads has the wrong JSON type.
    #[error("the header member {name:?} {reason}")]
    InvalidHeaderMember {
        /// The member.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `b64` is `false`: the payload is not base64url-encoded (RFC 7797), which is not accepted.
    #[error("unencoded payloads (b64=false) are not accepted")]
    UnencodedPayload,
    /// `crit` lists extensions; the core understands none, so it must refuse the token.
    #[error("the header marks extensions as critical that are not understood: {names:?}")]
    UnsupportedCritical {
        /// The names listed (at most 8, each at most 64 characters).
        names: Vec<String>,
    },
    /// The header points at or embeds a key (`jku`, `x5u`, `jwk`); a token never picks its key.
    #[error("the header member {member:?} would let the token choose its own key")]
    UntrustedKeyReference {
        /// The member found.
        member: &'static str,
    },
    /// The payload segment is empty (a detached payload, RFC 7515 Appendix F).
    #[error("the payload is empty (detached payloads are not accepted)")]
    EmptyPayload,
    /// The signature segment is empty.
    #[error("the signature is empty")]
    EmptySignature,
}

impl JwsError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JwsError::TooLarge { .. } => ErrorKind::TokenTooLarge,
            JwsError::Encrypted => ErrorKind::EncryptedToken,
            JwsError::WrongSegmentCount { .. } => ErrorKind::MalformedSegments,
            JwsError::InvalidBase64 { .. } => ErrorKind::InvalidBase64,
            JwsError::InvalidJson { .. } => ErrorKind::InvalidJson,
            JwsError::DuplicateMember { .. } => ErrorKind::DuplicateMember,
            JwsError::HeaderTooLarge { .. } => ErrorKind::HeaderTooLarge,
            JwsError::MissingAlgorithm => ErrorKind::MissingAlg,
            JwsError::NoneAlgorithm { .. } => ErrorKind::AlgNone,
            JwsError::UnsupportedAlgorithm { .. } => ErrorKind::UnsupportedAlg,
            JwsError::InvalidHeaderMember { .. } => ErrorKind::InvalidHeader,
            JwsError::UnencodedPayload => ErrorKind::UnencodedPayload,
            JwsError::UnsupportedCritical { .. } => ErrorKind::UnsupportedCrit,
            JwsError::UntrustedKeyReference { .. } => ErrorKind::UntrustedKeyReference,
            JwsError::EmptyPayload => ErrorKind::EmptyPayload,
            JwsError::EmptySignature => ErrorKind::EmptySignature,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// A token's header and claims as raw JSON, read without checking anything but the syntax.
#[derive(Clone, Debug, PartialEq)]
pub struct UnverifiedToken {
    /// The header as sent (its `alg` may be anything, including `none`).
    pub header: Value,
    /// The claims as sent.
    pub claims: Value,
}

/// Splits and decodes a token for display (`oidc decode`) WITHOUT verifying its signature.
///
/// Nothing in the result may be trusted. The checks are only syntactic: three segments, base64url,
/// JSON objects without duplicate members, at most [`MAX_UNVERIFIED_TOKEN_BYTES`]. An empty
/// signature is accepted here so that unsigned tokens can be inspected. Never panics.
pub(crate) fn decode_unverified(token: &str) -> Result<UnverifiedToken, JwsError> {
    let parts = split_compact(token, MAX_UNVERIFIED_TOKEN_BYTES)?;
    let header = decode_segment(Part::Header, parts.header)?;
    let payload = decode_segment(Part::Payload, parts.payload)?;
    if !parts.signature.is_empty() {
        decode_segment(Part::Signature, parts.signature)?;
    }
    Ok(UnverifiedToken {
        header: parse_object(Part::Header, &header)?,
        claims: parse_object(Part::Payload, &payload)?,
    })
}

/// Reads and checks a token's header WITHOUT verifying its signature (e.g. to log the `kid`).
pub fn decode_header(token: &str) -> Result<Header, JwsError> {
    let parts = split_compact(token, MAX_UNVERIFIED_TOKEN_BYTES)?;
    parse_header(&decode_segment(Part::Header, parts.header)?)
}

/// Parses a decoded protected header and applies the checks listed in the module docs.
pub fn parse_header(json: &[u8]) -> Result<Header, JwsError> {
    if json.len() > MAX_HEADER_BYTES {
        return Err(JwsError::HeaderTooLarge {
            len: json.len(),
            limit: MAX_HEADER_BYTES,
        });
    }
    let raw: RawHeader = serde_json::from_slice(json).map_err(|e| json_error(Part::Header, &e))?;
    raw.check()
}

/// The three segments of a compact JWS, borrowed from the token.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CompactParts<'a> {
    /// `header.payload`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

/// Splits a compact JWS after the size check; tells encrypted tokens apart.
pub(crate) fn split_compact(token: &str, limit: usize) -> Result<CompactParts<'_>, JwsError> {
    if token.len() > limit {
        return Err(JwsError::TooLarge {
            len: token.len(),
            limit,
        });
    }
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let (Some(first), Some(second)) = (dots.next(), dots.next()) else {
        return Err(JwsError::WrongSegmentCount {
            segments: token.matches('.').count() + 1,
        });
    };
    if dots.next().is_some() {
        let segments = token.matches('.').count() + 1;
        return Err(if segments == 5 {
            JwsError::Encrypted
        } else {
            JwsError::WrongSegmentCount { segments }
        });
    }
    let signing_input = token.get(..second).unwrap_or_default();
    Ok(CompactParts {
        signing_input,
        header: token.get(..first).unwrap_or_default(),
        payload: token.get(first + 1..second).unwrap_or_default(),
        signature: token.get(second + 1..).unwrap_or_default(),
    })
}

/// Decodes one segment as canonical unpadded base64url.
pub(crate) fn decode_segment(part: Part, text: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwsError::InvalidBase64 { part })
}

/// Decodes one segment into `out`, returning the decoded length.
pub(crate) fn decode_segment_into(
    part: Part,
    text: &str,
    out: &mut [u8],
) -> Result<usize, JwsError> {
    URL_SAFE_NO_PAD
        .decode_slice(text, out)
        .map_err(|_| JwsError::InvalidBase64 { part })
}

/// Maps a JSON error to [`JwsError::DuplicateMember`] or [`JwsError::InvalidJson`].
pub(crate) fn json_error(part: Part, error: &serde_json::Error) -> JwsError {
    let message = error.to_string();
    if let Some(rest) = message.strip_prefix(strict_json::DUPLICATE_MEMBER) {
        let quoted = rest.split(" at line ").next().unwrap_or(rest);
        let name = serde_json::from_str::<String>(quoted).unwrap_or_else(|_| quoted.to_owned());
        return JwsError::DuplicateMember { part, name };
    }
    JwsError::InvalidJson {
        part,
        reason: message,
    }
}

fn parse_object(part: Part, json: &[u8]) -> Result<Value, JwsError> {
    match strict_json::parse_strict(json) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(JwsError::InvalidJson {
            part,
            reason: "not an object".into(),
        }),
        Err(e) => Err(json_error(part, &e)),
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The header as read, before its members are checked.
#[derive(Default)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    cty: Option<Value>,
    crit: Option<Value>,
    b64: Option<Value>,
    key_reference: Option<&'static str>,
    extra: Map<String, Value>,
}

impl RawHeader {
    fn check(self) -> Result<Header, JwsError> {
        if let Some(member) = self.key_reference {
            return Err(JwsError::UntrustedKeyReference { member });
        }
        let alg = match self.alg {
            None => return Err(JwsError::MissingAlgorithm),
            Some(Value::String(name)) => name.parse::<Algorithm>()?,
            Some(_) => {
                return Err(JwsError::InvalidHeaderMember {
                    name: "alg",
                    reason: "is not a string",
                });
            }
        };
        match self.b64 {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Err(JwsError::UnencodedPayload),
            Some(_) => {
                return Err(JwsError::InvalidHeaderMember {
                    name: "b64",
                    reason: "is not a boolean",
                });
            }
        }
        if let Some(crit) = self.crit {
            return Err(critical_error(crit));
        }
        Ok(Header {
            alg,
            kid: optional_string("kid", self.kid)?,
            typ: optional_string("typ", self.typ)?,
            cty: optional_string("cty", self.cty)?,
            extra: self.extra,
        })
    }
}

/// `crit` is refused whatever it holds: this implementation understands no extension
/// (RFC 7515 §4.1.11). A malformed `crit` is reported as such.
fn critical_error(crit: Value) -> JwsError {
    let Value::Array(items) = crit else {
        return JwsError::InvalidHeaderMember {
            name: "crit",
            reason: "is not an array of strings",
        };
    };
    if items.is_empty() {
        return JwsError::InvalidHeaderMember {
            name: "crit",
            reason: "is an empty array",
        };
    }
    let mut names = Vec::new();
    for item in items {
        let Value::String(name) = item else {
            return JwsError::InvalidHeaderMember {
                name: "crit",
                reason: "is not an array of strings",
            };
        };
        if names.len() < 8 {
            names.push(shorten(&name));
        }
    }
    JwsError::UnsupportedCritical { names }
}

fn optional_string(name: &'static str, value: Option<Value>) -> Result<Option<String>, JwsError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwsError::InvalidHeaderMember {
            name,
            reason: "is not a string",
        }),
    }
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawHeaderVisitor)
    }
}

struct RawHeaderVisitor;

impl<'de> Visitor<'de> for RawHeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut header = RawHeader::default();
        while let Some(strict_json::MemberName(name)) = map.next_key()? {
            let slot = match name.as_ref() {
                "alg" => &mut header.alg,
                "kid" => &mut header.kid,
                "typ" => &mut header.typ,
                "cty" => &mut header.cty,
                "crit" => &mut header.crit,
                "b64" => &mut header.b64,
                other => {
                    let strict_json::StrictValue(value) = map.next_value()?;
                    for member in ["jku", "x5u", "jwk"] {
                        if other == member && header.key_reference.is_none() {
                            header.key_reference = Some(member);
                        }
                    }
                    strict_json::insert_unique(&mut header.extra, name.into_owned(), value)?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom(format_args!(
                    "{}{:?}",
                    strict_json::DUPLICATE_MEMBER,
                    name.as_ref()
                )));
            }
            let strict_json::StrictValue(value) = map.next_value()?;
            *slot = Some(value);
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn token(header: &str, payload: &str, signature: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), signature)
    }

    #[test]
    fn algorithm_names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!(Algorithm::ES384.key_family(), KeyFamily::Ec("P-384"));
        assert_eq!(Algorithm::ES512.key_family(), KeyFamily::Ec("P-521"));
        assert!(Algorithm::HS512.is_hmac());
        assert!(!Algorithm::EdDSA.is_hmac());
    }

    #[test]
    fn none_in_any_spelling_is_its_own_error() {
        for spelling in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(
                spelling.parse::<Algorithm>().unwrap_err(),
                JwsError::NoneAlgorithm {
                    alg: spelling.into()
                }
            );
        }
        let err = "rs256".parse::<Algorithm>().unwrap_err();
        assert_eq!(err.code(), "unsupported_alg");
        assert_eq!(
            "ES256K".parse::<Algorithm>().unwrap_err().code(),
            "unsupported_alg"
        );
    }

    #[test]
    fn header_members_are_read_and_the_rest_kept() {
        let header =
            parse_header(br#"{"alg":"ES256","kid":"k1","typ":"at+jwt","cty":"x","x5t":"abc"}"#)
                .unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.cty.as_deref(), Some("x"));
        assert_eq!(header.extra["x5t"], "abc");
        assert_eq!(
            parse_header(br#"{"alg":"RS256","b64":true}"#).unwrap().kid,
            None
        );
    }

    #[test]
    fn header_refusals_are_typed() {
        let cases: [(&[u8], &str); 14] = [
            (br#"{}"#, "missing_alg"),
            (br#"{"alg":7}"#, "invalid_header"),
            (br#"{"alg":"none"}"#, "alg_none"),
            (br#"{"alg":"RS256","kid":1}"#, "invalid_header"),
            (br#"{"alg":"RS256","typ":[]}"#, "invalid_header"),
            (
                br#"{"alg":"RS256","b64":false,"crit":["b64"]}"#,
                "unencoded_payload",
            ),
            (br#"{"alg":"RS256","b64":"no"}"#, "invalid_header"),
            (br#"{"alg":"RS256","crit":["exp"]}"#, "unsupported_crit"),
            (br#"{"alg":"RS256","crit":[]}"#, "invalid_header"),
            (br#"{"alg":"RS256","crit":"b64"}"#, "invalid_header"),
            (
                br#"{"alg":"RS256","jku":"https://evil.example/k"}"#,
                "untrusted_key_reference",
            ),
            (br#"{"alg":"RS256","alg":"HS256"}"#, "duplicate_member"),
            (br#"{"alg":"RS256","x":1,"x":2}"#, "duplicate_member"),
            (br#"["alg"]"#, "invalid_json"),
        ];
        for (json, code) in cases {
            let err = parse_header(json).unwrap_err();
            assert_eq!(err.code(), code, "{}", String::from_utf8_lossy(json));
        }
        assert_eq!(
            parse_header(br#"{"alg":"RS256","alg":"HS256"}"#).unwrap_err(),
            JwsError::DuplicateMember {
                part: Part::Header,
                name: "alg".into()
            }
        );
        assert_eq!(
            parse_header(br#"{"alg":"RS256","crit":["exp","zip"]}"#).unwrap_err(),
            JwsError::UnsupportedCritical {
                names: vec!["exp".into(), "zip".into()]
            }
        );
        assert_eq!(
            parse_header(br#"{"alg":"RS256","jwk":{"kty":"oct"}}"#).unwrap_err(),
            JwsError::UntrustedKeyReference { member: "jwk" }
        );
    }

    #[test]
    fn oversized_header_is_refused_before_parsing() {
        let big = format!(
            r#"{{"alg":"RS256","pad":"{}"}}"#,
            "a".repeat(MAX_HEADER_BYTES)
        );
        assert_eq!(
            parse_header(big.as_bytes()).unwrap_err(),
            JwsError::HeaderTooLarge {
                len: big.len(),
                limit: MAX_HEADER_BYTES
            }
        );
    }

    #[test]
    fn splitting_counts_segments() {
        assert_eq!(
            split_compact("a.b", 100).unwrap_err(),
            JwsError::WrongSegmentCount { segments: 2 }
        );
        assert_eq!(
            split_compact("abc", 100).unwrap_err(),
            JwsError::WrongSegmentCount { segments: 1 }
        );
        assert_eq!(
            split_compact("a.b.c.d.e", 100).unwrap_err(),
            JwsError::Encrypted
        );
        assert_eq!(
            split_compact("a.b.c.d", 100).unwrap_err(),
            JwsError::WrongSegmentCount { segments: 4 }
        );
        assert_eq!(
            split_compact("a.b.c", 4).unwrap_err(),
            JwsError::TooLarge { len: 5, limit: 4 }
        );
        let parts = split_compact("hh.pp.ss", 100).unwrap();
        assert_eq!(
            (
                parts.signing_input,
                parts.header,
                parts.payload,
                parts.signature
            ),
            ("hh.pp", "hh", "pp", "ss")
        );
    }

    #[test]
    fn base64_must_be_canonical_and_unpadded() {
        // "QQ" is canonical for b"A"; "QR" has non-zero trailing bits.
        assert_eq!(decode_segment(Part::Payload, "QQ").unwrap(), b"A");
        for bad in ["QR", "QQ==", "Q", "Q+Q", "Q/Q", "Q Q"] {
            assert_eq!(
                decode_segment(Part::Payload, bad).unwrap_err(),
                JwsError::InvalidBase64 {
                    part: Part::Payload
                },
                "{bad}"
            );
        }
    }

    #[test]
    fn decode_unverified_shows_anything_well_formed() {
        let t = token(r#"{"alg":"none"}"#, r#"{"sub":"a"}"#, "");
        let decoded = decode_unverified(&t).unwrap();
        assert_eq!(decoded.header["alg"], "none");
        assert_eq!(decoded.claims["sub"], "a");
        let t = token(r#"{"alg":"RS256"}"#, r#"{"sub":"a","sub":"b"}"#, "");
        assert_eq!(
            decode_unverified(&t).unwrap_err(),
            JwsError::DuplicateMember {
                part: Part::Payload,
                name: "sub".into()
            }
        );
        let t = token(r#"{"alg":"RS256"}"#, "[1]", "");
        assert_eq!(decode_unverified(&t).unwrap_err().code(), "invalid_json");
        let t = format!("{}.!!.x", b64("{}"));
        assert_eq!(decode_unverified(&t).unwrap_err().code(), "invalid_base64");
    }

    #[test]
    fn decode_header_checks_the_header() {
        let t = token(r#"{"alg":"EdDSA","kid":"a/../b"}"#, "{}", "AA");
        assert_eq!(decode_header(&t).unwrap().kid.as_deref(), Some("a/../b"));
        let t = token(r#"{"alg":"NONE"}"#, "{}", "");
        assert_eq!(decode_header(&t).unwrap_err().code(), "alg_none");
    }
}
