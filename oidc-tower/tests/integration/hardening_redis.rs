//! The Redis session store under traffic while Redis goes down, stalls and restarts, against a
//! real `redis-server` on 127.0.0.1 with append-only persistence.
//!
//! What must hold: while Redis is gone or stalled every call fails fast as "unavailable" (a 503,
//! never "no session", which would sign everyone out), nothing panics or piles up, and once Redis
//! is back the sessions saved before are all there and traffic recovers by itself.
//!
//! Without the binary these tests print a loud notice and pass, unless `CI` is set.

use crate::hardening_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::hardening_support::alive_tasks;
use crate::support::ports::{answers_ping, free_port, spawn_on, spawn_on_free_port};
use oidc_core::danger::InsecureSeededRandom;
use oidc_tower::store::{RedisStore, RedisStoreConfig, SessionHandle, SessionTags, SessionVault};

const ISSUER: &str = "https://issuer.test";
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);

/// `redis-server` on 127.0.0.1:`port` with append-only persistence in `dir`.
fn command(port: u16, dir: &Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir);
    command
}

/// A `redis-server` whose data lives in its own directory, so a restart finds it again.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed and CI is set: the Redis faults are untested"
            );
            eprintln!("\n\n*** SKIPPED: redis-server is not installed ***\n\n");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "oidc-hardening-redis-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // On another port when the one picked is taken before the server binds it.
        let (child, port) =
            spawn_on_free_port("redis-server", answers_ping, |port| command(port, &dir));
        Some(Redis {
            child: Some(child),
            port,
            dir,
        })
    }

    /// Starts the server again on its port and data directory.
    fn launch(&mut self) {
        self.child = Some(spawn_on(
            "redis-server",
            &mut command(self.port, &self.dir),
            self.port,
            answers_ping,
        ));
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    /// Kills the server outright (no shutdown save: only the append-only file keeps the data).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server: connections stay open, nothing is answered.
    fn freeze(&self) {
        signal(&self.pid(), "-STOP");
    }

    fn thaw(&self) {
        signal(&self.pid(), "-CONT");
    }

    fn store(&self) -> RedisStore {
        RedisStore::new(
            RedisStoreConfig::new(format!("redis://127.0.0.1:{}/", self.port))
                .command_timeout(COMMAND_TIMEOUT)
                .connect_timeout(COMMAND_TIMEOUT),
        )
        .unwrap()
    }
}

fn signal(pid: &str, which: &str) {
    let status = Command::new("kill").args([which, pid]).status().unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server would ignore the kill until continued.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the traffic saw.
#[derive(Default)]
struct Tally {
    found: AtomicU64,
    unavailable: AtomicU64,
    /// `Ok(None)` or a wrong payload for a session that exists: the outcome that must never be.
    lost: AtomicU64,
    /// Any other error.
    other: AtomicU64,
    /// The slowest failed call, in milliseconds.
    slowest_failure_ms: AtomicU64,
}

async fn create_sessions(
    vault: &SessionVault<RedisStore>,
    count: usize,
) -> Vec<(SessionHandle, Vec<u8>)> {
    let mut random = InsecureSeededRandom::new(42);
    let mut sessions = Vec::new();
    for i in 0..count {
        let payload = format!("session payload {i}").into_bytes();
        let tags = SessionTags::new(ISSUER).subject(&format!("user{i}"));
        let handle = vault
            .create(&mut random, &payload, &tags, Duration::from_secs(600))
            .await
            .unwrap();
        sessions.push((handle, payload));
    }
    sessions
}

/// Readers loading the sessions in a loop until `stop`.
fn start_traffic(
    vault: &SessionVault<RedisStore>,
    sessions: &Arc<Vec<(SessionHandle, Vec<u8>)>>,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|worker| {
            let (vault, sessions) = (vault.clone(), sessions.clone());
            let (stop, tally) = (stop.clone(), tally.clone());
            tokio::spawn(async move {
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    let (handle, payload) = &sessions[i % sessions.len()];
                    let started = Instant::now();
                    match vault.load(handle).await {
                        Ok(Some(found)) if &found == payload => {
                            tally.found.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {
                            tally.lost.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            let counter = if error.is_unavailable() {
                                &tally.unavailable
                            } else {
                                eprintln!("unexpected store error: {error} ({})", error.code());
                                &tally.other
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                            let ms = started.elapsed().as_millis() as u64;
                            tally.slowest_failure_ms.fetch_max(ms, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

async fn all_sessions_load(
    vault: &SessionVault<RedisStore>,
    sessions: &[(SessionHandle, Vec<u8>)],
) -> bool {
    for (handle, payload) in sessions {
        match vault.load(handle).await {
            Ok(Some(found)) if &found == payload => {}
            _ => return false,
        }
    }
    true
}

async fn wait_until_all_load(
    vault: &SessionVault<RedisStore>,
    sessions: &[(SessionHandle, Vec<u8>)],
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all_sessions_load(vault, sessions).await {
        assert!(Instant::now() < deadline, "sessions did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_traffic_keeps_every_session() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let vault = SessionVault::new(redis.store());
    let sessions = Arc::new(create_sessions(&vault, 200).await);
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let baseline_tasks = alive_tasks();
    let workers = start_traffic(&vault, &sessions, &stop, &tally);

    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let unavailable_while_down = tally.unavailable.load(Ordering::Relaxed);
    assert!(unavailable_while_down > 0, "the outage was seen");
    // Writes fail the same way: a new sign-in gets a 503, not a half-made session.
    let mut random = InsecureSeededRandom::new(7);
    let error = vault
        .create(
            &mut random,
            b"new",
            &SessionTags::new(ISSUER),
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");

    redis.launch();
    wait_until_all_load(&vault, &sessions).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(
        tally.lost.load(Ordering::Relaxed),
        0,
        "a session was reported missing"
    );
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
    assert!(tally.found.load(Ordering::Relaxed) > 200);
    let slowest = tally.slowest_failure_ms.load(Ordering::Relaxed);
    assert!(
        slowest <= 2 * COMMAND_TIMEOUT.as_millis() as u64 + 200,
        "a failed call took {slowest} ms"
    );
    let settled = hardening_support::eventually(Duration::from_secs(3), || {
        alive_tasks() <= baseline_tasks + 2
    })
    .await;
    assert!(settled, "tasks: {baseline_tasks} -> {}", alive_tasks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_redis_times_out_fast_then_recovers() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let vault = SessionVault::new(redis.store());
    let sessions = Arc::new(create_sessions(&vault, 50).await);
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let baseline_tasks = alive_tasks();
    let workers = start_traffic(&vault, &sessions, &stop, &tally);

    tokio::time::sleep(Duration::from_millis(200)).await;
    redis.freeze();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = alive_tasks();
    redis.thaw();
    wait_until_all_load(&vault, &sessions).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    assert!(
        tally.unavailable.load(Ordering::Relaxed) > 0,
        "the stall was seen"
    );
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0);
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
    let slowest = tally.slowest_failure_ms.load(Ordering::Relaxed);
    assert!(
        slowest <= COMMAND_TIMEOUT.as_millis() as u64 + 200,
        "a stalled call took {slowest} ms, the timeout is {COMMAND_TIMEOUT:?}"
    );
    // Eight readers and the connection's own task, not one task per timed-out call.
    assert!(
        during <= baseline_tasks + 8 + 4,
        "tasks during the stall: {baseline_tasks} -> {during}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_during_an_outage_fails_loudly_and_works_after() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let vault = SessionVault::new(redis.store());
    let mut random = InsecureSeededRandom::new(9);
    let tags = SessionTags::new(ISSUER)
        .subject("mallory")
        .provider_session("sid-m");
    let handle = vault
        .create(&mut random, b"m", &tags, Duration::from_secs(600))
        .await
        .unwrap();
    redis.kill();
    // A back-channel logout that cannot reach the store must not look like it succeeded.
    let error = vault
        .revoke_provider_session(ISSUER, "sid-m")
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    redis.launch();
    let deadline = Instant::now() + Duration::from_secs(10);
    let revoked = loop {
        match vault.revoke_provider_session(ISSUER, "sid-m").await {
            Ok(count) => break count,
            Err(error) => {
                assert!(error.is_unavailable(), "{error:?}");
                assert!(Instant::now() < deadline, "Redis did not come back");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(revoked, 1);
    assert_eq!(vault.load(&handle).await.unwrap(), None);
}
