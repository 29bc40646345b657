//! Keyed fingerprints of secrets (bearer tokens, `Cookie` headers): the token and session caches
//! are keyed by a fingerprint and never hold the secret itself.
//!
//! A fingerprint is AES-256-GMAC of the bytes under a key drawn when the process starts and a
//! fixed nonce: GHASH, a polynomial in a secret point, encrypted. Two different inputs of n
//! blocks share a fingerprint with probability at most about (n + 1) / 2^128 over the key, and
//! neither the key nor any fingerprint leaves the process, so no one can choose inputs that
//! collide. (The fixed nonce would be a flaw if fingerprints were ever shown to anyone: two of
//! them would give GHASH's point away. They are only map keys.) On a kilobyte token this costs a
//! fraction of a SHA-256, which is most of a cache hit otherwise.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use http::HeaderValue;
use oidc_core::random::RandomSource as _;

use crate::random::SystemRandom;

/// A 128-bit keyed fingerprint.
pub(crate) type Fingerprint = [u8; 16];

/// Computes fingerprints under one per-process key.
pub(crate) struct Fingerprints {
    key: LessSafeKey,
}

impl Fingerprints {
    /// Fingerprints under a fresh random key.
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        SystemRandom.fill_bytes(&mut key);
        let key = UnboundKey::new(&AES_256_GCM, &key)
            .expect("32 random bytes are an AES-256 key: the length is the only requirement");
        Fingerprints {
            key: LessSafeKey::new(key),
        }
    }

    /// The fingerprint of `bytes`; `None` only for input beyond what GCM can authenticate
    /// (2^61 bytes), which the caller treats as "not cacheable".
    pub(crate) fn of(&self, bytes: &[u8]) -> Option<Fingerprint> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(bytes),
                &mut [],
            )
            .ok()?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Some(out)
    }

    /// The fingerprint of several header values taken together (`None` when there is none).
    pub(crate) fn of_header_values<'a>(
        &self,
        values: impl IntoIterator<Item = &'a HeaderValue>,
    ) -> Option<Fingerprint> {
        let mut values = values.into_iter();
        let first = values.next()?;
        let Some(second) = values.next() else {
            return self.of(first.as_bytes());
        };
        // A NUL byte cannot be part of a header value: the separator keeps values apart.
        let mut joined = Vec::with_capacity(first.len() + second.len() + 2);
        for value in [first, second].into_iter().chain(values) {
            joined.extend_from_slice(value.as_bytes());
            joined.push(0);
        }
        self.of(&joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_per_key_and_differ_per_input_and_key() {
        let one = Fingerprints::new();
        let other = Fingerprints::new();
        let token = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        assert_eq!(one.of(token), one.of(token));
        assert_ne!(one.of(token), one.of(&token[..token.len() - 1]));
        assert_ne!(one.of(token), other.of(token));
        // A trailing zero block changes the length, which GHASH covers.
        let mut padded = token.to_vec();
        padded.extend_from_slice(&[0; 16]);
        assert_ne!(one.of(token), one.of(&padded));
        assert_ne!(one.of(b""), one.of(&[0]));
    }

    #[test]
    fn several_header_values_are_kept_apart() {
        let prints = Fingerprints::new();
        let value = |text: &'static str| HeaderValue::from_static(text);
        let (ab, c) = (value("a=1; b=2"), value("c=3"));
        let (a, bc) = (value("a=1"), value("b=2; c=3"));
        assert_eq!(prints.of_header_values([]), None);
        assert_eq!(prints.of_header_values([&ab]), prints.of(b"a=1; b=2"));
        assert_ne!(
            prints.of_header_values([&ab, &c]),
            prints.of_header_values([&a, &bc])
        );
        assert_eq!(
            prints.of_header_values([&ab, &c]),
            prints.of_header_values([&ab, &c])
        );
    }
}
