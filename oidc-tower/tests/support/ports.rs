//! Servers started as child processes on a port picked beforehand.
//!
//! A free port is found by binding port 0 and releasing it; another process may take it before
//! the child binds it. The child then exits at start-up (while the other program's socket
//! accepts connections), so [`spawn_on_free_port`] watches the child while it waits, asks the
//! server itself whether it is ready where it can ([`answers_ping`]), and starts it again on a
//! fresh port; a child that exits is reported at once rather than after the whole wait.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How many fresh ports [`spawn_on_free_port`] tries before it gives up.
pub const ATTEMPTS: usize = 5;

/// How long a child may take to get ready.
pub const LISTEN_LIMIT: Duration = Duration::from_secs(10);

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when something accepts a connection on 127.0.0.1:`port`.
pub fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// True when a Redis server (or sentinel) answers `PING` on 127.0.0.1:`port`: unlike
/// [`accepts`], never fooled by another program that took the port.
pub fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// Waits until `ready(port)` holds while `child` runs, at most `limit`; returns as soon as the
/// child has exited; why it failed otherwise.
pub fn wait_listening(
    child: &mut Child,
    port: u16,
    ready: impl Fn(u16) -> bool,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return Err(format!("it exited ({status})"));
        }
        if ready(port) {
            // A child that lost the port to another program exits after its failed bind.
            std::thread::sleep(Duration::from_millis(50));
            if let Some(status) = child.try_wait().expect("poll the child") {
                return Err(format!("it exited ({status})"));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("it was not ready within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Spawns `command(port)` (standard output and error discarded) on a fresh free port until
/// `ready(port)` holds, at most [`ATTEMPTS`] times; the child and its port. Panics, naming
/// `what`, when no attempt gets ready. `command` may be called several times, each time with
/// another port.
pub fn spawn_on_free_port(
    what: &str,
    ready: impl Fn(u16) -> bool,
    mut command: impl FnMut(u16) -> Command,
) -> (Child, u16) {
    let mut failures = Vec::new();
    for _ in 0..ATTEMPTS {
        let port = free_port();
        let mut child = command(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        match wait_listening(&mut child, port, &ready, LISTEN_LIMIT) {
            Ok(()) => return (child, port),
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                failures.push(format!("port {port}: {reason}"));
            }
        }
    }
    panic!(
        "{what} did not get ready on 127.0.0.1 after {ATTEMPTS} attempts: {}",
        failures.join(", ")
    );
}

/// Spawns `command` (standard output and error discarded), which must get `ready` on the given
/// `port` (a restart on a port the test already uses); panics, naming `what`, at once when the
/// child exits and after [`LISTEN_LIMIT`] when it does not get ready.
pub fn spawn_on(
    what: &str,
    command: &mut Command,
    port: u16,
    ready: impl Fn(u16) -> bool,
) -> Child {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let Err(reason) = wait_listening(&mut child, port, ready, LISTEN_LIMIT) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not get ready on 127.0.0.1:{port}: {reason}");
    }
    child
}
