//! What can go wrong: a configuration refused when keys or a codec are built, and a value that
//! cannot be sealed into or opened from cookies. Each error has a stable code.

use crate::ErrorKind;
use crate::time::UnixTime;

/// A problem with the cookie configuration, found when building
/// [`CookieKeys`](super::CookieKeys) or a [`CookieCodec`](super::CookieCodec).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieConfigError {
    /// No secret was given.
    #[error("no cookie secret configured")]
    NoSecrets,
    /// A secret is shorter than [`MIN_SECRET_BYTES`](super::MIN_SECRET_BYTES).
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
    /// The chunk limit is zero or above [`MAX_CHUNKS_LIMIT`](super::MAX_CHUNKS_LIMIT).
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
    /// A `Set-Cookie` value could not be formed (the settings checked by
    /// [`CookieCodec::new`](super::CookieCodec::new) rule this out).
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
