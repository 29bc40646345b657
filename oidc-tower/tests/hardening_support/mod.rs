//! Shared pieces of the hardening tests: a development provider on its own runtime (so that the
//! task counts of the runtime under test see only the adapter's tasks), provider handles with
//! short timings, and token surgery for hostile variants.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::Issuer;
use oidc_core::jwks::FreshnessPolicy;
use oidc_core::validation::Policy;
use oidc_dev_provider::{DevProvider, RunningProvider};
use oidc_tower::provider::{Provider, ProviderConfig};
use oidc_tower::{HttpClient, ReqwestHttpClient};

/// The demo client whose access tokens the tests validate (audience `demo`).
pub const CLIENT: &str = "demo";

/// A development provider served from a runtime of its own, on 127.0.0.1.
pub struct OpHost {
    runtime: Option<tokio::runtime::Runtime>,
    op: Arc<tokio::sync::RwLock<RunningProvider>>,
    pub issuer: Issuer,
    pub addr: SocketAddr,
}

impl OpHost {
    /// Starts the demo provider (users alice and bob, client `demo`).
    pub async fn start() -> OpHost {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let running = runtime
            .spawn(async {
                DevProvider::builder()
                    .build()
                    .unwrap()
                    .serve("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap()
            })
            .await
            .unwrap();
        OpHost {
            issuer: running.issuer().clone(),
            addr: running.addr(),
            op: Arc::new(tokio::sync::RwLock::new(running)),
            runtime: Some(runtime),
        }
    }

    /// Runs `f` on the provider handle (for its synchronous hooks).
    pub fn with<T>(&self, f: impl FnOnce(&RunningProvider) -> T) -> T {
        let guard = self
            .op
            .try_read()
            .expect("the provider is not being stopped or started");
        f(&guard)
    }

    /// A fresh access token for alice.
    pub fn token(&self) -> String {
        self.with(|op| op.mint_access_token("alice", CLIENT).unwrap())
    }

    /// Stops listening; connections are refused until [`OpHost::restart`].
    pub async fn stop(&self) {
        let op = self.op.clone();
        self.runtime()
            .spawn(async move { op.write().await.stop().await })
            .await
            .unwrap();
    }

    /// Listens again on the same address.
    pub async fn restart(&self) {
        let op = self.op.clone();
        self.runtime()
            .spawn(async move { op.write().await.start().await.unwrap() })
            .await
            .unwrap();
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().unwrap()
    }
}

impl Drop for OpHost {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The validation policy for the demo client's access tokens.
pub fn policy(issuer: &Issuer) -> Policy {
    Policy::builder()
        .issuer(issuer.clone())
        .audience(CLIENT)
        .build()
        .unwrap()
}

/// A provider configuration with test-sized timings: retries from 50 ms to 200 ms, keys fresh for
/// one second (so refreshes run all the time), no token cache (every validation uses the keys).
pub fn fast_config(issuer: &Issuer) -> ProviderConfig {
    ProviderConfig::new(issuer.clone(), policy(issuer))
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .freshness(FreshnessPolicy::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(1),
        ))
        .refresh_margin(Duration::ZERO)
        .token_cache(0, Duration::ZERO)
}

/// A client that gives up on the provider after 300 ms.
pub fn impatient_client() -> Arc<dyn HttpClient> {
    Arc::new(
        ReqwestHttpClient::builder()
            .connect_timeout(Duration::from_millis(300))
            .total_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
}

/// Waits until the provider has keys, at most `within`.
pub async fn ready_within(provider: &Provider, within: Duration) {
    tokio::time::timeout(within, provider.wait_ready())
        .await
        .expect("the provider became ready in time");
}

/// Polls `condition` every 20 ms for at most `within`; whether it became true.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tasks alive on the current runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// `token` with its header replaced by `header` (the signature no longer matches).
pub fn with_header(token: &str, header: &serde_json::Value) -> String {
    let (_old, rest) = token.split_once('.').unwrap();
    format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap())
    )
}

/// `token`'s header and payload, decoded.
pub fn decode_parts(token: &str) -> (serde_json::Value, serde_json::Value) {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&payload).unwrap(),
    )
}
