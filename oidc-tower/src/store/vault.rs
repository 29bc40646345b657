//! Sealing sessions with a per-session key that only the cookie holds.
//!
//! A [`SessionHandle`] is 32 random id bytes and a 32-byte AES-256-GCM key. The store receives
//! `StoreKey::for_session_id(id)` and `version ‖ nonce ‖ ciphertext ‖ tag`, with the store key as
//! associated data, so a value moved to another key does not open either.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::ErrorKind;
use oidc_core::RandomSource;

use super::{LockToken, SessionStore, StoreError, StoreKey, check_ttl};

const ID_LEN: usize = 32;
const KEY_LEN: usize = 32;
const FORMAT_VERSION: u8 = 1;
const HANDLE_ENCODED_LEN: usize = 86; // 64 bytes as unpadded base64url

/// What a browser cookie carries for a server-side session: the session id and its key.
///
/// Both halves are secret; `Debug` prints neither.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionHandle {
    id: [u8; ID_LEN],
    key: [u8; KEY_LEN],
}

impl SessionHandle {
    /// A new handle with a random id and key drawn from `random`.
    pub fn generate(random: &mut dyn RandomSource) -> Self {
        let mut id = [0u8; ID_LEN];
        let mut key = [0u8; KEY_LEN];
        random.fill_bytes(&mut id);
        random.fill_bytes(&mut key);
        SessionHandle { id, key }
    }

    /// The cookie value: 86 characters of unpadded base64url.
    pub fn to_cookie_value(&self) -> String {
        let mut joined = [0u8; ID_LEN + KEY_LEN];
        joined[..ID_LEN].copy_from_slice(&self.id);
        joined[ID_LEN..].copy_from_slice(&self.key);
        URL_SAFE_NO_PAD.encode(joined)
    }

    /// Parses a cookie value written by [`SessionHandle::to_cookie_value`].
    pub fn from_cookie_value(value: &str) -> Result<Self, HandleError> {
        if value.len() != HANDLE_ENCODED_LEN {
            return Err(HandleError::WrongLength { len: value.len() });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| HandleError::NotBase64Url)?;
        let (id_part, key_part) = bytes
            .split_at_checked(ID_LEN)
            .ok_or(HandleError::WrongLength { len: value.len() })?;
        let id = <[u8; ID_LEN]>::try_from(id_part)
            .map_err(|_| HandleError::WrongLength { len: value.len() })?;
        let key = <[u8; KEY_LEN]>::try_from(key_part)
            .map_err(|_| HandleError::WrongLength { len: value.len() })?;
        Ok(SessionHandle { id, key })
    }

    /// Where this session lives in the store.
    pub fn store_key(&self) -> StoreKey {
        StoreKey::for_session_id(&self.id)
    }

    fn aead_key(&self) -> Result<LessSafeKey, StoreError> {
        UnboundKey::new(&AES_256_GCM, &self.key)
            .map(LessSafeKey::new)
            .map_err(|_| StoreError::Crypto)
    }

    fn seal(&self, nonce: [u8; NONCE_LEN], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let store_key = self.store_key();
        let mut in_out = plaintext.to_vec();
        self.aead_key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(store_key.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| StoreError::Crypto)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (&version, rest) = sealed.split_first().ok_or(StoreError::Tampered)?;
        if version != FORMAT_VERSION {
            return Err(StoreError::UnsupportedFormat { version });
        }
        let (nonce, ciphertext) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or(StoreError::Tampered)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Tampered)?;
        let store_key = self.store_key();
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .aead_key()?
            .open_in_place(nonce, Aad::from(store_key.as_bytes()), &mut in_out)
            .map_err(|_| StoreError::Tampered)?;
        Ok(plaintext.to_vec())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionHandle(<redacted>)")
    }
}

/// Why a cookie value is not a session handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The value has the wrong length for a handle.
    #[error("session handle has {len} characters, expected {HANDLE_ENCODED_LEN}")]
    WrongLength {
        /// The length found.
        len: usize,
    },
    /// The value contains characters outside unpadded base64url.
    #[error("session handle is not base64url")]
    NotBase64Url,
}

impl HandleError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HandleError::WrongLength { .. } => ErrorKind::SessionHandleLength,
            HandleError::NotBase64Url => ErrorKind::SessionHandleEncoding,
        }
    }

    /// A stable snake_case code for this kind of failure.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The revocation tags of a session: its subject and provider session id at one issuer.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionTags {
    issuer: String,
    keys: Vec<StoreKey>,
}

impl SessionTags {
    /// No tags yet, for sessions issued by `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        SessionTags {
            issuer: issuer.into(),
            keys: Vec::new(),
        }
    }

    /// Tags the session with its subject (`sub` claim), for logout of all of a user's sessions.
    pub fn subject(mut self, subject: &str) -> Self {
        self.keys.push(StoreKey::for_subject(&self.issuer, subject));
        self
    }

    /// Tags the session with the provider's session id (`sid` claim), for back-channel logout.
    pub fn provider_session(mut self, sid: &str) -> Self {
        self.keys
            .push(StoreKey::for_provider_session(&self.issuer, sid));
        self
    }

    /// The hashed tags, as given to [`SessionStore::save`].
    pub fn keys(&self) -> &[StoreKey] {
        &self.keys
    }
}

/// Encrypts sessions with their handle's key before they reach a [`SessionStore`].
///
/// Randomness is drawn at the start of each call, before any await; the returned futures are
/// `Send`.
#[derive(Debug, Clone)]
pub struct SessionVault<S> {
    store: S,
}

impl<S: SessionStore> SessionVault<S> {
    /// A vault over `store`.
    pub fn new(store: S) -> Self {
        SessionVault { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Stores `plaintext` as a new session and returns the handle to put in the cookie.
    pub async fn create(
        &self,
        random: &mut (dyn RandomSource + Send),
        plaintext: &[u8],
        tags: &SessionTags,
        ttl: Duration,
    ) -> Result<SessionHandle, StoreError> {
        let handle = SessionHandle::generate(random);
        self.save(random, &handle, plaintext, tags, ttl).await?;
        Ok(handle)
    }

    /// Replaces the session of `handle` (after a refresh, say), sealed under a fresh nonce.
    pub async fn save(
        &self,
        random: &mut (dyn RandomSource + Send),
        handle: &SessionHandle,
        plaintext: &[u8],
        tags: &SessionTags,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        check_ttl(ttl)?;
        let mut nonce = [0u8; NONCE_LEN];
        random.fill_bytes(&mut nonce);
        let sealed = handle.seal(nonce, plaintext)?;
        self.store
            .save(&handle.store_key(), &sealed, tags.keys(), ttl)
            .await
    }

    /// The session of `handle`: `Ok(None)` when it expired or was revoked,
    /// `Err(StoreError::Tampered)` when the stored bytes do not open with the handle's key.
    pub async fn load(&self, handle: &SessionHandle) -> Result<Option<Vec<u8>>, StoreError> {
        match self.store.load(&handle.store_key()).await? {
            None => Ok(None),
            Some(sealed) => handle.open(&sealed).map(Some),
        }
    }

    /// Ends the session of `handle` (local sign-out).
    pub async fn delete(&self, handle: &SessionHandle) -> Result<(), StoreError> {
        self.store.delete(&handle.store_key()).await
    }

    /// Ends every session of `subject` at `issuer`; returns how many were ended.
    pub async fn revoke_subject(&self, issuer: &str, subject: &str) -> Result<usize, StoreError> {
        self.store
            .delete_tagged(&StoreKey::for_subject(issuer, subject))
            .await
    }

    /// Ends every session opened under provider session `sid` at `issuer` (back-channel
    /// logout); returns how many were ended.
    pub async fn revoke_provider_session(
        &self,
        issuer: &str,
        sid: &str,
    ) -> Result<usize, StoreError> {
        self.store
            .delete_tagged(&StoreKey::for_provider_session(issuer, sid))
            .await
    }

    /// Takes the refresh lock of `handle`'s session for `ttl`, so that one replica at a time
    /// refreshes its tokens: `Some(token)` when taken (pass it to
    /// [`SessionVault::unlock_refresh`]), `None` when another request or replica holds it (wait
    /// a moment and load the session again: the holder saves the refreshed tokens). A holder
    /// that dies frees the lock when `ttl` runs out.
    pub async fn try_lock_refresh(
        &self,
        random: &mut (dyn RandomSource + Send),
        handle: &SessionHandle,
        ttl: Duration,
    ) -> Result<Option<LockToken>, StoreError> {
        let token = LockToken::generate(random);
        let name = StoreKey::for_refresh_of(&handle.store_key());
        Ok(self
            .store
            .try_lock(&name, &token, ttl)
            .await?
            .then_some(token))
    }

    /// Releases the refresh lock taken with `token`; `false` when it had already expired (and
    /// may now be someone else's, which is left alone).
    pub async fn unlock_refresh(
        &self,
        handle: &SessionHandle,
        token: &LockToken,
    ) -> Result<bool, StoreError> {
        let name = StoreKey::for_refresh_of(&handle.store_key());
        self.store.unlock(&name, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oidc_core::danger::InsecureSeededRandom;
    use proptest::prelude::*;

    fn handle(seed: u64) -> SessionHandle {
        SessionHandle::generate(&mut InsecureSeededRandom::new(seed))
    }

    #[test]
    fn cookie_value_round_trips() {
        let original = handle(3);
        let value = original.to_cookie_value();
        assert_eq!(value.len(), HANDLE_ENCODED_LEN);
        assert_eq!(SessionHandle::from_cookie_value(&value), Ok(original));
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", handle(1)), "SessionHandle(<redacted>)");
    }

    #[test]
    fn malformed_cookie_values_are_rejected() {
        assert_eq!(
            SessionHandle::from_cookie_value("abc"),
            Err(HandleError::WrongLength { len: 3 })
        );
        let bad = "!".repeat(HANDLE_ENCODED_LEN);
        assert_eq!(
            SessionHandle::from_cookie_value(&bad),
            Err(HandleError::NotBase64Url)
        );
    }

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let h = handle(5);
        let sealed = h.seal([7u8; NONCE_LEN], b"secret tokens").unwrap();
        assert_eq!(h.open(&sealed).unwrap(), b"secret tokens");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));

        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            let err = h.open(&tampered).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Tampered | StoreError::UnsupportedFormat { version: 0 }
                ),
                "byte {index}: {err:?}"
            );
        }
        assert!(matches!(handle(6).open(&sealed), Err(StoreError::Tampered)));
        assert!(matches!(h.open(&[]), Err(StoreError::Tampered)));
    }

    proptest! {
        #[test]
        fn from_cookie_value_never_panics(value in ".{0,100}") {
            if let Ok(parsed) = SessionHandle::from_cookie_value(&value) {
                prop_assert_eq!(parsed.to_cookie_value(), value);
            }
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(handle(9).open(&bytes).is_err());
        }
    }
}
