//! The provider handle against a small provider on 127.0.0.1 that serves discovery and a key
//! set the test can rotate, slow down or take down.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::hardening_support::eventually;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oidc_core::Issuer;
use oidc_core::jwks::FreshnessPolicy;
use oidc_core::validation::Policy;
use oidc_dev_provider::minimal_discovery_document;
use oidc_tower::clock::now;
use oidc_tower::provider::{Provider, ProviderConfig, ProviderError, Providers};
use oidc_tower::{HttpClient, ReqwestHttpClient};
use serde_json::{Value, json};

const AUDIENCE: &str = "api";

struct TestKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl TestKey {
    fn generate(kid: &str) -> TestKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        TestKey {
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    fn sign(&self, issuer: &str, sub: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": issuer, "sub": sub, "aud": AUDIENCE,
            "iat": now().as_secs(), "exp": now().as_secs() + 600,
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// What the test provider serves, and what it saw.
struct Op {
    issuer: String,
    jwks: Mutex<Value>,
    down: AtomicBool,
    jwks_delay: Mutex<Duration>,
    jwks_hits: AtomicUsize,
}

impl Op {
    fn publish(&self, keys: &[&TestKey]) {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        };
        *self.jwks.lock().unwrap() = serde_json::to_value(set).unwrap();
    }
}

async fn start_op(keys: &[&TestKey]) -> Arc<Op> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let op = Arc::new(Op {
        issuer,
        jwks: Mutex::new(Value::Null),
        down: AtomicBool::new(false),
        jwks_delay: Mutex::new(Duration::ZERO),
        jwks_hits: AtomicUsize::new(0),
    });
    op.publish(keys);
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/jwks", get(jwks))
        .with_state(op.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    op
}

async fn metadata(State(op): State<Arc<Op>>) -> Response {
    if op.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(minimal_discovery_document(&op.issuer, "ES256")).into_response()
}

async fn jwks(State(op): State<Arc<Op>>) -> Response {
    op.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let delay = *op.jwks_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    if op.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(op.jwks.lock().unwrap().clone()).into_response()
}

fn config(op: &Op) -> ProviderConfig {
    let issuer = Issuer::new(op.issuer.as_str()).unwrap();
    let policy = Policy::builder()
        .issuer(issuer.clone())
        .audience(AUDIENCE)
        .build()
        .unwrap();
    ProviderConfig::new(issuer, policy)
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .refetch_interval(Duration::ZERO)
}

fn client() -> Arc<dyn HttpClient> {
    Arc::new(ReqwestHttpClient::new().unwrap())
}

async fn ready(provider: &Provider) {
    tokio::time::timeout(Duration::from_secs(10), provider.wait_ready())
        .await
        .expect("the provider became ready");
}

#[tokio::test]
async fn rp_discovery_jwks_uri_keys_and_rotation_without_failed_validations() {
    let (a, b) = (TestKey::generate("a"), TestKey::generate("b"));
    let op = start_op(&[&a]).await;
    let provider = Provider::start(config(&op), client());
    ready(&provider).await;
    assert_eq!(
        provider.metadata().unwrap().jwks_uri.as_str(),
        format!("{}/jwks", op.issuer)
    );
    let validated = provider.validate(&a.sign(&op.issuer, "u1")).await.unwrap();
    assert_eq!(validated.claims.sub.as_deref(), Some("u1"));
    assert_eq!(provider.key_fetches(), 1);

    // The provider starts signing with b: the first such token triggers one refetch.
    op.publish(&[&a, &b]);
    for sub in ["u2", "u3", "u4"] {
        let validated = provider.validate(&b.sign(&op.issuer, sub)).await.unwrap();
        assert_eq!(validated.claims.sub.as_deref(), Some(sub));
    }
    assert_eq!(provider.key_fetches(), 2);
    // Tokens of the old key keep validating during the overlap.
    assert!(provider.validate(&a.sign(&op.issuer, "u5")).await.is_ok());
}

#[tokio::test]
async fn provider_down_keeps_validating_with_the_last_good_keys() {
    let a = TestKey::generate("a");
    let op = start_op(&[&a]).await;
    let short = FreshnessPolicy::new(
        Duration::from_secs(1),
        Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let provider = Provider::start(
        config(&op).freshness(short).refresh_margin(Duration::ZERO),
        client(),
    );
    ready(&provider).await;
    op.down.store(true, Ordering::SeqCst);
    let fetches_before = provider.key_fetches();
    // The keys go stale within a second; their refresh fails.
    let failed = eventually(Duration::from_secs(10), || {
        provider.key_fetches() > fetches_before
            && provider.keys().unwrap().is_stale(now())
            && provider.last_error().is_some()
    })
    .await;
    assert!(failed, "refresh was tried");
    assert_eq!(
        provider.last_error().map(|e| e.code()),
        Some("provider_unexpected_status")
    );
    let validated = provider.validate(&a.sign(&op.issuer, "u")).await.unwrap();
    assert_eq!(validated.claims.sub.as_deref(), Some("u"));
}

#[tokio::test]
async fn start_retries_until_the_provider_is_up() {
    let a = TestKey::generate("a");
    let op = start_op(&[&a]).await;
    op.down.store(true, Ordering::SeqCst);
    let provider = Provider::start(config(&op), client());
    let failed = eventually(Duration::from_secs(10), || provider.last_error().is_some()).await;
    assert!(failed, "the first discovery failed");
    assert!(!provider.is_ready());
    let err = provider
        .validate(&a.sign(&op.issuer, "u"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "provider_not_ready");
    assert!(!err.is_rejection());
    op.down.store(false, Ordering::SeqCst);
    ready(&provider).await;
    assert!(provider.validate(&a.sign(&op.issuer, "u")).await.is_ok());
}

#[tokio::test]
async fn unknown_kid_flood_causes_bounded_fetches() {
    let (a, stranger) = (TestKey::generate("a"), TestKey::generate("not-published"));
    let op = start_op(&[&a]).await;
    let provider = Provider::start(
        config(&op).refetch_interval(Duration::from_secs(60)),
        client(),
    );
    ready(&provider).await;
    let hits_before = op.jwks_hits.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let provider = provider.clone();
        let token = stranger.sign(&op.issuer, &format!("u{i}"));
        tasks.push(tokio::spawn(async move { provider.validate(&token).await }));
    }
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "unknown_kid");
        assert!(err.is_rejection());
    }
    // Scheduled fetches do not use up the unknown-kid budget, so the flood causes exactly one.
    assert_eq!(op.jwks_hits.load(Ordering::SeqCst), hits_before + 1);
}

#[tokio::test]
async fn concurrent_requests_with_the_same_new_kid_share_one_fetch() {
    let (a, b) = (TestKey::generate("a"), TestKey::generate("b"));
    let op = start_op(&[&a]).await;
    let provider = Provider::start(config(&op), client());
    ready(&provider).await;
    op.publish(&[&a, &b]);
    *op.jwks_delay.lock().unwrap() = Duration::from_millis(200);
    let hits_before = op.jwks_hits.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let provider = provider.clone();
        let token = b.sign(&op.issuer, &format!("u{i}"));
        tasks.push(tokio::spawn(async move { provider.validate(&token).await }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(op.jwks_hits.load(Ordering::SeqCst), hits_before + 1);
}

#[tokio::test]
async fn repeated_tokens_are_served_from_the_cache() {
    let a = TestKey::generate("a");
    let op = start_op(&[&a]).await;
    let provider = Provider::start(config(&op), client());
    ready(&provider).await;
    let token = a.sign(&op.issuer, "u");
    let first = provider.validate(&token).await.unwrap();
    let second = provider.validate(&token).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second answer is the cached one"
    );
}

#[tokio::test]
async fn providers_pick_the_provider_by_issuer() {
    let (a, b) = (TestKey::generate("a"), TestKey::generate("b"));
    let (op_a, op_b) = (start_op(&[&a]).await, start_op(&[&b]).await);
    let providers = Providers::new([
        Provider::start(config(&op_a), client()),
        Provider::start(config(&op_b), client()),
    ]);
    tokio::time::timeout(Duration::from_secs(10), providers.wait_ready())
        .await
        .unwrap();
    assert!(providers.validate(&a.sign(&op_a.issuer, "x")).await.is_ok());
    assert!(providers.validate(&b.sign(&op_b.issuer, "y")).await.is_ok());
    // b's key under a's name: a's provider judges it, and has no such key.
    let forged = b.sign(&op_a.issuer, "z");
    assert_eq!(
        providers.validate(&forged).await.unwrap_err().code(),
        "unknown_kid"
    );
    let err = providers
        .validate(&a.sign("https://elsewhere.example", "w"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::UnknownIssuer {
            iss: Some("https://elsewhere.example".into())
        }
    );
}

#[tokio::test]
async fn unknown_kid_refresh_fetches_only_for_keys_not_held_and_shares_one_fetch() {
    let (a, b) = (TestKey::generate("a"), TestKey::generate("b"));
    let op = start_op(&[&a]).await;
    let provider = Provider::start(config(&op), client());
    ready(&provider).await;
    let hits = || op.jwks_hits.load(Ordering::SeqCst);
    let before = hits();
    // A kid the set holds costs nothing.
    let keys = provider
        .refresh_keys_for_unknown_kid(Some("a"))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&keys, &provider.keys().unwrap()));
    assert_eq!(hits(), before);

    // Concurrent callers naming the new key share one fetch.
    op.publish(&[&a, &b]);
    *op.jwks_delay.lock().unwrap() = Duration::from_millis(200);
    let calls = (0..20).map(|_| provider.refresh_keys_for_unknown_kid(Some("b")));
    for keys in futures_util::future::join_all(calls).await {
        assert!(keys.unwrap().contains_kid("b"));
    }
    assert_eq!(hits(), before + 1);
    assert_eq!(provider.key_fetches(), 2);
}

#[tokio::test]
async fn unknown_kid_refresh_returns_the_current_keys_when_the_limiter_refuses() {
    let (a, b) = (TestKey::generate("a"), TestKey::generate("b"));
    let op = start_op(&[&a]).await;
    let provider = Provider::start(
        config(&op).refetch_interval(Duration::from_secs(60)),
        client(),
    );
    ready(&provider).await;
    op.publish(&[&a, &b]);
    let before = op.jwks_hits.load(Ordering::SeqCst);
    // A key rotated in right after the scheduled fetch is followed at once...
    let keys = provider
        .refresh_keys_for_unknown_kid(Some("b"))
        .await
        .unwrap();
    assert!(keys.contains_kid("b"));
    assert_eq!(op.jwks_hits.load(Ordering::SeqCst), before + 1);
    // ...and within the interval further unknown kids get the current keys without a fetch.
    op.publish(&[&a]);
    for kid in [Some("c"), None] {
        let keys = provider.refresh_keys_for_unknown_kid(kid).await.unwrap();
        assert!(Arc::ptr_eq(&keys, &provider.keys().unwrap()));
        assert!(keys.contains_kid("b"), "no second fetch was allowed yet");
    }
    assert_eq!(op.jwks_hits.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn unknown_kid_refresh_reports_an_unreachable_provider_and_keeps_the_keys() {
    let a = TestKey::generate("a");
    let op = start_op(&[&a]).await;
    let provider = Provider::start(config(&op), client());
    ready(&provider).await;
    op.down.store(true, Ordering::SeqCst);
    let err = provider
        .refresh_keys_for_unknown_kid(Some("b"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "provider_unexpected_status");
    assert!(!err.is_rejection());
    assert!(provider.keys().unwrap().contains_kid("a"));
    // A token of the unknown key is still judged (401), not an outage.
    let b = TestKey::generate("b");
    let err = provider
        .validate(&b.sign(&op.issuer, "u"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_kid");
}
