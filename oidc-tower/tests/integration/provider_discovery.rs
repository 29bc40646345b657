//! Periodic re-discovery against the dev provider on 127.0.0.1: the metadata is fetched again
//! on schedule, a failed re-discovery keeps the last good metadata, and a mistyped issuer fails
//! start-up quickly with the provider's own error. The exact timings are the core's `refresh`
//! schedule's, tested there and on a paused clock in `oidc_tower::provider`; these tests wait for
//! their effects over real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hardening_support::eventually;
use oidc_core::Policy;
use oidc_dev_provider::{DevClient, DevProvider, DevUser, Endpoint, Fault, RunningProvider};
use oidc_tower::provider::{Provider, ProviderConfig};
use oidc_tower::{HttpClient, ReqwestHttpClient};

async fn dev_provider() -> RunningProvider {
    DevProvider::builder()
        .user(DevUser::new("alice", "alice"))
        .client(DevClient::confidential("api", "api-secret"))
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn start(op: &RunningProvider, rediscovery: Duration) -> Provider {
    let http: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new().unwrap());
    let policy = Policy::builder()
        .issuer(op.issuer().clone())
        .audience("api")
        .build()
        .unwrap();
    let provider = Provider::start(
        ProviderConfig::new(op.issuer().clone(), policy)
            .rediscovery_interval(rediscovery)
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(100)),
        http,
    );
    tokio::time::timeout(Duration::from_secs(10), provider.wait_ready())
        .await
        .expect("the provider became ready");
    provider
}

#[tokio::test]
async fn metadata_is_discovered_again_every_interval() {
    let op = dev_provider().await;
    let started = Instant::now();
    let provider = start(&op, Duration::from_millis(300)).await;
    let first = provider.metadata().unwrap();
    assert!(eventually(Duration::from_secs(10), || provider.discoveries() >= 3).await);
    let elapsed = started.elapsed();
    let discoveries = provider.discoveries();
    assert_eq!(op.request_count(Endpoint::Discovery), discoveries);
    // One at start, then one per 300 ms.
    assert!(
        u128::from(discoveries) <= 1 + elapsed.as_millis() / 300,
        "{discoveries} discoveries in {elapsed:?}"
    );
    let latest = provider.metadata().unwrap();
    assert!(!Arc::ptr_eq(&first, &latest), "the metadata was replaced");
    assert_eq!(*first, *latest);
    // The key set did not move, so no extra key fetches happened.
    assert_eq!(provider.key_fetches(), 1);
}

#[tokio::test]
async fn a_failed_rediscovery_keeps_the_last_good_metadata_and_is_retried() {
    let op = dev_provider().await;
    let provider = start(&op, Duration::from_millis(300)).await;
    let good = provider.metadata().unwrap();
    op.fail(Endpoint::Discovery, Fault::Status(503));
    let before = provider.discoveries();
    // Retried with backoff (50 ms, then 100 ms), not only once per interval.
    let retried = eventually(Duration::from_secs(10), || {
        provider.discoveries() >= before + 3 && provider.last_error().is_some()
    })
    .await;
    assert!(retried, "retried");
    assert!(Arc::ptr_eq(&good, &provider.metadata().unwrap()), "kept");
    assert_eq!(
        provider.last_error().map(|e| e.code()),
        Some("provider_unexpected_status")
    );
    let token = op.mint_access_token("alice", "api").unwrap();
    let validated = provider.validate(&token).await.unwrap();
    assert_eq!(validated.claims.aud.len(), 1);

    op.clear_faults();
    let refreshed = eventually(Duration::from_secs(10), || {
        !Arc::ptr_eq(&good, &provider.metadata().unwrap()) && provider.last_error().is_none()
    })
    .await;
    assert!(refreshed, "refreshed: {:?}", provider.last_error());
}

#[tokio::test]
async fn starting_with_the_default_interval_makes_one_discovery() {
    let op = dev_provider().await;
    let provider = start(&op, oidc_tower::provider::DEFAULT_REDISCOVERY_INTERVAL).await;
    assert_eq!(provider.discoveries(), 1);
    assert_eq!(op.request_count(Endpoint::Discovery), 1);
}

#[tokio::test]
async fn a_mistyped_issuer_fails_fast_with_the_providers_own_error() {
    let op = dev_provider().await;
    let http: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new().unwrap());
    let mistyped = oidc_core::Issuer::new(format!("{}/realms/typo", op.issuer())).unwrap();
    let policy = Policy::builder()
        .issuer(mistyped.clone())
        .audience("api")
        .build()
        .unwrap();
    let provider = Provider::start(
        ProviderConfig::new(mistyped, policy)
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(100)),
        http,
    );
    let started = Instant::now();
    let err = provider
        .ready_within(Duration::from_millis(800))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(err.code(), "provider_unexpected_status", "{err}");

    // The one-call entry point waits for a good issuer and hands back a usable configuration.
    let auth = oidc_tower::auth::AuthConfig::from_issuer(op.issuer().as_str(), "api")
        .await
        .unwrap()
        .build()
        .unwrap();
    assert!(auth.provider().is_ready());
    let not_an_issuer = oidc_tower::auth::AuthConfig::from_issuer("ftp://op.example", "api")
        .await
        .unwrap_err();
    assert_eq!(not_an_issuer.code(), "issuer_bad_scheme");
}
