//! What skips a security check, named so at every call site: reading a token's header and claims
//! without checking its signature, and a predictable random source for tests and reproducible
//! fuzzing. Production code that reaches for either says `danger::` where a reviewer sees it.

use crate::jws::{JwsError, UnverifiedToken};
use crate::random::RandomSource;

/// Splits and decodes a token for display or for routing WITHOUT verifying its signature.
///
/// Nothing in the result may be trusted: use it to show a token (`oidc decode`) or to pick which
/// issuer's keys to verify it with, then verify. The checks are only syntactic (three segments,
/// base64url, JSON objects without duplicate members, a size limit); an empty signature is
/// accepted so that unsigned tokens can be inspected. Never panics.
pub fn decode_unverified(token: &str) -> Result<UnverifiedToken, JwsError> {
    crate::jws::decode_unverified(token)
}

/// A deterministic generator for tests and reproducible examples. **Not random**: never use it
/// outside tests.
///
/// It expands a 64-bit seed with SplitMix64, which is enough to make values distinct and
/// reproducible; it has no cryptographic strength.
#[derive(Clone, Debug)]
pub struct InsecureSeededRandom {
    state: u64,
}

impl InsecureSeededRandom {
    /// A generator whose output is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        InsecureSeededRandom { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for InsecureSeededRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
