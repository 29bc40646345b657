//! Randomness as a value: the core asks a caller-supplied source for bytes, never a global one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A source of cryptographically secure random bytes, passed in by the caller.
///
/// Production code passes the operating system's generator (oidc-tower provides one); tests
/// pass a seeded generator ([`crate::danger::InsecureSeededRandom`]) so that state values, nonces and cookie nonces are reproducible.
pub trait RandomSource {
    /// Fills `dest` entirely with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (**self).fill_bytes(dest);
    }
}

/// `byte_len` random bytes encoded as unpadded base64url: the form used for `state`, `nonce`
/// and PKCE verifiers.
pub fn random_url_safe(random: &mut dyn RandomSource, byte_len: usize) -> String {
    let mut bytes = vec![0u8; byte_len];
    random.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danger::InsecureSeededRandom;

    #[test]
    fn seeded_source_is_reproducible_and_distinct() {
        let a = random_url_safe(&mut InsecureSeededRandom::new(7), 32);
        let b = random_url_safe(&mut InsecureSeededRandom::new(7), 32);
        let c = random_url_safe(&mut InsecureSeededRandom::new(8), 32);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 43, "32 bytes are 43 base64url characters");
    }

    #[test]
    fn fills_lengths_that_are_not_multiples_of_eight() {
        let mut buf = [0u8; 13];
        InsecureSeededRandom::new(1).fill_bytes(&mut buf);
        assert!(buf[8..].iter().any(|b| *b != 0));
    }
}
