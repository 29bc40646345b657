//! A real `redis-server` on a free 127.0.0.1 port (another one when the port is taken before the
//! server binds it), stopped when dropped.
//!
//! Without the binary, [`RedisServer::start`] prints a loud notice and returns `None` so the
//! calling test passes, unless `CI` is set, in which case it panics: CI must prove the Redis path.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use super::ports::free_port;
use super::ports::{answers_ping, spawn_on, spawn_on_free_port};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// Where the append-only file lives, for a server that keeps its data over a restart.
    dir: Option<PathBuf>,
}

/// True when `redis-server` can be run; otherwise a loud notice (or a panic under `CI`).
pub fn redis_installed() -> bool {
    if Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok()
    {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("redis-server is not installed and CI is set: the Redis store is untested");
    }
    eprintln!(
        "\n\n*** SKIPPED: redis-server is not installed; the Redis store tests did not run ***\n\n"
    );
    false
}

/// redis-server on 127.0.0.1:`port`, with its append-only file in `dir` when there is one.
fn command(port: u16, dir: Option<&Path>) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", ""]);
    match dir {
        Some(dir) => {
            command
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir);
        }
        None => {
            command.args(["--appendonly", "no"]);
        }
    }
    command
}

impl RedisServer {
    /// Starts redis-server on a free port; `None` (after a loud notice) when it is not installed
    /// and `CI` is unset.
    pub fn start() -> Option<RedisServer> {
        if !redis_installed() {
            return None;
        }
        Some(RedisServer::start_fresh(None))
    }

    /// Starts redis-server on a free port with append-only persistence, so that
    /// [`RedisServer::restart`] finds every session again.
    pub fn start_persistent() -> Option<RedisServer> {
        if !redis_installed() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "oidc-test-redis-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Some(RedisServer::start_fresh(Some(dir)))
    }

    /// On a fresh port, tried again on another one when the port was taken meanwhile.
    fn start_fresh(dir: Option<PathBuf>) -> RedisServer {
        let (child, port) = spawn_on_free_port("redis-server", answers_ping, |port| {
            command(port, dir.as_deref())
        });
        RedisServer {
            child: Some(child),
            port,
            dir,
        }
    }

    /// Starts redis-server on `port` (a port the test used before); no other port is tried.
    pub fn start_on(port: u16) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port,
            dir: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        self.child = Some(spawn_on(
            "redis-server",
            &mut command(self.port, self.dir.as_deref()),
            self.port,
            answers_ping,
        ));
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server outright (no shutdown save).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (and data directory, when persistent).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
