//! Tokens valid against the real clock, and a provider that answers from memory, for the benches
//! and load tools that run a started [`Provider`] or a proxy (which read the clock themselves).
//!
//! [`LiveSigner`] holds one RSA-2048 key and mints RS256 tokens shaped like [`crate::claims`]
//! (about 1.2 KB encoded) that stay valid for [`TOKEN_LIFETIME_SECS`]. [`CannedProvider`] is an
//! [`HttpClient`] that answers the provider's discovery and key set requests from memory, so a
//! bench measures validation and caching, never the network. [`seal_session_cookie`] makes the
//! session cookie `oidc proxy` would set after a sign-in, sealed with its cookie secret.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use oidc_core::Issuer;
use oidc_core::jws::Algorithm;
use oidc_core::validation::Policy;
use oidc_tower::provider::{Provider, ProviderConfig};
use oidc_tower::{HttpClient, HttpError};
use serde_json::{Value, json};

/// How long minted tokens stay valid, from the moment they are minted.
pub const TOKEN_LIFETIME_SECS: u64 = 24 * 3600;

/// The key id of the signing key.
pub const KID: &str = "bench-rs256";

/// Why the signer could not be made or could not sign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// aws-lc-rs refused to generate, encode or use the key.
    #[error("the RSA key could not be {step}")]
    Crypto {
        /// What was being done.
        step: &'static str,
    },
    /// The PKCS#8 document given could not be read.
    #[error("the PKCS#8 key could not be read")]
    BadPkcs8,
}

impl SignerError {
    /// A stable snake_case code per variant.
    pub fn code(&self) -> &'static str {
        match self {
            SignerError::Crypto { .. } => "signer_crypto",
            SignerError::BadPkcs8 => "signer_bad_pkcs8",
        }
    }
}

/// One RSA-2048 key that mints RS256 tokens for an issuer and audience.
pub struct LiveSigner {
    pair: RsaKeyPair,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for LiveSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSigner")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl LiveSigner {
    /// A signer with a freshly generated key.
    pub fn generate(issuer: &str, audience: &str) -> Result<LiveSigner, SignerError> {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| SignerError::Crypto { step: "generated" })?;
        Ok(LiveSigner {
            pair,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A signer with a key read from a PKCS#8 document (DER).
    pub fn from_pkcs8(der: &[u8], issuer: &str, audience: &str) -> Result<LiveSigner, SignerError> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| SignerError::BadPkcs8)?;
        Ok(LiveSigner {
            pair,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// The key as a PKCS#8 document (DER), to mint more tokens later with the same key.
    pub fn pkcs8(&self) -> Result<Vec<u8>, SignerError> {
        self.pair
            .as_der()
            .map(|der| der.as_ref().to_vec())
            .map_err(|_| SignerError::Crypto { step: "encoded" })
    }

    /// The issuer the tokens name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key set (`{"keys":[...]}`) holding the public key.
    pub fn jwks(&self) -> Value {
        let c = RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        json!({"keys": [{
            "kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e),
        }]})
    }

    /// A discovery document for the issuer whose key set is at `{issuer}/jwks`.
    pub fn discovery(&self) -> Value {
        oidc_dev_provider::minimal_discovery_document(&self.issuer, "RS256")
    }

    /// A token for `subject` (also its `jti`, so distinct subjects give distinct tokens), valid
    /// from 10 s ago for [`TOKEN_LIFETIME_SECS`].
    pub fn mint(&self, subject: &str) -> Result<String, SignerError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let mut claims = crate::claims();
        if let Some(object) = claims.as_object_mut() {
            object.insert("iss".into(), json!(self.issuer));
            object.insert("aud".into(), json!([self.audience, "account"]));
            object.insert("sub".into(), json!(subject));
            object.insert("jti".into(), json!(subject));
            object.insert("iat".into(), json!(now - 10));
            object.insert("nbf".into(), json!(now - 10));
            object.insert("exp".into(), json!(now + TOKEN_LIFETIME_SECS));
        }
        let header = json!({"alg": "RS256", "kid": KID, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignerError::Crypto { step: "used" })?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The policy that accepts this signer's tokens: its issuer, its audience, RS256 only.
    pub fn policy(&self) -> Policy {
        Policy::builder()
            .issuer(self.issuer_value())
            .audience(self.audience.as_str())
            .algorithms([Algorithm::RS256])
            .build()
            .unwrap_or_else(|e| panic!("bench policy: {e}"))
    }

    fn issuer_value(&self) -> Issuer {
        Issuer::new(self.issuer.as_str()).unwrap_or_else(|e| panic!("bench issuer: {e}"))
    }

    /// A [`Provider`] for this signer's issuer over a [`CannedProvider`], with a token cache of
    /// `cache_capacity` entries (0: off), once its keys are loaded.
    ///
    /// Must be called inside a tokio runtime.
    pub async fn started_provider(&self, cache_capacity: u64) -> Provider {
        let client = Arc::new(CannedProvider::new(self));
        let config = ProviderConfig::new(self.issuer_value(), self.policy())
            .token_cache(cache_capacity, Duration::from_secs(TOKEN_LIFETIME_SECS));
        let provider = Provider::start(config, client);
        provider.wait_ready().await;
        provider
    }
}

/// An [`HttpClient`] that answers a signer's discovery and key set requests from memory, and
/// 404 to anything else.
#[derive(Debug, Clone)]
pub struct CannedProvider {
    discovery_path: String,
    discovery: Bytes,
    jwks: Bytes,
}

impl CannedProvider {
    /// Answers for `signer`'s issuer.
    pub fn new(signer: &LiveSigner) -> CannedProvider {
        let issuer = signer.issuer.trim_end_matches('/');
        CannedProvider {
            discovery_path: format!("{issuer}/.well-known/openid-configuration"),
            discovery: Bytes::from(signer.discovery().to_string()),
            jwks: Bytes::from(signer.jwks().to_string()),
        }
    }
}

#[async_trait]
impl HttpClient for CannedProvider {
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let url = request.uri().to_string();
        let (status, body) = if url == self.discovery_path {
            (http::StatusCode::OK, self.discovery.clone())
        } else if url.ends_with("/jwks") {
            (http::StatusCode::OK, self.jwks.clone())
        } else {
            (http::StatusCode::NOT_FOUND, Bytes::new())
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

/// The `Cookie` request header value (`name=sealed`, chunks joined with `; `) carrying a cookie
/// session for `subject` of `issuer`, as `oidc proxy` seals it with `cookie_secret` under
/// `cookie_name`: a random session id and the session, valid for [`TOKEN_LIFETIME_SECS`].
pub fn seal_session_cookie(
    cookie_secret: &str,
    cookie_name: &str,
    issuer: &str,
    subject: &str,
) -> Result<String, SignerError> {
    use oidc_core::{CookieCodec, CookieKeys, CookieSettings, RequestCookies, Secret, Session};
    let refused = |_| SignerError::Crypto {
        step: "used to seal a session",
    };
    let keys = CookieKeys::from_secrets(&[Secret::new(cookie_secret)]).map_err(refused)?;
    let loopback = url::Url::parse("http://127.0.0.1/").map_err(|_| SignerError::Crypto {
        step: "used to name the loopback origin",
    })?;
    let settings = CookieSettings::new(cookie_name)
        .insecure_allow_plain_http(&loopback)
        .map_err(refused)?;
    let codec = CookieCodec::new(keys, settings).map_err(refused)?;
    let now = oidc_core::UnixTime::from(SystemTime::now());
    let expires_at = oidc_core::UnixTime::from_secs(now.as_secs() + TOKEN_LIFETIME_SECS);
    let mut session = Session::new(subject, issuer, now, expires_at);
    session.email = Some(format!("{subject}@example.com"));
    session.email_verified = Some(true);
    let mut random = oidc_tower::SystemRandom;
    let id = oidc_core::random::random_url_safe(&mut random, 16);
    let sealed = codec
        .encode(
            &json!({"i": id, "s": session}),
            expires_at,
            now,
            &mut random,
            &RequestCookies::empty(),
        )
        .map_err(|_| SignerError::Crypto {
            step: "used to seal a session",
        })?;
    let pairs: Vec<&str> = sealed
        .iter()
        .filter_map(|header| header.to_str().ok())
        .filter_map(|header| header.split(';').next())
        .collect();
    Ok(pairs.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_validate_now_and_differ_per_subject() {
        let signer = LiveSigner::generate("https://op.example/live", "api").unwrap();
        let keys = oidc_core::jwks::KeySet::parse(signer.jwks().to_string().as_bytes()).unwrap();
        let a = signer.mint("alice").unwrap();
        let b = signer.mint("bob").unwrap();
        assert_ne!(a, b);
        let now = oidc_core::UnixTime::from(SystemTime::now());
        let valid = oidc_core::validate(&a, &keys, &signer.policy(), now).unwrap();
        assert_eq!(valid.claims.sub.as_deref(), Some("alice"));
        assert!((1000..1400).contains(&a.len()), "token length {}", a.len());
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        let signer = LiveSigner::generate("https://op.example/live", "api").unwrap();
        let again =
            LiveSigner::from_pkcs8(&signer.pkcs8().unwrap(), "https://op.example/live", "api")
                .unwrap();
        assert_eq!(signer.jwks(), again.jwks());
        assert_eq!(
            LiveSigner::from_pkcs8(b"junk", "x", "y")
                .unwrap_err()
                .code(),
            "signer_bad_pkcs8"
        );
    }

    #[test]
    fn sealed_session_cookies_open_with_the_same_secret() {
        use oidc_core::{CookieCodec, CookieKeys, CookieSettings, RequestCookies, Secret};
        let secret = "0123456789abcdef0123456789abcdef";
        let header =
            seal_session_cookie(secret, "oidc_session", "https://op.example", "dan").unwrap();
        assert!(header.starts_with("oidc_session="), "{header}");
        let keys = CookieKeys::from_secrets(&[Secret::new(secret)]).unwrap();
        let codec = CookieCodec::new(
            keys,
            CookieSettings::new("oidc_session")
                .insecure_allow_plain_http(&url::Url::parse("http://127.0.0.1/").unwrap())
                .unwrap(),
        )
        .unwrap();
        let now = oidc_core::UnixTime::from(SystemTime::now());
        let opened: Value = codec
            .decode(&RequestCookies::parse(&header), now)
            .unwrap()
            .unwrap();
        assert_eq!(opened["s"]["sub"], "dan");
        assert_eq!(opened["s"]["iss"], "https://op.example");
    }

    #[tokio::test]
    async fn started_provider_validates_then_serves_from_cache() {
        let signer = LiveSigner::generate("https://op.example/live", "api").unwrap();
        let provider = signer.started_provider(100).await;
        let token = signer.mint("carol").unwrap();
        let first = provider.validate(&token).await.unwrap();
        let second = provider.validate(&token).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(provider.key_fetches(), 1);
    }
}
