//! Signing keys and the published key set: which key signs, which keys the JWKS lists, and how
//! rotation moves from one to the next without breaking tokens already issued.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The signature algorithm of a provider key.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Deserialize, serde::Serialize,
)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a freshly generated 2048-bit RSA key (the default,
    /// the one algorithm every relying party must support).
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA over P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
}

impl SigningAlgorithm {
    /// The JOSE name (`RS256`, `ES256`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
        }
    }

    fn jose(self) -> Algorithm {
        match self {
            SigningAlgorithm::Rs256 => Algorithm::RS256,
            SigningAlgorithm::Es256 => Algorithm::ES256,
        }
    }
}

/// A key could not be generated or a token could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The crypto library refused to generate a key of this algorithm.
    #[error("could not generate a {algorithm:?} key")]
    Generation {
        /// The algorithm asked for.
        algorithm: SigningAlgorithm,
    },
    /// A freshly generated key had an unexpected encoding.
    #[error("a generated {algorithm:?} key could not be encoded")]
    Encoding {
        /// The algorithm of the key.
        algorithm: SigningAlgorithm,
    },
    /// Signing a token failed.
    #[error("signing a token failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

impl KeyError {
    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::Generation { .. } => "key_generation_failed",
            KeyError::Encoding { .. } => "key_encoding_failed",
            KeyError::Signing(_) => "signing_failed",
        }
    }
}

/// One public key as listed in the JWKS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PublicJwk {
    kty: &'static str,
    #[serde(rename = "use")]
    key_use: &'static str,
    alg: &'static str,
    kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
}

struct ProviderKey {
    algorithm: SigningAlgorithm,
    encoding: EncodingKey,
    public: PublicJwk,
}

impl ProviderKey {
    fn generate(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        match algorithm {
            SigningAlgorithm::Rs256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| KeyError::Generation { algorithm })?;
                let pkcs8 = pair
                    .as_der()
                    .map_err(|_| KeyError::Encoding { algorithm })?;
                let pkcs1 =
                    pkcs1_from_pkcs8(pkcs8.as_ref()).ok_or(KeyError::Encoding { algorithm })?;
                let public = pair.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                let n = URL_SAFE_NO_PAD.encode(n);
                let e = URL_SAFE_NO_PAD.encode(e);
                let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
                Ok(ProviderKey {
                    algorithm,
                    encoding: EncodingKey::from_rsa_der(pkcs1),
                    public: PublicJwk {
                        kty: "RSA",
                        key_use: "sig",
                        alg: "RS256",
                        kid,
                        n: Some(n),
                        e: Some(e),
                        crv: None,
                        x: None,
                        y: None,
                    },
                })
            }
            SigningAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Generation { algorithm })?;
                let pkcs8 = pair
                    .to_pkcs8v1()
                    .map_err(|_| KeyError::Encoding { algorithm })?;
                let point = pair.public_key().as_ref();
                let (x, y) = match (point.first(), point.get(1..33), point.get(33..65)) {
                    (Some(0x04), Some(x), Some(y)) if point.len() == 65 => (x, y),
                    _ => return Err(KeyError::Encoding { algorithm }),
                };
                let x = URL_SAFE_NO_PAD.encode(x);
                let y = URL_SAFE_NO_PAD.encode(y);
                let kid = thumbprint(&format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
                ));
                Ok(ProviderKey {
                    algorithm,
                    encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
                    public: PublicJwk {
                        kty: "EC",
                        key_use: "sig",
                        alg: "ES256",
                        kid,
                        n: None,
                        e: None,
                        crv: Some("P-256"),
                        x: Some(x),
                        y: Some(y),
                    },
                })
            }
        }
    }
}

/// The provider's keys: one signing key and the keys still published for tokens signed before
/// the last rotation.
pub(crate) struct KeyRing {
    /// Newest last; the last one signs.
    keys: Vec<ProviderKey>,
}

impl KeyRing {
    /// A ring with one fresh key of `algorithm`.
    pub(crate) fn generate(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        Ok(KeyRing {
            keys: vec![ProviderKey::generate(algorithm)?],
        })
    }

    /// Adds a fresh key of `algorithm` and makes it the signing key; older keys stay published
    /// until [`KeyRing::retire_old`]. Returns the new key id.
    pub(crate) fn rotate(&mut self, algorithm: SigningAlgorithm) -> Result<String, KeyError> {
        let key = ProviderKey::generate(algorithm)?;
        let kid = key.public.kid.clone();
        self.keys.push(key);
        Ok(kid)
    }

    /// Stops publishing every key except the signing key; returns how many were removed.
    pub(crate) fn retire_old(&mut self) -> usize {
        let removed = self.keys.len().saturating_sub(1);
        let keep_from = removed;
        self.keys.drain(..keep_from);
        removed
    }

    /// The id of the signing key.
    pub(crate) fn signing_kid(&self) -> Option<&str> {
        self.keys.last().map(|k| k.public.kid.as_str())
    }

    /// The algorithms of the published keys, without duplicates.
    pub(crate) fn published_kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.public.kid.clone()).collect()
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&PublicJwk> = self.keys.iter().rev().map(|k| &k.public).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs `claims` with the signing key, with `typ` in the header.
    pub(crate) fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let key = self.keys.last().ok_or(KeyError::Encoding {
            algorithm: SigningAlgorithm::default(),
        })?;
        let mut header = Header::new(key.algorithm.jose());
        header.kid = Some(key.public.kid.clone());
        header.typ = Some(typ.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The algorithm of the signing key.
    #[cfg(test)]
    pub(crate) fn signing_algorithm(&self) -> SigningAlgorithm {
        self.keys.last().map(|k| k.algorithm).unwrap_or_default()
    }
}

/// RFC 7638 thumbprint of a canonical JWK.
fn thumbprint(canonical_jwk: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical_jwk.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The `RSAPrivateKey` (PKCS#1) inside a PKCS#8 `PrivateKeyInfo`: jsonwebtoken signs RSA with
/// PKCS#1, aws-lc-rs hands out PKCS#8.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Option<&[u8]> {
    let (tag, info, _) = der_element(pkcs8)?;
    if tag != 0x30 {
        return None;
    }
    let (version_tag, _, rest) = der_element(info)?;
    let (algorithm_tag, _, rest) = der_element(rest)?;
    let (key_tag, key, _) = der_element(rest)?;
    (version_tag == 0x02 && algorithm_tag == 0x30 && key_tag == 0x04).then_some(key)
}

/// Splits one DER element off `input`: (tag, contents, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first_len, rest) = rest.split_first()?;
    let (len, rest) = if first_len < 0x80 {
        (usize::from(first_len), rest)
    } else {
        let count = usize::from(first_len & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(count)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// `at_hash`: the left half of the SHA-256 of the access token, base64url (RS256 and ES256 both
/// hash with SHA-256).
pub(crate) fn left_half_hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(bytes.get(..bytes.len() / 2).unwrap_or(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    fn verify(ring: &KeyRing, token: &str) -> serde_json::Value {
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(ring.jwks()).unwrap();
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        decode::<serde_json::Value>(token, &key, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn rsa_and_ec_tokens_verify_against_the_published_jwks() {
        for algorithm in [SigningAlgorithm::Rs256, SigningAlgorithm::Es256] {
            let ring = KeyRing::generate(algorithm).unwrap();
            let token = ring
                .sign("JWT", &serde_json::json!({"sub": "alice"}))
                .unwrap();
            assert_eq!(verify(&ring, &token)["sub"], "alice");
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), ring.signing_kid());
            assert_eq!(header.alg, algorithm.jose());
        }
    }

    #[test]
    fn rotation_keeps_old_keys_published_until_retired() {
        let mut ring = KeyRing::generate(SigningAlgorithm::Rs256).unwrap();
        let old_token = ring.sign("JWT", &serde_json::json!({"n": 1})).unwrap();
        let old_kid = ring.signing_kid().unwrap().to_owned();
        let new_kid = ring.rotate(SigningAlgorithm::Es256).unwrap();
        assert_ne!(old_kid, new_kid);
        assert_eq!(ring.signing_kid(), Some(new_kid.as_str()));
        assert_eq!(ring.signing_algorithm(), SigningAlgorithm::Es256);
        assert_eq!(verify(&ring, &old_token)["n"], 1);
        assert_eq!(ring.published_kids(), vec![old_kid, new_kid.clone()]);
        assert_eq!(ring.retire_old(), 1);
        assert_eq!(ring.published_kids(), vec![new_kid]);
        assert_eq!(ring.retire_old(), 0);
    }

    #[test]
    fn der_reader_rejects_truncated_input() {
        assert_eq!(der_element(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(der_element(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(
            der_element(&[0x30, 0x81, 0x01, 7]),
            Some((0x30, &[7u8][..], &[][..]))
        );
        assert_eq!(pkcs1_from_pkcs8(&[0x02, 0x01, 0x00]), None);
    }

    #[test]
    fn at_hash_matches_the_openid_example() {
        // OpenID Connect Core, appendix A.3: access token and its at_hash.
        assert_eq!(
            left_half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
