//! Sealed cookies: values (sessions, pending logins) encrypted into `Set-Cookie` headers and
//! opened from the request's `Cookie` header.
//!
//! This module decides how a value is sealed, how it is split across cookies, which attributes
//! the cookies carry, and which cookies a response must clear. It does no I/O: headers come in as
//! [`http::HeaderMap`]/[`http::HeaderValue`] and go out as [`http::HeaderValue`]s.
//!
//! # Sealing
//! [`CookieKeys`] seal any `T: Serialize` with **AES-256-GCM-SIV** (RFC 8452, from aws-lc-rs)
//! under a fresh 96-bit nonce drawn from the caller's [`RandomSource`]. Why this AEAD:
//! - GCM-SIV resists nonce misuse: each nonce derives its own keys and the IV is synthetic, so
//!   even a repeated random nonce would only reveal that two sealed values were identical. Random
//!   nonces are therefore safe for any realistic number of cookies per key, the property that
//!   makes XChaCha20-Poly1305 attractive, without its 24-byte nonce.
//! - It runs on the AES and carry-less-multiply instructions of current CPUs: opening a
//!   2.7 KB session costs about 1 µs, against about 5 µs for the portable XChaCha20-Poly1305 of the
//!   `chacha20poly1305` crate measured on the same machine. The cookie is opened on every
//!   request, and must cost well under one RS256 verification (`benches/benches/session.rs`).
//! - aws-lc-rs is already the crate's cryptography provider (HKDF, signatures).
//!
//! A sealed value is `base64url(version ‖ key id ‖ nonce ‖ ciphertext ‖ tag)`. The plaintext is
//! the value's expiry (8 bytes, big-endian unix seconds) followed by its JSON. The associated data
//! binds the version, the key id and the cookie's name, so a value sealed for one cookie never
//! opens as another (a pending login presented as a session is rejected). The expiry inside the
//! plaintext is checked against `now` on every open, whatever `Max-Age` the browser honoured.
//!
//! Operators give secrets (passphrases of at least [`MIN_SECRET_BYTES`] bytes); HKDF-SHA256
//! (aws-lc-rs) turns each into a 256-bit key and a 4-byte key id, which lets the opener pick the
//! key without trial decryption. The first secret seals, every listed secret opens: to rotate,
//! put the new secret first and drop the old one after the session lifetime.
//!
//! # Cookies
//! [`CookieCodec`] adds the cookie side: `HttpOnly`, `Secure` (off only with
//! [`CookieSettings::insecure_allow_plain_http`], loopback hosts only), `SameSite=Lax`, `Path`, optional `Domain`,
//! `Max-Age`, and the `__Host-` name prefix whenever the attributes allow it. A sealed value
//! longer than one cookie may carry ([`MAX_COOKIE_BYTES`] for the whole `name=value; attributes`)
//! is split into numbered cookies `NAME_0`, `NAME_1`, …; the first starts with the chunk count
//! (`3.`). Each response clears the cookies of this codec that the request carried but the new
//! value no longer uses, so stale chunks of an earlier, larger value never linger.

use std::fmt::Write as _;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ErrorKind;
use crate::random::RandomSource;
use crate::secret::Secret;
use crate::time::UnixTime;

/// Browsers keep a cookie only while `name=value` stays within 4096 bytes; this codec keeps the
/// whole `Set-Cookie` value (attributes included) within it, to be safe with every browser.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// The shortest secret accepted for cookie keys, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The most chunks a value may be split into.
pub const MAX_CHUNKS_LIMIT: usize = 20;

/// How many chunks a [`CookieSettings`] allows unless told otherwise: with the 4 KB cookie limit,
/// about 16 KB of sealed value, still within common 32 KB request-header limits.
pub const DEFAULT_MAX_CHUNKS: usize = 4;

/// How much of the `Cookie` header(s) [`RequestCookies`] reads; the rest is ignored.
pub const MAX_COOKIE_HEADER_BYTES: usize = 64 * 1024;

/// How many cookies [`RequestCookies`] keeps from one request; the rest are ignored.
pub const MAX_REQUEST_COOKIES: usize = 256;

const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = aws_lc_rs::aead::NONCE_LEN;
const TAG_LEN: usize = 16;
const EXPIRY_LEN: usize = 8;
const VERSIONED_KEY_ID_LEN: usize = 1 + KEY_ID_LEN;
const HEADER_LEN: usize = VERSIONED_KEY_ID_LEN + NONCE_LEN;
const MIN_SEALED_BYTES: usize = HEADER_LEN + EXPIRY_LEN + TAG_LEN;
const HKDF_SALT: &[u8] = b"oidc-core cookie keys";
const HKDF_INFO_KEY: &[u8] = b"aes-256-gcm-siv key v1";
const HKDF_INFO_KEY_ID: &[u8] = b"key id v1";

/// A problem with the cookie configuration, found when building [`CookieKeys`] or a
/// [`CookieCodec`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieConfigError {
    /// No secret was given.
    #[error("no cookie secret configured")]
    NoSecrets,
    /// A secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("cookie secret #{index} has {len} bytes, at least {min} are required")]
    SecretTooShort {
        /// Position of the secret in the list (0 seals).
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The minimum length.
        min: usize,
    },
    /// The cryptographic provider refused to make a key from a secret (it accepts every 32-byte
    /// AES-256 key, so this reports a broken provider).
    #[error("no key could be derived from cookie secret #{index}")]
    KeyDerivation {
        /// Position of the secret in the list.
        index: usize,
    },
    /// Plain-HTTP cookies were asked for a service whose public URL is not on a loopback host.
    #[error("cookies without Secure are allowed only on loopback hosts, not for {url}")]
    PlainHttpNotLoopback {
        /// The public URL given.
        url: String,
    },
    /// The cookie name is empty or not an HTTP token.
    #[error("cookie name {name:?} is not a valid token")]
    InvalidName {
        /// The name as configured.
        name: String,
    },
    /// The path does not start with `/` or contains `;`, controls or non-ASCII.
    #[error("cookie path {path:?} is invalid")]
    InvalidPath {
        /// The path as configured.
        path: String,
    },
    /// The domain is empty or not a plain host name.
    #[error("cookie domain {domain:?} is invalid")]
    InvalidDomain {
        /// The domain as configured.
        domain: String,
    },
    /// A `__Host-`/`__Secure-` prefixed name was configured without the `Secure` attribute.
    #[error("cookie name {name:?} has a prefix that browsers accept only with Secure")]
    PrefixNeedsSecure {
        /// The name as configured.
        name: String,
    },
    /// The chunk limit is zero or above [`MAX_CHUNKS_LIMIT`].
    #[error("max chunks {max_chunks} is outside 1..={limit}")]
    InvalidMaxChunks {
        /// The configured limit.
        max_chunks: usize,
        /// The largest accepted value.
        limit: usize,
    },
    /// Name and attributes leave too little room for a value in one cookie.
    #[error("cookie name and attributes take {len} bytes, leaving no room for a value")]
    AttributesTooLong {
        /// Bytes taken by the name and attributes.
        len: usize,
    },
}

impl CookieConfigError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CookieConfigError::NoSecrets => ErrorKind::CookieNoSecrets,
            CookieConfigError::SecretTooShort { .. } => ErrorKind::CookieSecretTooShort,
            CookieConfigError::KeyDerivation { .. } => ErrorKind::CookieKeyDerivation,
            CookieConfigError::PlainHttpNotLoopback { .. } => ErrorKind::CookiePlainHttpNotLoopback,
            CookieConfigError::InvalidName { .. } => ErrorKind::CookieInvalidName,
            CookieConfigError::InvalidPath { .. } => ErrorKind::CookieInvalidPath,
            CookieConfigError::InvalidDomain { .. } => ErrorKind::CookieInvalidDomain,
            CookieConfigError::PrefixNeedsSecure { .. } => ErrorKind::CookiePrefixNeedsSecure,
            CookieConfigError::InvalidMaxChunks { .. } => ErrorKind::CookieInvalidMaxChunks,
            CookieConfigError::AttributesTooLong { .. } => ErrorKind::CookieAttributesTooLong,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Why a value could not be sealed into, or opened from, cookies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// The value could not be serialized.
    #[error("value could not be serialized: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The value to seal expires at or before `now`.
    #[error("value expires at {expires_at}, not after now ({now})")]
    AlreadyExpired {
        /// The requested expiry.
        expires_at: UnixTime,
        /// The current time.
        now: UnixTime,
    },
    /// The sealed value is longer than the configured chunks can carry, or than a cookie may be.
    #[error("sealed value of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Length of the sealed value (or cookie text) in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The cookie value is not base64url.
    #[error("cookie value is not base64url")]
    NotBase64,
    /// The cookie value is too short to hold a sealed value.
    #[error("cookie value has {len} bytes, a sealed value has at least {min}")]
    Truncated {
        /// Decoded length.
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// The cookie was sealed in a format this version does not know.
    #[error("cookie format version {version} is not supported")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The value names a key id that no configured secret has: it was sealed with a secret no
    /// longer listed (or its header was altered).
    #[error("cookie value was sealed with a key that is not configured")]
    UnknownKey,
    /// The value does not authenticate under its key: it was altered, or sealed for a cookie of
    /// another name.
    #[error("cookie value does not authenticate with any configured key")]
    Undecryptable,
    /// The sealed value's own expiry has passed.
    #[error("cookie value expired at {expired_at} (now {now})")]
    Expired {
        /// When it expired.
        expired_at: UnixTime,
        /// The current time.
        now: UnixTime,
    },
    /// The value authenticated but its content does not parse as the expected type (for
    /// example, sealed by an older release with a different layout).
    #[error("cookie content does not parse: {0}")]
    Payload(#[source] serde_json::Error),
    /// A `Set-Cookie` value could not be formed (the settings checked by [`CookieCodec::new`]
    /// rule this out).
    #[error("Set-Cookie value of {len} bytes is not a valid header value")]
    InvalidHeaderValue {
        /// Length of the value.
        len: usize,
    },
    /// The first chunk does not start with a valid chunk count.
    #[error("first cookie chunk has no valid chunk count")]
    MalformedChunkCount,
    /// The chunk count is above the configured maximum.
    #[error("cookie claims {count} chunks, at most {max} are allowed")]
    TooManyChunks {
        /// The claimed count.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A chunk named by the chunk count is missing from the request.
    #[error("cookie chunk {index} is missing")]
    MissingChunk {
        /// Index of the first missing chunk.
        index: usize,
    },
}

impl CookieError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CookieError::Serialize(_) => ErrorKind::CookieSerialize,
            CookieError::AlreadyExpired { .. } => ErrorKind::CookieAlreadyExpired,
            CookieError::TooLarge { .. } => ErrorKind::CookieTooLarge,
            CookieError::NotBase64 => ErrorKind::CookieNotBase64,
            CookieError::Truncated { .. } => ErrorKind::CookieTruncated,
            CookieError::UnsupportedVersion { .. } => ErrorKind::CookieUnsupportedVersion,
            CookieError::UnknownKey => ErrorKind::CookieUnknownKey,
            CookieError::Undecryptable => ErrorKind::CookieUndecryptable,
            CookieError::Expired { .. } => ErrorKind::CookieExpired,
            CookieError::Payload(_) => ErrorKind::CookiePayload,
            CookieError::InvalidHeaderValue { .. } => ErrorKind::CookieInvalidHeaderValue,
            CookieError::MalformedChunkCount => ErrorKind::CookieMalformedChunkCount,
            CookieError::TooManyChunks { .. } => ErrorKind::CookieTooManyChunks,
            CookieError::MissingChunk { .. } => ErrorKind::CookieMissingChunk,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The keys that seal and open cookie values: the first seals, all open. Cheap to clone.
#[derive(Clone)]
pub struct CookieKeys {
    keys: Arc<[SealingKey]>,
}

struct SealingKey {
    id: [u8; KEY_ID_LEN],
    aead: LessSafeKey,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CookieKeys({} keys, ***)", self.keys.len())
    }
}

impl CookieKeys {
    /// Derives one key per secret with HKDF-SHA256. The first secret seals; all open.
    pub fn from_secrets(secrets: &[Secret]) -> Result<Self, CookieConfigError> {
        if secrets.is_empty() {
            return Err(CookieConfigError::NoSecrets);
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (index, secret) in secrets.iter().enumerate() {
            let material = secret.expose().as_bytes();
            if material.len() < MIN_SECRET_BYTES {
                return Err(CookieConfigError::SecretTooShort {
                    index,
                    len: material.len(),
                    min: MIN_SECRET_BYTES,
                });
            }
            keys.push(derive_key(material).ok_or(CookieConfigError::KeyDerivation { index })?);
        }
        Ok(CookieKeys { keys: keys.into() })
    }

    /// How many keys open values (the first of them also seals).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Seals `value` for the cookie named `cookie_name`, valid until `expires_at`, into a
    /// base64url string. The nonce comes from `random`.
    pub fn seal<T: Serialize + ?Sized>(
        &self,
        cookie_name: &str,
        value: &T,
        expires_at: UnixTime,
        random: &mut dyn RandomSource,
    ) -> Result<String, CookieError> {
        // `from_secrets` refuses an empty list, so there is always a sealing key.
        let Some(key) = self.keys.first() else {
            return Err(CookieError::UnknownKey);
        };
        let mut buffer = Vec::with_capacity(512);
        buffer.push(FORMAT_VERSION);
        buffer.extend_from_slice(&key.id);
        let mut nonce = [0u8; NONCE_LEN];
        random.fill_bytes(&mut nonce);
        buffer.extend_from_slice(&nonce);
        buffer.extend_from_slice(&expires_at.as_secs().to_be_bytes());
        serde_json::to_writer(&mut buffer, value).map_err(CookieError::Serialize)?;
        let (header, plaintext) = buffer.split_at_mut(HEADER_LEN);
        let aad = associated_data(header, cookie_name);
        let tag = key
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                plaintext,
            )
            .map_err(|_| CookieError::TooLarge {
                len: plaintext.len(),
                max: MAX_CHUNKS_LIMIT * MAX_COOKIE_BYTES,
            })?;
        buffer.extend_from_slice(tag.as_ref());
        Ok(URL_SAFE_NO_PAD.encode(&buffer))
    }

    /// Opens a value sealed for `cookie_name`, refusing it once its own expiry is at or before
    /// `now`.
    pub fn open<T: DeserializeOwned>(
        &self,
        cookie_name: &str,
        sealed: &str,
        now: UnixTime,
    ) -> Result<T, CookieError> {
        let max = MAX_CHUNKS_LIMIT * MAX_COOKIE_BYTES;
        if sealed.len() > max {
            return Err(CookieError::TooLarge {
                len: sealed.len(),
                max,
            });
        }
        let mut bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| CookieError::NotBase64)?;
        if bytes.len() < MIN_SEALED_BYTES {
            return Err(CookieError::Truncated {
                len: bytes.len(),
                min: MIN_SEALED_BYTES,
            });
        }
        let (header, sealed_part) = bytes.split_at_mut(HEADER_LEN);
        let (versioned_key_id, nonce) = header.split_at(VERSIONED_KEY_ID_LEN);
        let (version, key_id) = versioned_key_id.split_at(1);
        if version != [FORMAT_VERSION] {
            return Err(CookieError::UnsupportedVersion {
                version: version.first().copied().unwrap_or_default(),
            });
        }
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let aad = associated_data(header, cookie_name);
        let mut candidates = self.keys.iter().filter(|key| key.id == key_id);
        let Some(first) = candidates.next() else {
            return Err(CookieError::UnknownKey);
        };
        // Opening overwrites the buffer even when it fails, so a second candidate (two secrets
        // whose 4-byte ids collide) needs a pristine copy.
        let pristine = candidates.clone().next().map(|_| sealed_part.to_vec());
        let mut opened = first
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(&aad),
                sealed_part,
            )
            .ok()
            .map(|plaintext| plaintext.len());
        if let Some(pristine) = pristine {
            for key in candidates {
                if opened.is_some() {
                    break;
                }
                sealed_part.copy_from_slice(&pristine);
                opened = key
                    .aead
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce_bytes),
                        Aad::from(&aad),
                        sealed_part,
                    )
                    .ok()
                    .map(|plaintext| plaintext.len());
            }
        }
        let plaintext_len = opened.ok_or(CookieError::Undecryptable)?;
        let plaintext = sealed_part
            .get(..plaintext_len)
            .ok_or(CookieError::Undecryptable)?;
        let (expiry, json) = plaintext.split_at(EXPIRY_LEN);
        let mut expiry_bytes = [0u8; EXPIRY_LEN];
        expiry_bytes.copy_from_slice(expiry);
        let expired_at = UnixTime::from_secs(u64::from_be_bytes(expiry_bytes));
        if now >= expired_at {
            return Err(CookieError::Expired { expired_at, now });
        }
        serde_json::from_slice(json).map_err(CookieError::Payload)
    }
}

/// Where and how the cookies of one [`CookieCodec`] are set. Build with [`CookieSettings::new`]
/// and the `with_*` methods; [`CookieCodec::new`] checks it. The fields are private so that
/// `Secure` can only be dropped through [`CookieSettings::insecure_allow_plain_http`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    max_chunks: usize,
}

impl CookieSettings {
    /// Settings for a cookie named `name`: `Path=/`, no `Domain`, `Secure`, up to
    /// [`DEFAULT_MAX_CHUNKS`] chunks.
    pub fn new(name: impl Into<String>) -> Self {
        CookieSettings {
            name: name.into(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            max_chunks: DEFAULT_MAX_CHUNKS,
        }
    }

    /// The base name, without a `__Host-`/`__Secure-` prefix (one is added when possible).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Path` attribute; `/` by default.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Domain` attribute; none by default (a host-only cookie).
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether the `Secure` attribute is set: always, unless
    /// [`CookieSettings::insecure_allow_plain_http`] allowed plain HTTP on loopback.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// How many cookies one value may be split into.
    pub fn max_chunks(&self) -> usize {
        self.max_chunks
    }

    /// The same settings for a cookie with another base name (e.g. one pending-login cookie
    /// per browser tab, sharing path, domain and `Secure`).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the `Path` attribute (which drops the `__Host-` prefix unless it is `/`).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the `Domain` attribute, sharing the cookie with subdomains (drops `__Host-`).
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets how many cookies one value may be split into (1 to [`MAX_CHUNKS_LIMIT`]).
    #[must_use]
    pub fn with_max_chunks(mut self, max_chunks: usize) -> Self {
        self.max_chunks = max_chunks;
        self
    }

    /// Leaves out the `Secure` attribute so that cookies work over plain HTTP, for a service
    /// whose public URL (the one the browser uses) is on a loopback host (`localhost`,
    /// `127.0.0.0/8`, `[::1]`); any other host is refused.
    ///
    /// # Security warning
    /// Cookies without `Secure` travel in clear text and can be set by any plain-HTTP page of the
    /// same host. This is for development on one machine only.
    pub fn insecure_allow_plain_http(
        mut self,
        public_url: &url::Url,
    ) -> Result<Self, CookieConfigError> {
        if !crate::issuer::is_loopback_host(public_url) {
            return Err(CookieConfigError::PlainHttpNotLoopback {
                url: public_url.to_string(),
            });
        }
        self.secure = false;
        Ok(self)
    }
}

/// Seals values into `Set-Cookie` headers and opens them from a request's cookies, for one cookie
/// name. Two codecs (session, pending login) may share one [`CookieKeys`].
#[derive(Clone, Debug)]
pub struct CookieCodec {
    keys: CookieKeys,
    settings: CookieSettings,
    name: String,
    attributes: String,
    chunk_capacity: usize,
}

impl CookieCodec {
    /// Checks `settings` and builds the codec.
    pub fn new(keys: CookieKeys, settings: CookieSettings) -> Result<Self, CookieConfigError> {
        let name = effective_name(&settings)?;
        if !settings.path.starts_with('/')
            || !settings
                .path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        {
            return Err(CookieConfigError::InvalidPath {
                path: settings.path.clone(),
            });
        }
        if let Some(domain) = &settings.domain
            && !is_plain_domain(domain)
        {
            return Err(CookieConfigError::InvalidDomain {
                domain: domain.clone(),
            });
        }
        if settings.max_chunks == 0 || settings.max_chunks > MAX_CHUNKS_LIMIT {
            return Err(CookieConfigError::InvalidMaxChunks {
                max_chunks: settings.max_chunks,
                limit: MAX_CHUNKS_LIMIT,
            });
        }
        let mut attributes = format!("; Path={}", settings.path);
        if let Some(domain) = &settings.domain {
            let _ = write!(attributes, "; Domain={domain}");
        }
        // Room for the chunk suffix `_NN`, `=`, the count prefix `NN.` and the longest Max-Age.
        let overhead = name.len()
            + "_NN=NN.".len()
            + attributes.len()
            + "; Max-Age=18446744073709551615; HttpOnly; Secure; SameSite=Lax".len();
        let chunk_capacity = MAX_COOKIE_BYTES.saturating_sub(overhead);
        if chunk_capacity < 64 {
            return Err(CookieConfigError::AttributesTooLong { len: overhead });
        }
        Ok(CookieCodec {
            keys,
            settings,
            name,
            attributes,
            chunk_capacity,
        })
    }

    /// The cookie name as the browser sees it (with any `__Host-`/`__Secure-` prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings this codec was built with.
    pub fn settings(&self) -> &CookieSettings {
        &self.settings
    }

    /// The keys this codec seals and opens with.
    pub fn keys(&self) -> &CookieKeys {
        &self.keys
    }

    /// Seals `value` until `expires_at` and returns the `Set-Cookie` header values to send: the
    /// cookie (or its chunks) with `Max-Age` counting down to `expires_at`, followed by clearing
    /// headers for every cookie of this codec in `request` that the new value does not use.
    pub fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        expires_at: UnixTime,
        now: UnixTime,
        random: &mut dyn RandomSource,
        request: &RequestCookies<'_>,
    ) -> Result<Vec<HeaderValue>, CookieError> {
        if expires_at <= now {
            return Err(CookieError::AlreadyExpired { expires_at, now });
        }
        let sealed = self.keys.seal(&self.name, value, expires_at, random)?;
        let max_age = expires_at.duration_since(now).as_secs();
        let mut headers = Vec::new();
        let mut used = Vec::new();
        if sealed.len() <= self.chunk_capacity {
            headers.push(self.set_cookie(&self.name, &sealed, max_age)?);
            used.push(self.name.clone());
        } else {
            let max = self.chunk_capacity.saturating_mul(self.settings.max_chunks);
            if sealed.len() > max {
                return Err(CookieError::TooLarge {
                    len: sealed.len(),
                    max,
                });
            }
            let pieces: Vec<&str> = split_ascii(&sealed, self.chunk_capacity);
            for (index, piece) in pieces.iter().enumerate() {
                let chunk_name = format!("{}_{index}", self.name);
                let value = if index == 0 {
                    format!("{}.{piece}", pieces.len())
                } else {
                    (*piece).to_owned()
                };
                headers.push(self.set_cookie(&chunk_name, &value, max_age)?);
                used.push(chunk_name);
            }
        }
        for stale in self.own_cookie_names(request) {
            if !used.iter().any(|name| name == stale) {
                headers.push(self.clearing_cookie(stale)?);
            }
        }
        Ok(headers)
    }

    /// Opens the value carried by `request`: `Ok(None)` when the request has none of this
    /// codec's cookies, an error when they are present but do not open.
    pub fn decode<T: DeserializeOwned>(
        &self,
        request: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Option<T>, CookieError> {
        if let Some(sealed) = request.get(&self.name) {
            return self.keys.open(&self.name, sealed, now).map(Some);
        }
        let Some(first) = request.get(&format!("{}_0", self.name)) else {
            return Ok(None);
        };
        let (count, first_piece) = first
            .split_once('.')
            .ok_or(CookieError::MalformedChunkCount)?;
        if count.is_empty() || count.len() > 2 || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CookieError::MalformedChunkCount);
        }
        let count: usize = count
            .parse()
            .map_err(|_| CookieError::MalformedChunkCount)?;
        if count == 0 {
            return Err(CookieError::MalformedChunkCount);
        }
        if count > self.settings.max_chunks {
            return Err(CookieError::TooManyChunks {
                count,
                max: self.settings.max_chunks,
            });
        }
        let mut sealed = String::with_capacity(count * self.chunk_capacity);
        sealed.push_str(first_piece);
        for index in 1..count {
            let piece = request
                .get(&format!("{}_{index}", self.name))
                .ok_or(CookieError::MissingChunk { index })?;
            sealed.push_str(piece);
        }
        self.keys.open(&self.name, &sealed, now).map(Some)
    }

    /// `Set-Cookie` header values that delete every cookie of this codec present in `request`
    /// (the single cookie and all chunks, stale ones included). When the request carries none,
    /// the base name is cleared anyway so that logout always says so.
    pub fn clear(&self, request: &RequestCookies<'_>) -> Result<Vec<HeaderValue>, CookieError> {
        let mut names = self.own_cookie_names(request);
        if names.is_empty() {
            names.push(&self.name);
        }
        names
            .into_iter()
            .map(|name| self.clearing_cookie(name))
            .collect()
    }

    /// The distinct names in `request` that belong to this codec: its name, or its name followed
    /// by `_` and a chunk index.
    fn own_cookie_names<'r>(&self, request: &RequestCookies<'r>) -> Vec<&'r str> {
        let mut names: Vec<&'r str> = Vec::new();
        for name in request.names() {
            let ours = name == self.name
                || name
                    .strip_prefix(self.name.as_str())
                    .and_then(|rest| rest.strip_prefix('_'))
                    .is_some_and(|index| {
                        !index.is_empty()
                            && index.len() <= 2
                            && index.bytes().all(|b| b.is_ascii_digit())
                    });
            if ours && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    fn set_cookie(
        &self,
        name: &str,
        value: &str,
        max_age: u64,
    ) -> Result<HeaderValue, CookieError> {
        let mut header = format!("{name}={value}{}; Max-Age={max_age}", self.attributes);
        self.push_flags(&mut header);
        to_header_value(header)
    }

    fn clearing_cookie(&self, name: &str) -> Result<HeaderValue, CookieError> {
        let mut header = format!("{name}={}; Max-Age=0", self.attributes);
        self.push_flags(&mut header);
        to_header_value(header)
    }

    fn push_flags(&self, header: &mut String) {
        header.push_str("; HttpOnly");
        if self.settings.secure {
            header.push_str("; Secure");
        }
        header.push_str("; SameSite=Lax");
    }
}

/// The cookies of a request, parsed from its `Cookie` header(s) without failing: pairs without
/// `=`, names that are not tokens and values that are not UTF-8 are skipped, and at most
/// [`MAX_COOKIE_HEADER_BYTES`] and [`MAX_REQUEST_COOKIES`] cookies are read. When a name repeats,
/// [`RequestCookies::get`] returns its first value (browsers send the most specific path first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestCookies<'a> {
    /// No cookies at all.
    pub fn empty() -> Self {
        RequestCookies::default()
    }

    /// The cookies of every `Cookie` header in `headers`.
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        Self::from_header_values(headers.get_all(http::header::COOKIE))
    }

    /// The cookies of the given `Cookie` header values.
    pub fn from_header_values(values: impl IntoIterator<Item = &'a HeaderValue>) -> Self {
        let mut cookies = RequestCookies::default();
        let mut budget = MAX_COOKIE_HEADER_BYTES;
        for value in values {
            let bytes = value.as_bytes();
            let readable = bytes.get(..budget.min(bytes.len())).unwrap_or_default();
            budget -= readable.len();
            cookies.add_from(readable);
            if budget == 0 || cookies.pairs.len() >= MAX_REQUEST_COOKIES {
                break;
            }
        }
        cookies
    }

    /// The cookies of one `Cookie` header value given as text.
    pub fn parse(header: &'a str) -> Self {
        let bytes = header.as_bytes();
        let mut cookies = RequestCookies::default();
        cookies.add_from(
            bytes
                .get(..MAX_COOKIE_HEADER_BYTES.min(bytes.len()))
                .unwrap_or_default(),
        );
        cookies
    }

    /// The first value of the cookie named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, value)| *value)
    }

    /// The names of all cookies, in request order, repeats included.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pairs.iter().map(|(name, _)| *name)
    }

    /// How many cookies were read.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no cookie was read.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn add_from(&mut self, header: &'a [u8]) {
        // Nearly every header is UTF-8 as a whole, and `str::split` finds `;` much faster than a
        // byte-by-byte scan; a header with some non-UTF-8 cookie falls back to pair by pair.
        match std::str::from_utf8(header) {
            Ok(text) => {
                for pair in text.split(';') {
                    if !self.add_pair(pair) {
                        return;
                    }
                }
            }
            Err(_) => {
                for pair in header.split(|b| *b == b';') {
                    if let Ok(pair) = std::str::from_utf8(pair)
                        && !self.add_pair(pair)
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Adds one `name=value` pair if it is well formed; `false` once the cookie limit is reached.
    fn add_pair(&mut self, pair: &'a str) -> bool {
        if self.pairs.len() >= MAX_REQUEST_COOKIES {
            return false;
        }
        if let Some((name, value)) = pair.split_once('=') {
            let name = name.trim_ascii();
            let value = value.trim_ascii();
            let value = value
                .strip_prefix('"')
                .and_then(|inner| inner.strip_suffix('"'))
                .unwrap_or(value);
            if !name.is_empty() && name.bytes().all(is_token_byte) {
                self.pairs.push((name, value));
            }
        }
        true
    }
}

/// The key and key id for one secret; `None` only if the provider refuses a 32-byte AES key.
fn derive_key(material: &[u8]) -> Option<SealingKey> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(material);
    let mut key = [0u8; 32];
    let mut id = [0u8; KEY_ID_LEN];
    // Expanding a few bytes from SHA-256 is always within HKDF's 255-block limit, and a 32-byte
    // key is what AES-256 takes; neither step can fail.
    if let Ok(okm) = prk.expand(&[HKDF_INFO_KEY], Len(key.len())) {
        let _ = okm.fill(&mut key);
    }
    if let Ok(okm) = prk.expand(&[HKDF_INFO_KEY_ID], Len(id.len())) {
        let _ = okm.fill(&mut id);
    }
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM_SIV, &key).ok()?);
    Some(SealingKey { id, aead })
}

fn associated_data(header: &[u8], cookie_name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(VERSIONED_KEY_ID_LEN + cookie_name.len());
    aad.extend_from_slice(header.get(..VERSIONED_KEY_ID_LEN).unwrap_or_default());
    aad.extend_from_slice(cookie_name.as_bytes());
    aad
}

/// The name the browser sees: `__Host-` when Secure, `Path=/` and no Domain; `__Secure-` when
/// only Secure; the bare name otherwise.
fn effective_name(settings: &CookieSettings) -> Result<String, CookieConfigError> {
    let name = settings.name.as_str();
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(CookieConfigError::InvalidName {
            name: name.to_owned(),
        });
    }
    let prefixed = name.starts_with("__Host-") || name.starts_with("__Secure-");
    if prefixed && !settings.secure {
        return Err(CookieConfigError::PrefixNeedsSecure {
            name: name.to_owned(),
        });
    }
    if prefixed || !settings.secure {
        return Ok(name.to_owned());
    }
    if settings.path == "/" && settings.domain.is_none() {
        Ok(format!("__Host-{name}"))
    } else {
        Ok(format!("__Secure-{name}"))
    }
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn is_plain_domain(domain: &str) -> bool {
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Splits ASCII text into pieces of at most `size` bytes (`size` > 0).
fn split_ascii(text: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        // `text` is base64url, so every byte offset is a character boundary.
        let Some((piece, tail)) = rest.split_at_checked(size.max(1).min(rest.len())) else {
            break;
        };
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// A `Set-Cookie` value, marked sensitive so that HTTP/2 never indexes it and well-behaved loggers
/// leave it out.
fn to_header_value(header: String) -> Result<HeaderValue, CookieError> {
    let len = header.len();
    let mut value =
        HeaderValue::try_from(header).map_err(|_| CookieError::InvalidHeaderValue { len })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danger::InsecureSeededRandom;
    use serde::Deserialize;

    const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
    const LATER: UnixTime = UnixTime::from_secs(1_700_003_600);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Payload {
        user: String,
        blob: String,
    }

    fn payload(blob_len: usize) -> Payload {
        Payload {
            user: "alice".into(),
            blob: "x".repeat(blob_len),
        }
    }

    fn keys(secrets: &[&str]) -> CookieKeys {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        CookieKeys::from_secrets(&secrets).unwrap()
    }

    const SECRET_A: &str = "correct horse battery staple, forty bytes";
    const SECRET_B: &str = "another secret passphrase of 32+ bytes!!";

    fn loopback() -> url::Url {
        url::Url::parse("http://127.0.0.1:8080/").unwrap()
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for allowed in [
            "http://localhost:5000/",
            "http://127.0.0.2/",
            "http://[::1]:8/",
        ] {
            let url = url::Url::parse(allowed).unwrap();
            let settings = CookieSettings::new("s")
                .insecure_allow_plain_http(&url)
                .unwrap();
            assert!(!settings.secure(), "{allowed}");
        }
        for refused in [
            "http://mlflow.example.com/",
            "http://10.0.0.1/",
            "http://localhost.evil/",
        ] {
            let url = url::Url::parse(refused).unwrap();
            let err = CookieSettings::new("s")
                .insecure_allow_plain_http(&url)
                .unwrap_err();
            assert_eq!(err.code(), "cookie_plain_http_not_loopback", "{refused}");
        }
    }

    fn codec() -> CookieCodec {
        CookieCodec::new(keys(&[SECRET_A]), CookieSettings::new("oidc_session")).unwrap()
    }

    fn strings(headers: &[HeaderValue]) -> Vec<String> {
        headers
            .iter()
            .map(|h| h.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `Cookie` header a browser would send back after receiving `set_cookies`.
    fn browser_cookie_header(set_cookies: &[HeaderValue]) -> String {
        set_cookies
            .iter()
            .map(|h| h.to_str().unwrap())
            .filter(|h| !h.contains("Max-Age=0"))
            .map(|h| h.split(';').next().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn secrets_are_checked() {
        assert_eq!(
            CookieKeys::from_secrets(&[]).unwrap_err(),
            CookieConfigError::NoSecrets
        );
        let short =
            CookieKeys::from_secrets(&[Secret::new(SECRET_A), Secret::new("short")]).unwrap_err();
        assert_eq!(
            short,
            CookieConfigError::SecretTooShort {
                index: 1,
                len: 5,
                min: 32
            }
        );
        assert_eq!(short.code(), "cookie_secret_too_short");
        assert_eq!(
            format!("{:?}", keys(&[SECRET_A])),
            "CookieKeys(1 keys, ***)"
        );
    }

    #[test]
    fn seal_and_open_round_trip() {
        let keys = keys(&[SECRET_A]);
        let mut random = InsecureSeededRandom::new(1);
        let sealed = keys.seal("c", &payload(10), LATER, &mut random).unwrap();
        let opened: Payload = keys.open("c", &sealed, NOW).unwrap();
        assert_eq!(opened, payload(10));
        // A second seal of the same value uses a new nonce.
        let again = keys.seal("c", &payload(10), LATER, &mut random).unwrap();
        assert_ne!(sealed, again);
    }

    #[test]
    fn opening_checks_the_sealed_expiry() {
        let keys = keys(&[SECRET_A]);
        let sealed = keys
            .seal("c", &1u8, LATER, &mut InsecureSeededRandom::new(1))
            .unwrap();
        assert_eq!(
            keys.open::<u8>(
                "c",
                &sealed,
                LATER.saturating_sub(std::time::Duration::from_secs(1))
            )
            .unwrap(),
            1
        );
        match keys.open::<u8>("c", &sealed, LATER) {
            Err(CookieError::Expired { expired_at, now }) => {
                assert_eq!((expired_at, now), (LATER, LATER));
            }
            other => panic!("expected expiry, got {other:?}"),
        }
    }

    #[test]
    fn values_are_bound_to_the_cookie_name() {
        let keys = keys(&[SECRET_A]);
        let sealed = keys
            .seal("session", &1u8, LATER, &mut InsecureSeededRandom::new(1))
            .unwrap();
        let err = keys.open::<u8>("pending", &sealed, NOW).unwrap_err();
        assert_eq!(err.code(), "cookie_undecryptable");
    }

    #[test]
    fn first_key_seals_and_all_keys_open() {
        let old = keys(&[SECRET_B]);
        let rotated = keys(&[SECRET_A, SECRET_B]);
        let mut random = InsecureSeededRandom::new(3);
        let sealed_by_old = old.seal("c", &7u32, LATER, &mut random).unwrap();
        assert_eq!(rotated.open::<u32>("c", &sealed_by_old, NOW).unwrap(), 7);
        let sealed_by_new = rotated.seal("c", &8u32, LATER, &mut random).unwrap();
        assert_eq!(
            old.open::<u32>("c", &sealed_by_new, NOW)
                .unwrap_err()
                .code(),
            "cookie_unknown_key"
        );
        assert_eq!(
            keys(&[SECRET_A])
                .open::<u32>("c", &sealed_by_new, NOW)
                .unwrap(),
            8
        );
    }

    #[test]
    fn colliding_key_ids_are_each_tried() {
        let a = keys(&[SECRET_A]);
        let sealed = a
            .seal("c", &9u8, LATER, &mut InsecureSeededRandom::new(4))
            .unwrap();
        let key_a = derive_key(SECRET_A.as_bytes()).unwrap();
        let key_b = derive_key(SECRET_B.as_bytes()).unwrap();
        assert_ne!(key_a.id, key_b.id);
        // Key B posing under key A's id is tried first, fails, and key A still opens.
        let impostor = SealingKey {
            id: key_a.id,
            aead: key_b.aead,
        };
        let colliding = CookieKeys {
            keys: vec![impostor, key_a].into(),
        };
        assert_eq!(colliding.open::<u8>("c", &sealed, NOW).unwrap(), 9);
    }

    #[test]
    fn malformed_values_are_typed_errors() {
        let keys = keys(&[SECRET_A]);
        assert_eq!(
            keys.open::<u8>("c", "not base64!", NOW).unwrap_err().code(),
            "cookie_not_base64"
        );
        assert_eq!(
            keys.open::<u8>("c", "", NOW).unwrap_err().code(),
            "cookie_truncated"
        );
        let mut sealed = URL_SAFE_NO_PAD
            .decode(
                keys.seal("c", &1u8, LATER, &mut InsecureSeededRandom::new(1))
                    .unwrap(),
            )
            .unwrap();
        sealed[0] = 9;
        match keys.open::<u8>("c", &URL_SAFE_NO_PAD.encode(&sealed), NOW) {
            Err(CookieError::UnsupportedVersion { version: 9 }) => {}
            other => panic!("expected version error, got {other:?}"),
        }
        let huge = "A".repeat(MAX_CHUNKS_LIMIT * MAX_COOKIE_BYTES + 1);
        assert_eq!(
            keys.open::<u8>("c", &huge, NOW).unwrap_err().code(),
            "cookie_too_large"
        );
        let wrong_type = keys
            .seal("c", "text", LATER, &mut InsecureSeededRandom::new(1))
            .unwrap();
        assert_eq!(
            keys.open::<u8>("c", &wrong_type, NOW).unwrap_err().code(),
            "cookie_payload"
        );
    }

    #[test]
    fn host_prefix_and_attributes() {
        let codec = codec();
        assert_eq!(codec.name(), "__Host-oidc_session");
        let headers = codec
            .encode(
                &payload(10),
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        assert!(headers.iter().all(HeaderValue::is_sensitive));
        let headers = strings(&headers);
        assert_eq!(headers.len(), 1);
        let header = &headers[0];
        assert!(header.starts_with("__Host-oidc_session="), "{header}");
        assert!(
            header.ends_with("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"),
            "{header}"
        );
    }

    #[test]
    fn prefix_follows_the_attributes() {
        let k = keys(&[SECRET_A]);
        let with_domain = CookieCodec::new(
            k.clone(),
            CookieSettings::new("s").with_domain("example.com"),
        )
        .unwrap();
        assert_eq!(with_domain.name(), "__Secure-s");
        let with_path =
            CookieCodec::new(k.clone(), CookieSettings::new("s").with_path("/app")).unwrap();
        assert_eq!(with_path.name(), "__Secure-s");
        let plain = CookieCodec::new(
            k.clone(),
            CookieSettings::new("s")
                .insecure_allow_plain_http(&loopback())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(plain.name(), "s");
        let header = strings(
            &plain
                .encode(
                    &1u8,
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(1),
                    &RequestCookies::empty(),
                )
                .unwrap(),
        )
        .remove(0);
        assert!(!header.contains("Secure"), "{header}");
        assert!(header.contains("HttpOnly; SameSite=Lax"), "{header}");
        let domain_header = strings(
            &with_domain
                .encode(
                    &1u8,
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(1),
                    &RequestCookies::empty(),
                )
                .unwrap(),
        )
        .remove(0);
        assert!(
            domain_header.contains(
                "; Path=/; Domain=example.com; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
            ),
            "{domain_header}"
        );
    }

    #[test]
    fn invalid_settings_are_refused() {
        let k = keys(&[SECRET_A]);
        let cases = [
            (CookieSettings::new(""), "cookie_invalid_name"),
            (CookieSettings::new("a b"), "cookie_invalid_name"),
            (CookieSettings::new("a;b"), "cookie_invalid_name"),
            (
                CookieSettings::new("__Host-s")
                    .insecure_allow_plain_http(&loopback())
                    .unwrap(),
                "cookie_prefix_needs_secure",
            ),
            (
                CookieSettings::new("s").with_path("app"),
                "cookie_invalid_path",
            ),
            (
                CookieSettings::new("s").with_path("/a;b"),
                "cookie_invalid_path",
            ),
            (
                CookieSettings::new("s").with_domain("a..b"),
                "cookie_invalid_domain",
            ),
            (
                CookieSettings::new("s").with_domain("a.b;x"),
                "cookie_invalid_domain",
            ),
            (
                CookieSettings::new("s").with_max_chunks(0),
                "cookie_invalid_max_chunks",
            ),
            (
                CookieSettings::new("s").with_max_chunks(21),
                "cookie_invalid_max_chunks",
            ),
            (
                CookieSettings::new("s").with_path(format!("/{}", "p".repeat(4100))),
                "cookie_attributes_too_long",
            ),
        ];
        for (settings, code) in cases {
            let debug = format!("{settings:?}");
            assert_eq!(
                CookieCodec::new(k.clone(), settings).unwrap_err().code(),
                code,
                "{debug}"
            );
        }
    }

    #[test]
    fn large_values_are_chunked_under_the_cookie_limit_and_joined_back() {
        let codec = codec();
        let value = payload(9_000);
        let headers = codec
            .encode(
                &value,
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        let texts = strings(&headers);
        assert_eq!(
            texts.len(),
            4,
            "9 KB of JSON seals into 12 KB of base64: 4 chunks"
        );
        for (index, text) in texts.iter().enumerate() {
            assert!(
                text.len() <= MAX_COOKIE_BYTES,
                "chunk {index} has {} bytes",
                text.len()
            );
            assert!(
                text.starts_with(&format!("__Host-oidc_session_{index}=")),
                "{text}"
            );
        }
        assert!(texts[0].starts_with("__Host-oidc_session_0=4."));
        let cookie_header = browser_cookie_header(&headers);
        let request = RequestCookies::parse(&cookie_header);
        assert_eq!(codec.decode::<Payload>(&request, NOW).unwrap(), Some(value));
    }

    #[test]
    fn too_large_values_are_refused() {
        let codec = CookieCodec::new(
            keys(&[SECRET_A]),
            CookieSettings::new("s").with_max_chunks(2),
        )
        .unwrap();
        let err = codec
            .encode(
                &payload(9_000),
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap_err();
        assert_eq!(err.code(), "cookie_too_large");
        let expired = codec
            .encode(
                &1u8,
                NOW,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap_err();
        assert_eq!(expired.code(), "cookie_already_expired");
    }

    #[test]
    fn encoding_clears_stale_chunks_of_a_larger_previous_value() {
        let codec = codec();
        let big = codec
            .encode(
                &payload(9_000),
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        let big_header = browser_cookie_header(&big);
        let request = RequestCookies::parse(&big_header);
        let medium = strings(
            &codec
                .encode(
                    &payload(4_000),
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(2),
                    &request,
                )
                .unwrap(),
        );
        assert_eq!(medium.len(), 4, "two chunks, two clearings: {medium:?}");
        assert!(medium[0].starts_with("__Host-oidc_session_0=2."));
        assert!(medium[1].starts_with("__Host-oidc_session_1="));
        assert_eq!(
            medium[2],
            "__Host-oidc_session_2=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        assert!(medium[3].starts_with("__Host-oidc_session_3=; "));

        let small = strings(
            &codec
                .encode(
                    &payload(1),
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(3),
                    &request,
                )
                .unwrap(),
        );
        assert_eq!(
            small.len(),
            5,
            "one cookie, four chunk clearings: {small:?}"
        );
        assert!(small[0].starts_with("__Host-oidc_session="));
        assert!(
            small[1..]
                .iter()
                .all(|h| h.contains("=; Path=/; Max-Age=0"))
        );
    }

    #[test]
    fn chunked_value_replaces_an_earlier_single_cookie() {
        let codec = codec();
        let request = RequestCookies::parse("__Host-oidc_session=old; other=1");
        let headers = strings(
            &codec
                .encode(
                    &payload(5_000),
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(1),
                    &request,
                )
                .unwrap(),
        );
        assert_eq!(
            headers.last().unwrap(),
            "__Host-oidc_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn clear_removes_every_own_cookie() {
        let codec = codec();
        let request = RequestCookies::parse(
            "__Host-oidc_session_0=2.a; __Host-oidc_session_1=b; __Host-oidc_session_7=z; __Host-oidc_session_x=1; __Host-oidc_sessionX=1; other=2",
        );
        let cleared = strings(&codec.clear(&request).unwrap());
        assert_eq!(
            cleared
                .iter()
                .map(|h| h.split('=').next().unwrap())
                .collect::<Vec<_>>(),
            [
                "__Host-oidc_session_0",
                "__Host-oidc_session_1",
                "__Host-oidc_session_7"
            ]
        );
        let nothing_present = strings(&codec.clear(&RequestCookies::empty()).unwrap());
        assert_eq!(
            nothing_present,
            ["__Host-oidc_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
        );
    }

    #[test]
    fn decoding_reports_absent_and_broken_chunks() {
        let codec = codec();
        assert_eq!(
            codec
                .decode::<u8>(&RequestCookies::parse("other=1"), NOW)
                .unwrap(),
            None
        );
        let cases = [
            ("__Host-oidc_session_0=abc", "cookie_malformed_chunk_count"),
            (
                "__Host-oidc_session_0=0.abc",
                "cookie_malformed_chunk_count",
            ),
            (
                "__Host-oidc_session_0=x.abc",
                "cookie_malformed_chunk_count",
            ),
            (
                "__Host-oidc_session_0=999.abc",
                "cookie_malformed_chunk_count",
            ),
            ("__Host-oidc_session_0=9.abc", "cookie_too_many_chunks"),
            (
                "__Host-oidc_session_0=3.abc; __Host-oidc_session_1=def",
                "cookie_missing_chunk",
            ),
            (
                "__Host-oidc_session_0=2.abcd; __Host-oidc_session_1=efgh",
                "cookie_truncated",
            ),
            ("__Host-oidc_session=%%%", "cookie_not_base64"),
        ];
        for (header, code) in cases {
            let err = codec
                .decode::<u8>(&RequestCookies::parse(header), NOW)
                .unwrap_err();
            assert_eq!(err.code(), code, "{header}");
        }
    }

    #[test]
    fn codecs_with_other_names_do_not_open_each_other() {
        let k = keys(&[SECRET_A]);
        let session = CookieCodec::new(k.clone(), CookieSettings::new("session")).unwrap();
        let pending = CookieCodec::new(k, CookieSettings::new("pending")).unwrap();
        let headers = pending
            .encode(
                &5u8,
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        // Present the pending-login value under the session cookie's name.
        let value = browser_cookie_header(&headers)
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        let forged = format!("{}={value}", session.name());
        let err = session
            .decode::<u8>(&RequestCookies::parse(&forged), NOW)
            .unwrap_err();
        assert_eq!(err.code(), "cookie_undecryptable");
    }

    #[test]
    fn request_cookies_are_parsed_robustly() {
        let cookies = RequestCookies::parse(
            " a=1;b=2 ; junk; =nameless; c=\"quoted\"; a=second; bad name=3; d=; e==x ;;",
        );
        assert_eq!(cookies.get("a"), Some("1"), "first duplicate wins");
        assert_eq!(cookies.get("b"), Some("2"));
        assert_eq!(cookies.get("c"), Some("quoted"));
        assert_eq!(cookies.get("d"), Some(""));
        assert_eq!(cookies.get("e"), Some("=x"));
        assert_eq!(cookies.get("junk"), None);
        assert_eq!(cookies.get("bad name"), None);
        assert_eq!(
            cookies.names().collect::<Vec<_>>(),
            ["a", "b", "c", "a", "d", "e"]
        );

        let mut headers = HeaderMap::new();
        headers.append(http::header::COOKIE, HeaderValue::from_static("x=1"));
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_bytes(b"bin=\xff\xfe; y=2").unwrap(),
        );
        let from_map = RequestCookies::from_headers(&headers);
        assert_eq!(from_map.get("x"), Some("1"));
        assert_eq!(from_map.get("bin"), None, "non-UTF-8 values are skipped");
        assert_eq!(from_map.get("y"), Some("2"));
        assert_eq!(from_map.len(), 2);
    }

    #[test]
    fn huge_cookie_headers_are_bounded() {
        let many = (0..10_000)
            .map(|i| format!("c{i}=v"))
            .collect::<Vec<_>>()
            .join("; ");
        let cookies = RequestCookies::parse(&many);
        assert_eq!(cookies.len(), MAX_REQUEST_COOKIES);
        let long = format!("a={}; b=1", "v".repeat(200_000));
        let cookies = RequestCookies::parse(&long);
        assert_eq!(cookies.get("b"), None, "only the first 64 KiB are read");
        assert_eq!(
            cookies.get("a").map(str::len),
            Some(MAX_COOKIE_HEADER_BYTES - 2)
        );
    }
}
