//! Sealing: how a value is encrypted and authenticated (AES-256-GCM-SIV under keys derived
//! from the operator's secrets), bound to its cookie name and expiry, and opened again.

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CookieConfigError, CookieError, MAX_CHUNKS_LIMIT, MAX_COOKIE_BYTES};
use crate::random::RandomSource;
use crate::secret::Secret;
use crate::time::UnixTime;

/// The shortest secret accepted for cookie keys, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::*;
    use super::*;
    use crate::danger::InsecureSeededRandom;

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
}
