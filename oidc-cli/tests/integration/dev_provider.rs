//! `oidc dev-provider` as a child process: it says it is not for production, serves discovery
//! on loopback, rotates its signing key on SIGHUP, refuses other addresses unless told, and stops
//! cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn keys(jwks_uri: &str) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let jwks: serde_json::Value = reqwest::get(jwks_uri).await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().len()
    })
}

#[test]
fn the_dev_provider_serves_rotates_on_sighup_and_stops() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args([
            "dev-provider",
            "--listen",
            "127.0.0.1:0",
            "--signing-alg",
            "ES256",
        ])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = lines_tx.send(line.unwrap());
        }
    });
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = err_tx.send(line.unwrap());
        }
    });
    let first = lines_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let issuer = first.strip_prefix("issuer ").unwrap().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    let warned = std::iter::from_fn(|| err_rx.recv_timeout(Duration::from_secs(10)).ok())
        .any(|line| line.contains("NOT FOR PRODUCTION"));
    assert!(warned, "the banner says it is not for production");

    let jwks_uri = format!("{issuer}/jwks");
    assert_eq!(keys(&jwks_uri), 1);
    kill(child.id(), "-HUP");
    let mut rotated = false;
    for _ in 0..50 {
        if keys(&jwks_uri) == 2 {
            rotated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rotated, "SIGHUP published a second key");

    kill(child.id(), "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn other_addresses_are_refused_without_the_insecure_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args(["dev-provider", "--listen", "0.0.0.0:0"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--insecure-allow-non-loopback"), "{stderr}");
}
