//! How the client proves its identity to the token and introspection endpoints.
//!
//! Decides the form parameters and `Authorization` header for the four methods of OpenID
//! Connect Core §9 that a confidential or public client uses: `client_secret_basic` (the
//! default), `client_secret_post`, `none` (public clients, which must then use PKCE) and
//! `private_key_jwt` (a client assertion signed here with aws-lc-rs from a PKCS#8 key).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderValue, Method, Request, header};
use url::Url;
use url::form_urlencoded;

use crate::ErrorKind;
use crate::random::random_url_safe;
use crate::{RandomSource, Secret, UnixTime};

/// How long a client assertion stays valid: long enough for one request, short enough that a
/// captured assertion is useless soon after.
pub const CLIENT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// The media type of a signed client assertion (RFC 7523 §2.2).
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client's identifier and the way it authenticates.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    client_id: String,
    method: ClientAuthMethod,
}

impl ClientCredentials {
    /// A client authenticating with `method`.
    pub fn new(client_id: impl Into<String>, method: ClientAuthMethod) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            method,
        }
    }

    /// The `client_id` registered with the provider.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How the client authenticates.
    pub fn method(&self) -> &ClientAuthMethod {
        &self.method
    }
}

/// A client authentication method (OpenID Connect Core §9).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1). The default for
    /// confidential clients.
    ClientSecretBasic(Secret),
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost(Secret),
    /// No authentication: a public client that proves possession with PKCE alone.
    None,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt(ClientSigningKey),
}

impl ClientAuthMethod {
    /// The method's registered name (`token_endpoint_auth_method`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic(_) => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost(_) => "client_secret_post",
            ClientAuthMethod::None => "none",
            ClientAuthMethod::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }
}

/// The signature algorithm of a client assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// Ed25519.
    EdDSA,
}

impl AssertionAlgorithm {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAlgorithm::RS256 => "RS256",
            AssertionAlgorithm::PS256 => "PS256",
            AssertionAlgorithm::ES256 => "ES256",
            AssertionAlgorithm::ES384 => "ES384",
            AssertionAlgorithm::ES512 => "ES512",
            AssertionAlgorithm::EdDSA => "EdDSA",
        }
    }
}

/// A private key for `private_key_jwt`, parsed once from PKCS#8 DER.
#[derive(Clone)]
pub struct ClientSigningKey {
    algorithm: AssertionAlgorithm,
    kid: Option<String>,
    key: std::sync::Arc<KeyPair>,
}

enum KeyPair {
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair),
    Ed25519(aws_lc_rs::signature::Ed25519KeyPair),
}

impl ClientSigningKey {
    /// Parses an unencrypted PKCS#8 (DER) private key for `algorithm`. `kid` is put in the
    /// assertion header so the provider can pick the registered public key.
    pub fn from_pkcs8_der(
        algorithm: AssertionAlgorithm,
        pkcs8_der: &[u8],
        kid: Option<String>,
    ) -> Result<Self, ClientAuthError> {
        use aws_lc_rs::signature;
        let rejected = |e: aws_lc_rs::error::KeyRejected| ClientAuthError::KeyRejected {
            algorithm,
            reason: e.to_string(),
        };
        let key = match algorithm {
            AssertionAlgorithm::RS256 | AssertionAlgorithm::PS256 => {
                KeyPair::Rsa(signature::RsaKeyPair::from_pkcs8(pkcs8_der).map_err(rejected)?)
            }
            AssertionAlgorithm::ES256 => KeyPair::Ecdsa(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8_der,
                )
                .map_err(rejected)?,
            ),
            AssertionAlgorithm::ES384 => KeyPair::Ecdsa(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    pkcs8_der,
                )
                .map_err(rejected)?,
            ),
            AssertionAlgorithm::ES512 => KeyPair::Ecdsa(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
                    pkcs8_der,
                )
                .map_err(rejected)?,
            ),
            AssertionAlgorithm::EdDSA => KeyPair::Ed25519(
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8_der)
                    .map_err(rejected)?,
            ),
        };
        Ok(ClientSigningKey {
            algorithm,
            kid,
            key: std::sync::Arc::new(key),
        })
    }

    /// The assertion's signature algorithm.
    pub fn algorithm(&self) -> AssertionAlgorithm {
        self.algorithm
    }

    /// The public key of an ECDSA key as its uncompressed point (`0x04 || x || y`); `None` for
    /// RSA and Ed25519 keys.
    pub(crate) fn ecdsa_public_point(&self) -> Option<&[u8]> {
        use aws_lc_rs::signature::KeyPair as _;
        match &*self.key {
            KeyPair::Ecdsa(key) => Some(key.public_key().as_ref()),
            KeyPair::Rsa(_) | KeyPair::Ed25519(_) => None,
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ClientAuthError> {
        use aws_lc_rs::signature;
        // aws-lc-rs draws signature randomness (ECDSA, PSS salts) internally and ignores the
        // generator argument; a `SystemRandom` value is only passed to satisfy the signature.
        let unused_rng = aws_lc_rs::rand::SystemRandom::new();
        match (&*self.key, self.algorithm) {
            (KeyPair::Rsa(key), alg) => {
                let padding: &'static dyn signature::RsaEncoding =
                    if alg == AssertionAlgorithm::PS256 {
                        &signature::RSA_PSS_SHA256
                    } else {
                        &signature::RSA_PKCS1_SHA256
                    };
                let mut out = vec![0u8; key.public_modulus_len()];
                key.sign(padding, &unused_rng, message, &mut out)
                    .map_err(|_| ClientAuthError::SigningFailed)?;
                Ok(out)
            }
            (KeyPair::Ecdsa(key), _) => key
                .sign(&unused_rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| ClientAuthError::SigningFailed),
            (KeyPair::Ed25519(key), _) => Ok(key.sign(message).as_ref().to_vec()),
        }
    }
}

impl std::fmt::Debug for ClientSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("key", &"***")
            .finish()
    }
}

/// Why client authentication could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthError {
    /// The PKCS#8 key does not fit the algorithm or is malformed.
    #[error("the client's private key was rejected for {}: {reason}", .algorithm.as_str())]
    KeyRejected {
        /// The algorithm the key was meant for.
        algorithm: AssertionAlgorithm,
        /// What aws-lc-rs said.
        reason: String,
    },
    /// The cryptographic library failed to sign.
    #[error("signing the client assertion failed")]
    SigningFailed,
}

impl ClientAuthError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientAuthError::KeyRejected { .. } => ErrorKind::ClientKeyRejected,
            ClientAuthError::SigningFailed => ErrorKind::ClientAssertionSigningFailed,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Builds a form `POST` to `endpoint` carrying `params` plus the client's authentication.
///
/// `now` and `random` are used only by `private_key_jwt` (the assertion's `iat`/`exp` and
/// `jti`); the assertion's audience is the endpoint URL itself.
pub fn authenticated_form_post(
    endpoint: &Url,
    credentials: &ClientCredentials,
    params: &[(&str, &str)],
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<Request<Vec<u8>>, ClientAuthError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    let mut authorization = None;
    match &credentials.method {
        ClientAuthMethod::ClientSecretBasic(secret) => {
            authorization = Some(basic_authorization(&credentials.client_id, secret));
        }
        ClientAuthMethod::ClientSecretPost(secret) => {
            form.append_pair("client_id", &credentials.client_id);
            form.append_pair("client_secret", secret.expose());
        }
        ClientAuthMethod::None => {
            form.append_pair("client_id", &credentials.client_id);
        }
        ClientAuthMethod::PrivateKeyJwt(key) => {
            let assertion =
                client_assertion(&credentials.client_id, key, endpoint.as_str(), now, random)?;
            form.append_pair("client_id", &credentials.client_id);
            form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE);
            form.append_pair("client_assertion", assertion.expose());
        }
    }
    let mut request = Request::new(form.finish().into_bytes());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = endpoint
        .as_str()
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(value) = authorization {
        let mut value = value;
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(request)
}

/// The `Authorization: Basic` value of RFC 6749 §2.3.1: id and secret are each
/// form-urlencoded before being joined with `:` and base64-encoded, so a `:` in the id survives.
pub fn basic_authorization(client_id: &str, secret: &Secret) -> HeaderValue {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
    let encoded = STANDARD.encode(format!("{id}:{secret}"));
    // Base64 output is always a valid header value.
    HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"))
}

/// A signed client assertion (RFC 7523 §3) for `audience`, valid for
/// [`CLIENT_ASSERTION_LIFETIME`] from `now`, with a fresh `jti` from `random`.
pub fn client_assertion(
    client_id: &str,
    key: &ClientSigningKey,
    audience: &str,
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<Secret, ClientAuthError> {
    let mut header = serde_json::json!({ "alg": key.algorithm.as_str(), "typ": "JWT" });
    if let (Some(kid), Some(map)) = (&key.kid, header.as_object_mut()) {
        map.insert("kid".into(), serde_json::Value::String(kid.clone()));
    }
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": random_url_safe(random, 24),
        "iat": now.as_secs(),
        "exp": now.saturating_add(CLIENT_ASSERTION_LIFETIME).as_secs(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(signing_input.as_bytes())?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danger::InsecureSeededRandom;

    fn form(request: &Request<Vec<u8>>) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(request.body()).unwrap()
    }

    fn endpoint() -> Url {
        Url::parse("https://op.example/token").unwrap()
    }

    #[test]
    fn basic_encodes_id_and_secret_before_base64() {
        let value = basic_authorization("id:with colon", &Secret::new("s3cr+t/="));
        let b64 = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        assert_eq!(decoded, "id%3Awith+colon:s3cr%2Bt%2F%3D");
    }

    #[test]
    fn secret_basic_puts_nothing_secret_in_the_body() {
        let credentials = ClientCredentials::new(
            "client",
            ClientAuthMethod::ClientSecretBasic(Secret::new("pw")),
        );
        let request = authenticated_form_post(
            &endpoint(),
            &credentials,
            &[("grant_type", "refresh_token")],
            UnixTime::from_secs(1),
            &mut InsecureSeededRandom::new(1),
        )
        .unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "https://op.example/token");
        assert_eq!(
            request.headers()[header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            request.headers()[header::AUTHORIZATION],
            "Basic Y2xpZW50OnB3"
        );
        assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
        assert_eq!(
            form(&request),
            vec![("grant_type".to_owned(), "refresh_token".to_owned())]
        );
    }

    #[test]
    fn secret_post_and_none_put_the_id_in_the_body() {
        let post = ClientCredentials::new(
            "client",
            ClientAuthMethod::ClientSecretPost(Secret::new("pw")),
        );
        let request = authenticated_form_post(
            &endpoint(),
            &post,
            &[],
            UnixTime::from_secs(1),
            &mut InsecureSeededRandom::new(1),
        )
        .unwrap();
        assert!(request.headers().get(header::AUTHORIZATION).is_none());
        assert_eq!(
            form(&request),
            vec![
                ("client_id".to_owned(), "client".to_owned()),
                ("client_secret".to_owned(), "pw".to_owned())
            ]
        );
        let public = ClientCredentials::new("client", ClientAuthMethod::None);
        let request = authenticated_form_post(
            &endpoint(),
            &public,
            &[],
            UnixTime::from_secs(1),
            &mut InsecureSeededRandom::new(1),
        )
        .unwrap();
        assert_eq!(
            form(&request),
            vec![("client_id".to_owned(), "client".to_owned())]
        );
    }

    #[test]
    fn garbage_key_is_a_typed_error() {
        let err =
            ClientSigningKey::from_pkcs8_der(AssertionAlgorithm::ES256, b"nope", None).unwrap_err();
        assert_eq!(err.code(), "client_key_rejected");
    }

    #[test]
    fn private_key_jwt_assertion_verifies_with_the_public_key() {
        use aws_lc_rs::signature::{self, KeyPair as _};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
        )
        .unwrap();
        let key = ClientSigningKey::from_pkcs8_der(
            AssertionAlgorithm::ES256,
            pkcs8.as_ref(),
            Some("k1".into()),
        )
        .unwrap();
        let credentials = ClientCredentials::new("client", ClientAuthMethod::PrivateKeyJwt(key));
        let request = authenticated_form_post(
            &endpoint(),
            &credentials,
            &[("grant_type", "authorization_code")],
            UnixTime::from_secs(1000),
            &mut InsecureSeededRandom::new(3),
        )
        .unwrap();
        let fields = form(&request);
        assert_eq!(fields[2].1, CLIENT_ASSERTION_TYPE);
        let jwt = &fields[3].1;
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
        assert_eq!(claims["iss"], "client");
        assert_eq!(claims["sub"], "client");
        assert_eq!(claims["aud"], "https://op.example/token");
        assert_eq!(claims["iat"], 1000);
        assert_eq!(claims["exp"], 1060);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            pair.public_key().as_ref(),
        );
        let message = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(
                message.as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .unwrap();
    }
}
