//! DPoP (RFC 9449) at the dev provider's token endpoint: a token request with a valid proof gets
//! a `DPoP` access token bound to the proof's key (`cnf.jkt`), which the core's resource-side
//! check then accepts only with a proof by that key; bad and replayed proofs are refused.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::dpop::{
    DpopPolicy, DpopRequest, access_token_hash, bound_key_thumbprint, verify_proof,
};
use oidc_core::jwks::KeySet;
use oidc_core::logout::SeenJtis;
use oidc_core::validation::{Policy, validate};
use oidc_core::{Issuer, UnixTime};
use serde_json::{Value, json};

struct ProofKey {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl ProofKey {
    fn generate() -> ProofKey {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        ProofKey { pair, jwk }
    }

    fn thumbprint(&self) -> String {
        let set = KeySet::parse(json!({"keys": [self.jwk]}).to_string().as_bytes()).unwrap();
        set.keys()[0].thumbprint.clone()
    }

    fn proof(&self, method: &str, uri: &str, access_token: Option<&str>) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(rand_bytes()),
            "htm": method,
            "htu": uri,
            "iat": unix_now(),
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(access_token_hash(token));
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn token_request(
    provider: &oidc_dev_provider::RunningProvider,
    proof: Option<&str>,
) -> (u16, Value) {
    let mut request = http()
        .post(provider.endpoint("/token"))
        .basic_auth("app", Some("app-secret"))
        .form_urlencoded(&[("grant_type", "client_credentials"), ("scope", "jobs:run")]);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn validated_claims(
    provider: &oidc_dev_provider::RunningProvider,
    token: &str,
) -> serde_json::Map<String, Value> {
    let jwks = http()
        .get(provider.endpoint("/jwks"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let keys = KeySet::parse(&jwks).unwrap();
    let policy = Policy::builder()
        .issuer(Issuer::new(provider.issuer().as_str()).unwrap())
        .audience("https://api.example")
        .build()
        .unwrap();
    let valid = validate(token, &keys, &policy, UnixTime::from_secs(unix_now())).unwrap();
    let Value::Object(map) = serde_json::to_value(&valid.claims).unwrap() else {
        panic!("claims are an object");
    };
    map
}

#[tokio::test]
async fn a_proof_at_the_token_endpoint_binds_the_access_token_to_its_key() {
    let provider = start().await;
    let key = ProofKey::generate();
    let token_endpoint = provider.endpoint("/token");
    let (status, tokens) =
        token_request(&provider, Some(&key.proof("POST", &token_endpoint, None))).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let access_token = tokens["access_token"].as_str().unwrap();
    let claims = validated_claims(&provider, access_token).await;
    assert_eq!(
        bound_key_thumbprint(&claims),
        Some(key.thumbprint().as_str())
    );

    // The resource server's check: a proof by the same key for this request passes ...
    let api = url::Url::parse("https://api.example/v1/jobs").unwrap();
    let request = DpopRequest {
        method: "GET",
        uri: &api,
        access_token: Some(access_token),
        bound_jkt: bound_key_thumbprint(&claims),
    };
    let now = UnixTime::from_secs(unix_now());
    let mut seen = SeenJtis::new(16);
    let proof = key.proof("GET", api.as_str(), Some(access_token));
    let verified = verify_proof(&proof, &request, &DpopPolicy::new(), &mut seen, now).unwrap();
    assert_eq!(verified.jkt, key.thumbprint());
    // ... a thief's proof with another key does not ...
    let thief = ProofKey::generate();
    let stolen = thief.proof("GET", api.as_str(), Some(access_token));
    let err = verify_proof(&stolen, &request, &DpopPolicy::new(), &mut seen, now).unwrap_err();
    assert_eq!(err.code(), "dpop_jkt_mismatch");
    // ... and the first proof cannot be sent again.
    let err = verify_proof(&proof, &request, &DpopPolicy::new(), &mut seen, now).unwrap_err();
    assert_eq!(err.code(), "dpop_replayed");

    let metadata: Value = http()
        .get(provider.endpoint("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
}

#[tokio::test]
async fn bad_or_replayed_proofs_are_refused_and_no_proof_means_a_bearer_token() {
    let provider = start().await;
    let key = ProofKey::generate();
    let token_endpoint = provider.endpoint("/token");

    let proof = key.proof("POST", &token_endpoint, None);
    assert_eq!(token_request(&provider, Some(&proof)).await.0, 200);
    let (status, body) = token_request(&provider, Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("dpop_replayed")
    );

    for (proof, code) in [
        (key.proof("GET", &token_endpoint, None), "dpop_htm_mismatch"),
        (
            key.proof("POST", &provider.endpoint("/userinfo"), None),
            "dpop_htu_mismatch",
        ),
        ("not-a-proof".to_owned(), "dpop_malformed"),
    ] {
        let (status, body) = token_request(&provider, Some(&proof)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof"))
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(code),
            "{body}"
        );
    }

    let (status, tokens) = token_request(&provider, None).await;
    assert_eq!(status, 200);
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = validated_claims(&provider, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(bound_key_thumbprint(&claims), None);
    assert!(!claims.contains_key("cnf"));
}
