//! `oidc demo` as a child process: waits for its `open` line, calls the proxy with the printed
//! bearer token (200 with the identity) and as a browser (302 to the provider), then stops it
//! with SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Three consecutive free ports (best effort: bound, then released).
fn free_port_base() -> u16 {
    for _ in 0..50 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base < 65_000
            && (0..3)
                .all(|offset| std::net::TcpListener::bind(("127.0.0.1", base + offset)).is_ok())
        {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

fn demo_output(base: u16) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args(["demo", "--port-base", &base.to_string()])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_taken_port_is_named_with_a_hint_before_anything_starts() {
    for (offset, role, flag) in [
        (0, "proxy", "proxy-port"),
        (1, "provider", "provider-port"),
        (2, "upstream", "upstream-port"),
    ] {
        let base = free_port_base();
        let taken = std::net::TcpListener::bind(("127.0.0.1", base + offset)).unwrap();
        let out = demo_output(base);
        drop(taken);
        assert_eq!(out.status.code(), Some(2), "{role}");
        assert!(out.stdout.is_empty(), "{role}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!(
                "oidc: cannot listen on 127.0.0.1:{port} for the {role}: Address already in use (os error 98)\nhint: another program uses port {port}; move all three ports with --port-base (e.g. `oidc demo --port-base 14180`) or this one with --{flag}\n",
                port = base + offset
            )
        );
    }
}

#[test]
fn port_bases_outside_the_port_range_are_usage_errors() {
    for base in [0, 65534, 65535] {
        let out = demo_output(base);
        assert_eq!(out.status.code(), Some(2), "{base}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!(
                "error: invalid value '{base}' for '--port-base <PORT>': {base} is not in 1..=65533\n\nFor more information, try '--help'.\n"
            )
        );
    }
}

/// `oidc demo` running on three free ports.
struct Demo {
    child: std::process::Child,
    base: u16,
    /// The `open` and `curl` lines it printed.
    open: String,
    curl: String,
    /// Its further lines, kept read so that its output never blocks or breaks.
    _lines: mpsc::Receiver<String>,
}

/// Starts `oidc demo`; on fresh ports when it exits first (a port was taken between the pick
/// and the bind).
fn start_demo() -> Demo {
    for _ in 0..5 {
        let base = free_port_base();
        let mut child = Command::new(env!("CARGO_BIN_EXE_oidc"))
            .args(["demo", "--port-base", &base.to_string()])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if lines_tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut open = None;
        let mut curl = None;
        while open.is_none() || curl.is_none() {
            match lines_rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("open ") {
                        open = Some(url.to_owned());
                    }
                    if line.starts_with("curl ") {
                        curl = Some(line);
                    }
                }
                // Standard output closed: the demo exited before its instructions.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the demo printed no instructions within 60 s");
                }
            }
        }
        if let (Some(open), Some(curl)) = (open, curl) {
            return Demo {
                child,
                base,
                open,
                curl,
                _lines: lines_rx,
            };
        }
        let status = child.wait().unwrap();
        eprintln!("the demo on port base {base} exited at start ({status}); trying other ports");
    }
    panic!("the demo did not start on any of 5 port bases");
}

#[test]
fn the_demo_serves_bearer_callers_and_redirects_browsers() {
    let Demo {
        mut child,
        base,
        open,
        curl,
        _lines,
    } = start_demo();
    assert_eq!(open, format!("http://127.0.0.1:{base}/"));
    let token = curl
        .split("Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();
    assert!(curl.ends_with(&format!(" {open}")), "{curl}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let answer = http.get(&open).bearer_auth(&token).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let page = answer.text().await.unwrap();
        assert!(
            page.contains("<th>x-forwarded-user</th><td>alice</td>"),
            "{page}"
        );
        assert!(
            page.contains("<th>x-forwarded-email</th><td>alice@example.com</td>"),
            "{page}"
        );

        let answer = http
            .get(format!("{open}experiments"))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 302);
        let location = answer.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&format!("http://127.0.0.1:{}/authorize?", base + 1)),
            "{location}"
        );

        let sign_in = http.get(location).send().await.unwrap();
        assert_eq!(sign_in.status(), 200);
        let page = sign_in.text().await.unwrap();
        assert!(
            page.contains(
                "<p id=\"note\">Demo users: alice, password alice (groups admins, users); bob, password bob (group users).</p>"
            ),
            "{page}"
        );

        // Signed out at the provider without a redirect asked for: a link back to the demo.
        let signed_out = http
            .get(format!(
                "http://127.0.0.1:{}/end_session?client_id=demo",
                base + 1
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(signed_out.status(), 200);
        let page = signed_out.text().await.unwrap();
        assert!(
            page.contains(&format!(
                "<a id=\"back\" href=\"http://127.0.0.1:{base}/\">Back to demo</a>"
            )),
            "{page}"
        );

        let forged = http
            .get(&open)
            .bearer_auth(format!("{token}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);
    });

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean exit on SIGTERM");
}
