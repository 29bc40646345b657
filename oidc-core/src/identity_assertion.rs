//! Identity assertions: short-lived JWTs in which a proxy tells its upstream who sent a request.
//!
//! A header such as `X-Forwarded-Email` is believed only because of the network path it came
//! over: anything else that reaches the upstream can send it too. An assertion carries its own
//! proof. It is signed with the proxy's ES256 key, whose public half the proxy publishes as a
//! JWK Set; it names the upstream in `aud` and the proxy in `iss`; and it expires within
//! [`DEFAULT_ASSERTION_LIFETIME`]. An upstream that verifies it believes no one the proxy did
//! not vouch for, whoever can reach its port.
//!
//! This module decides what an assertion says and signs it; time comes in as a value. Loading
//! or generating the key and caching assertions belong to the caller.
//!
//! ```
//! use oidc_core::identity_assertion::{AssertedIdentity, AssertionKey, AssertionSigner};
//! use oidc_core::UnixTime;
//! # let rng = aws_lc_rs::rand::SystemRandom::new();
//! # let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
//! #     &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
//!
//! let key = AssertionKey::from_pkcs8_der(pkcs8.as_ref())?;
//! let signer = AssertionSigner::new(key, "https://apps.example.com", "mlflow");
//! let groups = vec!["mlflow-users".to_owned()];
//! let identity = AssertedIdentity::new("u-123").with_email("ada@example.com").with_groups(&groups);
//! let jwt = signer.sign(&identity, UnixTime::from_secs(1_800_000_000))?;
//! assert_eq!(jwt.expose().split('.').count(), 3);
//! assert_eq!(signer.key_set().keys.len(), 1);
//! # Ok::<(), oidc_core::identity_assertion::AssertionError>(())
//! ```

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error_kind::ErrorKind;
use crate::login::client_auth::{AssertionAlgorithm, ClientSigningKey};
use crate::secret::Secret;
use crate::time::UnixTime;

/// How long an assertion is valid by default. Proxy and upstream share a host or a network, so
/// a minute leaves room for clock skew and slow requests while a captured one soon expires.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// The shortest lifetime accepted; shorter ones are raised to it.
pub const MIN_ASSERTION_LIFETIME: Duration = Duration::from_secs(10);

/// The header that carries the assertion, towards the upstream and in forward-auth answers.
pub const ASSERTION_HEADER: &str = "x-identity-assertion";

/// The only signature algorithm assertions use.
pub const ASSERTION_ALGORITHM: &str = "ES256";

/// Why an assertion key could not be used or an assertion not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// The key is not an unencrypted PKCS#8 P-256 private key.
    #[error(
        "the identity assertion key was rejected (an unencrypted PKCS#8 P-256 key is needed): {reason}"
    )]
    KeyRejected {
        /// What the cryptographic library said.
        reason: String,
    },
    /// The cryptographic library failed to sign.
    #[error("signing the identity assertion failed")]
    SigningFailed,
}

impl AssertionError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AssertionError::KeyRejected { .. } => ErrorKind::AssertionKeyRejected,
            AssertionError::SigningFailed => ErrorKind::AssertionSigningFailed,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The proxy's P-256 signing key, with its public half as a JWK.
#[derive(Clone)]
pub struct AssertionKey {
    signer: ClientSigningKey,
    public: PublicJwk,
}

impl AssertionKey {
    /// Parses an unencrypted PKCS#8 (DER) P-256 private key. Its `kid` is the RFC 7638
    /// thumbprint of the public key, so every replica loading the same key names it alike.
    pub fn from_pkcs8_der(pkcs8_der: &[u8]) -> Result<Self, AssertionError> {
        let signer = ClientSigningKey::from_pkcs8_der(AssertionAlgorithm::ES256, pkcs8_der, None)
            .map_err(|e| AssertionError::KeyRejected {
            reason: e.to_string(),
        })?;
        // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
        let (x, y) = match signer.ecdsa_public_point() {
            Some([0x04, coordinates @ ..]) if coordinates.len() == 64 => coordinates.split_at(32),
            _ => {
                return Err(AssertionError::KeyRejected {
                    reason: "the public key is not an uncompressed P-256 point".into(),
                });
            }
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let kid = crate::jwks::thumbprint(&[("crv", "P-256"), ("kty", "EC"), ("x", &x), ("y", &y)]);
        Ok(AssertionKey {
            signer,
            public: PublicJwk {
                kty: "EC",
                crv: "P-256",
                alg: ASSERTION_ALGORITHM,
                key_use: "sig",
                kid,
                x,
                y,
            },
        })
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The public key as a JWK.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AssertionError> {
        self.signer
            .sign(message)
            .map_err(|_| AssertionError::SigningFailed)
    }
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionKey")
            .field("kid", &self.public.kid)
            .field("key", &"***")
            .finish()
    }
}

/// A public P-256 key as a JWK (RFC 7517), as published in the key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    /// Always `EC`.
    pub kty: &'static str,
    /// Always `P-256`.
    pub crv: &'static str,
    /// Always `ES256`.
    pub alg: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// The x coordinate, base64url.
    pub x: String,
    /// The y coordinate, base64url.
    pub y: String,
}

/// A JWK Set (RFC 7517 §5) of the keys assertions may be signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertionKeySet {
    /// The public keys.
    pub keys: Vec<PublicJwk>,
}

/// Who an assertion vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssertedIdentity<'a> {
    /// The user: `sub` of the assertion.
    pub user: &'a str,
    /// The e-mail address.
    pub email: Option<&'a str>,
    /// The preferred username.
    pub preferred_username: Option<&'a str>,
    /// Group names.
    pub groups: &'a [String],
}

impl<'a> AssertedIdentity<'a> {
    /// Only a user.
    pub fn new(user: &'a str) -> Self {
        AssertedIdentity {
            user,
            email: None,
            preferred_username: None,
            groups: &[],
        }
    }

    /// With an e-mail address.
    #[must_use]
    pub fn with_email(mut self, email: &'a str) -> Self {
        self.email = Some(email);
        self
    }

    /// With a preferred username.
    #[must_use]
    pub fn with_preferred_username(mut self, name: &'a str) -> Self {
        self.preferred_username = Some(name);
        self
    }

    /// With groups.
    #[must_use]
    pub fn with_groups(mut self, groups: &'a [String]) -> Self {
        self.groups = groups;
        self
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Signs assertions for one upstream: the key, who signs (`iss`), for whom (`aud`), how long.
#[derive(Debug, Clone)]
pub struct AssertionSigner {
    key: AssertionKey,
    issuer: String,
    audience: String,
    lifetime: Duration,
    /// The JOSE header, encoded once.
    encoded_header: String,
}

impl AssertionSigner {
    /// Assertions signed with `key`, saying `iss: issuer` and `aud: audience`, valid for
    /// [`DEFAULT_ASSERTION_LIFETIME`].
    pub fn new(key: AssertionKey, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let header = serde_json::json!({
            "alg": ASSERTION_ALGORITHM,
            "typ": "JWT",
            "kid": key.kid(),
        });
        AssertionSigner {
            encoded_header: URL_SAFE_NO_PAD.encode(header.to_string()),
            key,
            issuer: issuer.into(),
            audience: audience.into(),
            lifetime: DEFAULT_ASSERTION_LIFETIME,
        }
    }

    /// How long each assertion is valid (at least [`MIN_ASSERTION_LIFETIME`]).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.max(MIN_ASSERTION_LIFETIME);
        self
    }

    /// The configured lifetime of each assertion.
    pub fn assertion_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The `iss` of every assertion.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of every assertion.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The signing key.
    pub fn key(&self) -> &AssertionKey {
        &self.key
    }

    /// The key set to publish, for upstreams to verify assertions with.
    pub fn key_set(&self) -> AssertionKeySet {
        AssertionKeySet {
            keys: vec![self.key.public.clone()],
        }
    }

    /// A signed assertion for `identity`, issued at `now`.
    pub fn sign(
        &self,
        identity: &AssertedIdentity<'_>,
        now: UnixTime,
    ) -> Result<Secret, AssertionError> {
        let claims = AssertionClaims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: identity.user,
            email: identity.email,
            preferred_username: identity.preferred_username,
            groups: identity.groups,
            iat: now.as_secs(),
            nbf: now.as_secs(),
            exp: now.saturating_add(self.lifetime).as_secs(),
        };
        let payload = serde_json::to_vec(&claims).map_err(|_| AssertionError::SigningFailed)?;
        let signing_input = format!(
            "{}.{}",
            self.encoded_header,
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.key.sign(signing_input.as_bytes())?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{self, EcdsaKeyPair};

    /// A fixed PKCS#8 P-256 key for these tests.
    pub(crate) fn test_key_pkcs8() -> Vec<u8> {
        const TEST_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg54HJvcMAmA6eupQo\
            KaWAXYWMK2XUeHen6YqLsbDoIn2hRANCAASpuUPoBx9lNorkKhLyhOaIjb1gqHtq\
            kbYKUpRzI1+UxlFD/n4Eutc7lCLbqSrl6mfQlD2oYENO8bNAbA6D6V+w";
        base64::engine::general_purpose::STANDARD
            .decode(TEST_KEY)
            .unwrap_or_default()
    }

    use serde_json::Value;

    fn key() -> AssertionKey {
        AssertionKey::from_pkcs8_der(&test_key_pkcs8()).unwrap()
    }

    fn decode_part(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn the_assertion_says_who_for_whom_and_until_when() {
        let signer = AssertionSigner::new(key(), "https://apps.example.com", "mlflow");
        let groups = vec!["mlflow-users".to_owned(), "admins".to_owned()];
        let identity = AssertedIdentity::new("u-1")
            .with_email("ada@example.com")
            .with_preferred_username("ada")
            .with_groups(&groups);
        let jwt = signer.sign(&identity, UnixTime::from_secs(1_000)).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode_part(parts[0]);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], signer.key().kid());
        let claims = decode_part(parts[1]);
        assert_eq!(claims["iss"], "https://apps.example.com");
        assert_eq!(claims["aud"], "mlflow");
        assert_eq!(claims["sub"], "u-1");
        assert_eq!(claims["email"], "ada@example.com");
        assert_eq!(claims["preferred_username"], "ada");
        assert_eq!(
            claims["groups"],
            serde_json::json!(["mlflow-users", "admins"])
        );
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["nbf"], 1_000);
        assert_eq!(claims["exp"], 1_060);
    }

    #[test]
    fn absent_parts_of_the_identity_are_absent_claims() {
        let signer = AssertionSigner::new(key(), "iss", "aud");
        let jwt = signer
            .sign(
                &AssertedIdentity::new("ci-pipeline"),
                UnixTime::from_secs(5),
            )
            .unwrap();
        let claims = decode_part(jwt.expose().split('.').nth(1).unwrap());
        let names: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["aud", "exp", "iat", "iss", "nbf", "sub"]);
    }

    #[test]
    fn the_signature_verifies_with_the_published_key() {
        let signer = AssertionSigner::new(key(), "iss", "aud");
        let jwt = signer
            .sign(&AssertedIdentity::new("u"), UnixTime::from_secs(5))
            .unwrap();
        let jwks = serde_json::to_value(signer.key_set()).unwrap();
        let keys = crate::jwks::KeySet::parse(jwks.to_string().as_bytes()).unwrap();
        let (input, signature) = jwt.expose().rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kid"], signer.key().kid());
        assert_eq!(jwk["use"], "sig");
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
        let point: Vec<u8> = [vec![4u8], x, y].concat();
        let public = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point);
        assert!(public.verify(input.as_bytes(), &signature).is_ok());
        assert_eq!(keys.keys().len(), 1);
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        let key = key();
        let jwk = key.public_jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.x, jwk.y
        );
        let expected = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        assert_eq!(key.kid(), expected);
    }

    #[test]
    fn keys_other_than_p256_are_refused() {
        assert_eq!(
            AssertionKey::from_pkcs8_der(b"not a key")
                .unwrap_err()
                .kind(),
            ErrorKind::AssertionKeyRejected
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let p384 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .unwrap();
        assert!(AssertionKey::from_pkcs8_der(p384.as_ref()).is_err());
    }

    #[test]
    fn lifetimes_below_the_minimum_are_raised() {
        let signer = AssertionSigner::new(key(), "iss", "aud").lifetime(Duration::from_secs(1));
        assert_eq!(signer.assertion_lifetime(), MIN_ASSERTION_LIFETIME);
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let text = format!("{:?}", AssertionSigner::new(key(), "iss", "aud"));
        assert!(text.contains("***"));
        assert!(!text.contains("pair"));
    }
}
