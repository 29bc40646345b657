//! Highly available Redis on 127.0.0.1, started from Debian's `redis-server` and
//! `redis-sentinel`: a primary with one replica watched by three sentinels, and a three-node
//! cluster. Every process is killed when its owner is dropped.
//!
//! Without the binaries, the constructors print a loud notice and return `None` (so the calling
//! test passes), unless `CI` is set, in which case they panic.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::{answers_ping, free_port, spawn_on_free_port};

fn installed(program: &str) -> bool {
    if Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is not installed and CI is set: highly available Redis is untested"
    );
    eprintln!(
        "\n\n*** SKIPPED: {program} is not installed; the Redis HA tests did not run ***\n\n"
    );
    false
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "oidc-test-{label}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `redis-cli -p port args...`, its standard output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Process {
    child: Option<Child>,
    port: u16,
}

impl Process {
    /// `command(port)` on a free port; on another one when it exits at start (the port was
    /// taken meanwhile).
    fn start(what: &str, command: impl FnMut(u16) -> Command) -> Process {
        let (child, port) = spawn_on_free_port(what, answers_ping, command);
        Process {
            child: Some(child),
            port,
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A redis-server on a free port, its data in `dir(port)`.
fn data_node(dir: impl Fn(u16) -> PathBuf, extra: &[&str]) -> Process {
    Process::start("redis-server", |port| {
        let dir = dir(port);
        std::fs::create_dir_all(&dir).unwrap();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(extra);
        command
    })
}

/// A primary, a replica of it, and three sentinels (quorum 2, a node is down after 1 s).
pub struct SentinelGroup {
    pub master_name: &'static str,
    primary: Process,
    replica: Process,
    sentinels: Vec<Process>,
    dir: PathBuf,
}

impl SentinelGroup {
    pub fn start() -> Option<SentinelGroup> {
        if !installed("redis-server") || !installed("redis-sentinel") || !installed("redis-cli") {
            return None;
        }
        let dir = temp_dir("sentinel");
        let primary = data_node(|_| dir.join("primary"), &[]);
        let primary_port = primary.port;
        let replica = data_node(
            |_| dir.join("replica"),
            &["--replicaof", "127.0.0.1", &primary_port.to_string()],
        );
        let master_name = "oidcmain";
        let mut sentinels = Vec::new();
        for index in 0..3 {
            sentinels.push(Process::start("redis-sentinel", |port| {
                // Written afresh on each attempt: a sentinel rewrites its file as it runs.
                let config = dir.join(format!("sentinel-{index}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor {master_name} 127.0.0.1 {primary_port} 2\n\
                         sentinel down-after-milliseconds {master_name} 1000\n\
                         sentinel failover-timeout {master_name} 4000\n\
                         sentinel parallel-syncs {master_name} 1\n",
                        dir.display()
                    ),
                )
                .unwrap();
                let mut command = Command::new("redis-sentinel");
                command.arg(&config);
                command
            }));
        }
        let group = SentinelGroup {
            master_name,
            primary,
            replica,
            sentinels,
            dir,
        };
        group.wait_until_watched();
        Some(group)
    }

    /// Every sentinel knows the replica and the two other sentinels, so a failover can happen.
    fn wait_until_watched(&self) {
        wait_for("the replica to sync", Duration::from_secs(20), || {
            cli(self.replica.port, &["INFO", "replication"]).contains("master_link_status:up")
        });
        for sentinel in &self.sentinels {
            wait_for(
                "the sentinels to see each other",
                Duration::from_secs(30),
                || {
                    let replicas = cli(sentinel.port, &["SENTINEL", "REPLICAS", self.master_name]);
                    let peers = cli(sentinel.port, &["SENTINEL", "SENTINELS", self.master_name]);
                    replicas.contains(&self.replica.port.to_string())
                        && peers.matches("127.0.0.1").count() >= 2
                },
            );
        }
    }

    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}/", s.port))
            .collect()
    }

    pub fn primary_port(&self) -> u16 {
        self.primary.port
    }

    pub fn replica_port(&self) -> u16 {
        self.replica.port
    }

    /// Blocks until the replica holds every write the primary acknowledged so far.
    pub fn wait_replicated(&self) {
        let acked = cli(self.primary.port, &["WAIT", "1", "5000"]);
        assert_eq!(acked.trim(), "1", "the replica did not acknowledge");
    }

    /// Kills the primary outright (SIGKILL).
    pub fn kill_primary(&mut self) {
        self.primary.kill();
    }

    /// True once the sentinels name the former replica as the primary.
    pub fn replica_promoted(&self) -> bool {
        cli(
            self.sentinels[0].port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name],
        )
        .contains(&self.replica.port.to_string())
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        for sentinel in &mut self.sentinels {
            sentinel.kill();
        }
        self.replica.kill();
        self.primary.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three cluster nodes sharing the 16384 slots, no replicas.
pub struct Cluster {
    nodes: Vec<Process>,
    dir: PathBuf,
}

impl Cluster {
    pub fn start() -> Option<Cluster> {
        if !installed("redis-server") || !installed("redis-cli") {
            return None;
        }
        let dir = temp_dir("cluster");
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(data_node(
                |port| dir.join(port.to_string()),
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ],
            ));
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let created = cli(nodes[0].port, &args);
        assert!(created.contains("All 16384 slots covered"), "{created}");
        let cluster = Cluster { nodes, dir };
        for node in &cluster.nodes {
            wait_for("the cluster to be ready", Duration::from_secs(20), || {
                cli(node.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
        Some(cluster)
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }

    /// How many keys each node holds.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| cli(n.port, &["DBSIZE"]).trim().parse().unwrap_or(0))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
