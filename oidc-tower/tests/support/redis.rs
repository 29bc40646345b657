//! A real `redis-server` on a free 127.0.0.1 port, stopped when dropped.
//!
//! Without the binary, [`RedisServer::start`] prints a loud notice and returns `None` so the
//! calling test passes, unless `CI` is set, in which case it panics: CI must prove the Redis path.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts redis-server on a free port; `None` (after a loud notice) when it is not installed
    /// and `CI` is unset.
    pub fn start() -> Option<RedisServer> {
        if !redis_installed() {
            return None;
        }
        Some(RedisServer::start_on(free_port()))
    }

    /// Starts redis-server on a free port with append-only persistence, so that
    /// [`RedisServer::restart`] finds every session again.
    pub fn start_persistent() -> Option<RedisServer> {
        if !redis_installed() {
            return None;
        }
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("oidc-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            child: None,
            port,
            dir: Some(dir),
        };
        server.launch();
        Some(server)
    }

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
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string()]).args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &self.dir {
            Some(dir) => {
                command
                    .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                    .arg(dir);
            }
            None => {
                command.args(["--appendonly", "no"]);
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on port {}", self.port);
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
