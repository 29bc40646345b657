//! Start-up time of a command, measured from the moment it is spawned.
//!
//! - `startup --url http://127.0.0.1:P/path [--timeout-ms 5000] -- CMD ARGS...`: spawns CMD,
//!   polls the URL every millisecond until it answers 2xx, prints `ready_ms=...`, then stops
//!   CMD (SIGTERM through `kill`, then kill) and waits for it.
//! - `startup --exit -- CMD ARGS...`: runs CMD to its end (output discarded) and prints
//!   `exit_ms=... status=...`.
//!
//! Repeated with `--rounds N` (default 5), it prints every round and the median. Loopback URLs
//! only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

enum Mode {
    Url {
        addr: SocketAddr,
        authority: String,
        path: String,
    },
    Exit,
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(split) = args.iter().position(|a| a == "--") else {
        eprintln!("startup: usage: startup (--url URL | --exit) [--rounds N] -- CMD ARGS...");
        return std::process::ExitCode::from(2);
    };
    let (flags, command) = (&args[..split], &args[split + 1..]);
    let mut mode = None;
    let mut timeout = Duration::from_secs(5);
    let mut rounds = 5usize;
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match (flag.as_str(), flags.next()) {
            ("--url", Some(url)) => mode = parse_url(url),
            ("--exit", None) => mode = Some(Mode::Exit),
            ("--timeout-ms", Some(ms)) => {
                timeout = Duration::from_millis(ms.parse().unwrap_or(5000));
            }
            ("--rounds", Some(n)) => rounds = n.parse().unwrap_or(5).clamp(1, 50),
            _ => mode = None,
        }
    }
    let (Some(mode), Some((program, program_args))) = (mode, command.split_first()) else {
        eprintln!("startup: usage: startup (--url URL | --exit) [--rounds N] -- CMD ARGS...");
        return std::process::ExitCode::from(2);
    };
    let mut times = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let spawned = Command::new(program)
            .args(program_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                eprintln!("startup: {program}: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        let outcome = match &mode {
            Mode::Url {
                addr,
                authority,
                path,
            } => {
                let ready = wait_ready(*addr, authority, path, started, timeout);
                stop(&mut child);
                ready.map(|t| format!("ready_ms={:.1}", ms(t)))
            }
            Mode::Exit => child.wait().map_err(|e| e.to_string()).map(|status| {
                format!(
                    "exit_ms={:.1} status={}",
                    ms(started.elapsed()),
                    status.code().unwrap_or(-1)
                )
            }),
        };
        match outcome {
            Ok(line) => {
                times.push(started.elapsed());
                println!("round={round} {line}");
            }
            Err(e) => {
                eprintln!("startup: round {round}: {e}");
                return std::process::ExitCode::from(1);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    times.sort();
    if let Some(median) = times.get(times.len() / 2) {
        println!("median_ms={:.1} rounds={}", ms(*median), times.len());
    }
    std::process::ExitCode::SUCCESS
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn parse_url(url: &str) -> Option<Mode> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority.parse().ok()?;
    addr.ip().is_loopback().then(|| Mode::Url {
        addr,
        authority: authority.to_owned(),
        path: path.to_owned(),
    })
}

/// Polls with one plain HTTP/1.1 GET per millisecond until a 2xx status line arrives.
fn wait_ready(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    started: Instant,
    timeout: Duration,
) -> Result<Duration, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    while started.elapsed() < timeout {
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut head = [0u8; 12];
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/1.1 2")
            {
                return Ok(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!(
        "{addr}{path} did not answer 2xx within {timeout:?}"
    ))
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}
