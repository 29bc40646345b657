//! The Redis session store against a real `redis-server` on 127.0.0.1.
//!
//! Without the binary these tests print a loud notice and pass, unless `CI` is set, in which case
//! they fail: CI must prove the Redis path.

use crate::support;

use std::time::Duration;

use crate::support::redis::RedisServer;
use oidc_core::danger::InsecureSeededRandom;

use oidc_tower::store::{
    LockToken, RedisStore, RedisStoreConfig, SessionStore, SessionTags, SessionVault, StoreError,
    StoreKey,
};

const ISSUER: &str = "https://issuer.test";

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::new(RedisStoreConfig::new(server.url()).command_timeout(Duration::from_millis(500)))
        .unwrap()
}

#[tokio::test]
async fn round_trip_and_ciphertext_at_rest() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let vault = SessionVault::new(store(&server));
    let mut random = InsecureSeededRandom::new(1);
    let tags = SessionTags::new(ISSUER).subject("alice");
    let handle = vault
        .create(
            &mut random,
            b"refresh-token-xyz",
            &tags,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        vault.load(&handle).await.unwrap().as_deref(),
        Some(&b"refresh-token-xyz"[..])
    );

    // What Redis holds is neither the plaintext nor addressed by the cookie value.
    let raw = vault
        .store()
        .load(&handle.store_key())
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.windows(13).any(|w| w == b"refresh-token"));
    assert_eq!(raw.len(), 1 + 12 + 17 + 16);

    vault
        .save(
            &mut random,
            &handle,
            b"rotated",
            &tags,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        vault.load(&handle).await.unwrap().as_deref(),
        Some(&b"rotated"[..])
    );
    vault.delete(&handle).await.unwrap();
    assert_eq!(vault.load(&handle).await.unwrap(), None);
}

#[tokio::test]
async fn sessions_and_tag_indexes_expire() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let vault = SessionVault::new(store(&server));
    let mut random = InsecureSeededRandom::new(2);
    let tags = SessionTags::new(ISSUER).provider_session("sid-exp");
    let handle = vault
        .create(&mut random, b"short", &tags, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(vault.load(&handle).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(vault.load(&handle).await.unwrap(), None);

    // The tag index expired with its only member.
    let mut connection = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let tag_name = format!(
        "oidc:t:{}",
        StoreKey::for_provider_session(ISSUER, "sid-exp").to_hex()
    );
    let exists: u32 = redis::cmd("EXISTS")
        .arg(&tag_name)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn revocation_by_sid_and_sub_reaches_every_replica() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Two independent handles, as two proxy replicas would have.
    let replica_a = SessionVault::new(store(&server));
    let replica_b = SessionVault::new(store(&server));
    let mut random = InsecureSeededRandom::new(3);
    let ttl = Duration::from_secs(60);

    let alice_laptop = replica_a
        .create(
            &mut random,
            b"a1",
            &SessionTags::new(ISSUER)
                .subject("alice")
                .provider_session("sid-1"),
            ttl,
        )
        .await
        .unwrap();
    let alice_phone = replica_a
        .create(
            &mut random,
            b"a2",
            &SessionTags::new(ISSUER)
                .subject("alice")
                .provider_session("sid-2"),
            ttl,
        )
        .await
        .unwrap();
    let bob = replica_a
        .create(
            &mut random,
            b"b1",
            &SessionTags::new(ISSUER)
                .subject("bob")
                .provider_session("sid-3"),
            ttl,
        )
        .await
        .unwrap();

    // Back-channel logout for sid-1 arrives at replica B.
    assert_eq!(
        replica_b
            .revoke_provider_session(ISSUER, "sid-1")
            .await
            .unwrap(),
        1
    );
    assert_eq!(replica_a.load(&alice_laptop).await.unwrap(), None);
    assert!(replica_a.load(&alice_phone).await.unwrap().is_some());

    // Logout of every session of alice: only the phone is left to end.
    assert_eq!(replica_b.revoke_subject(ISSUER, "alice").await.unwrap(), 1);
    assert_eq!(replica_a.load(&alice_phone).await.unwrap(), None);
    assert_eq!(
        replica_a.load(&bob).await.unwrap().as_deref(),
        Some(&b"b1"[..])
    );
    // The same subject at another issuer is someone else.
    assert_eq!(
        replica_b
            .revoke_subject("https://other.test", "bob")
            .await
            .unwrap(),
        0
    );
    assert!(replica_a.load(&bob).await.unwrap().is_some());
}

#[tokio::test]
async fn tampered_ciphertext_is_rejected_not_treated_as_absent() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let vault = SessionVault::new(store(&server));
    let mut random = InsecureSeededRandom::new(4);
    let tags = SessionTags::new(ISSUER);
    let handle = vault
        .create(&mut random, b"payload", &tags, Duration::from_secs(60))
        .await
        .unwrap();
    let key = handle.store_key();
    let mut raw = vault.store().load(&key).await.unwrap().unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x80;
    vault
        .store()
        .save(&key, &raw, &[], Duration::from_secs(60))
        .await
        .unwrap();
    let err = vault.load(&handle).await.unwrap_err();
    assert!(matches!(err, StoreError::Tampered), "{err:?}");
    assert_eq!(err.code(), "session_tampered");
}

#[tokio::test]
async fn redis_down_is_unavailable_then_recovers_after_restart() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let vault = SessionVault::new(store(&server));
    let mut random = InsecureSeededRandom::new(5);
    let tags = SessionTags::new(ISSUER);
    let handle = vault
        .create(&mut random, b"before", &tags, Duration::from_secs(60))
        .await
        .unwrap();

    server.stop();
    let err = vault.load(&handle).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        matches!(err.code(), "store_unavailable" | "store_timed_out"),
        "{}",
        err.code()
    );
    // Still unavailable (not "no session") on the next calls too.
    let err = vault.load(&handle).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let err = vault
        .create(&mut random, b"during", &tags, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    // Same port, empty data set (no persistence): the first call after the restart reconnects
    // before it answers, so it succeeds.
    let port = server.port;
    drop(server);
    let _restarted = RedisServer::start_on(port);
    let after = vault
        .create(&mut random, b"after", &tags, Duration::from_secs(60))
        .await
        .expect("the first call after Redis restarted");
    assert_eq!(
        vault.load(&after).await.unwrap().as_deref(),
        Some(&b"after"[..])
    );
    assert_eq!(vault.load(&handle).await.unwrap(), None);
}

#[tokio::test]
async fn unreachable_at_startup_is_unavailable_not_a_crash() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = RedisStore::new(
        RedisStoreConfig::new(format!("redis://127.0.0.1:{port}/"))
            .command_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let err = store
        .load(&StoreKey::for_session_id(b"x"))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(matches!(
        RedisStore::new(RedisStoreConfig::new("not a url")),
        Err(StoreError::Config { .. })
    ));
}

#[tokio::test]
async fn a_lock_is_shared_by_replicas_released_by_its_holder_and_freed_when_it_dies() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Two replicas' stores on one Redis.
    let (replica_a, replica_b) = (store(&server), store(&server));
    let mut random = InsecureSeededRandom::new(6);
    let name = StoreKey::for_refresh_of(&StoreKey::for_session_id(b"session"));
    let (token_a, token_b) = (
        LockToken::generate(&mut random),
        LockToken::generate(&mut random),
    );
    let ttl = Duration::from_secs(30);
    assert!(replica_a.try_lock(&name, &token_a, ttl).await.unwrap());
    assert!(!replica_b.try_lock(&name, &token_b, ttl).await.unwrap());
    assert!(
        !replica_b.unlock(&name, &token_b).await.unwrap(),
        "only the holder releases"
    );
    assert!(replica_a.unlock(&name, &token_a).await.unwrap());
    assert!(replica_b.try_lock(&name, &token_b, ttl).await.unwrap());
    assert!(replica_b.unlock(&name, &token_b).await.unwrap());

    // A holder that dies (never unlocks) blocks the others only until its TTL runs out, and
    // its late unlock cannot release the next holder's lock.
    let short = Duration::from_millis(300);
    assert!(replica_a.try_lock(&name, &token_a, short).await.unwrap());
    assert!(!replica_b.try_lock(&name, &token_b, ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(replica_b.try_lock(&name, &token_b, ttl).await.unwrap());
    assert!(!replica_a.unlock(&name, &token_a).await.unwrap());
    assert!(!replica_a.try_lock(&name, &token_a, ttl).await.unwrap());
    assert_eq!(
        replica_a
            .try_lock(&name, &token_a, Duration::ZERO)
            .await
            .unwrap_err()
            .code(),
        "session_ttl_invalid"
    );
}

#[tokio::test]
async fn one_refresh_at_a_time_across_replicas() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (replica_a, replica_b) = (
        SessionVault::new(store(&server)),
        SessionVault::new(store(&server)),
    );
    let mut random = InsecureSeededRandom::new(8);
    let handle = replica_a
        .create(
            &mut random,
            b"tokens",
            &SessionTags::new(ISSUER),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let other = replica_a
        .create(
            &mut random,
            b"other",
            &SessionTags::new(ISSUER),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let ttl = Duration::from_secs(10);
    let token = replica_a
        .try_lock_refresh(&mut random, &handle, ttl)
        .await
        .unwrap()
        .expect("the first replica refreshes");
    assert!(
        replica_b
            .try_lock_refresh(&mut random, &handle, ttl)
            .await
            .unwrap()
            .is_none(),
        "the second waits"
    );
    // Another session's refresh is not held up.
    assert!(
        replica_b
            .try_lock_refresh(&mut random, &other, ttl)
            .await
            .unwrap()
            .is_some()
    );
    assert!(replica_a.unlock_refresh(&handle, &token).await.unwrap());
    assert!(
        replica_b
            .try_lock_refresh(&mut random, &handle, ttl)
            .await
            .unwrap()
            .is_some()
    );
}

/// Makes a CA and a server certificate for `localhost`; returns (CA PEM file, chain, key).
fn tls_files(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("redis.pem"),
        dir.join("redis-key.pem"),
    );
    std::fs::write(&files.0, ca.pem()).unwrap();
    std::fs::write(&files.1, leaf.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

#[tokio::test]
async fn rediss_with_a_private_ca_and_an_acl_user() {
    if !support::redis::redis_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = tls_files(dir.path());
    let (mut child, port) =
        support::ports::spawn_on_free_port("redis-server", support::ports::accepts, |port| {
            let mut command = std::process::Command::new("redis-server");
            command
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--tls-cert-file")
                .arg(&chain)
                .arg("--tls-key-file")
                .arg(&key)
                .arg("--tls-ca-cert-file")
                .arg(&ca)
                .args(["--tls-auth-clients", "no"])
                // Each word of an ACL rule is its own argument.
                .args(["--user", "default", "off"])
                .args([
                    "--user",
                    "oidc",
                    "on",
                    ">s3cret-pw",
                    "~oidc:*",
                    "&*",
                    "+@all",
                ]);
            command
        });
    let url = format!("rediss://localhost:{port}/");
    let config = || RedisStoreConfig::new(&url).command_timeout(Duration::from_millis(1500));

    let vault = SessionVault::new(
        RedisStore::new(
            config()
                .ca_file(&ca)
                .credentials(Some("oidc".to_owned()), "s3cret-pw"),
        )
        .unwrap(),
    );
    let mut random = InsecureSeededRandom::new(12);
    let handle = vault
        .create(
            &mut random,
            b"over tls",
            &SessionTags::new(ISSUER).subject("alice"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        vault.load(&handle).await.unwrap().as_deref(),
        Some(&b"over tls"[..])
    );
    assert_eq!(vault.revoke_subject(ISSUER, "alice").await.unwrap(), 1);

    // Without the password, or trusting only the system store, nothing is read.
    let anonymous = RedisStore::new(config().ca_file(&ca)).unwrap();
    let err = anonymous.load(&handle.store_key()).await.unwrap_err();
    assert!(!matches!(err, StoreError::Tampered), "{err:?}");
    let untrusted =
        RedisStore::new(config().credentials(Some("oidc".to_owned()), "s3cret-pw")).unwrap();
    let err = untrusted.load(&handle.store_key()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(matches!(
        RedisStore::new(config().ca_file(dir.path().join("missing.pem"))),
        Err(StoreError::Config { .. })
    ));
    let _ = child.kill();
    let _ = child.wait();
}
