//! The identity assertion the layers send beside the identity headers: a short-lived JWT,
//! signed by this service, that an upstream verifies with the key set published at
//! `{prefix}/jwks` (see [`oidc_core::identity_assertion`] for what it says).
//!
//! This module owns the key (loaded from a PEM file, or generated at start for a single
//! instance) and a cache: an assertion is signed once per identity and reused for half its
//! lifetime (on the clock it signs with), so the signature costs nothing on most requests.
//!
//! ```
//! use oidc_tower::identity_assertion::IdentityAssertion;
//! use oidc_tower::identity_headers::Identity;
//!
//! let assertion = IdentityAssertion::generate("https://apps.example.com", "mlflow")?;
//! let value = assertion.header_value(&Identity::new("u-123").with_email("ada@example.com"))?;
//! assert_eq!(value.to_str().unwrap().split('.').count(), 3);
//! assert!(assertion.key_set_json().starts_with(b"{\"keys\":[{"));
//! # Ok::<(), oidc_tower::identity_assertion::IdentityAssertionError>(())
//! ```

use std::hash::{BuildHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use oidc_core::identity_assertion::{
    AssertedIdentity, AssertionError, AssertionKey, AssertionSigner,
};
use oidc_core::{ErrorKind, UnixTime};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;

use crate::clock::Clock;
use crate::identity_headers::Identity;

/// How many identities' assertions are kept.
const CACHE_CAPACITY: u64 = 10_000;

/// Why an identity assertion cannot be set up or made.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityAssertionError {
    /// The key file cannot be read or holds no PKCS#8 private key.
    #[error("the identity assertion key file {path}: {detail}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The key is not a P-256 key, or signing failed.
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    /// The signed assertion cannot be a header value (never for a well-formed JWT).
    #[error("the identity assertion cannot be sent as a header")]
    InvalidHeaderValue,
}

impl IdentityAssertionError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdentityAssertionError::KeyFile { .. } => ErrorKind::AssertionKeyRejected,
            IdentityAssertionError::Assertion(error) => error.kind(),
            IdentityAssertionError::InvalidHeaderValue => ErrorKind::AssertionSigningFailed,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Signs, caches and publishes identity assertions for one upstream.
pub struct IdentityAssertion {
    signer: AssertionSigner,
    key_set_json: Bytes,
    /// Keyed by a hash of the identity; the entry holds the identity itself, compared on every
    /// hit, so a hash collision can never hand one user's assertion to another.
    cache: moka::sync::Cache<u64, Arc<CachedAssertion>>,
    hasher: std::collections::hash_map::RandomState,
    /// The time of day assertions are signed at and their reuse is judged by.
    clock: Arc<dyn Clock>,
}

struct CachedAssertion {
    user: String,
    email: Option<String>,
    preferred_username: Option<String>,
    groups: Vec<String>,
    value: HeaderValue,
    /// Handed out before this time only: the end of the first half of its life.
    reuse_until: UnixTime,
}

impl CachedAssertion {
    fn is_for(&self, identity: &Identity) -> bool {
        self.user == identity.user
            && self.email == identity.email
            && self.preferred_username == identity.preferred_username
            && self.groups == identity.groups
    }
}

impl std::fmt::Debug for IdentityAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityAssertion")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl IdentityAssertion {
    /// Assertions made by `signer`.
    pub fn new(signer: AssertionSigner) -> Self {
        let key_set_json = serde_json::to_vec(&signer.key_set())
            .map(Bytes::from)
            .unwrap_or_default();
        // An assertion is handed out only in the first half of its life.
        let reuse_for = signer.assertion_lifetime() / 2;
        IdentityAssertion {
            signer,
            key_set_json,
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(reuse_for.max(Duration::from_secs(1)))
                .build(),
            hasher: std::collections::hash_map::RandomState::new(),
            clock: crate::clock::system(),
        }
    }

    /// The same assertions, signed at the time of day `clock` reads (the authenticator's).
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A copy signing with the same key at the time of day `clock` reads, with a cache of its
    /// own.
    pub(crate) fn reclocked(&self, clock: Arc<dyn Clock>) -> Self {
        Self::new(self.signer.clone()).with_clock(clock)
    }

    /// Assertions signed with a P-256 key made now from the system's randomness. Every start
    /// publishes a new key: fine for one instance; replicas share a key file instead
    /// ([`Self::from_key_file`]).
    pub fn generate(
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, IdentityAssertionError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map_err(|_| AssertionError::KeyRejected {
            reason: "the key could not be generated".to_owned(),
        })?;
        let key = AssertionKey::from_pkcs8_der(pkcs8.as_ref())?;
        Ok(Self::new(AssertionSigner::new(key, issuer, audience)))
    }

    /// Assertions signed with the unencrypted PKCS#8 P-256 key in a PEM file
    /// (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_key_file(
        path: &Path,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, IdentityAssertionError> {
        let key_file_error = |detail: String| IdentityAssertionError::KeyFile {
            path: path.display().to_string(),
            detail,
        };
        let pem = std::fs::read(path).map_err(|e| key_file_error(e.to_string()))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|_| {
            key_file_error("no PKCS#8 private key (-----BEGIN PRIVATE KEY-----) found".to_owned())
        })?;
        let key = AssertionKey::from_pkcs8_der(der.secret_pkcs8_der())?;
        Ok(Self::new(AssertionSigner::new(key, issuer, audience)))
    }

    /// The same assertions, valid for `lifetime` each (default one minute).
    #[must_use]
    pub fn with_lifetime(self, lifetime: Duration) -> Self {
        Self::new(self.signer.lifetime(lifetime)).with_clock(self.clock)
    }

    /// The signer: key, issuer, audience and lifetime.
    pub fn signer(&self) -> &AssertionSigner {
        &self.signer
    }

    /// The public key set, as served at `{prefix}/jwks`.
    pub fn key_set_json(&self) -> &Bytes {
        &self.key_set_json
    }

    /// The header value vouching for `identity`: a cached assertion while it is in the first
    /// half of its life, else a fresh one.
    pub fn header_value(&self, identity: &Identity) -> Result<HeaderValue, IdentityAssertionError> {
        let hash = self.hash_of(identity);
        let now = self.clock.now();
        if let Some(cached) = self.cache.get(&hash)
            && cached.is_for(identity)
        {
            if now < cached.reuse_until {
                return Ok(cached.value.clone());
            }
            self.cache.invalidate(&hash);
        }
        let groups = identity.groups.as_slice();
        let mut asserted = AssertedIdentity::new(&identity.user).with_groups(groups);
        if let Some(email) = &identity.email {
            asserted = asserted.with_email(email);
        }
        if let Some(name) = &identity.preferred_username {
            asserted = asserted.with_preferred_username(name);
        }
        let jwt = self.signer.sign(&asserted, now)?;
        let mut value = HeaderValue::from_str(jwt.expose())
            .map_err(|_| IdentityAssertionError::InvalidHeaderValue)?;
        value.set_sensitive(true);
        self.cache.insert(
            hash,
            Arc::new(CachedAssertion {
                user: identity.user.clone(),
                email: identity.email.clone(),
                preferred_username: identity.preferred_username.clone(),
                groups: identity.groups.clone(),
                value: value.clone(),
                reuse_until: now.saturating_add(self.signer.assertion_lifetime() / 2),
            }),
        );
        Ok(value)
    }

    fn hash_of(&self, identity: &Identity) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        identity.user.hash(&mut hasher);
        identity.email.hash(&mut hasher);
        identity.preferred_username.hash(&mut hasher);
        identity.groups.hash(&mut hasher);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(value: &HeaderValue) -> serde_json::Value {
        let payload = value.to_str().unwrap().split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn one_identity_gets_its_cached_assertion_and_another_its_own() {
        let assertion = IdentityAssertion::generate("https://apps.example.com", "mlflow").unwrap();
        let ada = Identity::new("ada").with_groups(["ml"]);
        let first = assertion.header_value(&ada).unwrap();
        assert_eq!(assertion.header_value(&ada).unwrap(), first);
        assert!(first.is_sensitive());

        let bob = Identity::new("bob").with_groups(["ml"]);
        let other = assertion.header_value(&bob).unwrap();
        assert_eq!(claims(&other)["sub"], "bob");
        // Same user, other groups: another assertion, never the cached one.
        let ada_admin = Identity::new("ada").with_groups(["ml", "admins"]);
        let widened = assertion.header_value(&ada_admin).unwrap();
        assert_eq!(
            claims(&widened)["groups"],
            serde_json::json!(["ml", "admins"])
        );
    }

    #[test]
    fn a_key_file_gives_the_same_kid_to_every_instance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("assertion.pem");
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        std::fs::write(&path, pem).unwrap();
        let one = IdentityAssertion::from_key_file(&path, "iss", "aud").unwrap();
        let two = IdentityAssertion::from_key_file(&path, "iss", "aud").unwrap();
        assert_eq!(one.signer().key().kid(), two.signer().key().kid());
        assert_eq!(one.key_set_json(), two.key_set_json());
    }

    #[test]
    fn unusable_key_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = IdentityAssertion::from_key_file(&missing, "iss", "aud").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AssertionKeyRejected);
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let error = IdentityAssertion::from_key_file(&not_pem, "iss", "aud").unwrap_err();
        assert!(
            error.to_string().contains("no PKCS#8 private key"),
            "{error}"
        );
    }

    /// An assertion is reused in the first half of its life on the clock it signs with, then
    /// signed again; the cache's own expiry runs on the real clock and is not relied on.
    #[test]
    fn assertions_are_reused_for_half_their_life_on_the_clock() {
        use crate::clock::ManualClock;
        let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
        let assertion = IdentityAssertion::generate("iss", "aud")
            .unwrap()
            .with_clock(Arc::new(clock.clone()))
            .with_lifetime(Duration::from_secs(60));
        let ada = Identity::new("ada");
        let first = assertion.header_value(&ada).unwrap();
        assert_eq!(
            claims(&first)["iat"],
            1_700_000_000u64,
            "signed at the clock's time"
        );
        clock.advance(Duration::from_secs(29));
        assert_eq!(assertion.header_value(&ada).unwrap(), first);
        clock.advance(Duration::from_secs(1));
        let second = assertion.header_value(&ada).unwrap();
        assert_ne!(second, first);
        assert_eq!(claims(&second)["iat"], 1_700_000_030u64);
    }

    #[test]
    fn the_lifetime_is_configurable() {
        let assertion = IdentityAssertion::generate("iss", "aud")
            .unwrap()
            .with_lifetime(Duration::from_secs(300));
        let value = assertion.header_value(&Identity::new("u")).unwrap();
        let claims = claims(&value);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
    }
}
