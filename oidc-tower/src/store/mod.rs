//! Server-side session stores: where sessions live when the cookie carries only a handle.
//!
//! The cookie holds a [`SessionHandle`]: a random session id and a random per-session key. The
//! store sees neither. It is addressed by [`StoreKey`]s (SHA-256 digests of the session id, of the
//! subject, of the provider session id) and holds only ciphertext sealed with the per-session key,
//! so a dump of Redis reveals no token, no cookie value and no user identifier.
//!
//! Three pieces:
//! - [`SessionStore`]: the storage contract (opaque bytes, TTLs, revocation tags, expiring
//!   locks shared by replicas), implemented
//!   by [`MemoryStore`] (one process, bounded, expiring) and [`RedisStore`] (shared by replicas).
//! - [`SessionVault`]: sealing and opening on top of any store; this is what layers call.
//! - [`StoreError`]: a store that cannot answer says so ([`StoreError::Unavailable`],
//!   [`StoreError::TimedOut`]); it is never reported as "no session", so an outage does not log
//!   everyone out.
//!
//! ```
//! use std::time::Duration;
//! use oidc_core::danger::InsecureSeededRandom;
//! use oidc_tower::store::{MemoryStore, SessionTags, SessionVault};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), oidc_tower::store::StoreError> {
//! let vault = SessionVault::new(MemoryStore::new(10_000));
//! let mut random = InsecureSeededRandom::new(1); // tests only: pass an OS generator in production
//! let tags = SessionTags::new("https://issuer.example").subject("alice").provider_session("sid-1");
//! let handle = vault.create(&mut random, b"tokens", &tags, Duration::from_secs(3600)).await?;
//! assert_eq!(vault.load(&handle).await?.as_deref(), Some(&b"tokens"[..]));
//!
//! // Back-channel logout for the provider session ends the session on every replica.
//! assert_eq!(vault.revoke_provider_session("https://issuer.example", "sid-1").await?, 1);
//! assert_eq!(vault.load(&handle).await?, None);
//! # Ok(())
//! # }
//! ```

mod memory;
mod redis;
mod vault;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use oidc_core::ErrorKind;

pub use self::memory::MemoryStore;
pub use self::redis::{RedisStore, RedisStoreConfig};
pub use self::vault::{HandleError, SessionHandle, SessionTags, SessionVault};

/// Storage for sealed sessions, shared by every request (and, for Redis, every replica).
///
/// Values are opaque bytes that the store never interprets. Each saved value may carry tags
/// (the hashed subject and provider session id); [`SessionStore::delete_tagged`] removes every
/// live session carrying a tag, which is how back-channel logout reaches sessions it has no
/// cookie for. Tag indexes expire no earlier than the sessions they point to.
///
/// Implementations must report an unreachable or slow backend as an error, never as `Ok(None)`.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The value saved under `key`, or `None` when there is none or it expired.
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Saves `value` under `key` for `ttl`, replacing any previous value, and adds `key` to the
    /// index of each tag in `tags`.
    async fn save(
        &self,
        key: &StoreKey,
        value: &[u8],
        tags: &[StoreKey],
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Removes the value under `key`; removing a missing key is not an error.
    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError>;

    /// Removes every live value saved with `tag` and the tag's index; returns how many values
    /// were removed.
    async fn delete_tagged(&self, tag: &StoreKey) -> Result<usize, StoreError>;

    /// Takes the lock `name` for `ttl` with `token` unless someone else holds it: `true` when
    /// taken. The lock frees itself after `ttl`, so a holder that dies never blocks the others
    /// for longer. Every replica sharing the store sees the same locks.
    async fn try_lock(
        &self,
        name: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Releases the lock `name` if it is still held with `token`: `true` when it was. A lock
    /// that expired and was taken by someone else is left to them.
    async fn unlock(&self, name: &StoreKey, token: &LockToken) -> Result<bool, StoreError>;
}

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).load(key).await
    }

    async fn save(
        &self,
        key: &StoreKey,
        value: &[u8],
        tags: &[StoreKey],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        (**self).save(key, value, tags, ttl).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        (**self).delete(key).await
    }

    async fn delete_tagged(&self, tag: &StoreKey) -> Result<usize, StoreError> {
        (**self).delete_tagged(tag).await
    }

    async fn try_lock(
        &self,
        name: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        (**self).try_lock(name, token, ttl).await
    }

    async fn unlock(&self, name: &StoreKey, token: &LockToken) -> Result<bool, StoreError> {
        (**self).unlock(name, token).await
    }
}

/// Proof of holding a lock: random bytes only the holder knows, so only it can release it.
///
/// `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct LockToken([u8; 16]);

impl LockToken {
    /// A fresh token drawn from `random`.
    pub fn generate(random: &mut dyn oidc_core::RandomSource) -> Self {
        let mut bytes = [0u8; 16];
        random.fill_bytes(&mut bytes);
        LockToken(bytes)
    }

    /// The raw token bytes, as stored.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockToken(<redacted>)")
    }
}

/// A SHA-256 digest naming a session or a revocation tag inside a store.
///
/// Digests are domain-separated, so a subject can never collide with a session id, and the
/// store learns neither cookie ids nor user identifiers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// The key under which the session with this raw id is stored.
    pub fn for_session_id(session_id: &[u8]) -> Self {
        Self::digest(&[b"oidc-tower session v1", session_id])
    }

    /// The tag shared by every session of `subject` at `issuer`.
    pub fn for_subject(issuer: &str, subject: &str) -> Self {
        Self::digest(&[
            b"oidc-tower subject v1",
            issuer.as_bytes(),
            subject.as_bytes(),
        ])
    }

    /// The tag shared by every session opened under the provider session `sid` at `issuer`.
    pub fn for_provider_session(issuer: &str, sid: &str) -> Self {
        Self::digest(&[b"oidc-tower sid v1", issuer.as_bytes(), sid.as_bytes()])
    }

    /// The lock that lets one replica at a time refresh the tokens of the session stored under
    /// `session` (see [`SessionStore::try_lock`]).
    pub fn for_refresh_of(session: &StoreKey) -> Self {
        Self::digest(&[b"oidc-tower refresh lock v1", session.as_bytes()])
    }

    /// The raw 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal form (64 characters), used in Redis key names.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Parses the form written by [`StoreKey::to_hex`]; `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = hex_value(*pair.first()?)?;
            let low = hex_value(*pair.get(1)?)?;
            *slot = (high << 4) | low;
        }
        Some(StoreKey(out))
    }

    fn digest(parts: &[&[u8]]) -> Self {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in parts {
            // Length-prefix every part so that ("ab", "c") and ("a", "bc") differ.
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        StoreKey(out)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not secret, but eight hex digits are enough to correlate log lines.
        let hex = self.to_hex();
        write!(f, "StoreKey({}…)", hex.get(..8).unwrap_or_default())
    }
}

/// Why a session store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached (connection refused, reset, or reconnecting). The session
    /// may well exist: answer 503, do not treat the user as signed out.
    #[error("session store {backend} is unavailable: {detail}")]
    Unavailable {
        /// Which backend, e.g. `"redis"`.
        backend: &'static str,
        /// The backend's own description of the failure.
        detail: String,
    },
    /// The backend did not answer within the configured command timeout.
    #[error("session store {backend} did not answer within {after:?}")]
    TimedOut {
        /// Which backend, e.g. `"redis"`.
        backend: &'static str,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The backend answered with an error or a reply of the wrong type.
    #[error("session store {backend} rejected the command: {detail}")]
    Backend {
        /// Which backend, e.g. `"redis"`.
        backend: &'static str,
        /// The backend's own description of the failure.
        detail: String,
    },
    /// The store configuration is unusable (for example a malformed Redis URL).
    #[error("session store configuration is invalid: {detail}")]
    Config {
        /// What is wrong with it.
        detail: String,
    },
    /// The stored ciphertext does not authenticate under the handle's key: it was modified, or
    /// the handle does not belong to it.
    #[error("stored session failed authentication (tampered or wrong key)")]
    Tampered,
    /// The stored value was written in a format this version does not read.
    #[error("stored session has unsupported format version {version}")]
    UnsupportedFormat {
        /// The version byte found.
        version: u8,
    },
    /// The AEAD implementation refused to seal (it never should with a 32-byte key).
    #[error("session sealing failed in the AEAD implementation")]
    Crypto,
    /// A TTL of zero, or one too long for the backend, was requested.
    #[error("session TTL {ttl:?} is outside 1 ms ..= {max:?}")]
    InvalidTtl {
        /// The TTL asked for.
        ttl: Duration,
        /// The longest TTL accepted.
        max: Duration,
    },
}

impl StoreError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable { .. } => ErrorKind::StoreUnavailable,
            StoreError::TimedOut { .. } => ErrorKind::StoreTimedOut,
            StoreError::Backend { .. } => ErrorKind::StoreBackendError,
            StoreError::Config { .. } => ErrorKind::StoreConfigInvalid,
            StoreError::Tampered => ErrorKind::SessionTampered,
            StoreError::UnsupportedFormat { .. } => ErrorKind::SessionFormatUnsupported,
            StoreError::Crypto => ErrorKind::SessionCryptoFailure,
            StoreError::InvalidTtl { .. } => ErrorKind::SessionTtlInvalid,
        }
    }

    /// A stable snake_case code for this kind of failure.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// True when the backend could not be reached or did not answer in time: the request should
    /// get a 503 and the user keeps their session.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::TimedOut { .. }
        )
    }
}

/// The longest TTL any store accepts: 400 days, the cookie lifetime cap browsers enforce.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(400 * 24 * 3600);

fn check_ttl(ttl: Duration) -> Result<(), StoreError> {
    if ttl < Duration::from_millis(1) || ttl > MAX_SESSION_TTL {
        return Err(StoreError::InvalidTtl {
            ttl,
            max: MAX_SESSION_TTL,
        });
    }
    Ok(())
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_are_domain_separated() {
        assert_ne!(
            StoreKey::for_subject("iss", "x"),
            StoreKey::for_provider_session("iss", "x")
        );
        assert_ne!(
            StoreKey::for_subject("ab", "c"),
            StoreKey::for_subject("a", "bc")
        );
        assert_eq!(
            StoreKey::for_session_id(b"id"),
            StoreKey::for_session_id(b"id")
        );
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        let key = StoreKey::for_session_id(b"id");
        let shown = format!("{key:?}");
        assert!(shown.starts_with("StoreKey("));
        assert_eq!(shown.chars().count(), "StoreKey(".len() + 8 + 2);
    }

    #[test]
    fn ttl_bounds() {
        assert_eq!(
            check_ttl(Duration::ZERO).unwrap_err().code(),
            "session_ttl_invalid"
        );
        assert!(check_ttl(Duration::from_secs(1)).is_ok());
        assert!(check_ttl(MAX_SESSION_TTL + Duration::from_secs(1)).is_err());
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let key = StoreKey(bytes);
            prop_assert_eq!(StoreKey::from_hex(&key.to_hex()), Some(key));
        }

        #[test]
        fn from_hex_never_panics(text in ".{0,80}") {
            if let Some(key) = StoreKey::from_hex(&text) {
                prop_assert_eq!(key.to_hex(), text);
            }
        }
    }
}
