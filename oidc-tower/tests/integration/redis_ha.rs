//! Sessions in highly available Redis, with real servers on 127.0.0.1 (Debian's `redis-server`
//! and `redis-sentinel`):
//! - Sentinel: a primary, a replica and three sentinels. Under steady load through the login
//!   layer and proxy, the primary is killed and the replica promoted: no session is lost, the
//!   only failures are 503s inside the failover window (measured and printed), and every
//!   request after it is served.
//! - Cluster: three nodes; sessions spread over them are created, read and revoked, locks work,
//!   and a sign-in on one replica is honoured by another.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::layers::{Harness, Jar, Options};
use crate::support::redis_ha::{Cluster, SentinelGroup};
use oidc_core::danger::InsecureSeededRandom;
use oidc_tower::store::{
    LockToken, RedisStore, RedisStoreConfig, SessionStore, SessionTags, SessionVault, StoreKey,
};

const ISSUER: &str = "https://issuer.test";

async fn api(client: &reqwest::Client, base: &str, jar: &Jar) -> u16 {
    match client
        .get(format!("{base}/api"))
        .header("accept", "application/json")
        .header("cookie", jar.header())
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_load_loses_no_session_and_fails_only_with_503s() {
    let Some(mut group) = SentinelGroup::start() else {
        return;
    };
    let store = RedisStore::new(
        RedisStoreConfig::sentinel(group.master_name, group.sentinel_urls())
            .command_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let h = Harness::start(Options {
        store: Some(Arc::new(store)),
        ..Options::default()
    })
    .await;
    let mut jars = Vec::new();
    for _ in 0..20 {
        jars.push(h.sign_in("alice", "/").await);
    }
    group.wait_replicated();
    let jars = Arc::new(jars);

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let (client, app, jars, stop) =
                (h.client.clone(), h.app.clone(), jars.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    let status = api(&client, &app, &jars[i % jars.len()]).await;
                    seen.push((started.elapsed(), status));
                    if status != 200 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    i += 1;
                }
                seen
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = started.elapsed();
    group.kill_primary();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !group.replica_promoted() {
        assert!(Instant::now() < deadline, "the sentinels did not promote");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let promoted_at = started.elapsed();
    // Load goes on for 3 s after the promotion.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for worker in workers {
        seen.extend(worker.await.unwrap());
    }
    seen.sort_by_key(|(at, _)| *at);

    let failures: Vec<_> = seen.iter().filter(|(_, status)| *status != 200).collect();
    assert!(
        failures.iter().all(|(_, status)| *status == 503),
        "only 503s during the failover: {failures:?}"
    );
    assert!(
        failures.iter().all(|(at, _)| *at >= killed_at),
        "nothing failed before the kill"
    );
    let last_failure = failures.last().map_or(killed_at, |(at, _)| *at);
    let window = last_failure.saturating_sub(killed_at);
    let served_after = seen
        .iter()
        .filter(|(at, status)| *at > last_failure && *status == 200)
        .count();
    let total = seen.len();
    eprintln!(
        "sentinel failover: {total} requests, {} answered 503, failover window {window:?} \
         (kill to last 503), promotion seen after {:?}, {served_after} requests served after \
         the window",
        failures.len(),
        promoted_at.saturating_sub(killed_at),
    );
    assert!(served_after > 0, "requests were served after the failover");
    assert!(window < Duration::from_secs(15), "window {window:?}");

    // Zero sessions lost, and sign-in works against the new primary.
    for jar in jars.iter() {
        assert_eq!(api(&h.client, &h.app, jar).await, 200, "a session was lost");
    }
    let fresh = h.sign_in("mallory", "/").await;
    assert_eq!(api(&h.client, &h.app, &fresh).await, 200);
    assert!(cli_role_is_master(group.replica_port()));
}

fn cli_role_is_master(port: u16) -> bool {
    support::redis_ha::cli(port, &["ROLE"]).starts_with("master")
}

fn cluster_store(cluster: &Cluster) -> RedisStore {
    RedisStore::new(
        RedisStoreConfig::cluster(cluster.urls()).command_timeout(Duration::from_millis(1000)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_sessions_spread_over_nodes_are_created_read_and_revoked() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let vault = SessionVault::new(cluster_store(&cluster));
    let mut random = InsecureSeededRandom::new(11);
    let ttl = Duration::from_secs(60);
    let mut sessions = Vec::new();
    for i in 0..60 {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        let tags = SessionTags::new(ISSUER)
            .subject(user)
            .provider_session(&format!("sid-{i}"));
        let payload = format!("payload {i}").into_bytes();
        let handle = vault
            .create(&mut random, &payload, &tags, ttl)
            .await
            .unwrap();
        sessions.push((handle, payload, user));
    }
    let per_node = cluster.keys_per_node();
    assert!(per_node.iter().all(|&keys| keys > 0), "{per_node:?}");
    for (handle, payload, _) in &sessions {
        assert_eq!(vault.load(handle).await.unwrap().as_ref(), Some(payload));
    }

    // One provider session, then every session of alice, across all three nodes.
    assert_eq!(
        vault
            .revoke_provider_session(ISSUER, "sid-1")
            .await
            .unwrap(),
        1
    );
    assert_eq!(vault.revoke_subject(ISSUER, "alice").await.unwrap(), 30);
    for (i, (handle, payload, user)) in sessions.iter().enumerate() {
        let loaded = vault.load(handle).await.unwrap();
        if *user == "alice" || i == 1 {
            assert_eq!(loaded, None, "session {i} revoked");
        } else {
            assert_eq!(loaded.as_ref(), Some(payload), "session {i} kept");
        }
    }

    // Locks live on the cluster too.
    let store = vault.store();
    let name = StoreKey::for_refresh_of(&sessions[0].0.store_key());
    let (first, second) = (
        LockToken::generate(&mut random),
        LockToken::generate(&mut random),
    );
    assert!(store.try_lock(&name, &first, ttl).await.unwrap());
    assert!(!store.try_lock(&name, &second, ttl).await.unwrap());
    assert!(store.unlock(&name, &first).await.unwrap());
    assert!(store.try_lock(&name, &second, ttl).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_backed_replicas_share_sign_ins() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let mut h = Harness::start(Options {
        store: Some(Arc::new(cluster_store(&cluster))),
        ..Options::default()
    })
    .await;
    let second = h.replica().await;
    let jar = h.sign_in("alice", "/").await;
    assert_eq!(api(&h.client, &h.app, &jar).await, 200);
    assert_eq!(api(&h.client, &second, &jar).await, 200);
    let deliveries = h.op.logout_user("alice").await;
    assert!(
        deliveries.iter().all(|d| d.outcome == Ok(200)),
        "{deliveries:?}"
    );
    assert_eq!(api(&h.client, &second, &jar).await, 401);
}

/// The start-up race the test servers guard against: a server whose port was taken between the
/// pick and its bind exits, and that is reported at once (not after the whole wait), although
/// something else listens there.
#[test]
fn a_server_that_lost_its_port_is_reported_at_once_not_as_listening() {
    if !support::redis::redis_installed() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let outcome = support::ports::wait_listening(
        &mut child,
        port,
        support::ports::answers_ping,
        Duration::from_secs(10),
    );
    let _ = child.kill();
    let _ = child.wait();
    let reason = outcome.expect_err("the server lost its port");
    assert!(reason.starts_with("it exited"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(5), "{reason}");
}
