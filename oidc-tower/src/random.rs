//! The operating system's random generator behind the core's [`RandomSource`].

use oidc_core::RandomSource;

/// Cryptographically secure random bytes from the operating system (through aws-lc-rs).
///
/// This is the source to pass to the core in production; tests pass
/// `oidc_core::danger::InsecureSeededRandom` instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRandom;

impl SystemRandom {
    /// The system generator.
    pub fn new() -> Self {
        SystemRandom
    }
}

impl RandomSource for SystemRandom {
    /// # Panics
    ///
    /// When the operating system cannot supply random bytes. Going on with predictable state
    /// values, nonces or keys would be a silent security failure, so this stops instead; no
    /// input from outside the process can cause it.
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if aws_lc_rs::rand::fill(dest).is_err() {
            panic!("the operating system's random generator failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oidc_core::random::random_url_safe;

    #[test]
    fn draws_distinct_values() {
        let mut random = SystemRandom::new();
        let a = random_url_safe(&mut random, 32);
        let b = random_url_safe(&mut random, 32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
