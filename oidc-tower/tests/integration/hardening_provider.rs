//! The provider handle under provider faults, on 127.0.0.1: down at start, down mid-run, slow,
//! answering 500s, garbage, huge or endless bodies, rotating keys under traffic, and a flood of
//! tokens naming random keys.
//!
//! What must hold: tokens already validatable keep validating on the cached keys, an outage is
//! reported as such (never as a rejected token), the handle recovers by itself, no task piles up,
//! and key-set fetches stay bounded by the configured interval.

use crate::support::gzip;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::hardening_support::{
    OpHost, alive_tasks, decode_parts, eventually, fast_config, impatient_client, policy,
    ready_within, with_header,
};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use oidc_core::Issuer;
use oidc_dev_provider::{Endpoint, Fault, minimal_discovery_document};
use oidc_tower::clock::now;
use oidc_tower::provider::{Provider, ProviderConfig};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_at_start_is_not_ready_then_recovers_by_itself() {
    let op = OpHost::start().await;
    op.stop().await;
    let provider = Provider::start(fast_config(&op.issuer), impatient_client());
    // Minting works while the server is stopped: the keys are the provider's.
    let token = op.token();
    let down = eventually(Duration::from_secs(5), || {
        provider.last_error().is_some_and(|e| e.code() == "connect")
    })
    .await;
    assert!(down, "last error: {:?}", provider.last_error());
    let error = provider.validate(&token).await.unwrap_err();
    assert_eq!(error.code(), "provider_not_ready");
    assert!(!error.is_rejection(), "an outage is not a rejected token");
    let tasks_while_down = alive_tasks();
    let discoveries_while_down = provider.discoveries();
    let retried = eventually(Duration::from_secs(5), || {
        provider.discoveries() >= discoveries_while_down + 3
    })
    .await;
    assert!(retried, "discovery is retried while the provider is down");
    assert!(
        alive_tasks() <= tasks_while_down + 2,
        "retries pile up: {tasks_while_down} -> {}",
        alive_tasks()
    );

    op.restart().await;
    ready_within(&provider, Duration::from_secs(5)).await;
    let validated = provider.validate(&token).await.unwrap();
    assert_eq!(validated.claims.sub.as_deref(), Some("alice"));
    assert_eq!(provider.last_error(), None);
}

/// One fault at a time, injected after the provider is ready: the keys go stale every second and
/// the refresh fails, yet known and new tokens of the current key keep validating; once the fault
/// is gone, refreshes succeed again by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_run_faults_keep_validating_on_cached_keys_and_recover() {
    let op = OpHost::start().await;
    let provider = Provider::start(fast_config(&op.issuer), impatient_client());
    ready_within(&provider, Duration::from_secs(5)).await;
    let known = op.token();
    provider.validate(&known).await.unwrap();
    let baseline_tasks = alive_tasks();

    let faults: [(&str, Option<Fault>, &str); 5] = [
        (
            "500",
            Some(Fault::Status(500)),
            "provider_unexpected_status",
        ),
        (
            "503",
            Some(Fault::Status(503)),
            "provider_unexpected_status",
        ),
        ("garbage", Some(Fault::Garbage), "jwks_malformed"),
        (
            "slow",
            Some(Fault::Delay(Duration::from_secs(2))),
            "timeout",
        ),
        ("down", None, "connect"),
    ];
    for (name, fault, expected_code) in faults {
        match &fault {
            Some(fault) => op.with(|op| op.fail(Endpoint::Jwks, fault.clone())),
            None => op.stop().await,
        }
        let fetches_before = provider.key_fetches();
        let failing = eventually(Duration::from_secs(5), || {
            provider
                .last_error()
                .is_some_and(|e| e.code() == expected_code)
        })
        .await;
        assert!(failing, "{name}: last error {:?}", provider.last_error());
        // The keys go stale and a few more refreshes fail.
        let retried = eventually(Duration::from_secs(10), || {
            provider.key_fetches() >= fetches_before + 2 && provider.keys().unwrap().is_stale(now())
        })
        .await;
        assert!(retried, "{name}: refreshes were retried");
        for token in [known.clone(), op.token()] {
            let validated = provider.validate(&token).await;
            assert!(validated.is_ok(), "{name}: {:?}", validated.err());
        }
        assert!(
            alive_tasks() <= baseline_tasks + 4,
            "{name}: tasks pile up: {baseline_tasks} -> {}",
            alive_tasks()
        );

        match fault {
            Some(_) => op.with(|op| op.clear_faults()),
            None => op.restart().await,
        }
        let recovered =
            eventually(Duration::from_secs(5), || provider.last_error().is_none()).await;
        assert!(
            recovered,
            "{name}: still failing: {:?}",
            provider.last_error()
        );
    }
    // Slow answers that were given up on leave nothing behind once the provider is healthy.
    let settled = eventually(Duration::from_secs(5), || {
        alive_tasks() <= baseline_tasks + 2
    })
    .await;
    assert!(settled, "tasks left: {baseline_tasks} -> {}", alive_tasks());
}

/// Many requests racing through an outage see either a success (cached keys) or nothing else:
/// with a valid token, not one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_traffic_through_an_outage_sees_no_failure() {
    let op = OpHost::start().await;
    let provider = Provider::start(fast_config(&op.issuer), impatient_client());
    ready_within(&provider, Duration::from_secs(5)).await;
    let tokens: Vec<String> = (0..20).map(|_| op.token()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let successes = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (provider, tokens) = (provider.clone(), tokens.clone());
        let (stop, failures, successes) = (stop.clone(), failures.clone(), successes.clone());
        workers.push(tokio::spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                match provider.validate(&tokens[i % tokens.len()]).await {
                    Ok(_) => successes.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failures.fetch_add(1, Ordering::Relaxed),
                };
                i += 1;
                tokio::task::yield_now().await;
            }
        }));
    }
    // Traffic flows through each phase for a while: before, during and after each outage.
    let traffic = Duration::from_millis(300);
    tokio::time::sleep(traffic).await;
    op.stop().await;
    until_the_keys_are_stale_and_a_refresh_failed(&provider).await;
    op.restart().await;
    tokio::time::sleep(traffic).await;
    op.with(|op| op.fail(Endpoint::Jwks, Fault::Status(500)));
    until_the_keys_are_stale_and_a_refresh_failed(&provider).await;
    op.with(|op| op.clear_faults());
    tokio::time::sleep(traffic).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(successes.load(Ordering::Relaxed) > 100);
}

/// Waits until the provider's keys went stale and a refresh has failed since the call.
async fn until_the_keys_are_stale_and_a_refresh_failed(provider: &Provider) {
    let fetches_before = provider.key_fetches();
    let failed = eventually(Duration::from_secs(10), || {
        provider.key_fetches() > fetches_before
            && provider.last_error().is_some()
            && provider.keys().unwrap().is_stale(now())
    })
    .await;
    assert!(failed, "a refresh failed: {:?}", provider.last_error());
}

/// The provider rotates its signing key under steady traffic (new key added and used at once, old
/// key retired later): every request with a valid token succeeds, and the new key costs one fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_steady_traffic_fails_no_valid_token() {
    let op = Arc::new(OpHost::start().await);
    let config = ProviderConfig::new(op.issuer.clone(), policy(&op.issuer))
        .refetch_interval(Duration::from_secs(1))
        .token_cache(0, Duration::ZERO);
    let provider = Provider::start(config, impatient_client());
    ready_within(&provider, Duration::from_secs(5)).await;
    let old_kid = op.with(|op| op.signing_kid());

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let successes = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (provider, op) = (provider.clone(), op.clone());
        let (stop, failures, successes) = (stop.clone(), failures.clone(), successes.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // Each token is minted just before use, as a client fetching fresh tokens would.
                let token = op.with(|op| op.mint_access_token("bob", "demo").unwrap());
                match provider.validate(&token).await {
                    Ok(_) => successes.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("refused: {e} ({})", e.code());
                        failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::task::yield_now().await;
            }
        }));
    }
    // Each phase lasts until the workers have validated a few dozen more tokens: before the
    // rotation, with the new key beside the old one, and with the new key alone.
    let more_successes = |n: u64| {
        let (successes, target) = (successes.clone(), successes.load(Ordering::Relaxed) + n);
        async move {
            let done = eventually(Duration::from_secs(10), || {
                successes.load(Ordering::Relaxed) >= target
            })
            .await;
            assert!(done, "traffic flows");
        }
    };
    more_successes(30).await;
    let fetches_before = provider.key_fetches();
    let new_kid = op.with(|op| op.rotate_keys().unwrap());
    assert_ne!(new_kid, old_kid);
    more_successes(30).await;
    assert!(provider.keys().unwrap().contains_kid(&new_kid));
    assert_eq!(op.with(|op| op.retire_old_keys()), 1);
    more_successes(30).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(successes.load(Ordering::Relaxed) > 50);
    assert_eq!(provider.key_fetches(), fetches_before + 1);
    assert!(provider.keys().unwrap().contains_kid(&new_kid));
}

/// Tokens naming random `kid`s, as fast as the test can send them: key-set fetches stay at one
/// per refetch interval (plus the scheduled ones), every such token is refused as a rejection,
/// and valid tokens keep validating meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kid_flood_is_bounded_by_the_refetch_interval() {
    let op = OpHost::start().await;
    let interval = Duration::from_millis(1000);
    let config = ProviderConfig::new(op.issuer.clone(), policy(&op.issuer))
        .refetch_interval(interval)
        .token_cache(0, Duration::ZERO);
    let provider = Provider::start(config, impatient_client());
    ready_within(&provider, Duration::from_secs(5)).await;
    let valid = op.token();
    let (header, _) = decode_parts(&valid);
    let jwks_before = op.with(|op| op.request_count(Endpoint::Jwks));

    let started = Instant::now();
    let run_for = Duration::from_millis(3500);
    let refused = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for attacker in 0..8u64 {
        let (provider, valid, header, refused) = (
            provider.clone(),
            valid.clone(),
            header.clone(),
            refused.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < run_for {
                let mut header = header.clone();
                header["kid"] = json!(format!("random-{attacker}-{n}"));
                let forged = with_header(&valid, &header);
                let error = provider.validate(&forged).await.unwrap_err();
                assert_eq!(error.code(), "unknown_kid");
                assert!(error.is_rejection());
                refused.fetch_add(1, Ordering::Relaxed);
                n += 1;
                tokio::task::yield_now().await;
            }
        }));
    }
    while started.elapsed() < run_for {
        assert!(provider.validate(&valid).await.is_ok());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for attacker in attackers {
        attacker.await.unwrap();
    }
    let fetched = op.with(|op| op.request_count(Endpoint::Jwks)) - jwks_before;
    let elapsed = started.elapsed();
    // One fetch for the first unknown kid (a scheduled fetch does not use up the budget), then at
    // most one per interval.
    let allowed = elapsed.as_millis() / interval.as_millis() + 1;
    assert!(refused.load(Ordering::Relaxed) > 1000);
    assert!(
        u128::from(fetched) <= allowed,
        "{fetched} key-set fetches in {elapsed:?}, at most {allowed} allowed"
    );
}

/// What the hostile key-set server sends on `/jwks`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum JwksMode {
    /// The real key set.
    Normal = 0,
    /// A 20 MiB body announced with `Content-Length`.
    Huge = 1,
    /// A chunked body without end (up to 256 MiB, in case the client keeps reading).
    Endless = 2,
    /// A small gzip body that inflates to 8 MiB, labelled `Content-Encoding: gzip`.
    GzipBomb = 3,
}

struct BombOp {
    issuer: String,
    jwks: serde_json::Value,
    mode: AtomicU8,
    bytes_sent: AtomicU64,
    gzip_bomb: bytes::Bytes,
}

async fn bomb_metadata(State(op): State<Arc<BombOp>>) -> Response {
    axum::Json(minimal_discovery_document(&op.issuer, "RS256")).into_response()
}

async fn bomb_jwks(State(op): State<Arc<BombOp>>) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    match op.mode.load(Ordering::SeqCst) {
        1 => (json, vec![b' '; 20 << 20]).into_response(),
        2 => {
            let counter = op.clone();
            let chunks = futures_util::stream::iter(0..4096).map(move |_| {
                counter.bytes_sent.fetch_add(64 << 10, Ordering::Relaxed);
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'['; 64 << 10]))
            });
            (json, Body::from_stream(chunks)).into_response()
        }
        3 => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            op.gzip_bomb.clone(),
        )
            .into_response(),
        _ => (json, axum::Json(op.jwks.clone())).into_response(),
    }
}

/// A provider whose key set turns into a huge, an endless or a compressed-bomb body: the client
/// stops reading at the limit, reports the failure, keeps the last good keys, and accepts the
/// real key set again when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_endless_and_compressed_key_set_bodies_are_refused() {
    let op = OpHost::start().await;
    // Serve the development provider's real key set from a server whose key-set body we control.
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", op.issuer.as_str()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bomb_issuer = format!("http://{}", listener.local_addr().unwrap());
    let bomb = Arc::new(BombOp {
        issuer: bomb_issuer.clone(),
        jwks,
        mode: AtomicU8::new(JwksMode::Normal as u8),
        bytes_sent: AtomicU64::new(0),
        gzip_bomb: bytes::Bytes::from(gzip::gzip_of_zeros(8 << 20)),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(bomb_metadata))
        .route("/jwks", get(bomb_jwks))
        .with_state(bomb.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Tokens keep the development provider's `iss`; the bomb server's issuer is only where keys
    // come from, so the policy accepts the development issuer.
    let bomb_issuer = Issuer::new(bomb_issuer).unwrap();
    let config = ProviderConfig::new(bomb_issuer, policy(&op.issuer))
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .freshness(oidc_core::jwks::FreshnessPolicy::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(1),
        ))
        .refresh_margin(Duration::ZERO)
        .token_cache(0, Duration::ZERO);
    let provider = Provider::start(config, impatient_client());
    ready_within(&provider, Duration::from_secs(5)).await;
    let token = op.token();
    provider.validate(&token).await.unwrap();
    // The compressed body is well under the size limit: only inflating it would hurt.
    assert!(bomb.gzip_bomb.len() < 64 << 10, "{}", bomb.gzip_bomb.len());

    for (mode, expected) in [
        (JwksMode::Huge, "too_large"),
        (JwksMode::Endless, "too_large"),
        (JwksMode::GzipBomb, "jwks_malformed"),
    ] {
        bomb.mode.store(mode as u8, Ordering::SeqCst);
        let failing = eventually(Duration::from_secs(5), || {
            provider.last_error().is_some_and(|e| e.code() == expected)
        })
        .await;
        assert!(
            failing,
            "{expected}: last error {:?}",
            provider.last_error()
        );
        assert!(provider.validate(&token).await.is_ok());
        bomb.mode.store(JwksMode::Normal as u8, Ordering::SeqCst);
        let recovered =
            eventually(Duration::from_secs(5), || provider.last_error().is_none()).await;
        assert!(recovered, "{expected}: {:?}", provider.last_error());
    }
    // The endless body was abandoned near the limit, not read to its end.
    let sent = bomb.bytes_sent.load(Ordering::Relaxed);
    assert!(
        sent < 64 << 20,
        "{sent} bytes of the endless body were produced"
    );
}
