//! `oidc proxy` as a child process against the dev provider in this process: `--check-config`
//! (sources named in every problem, secrets never printed, the provider and the client's
//! credentials reached), precedence of flags over variables over the file, and a SIGTERM that
//! lets a request in flight finish.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use oidc_dev_provider::{DevClient, DevProvider, RunningProvider, demo_users};

use crate::support::ports::free_port;

const CLIENT_SECRET: &str = "proxy-client-secret-value";
const COOKIE_SECRET: &str = "cookie-secret-with-at-least-32-characters";

async fn provider(proxy_port: u16) -> RunningProvider {
    provider_at(proxy_port, "127.0.0.1:0".parse().unwrap()).await
}

async fn provider_at(proxy_port: u16, addr: SocketAddr) -> RunningProvider {
    let mut builder = DevProvider::builder().client(
        DevClient::confidential("proxy", CLIENT_SECRET)
            .redirect_uri(format!("http://127.0.0.1:{proxy_port}/oauth2/callback")),
    );
    for user in demo_users() {
        builder = builder.user(user);
    }
    builder.build().unwrap().serve(addr).await.unwrap()
}

fn oidc(args: &[String], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oidc"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    oidc(args, env).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn flags(issuer: &str, port: u16) -> Vec<String> {
    vec![
        "proxy".into(),
        format!("--http-address=127.0.0.1:{port}"),
        format!("--oidc-issuer-url={issuer}"),
        "--client-id=proxy".into(),
        format!("--redirect-url=http://127.0.0.1:{port}/oauth2/callback"),
        "--cookie-secure=false".into(),
        "--email-domain=*".into(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_reaches_the_provider_and_never_prints_secrets() {
    let port = free_port();
    let op = provider(port).await;
    let mut args = flags(op.issuer().as_str(), port);
    args.push("--check-config".into());
    let env = [
        ("OIDC_PROXY_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET),
    ];
    let output = tokio::task::block_in_place(|| run(&args, &env));
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("discovery at "), "{stdout}");
    assert!(stdout.contains("signing key(s) at "), "{stdout}");
    assert!(
        stdout.contains("the provider accepts client \"proxy\""),
        "{stdout}"
    );
    assert!(stdout.ends_with("configuration OK\n"), "{stdout}");
    assert!(!stdout.contains(CLIENT_SECRET) && !stdout.contains(COOKIE_SECRET));

    let env = [
        ("OIDC_PROXY_CLIENT_SECRET", "a-wrong-secret"),
        ("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET),
    ];
    let output = tokio::task::block_in_place(|| run(&args, &env));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL client: the provider refuses client \"proxy\""),
        "{stdout}"
    );
    assert!(!stdout.contains("a-wrong-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_without_a_secret_says_the_secret_is_missing() {
    let port = free_port();
    let op = provider(port).await;
    let mut args = flags(op.issuer().as_str(), port);
    args.push("--check-config".into());
    let env = [("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET)];
    let output = tokio::task::block_in_place(|| run(&args, &env));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL client: the provider refuses client \"proxy\" without a secret (invalid_client): set --client-secret-file or --client-secret if it is a confidential client\n"
        ),
        "{stdout}"
    );
}

#[test]
fn an_unknown_file_key_hides_no_other_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        "client_id = \"proxy\"\nclinet_secret = \"x\"\ncookie_secret = \"too-short\"\n",
    )
    .unwrap();
    let file = path.display().to_string();
    let output = run(
        &[
            "proxy".into(),
            "--config".into(),
            file.clone(),
            "--oidc-issuer-url=https://op.example.com".into(),
            "--redirect-url=https://app.example.com/oauth2/callback".into(),
            "--email-domain=*".into(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "oidc: 2 problems in the proxy settings:\n  \u{2717} {file}:2: unknown key `clinet_secret` (did you mean `client_secret`?) [config_unknown_key]\n  \u{2717} cookie-secret: secret #1 has 9 characters, at least 32 are required (`openssl rand -base64 32`) (from {file}:3 (key `cookie_secret`)) [cookie_secret_too_short]\nhint: see `oidc proxy --help` and docs/migrating-from-oauth2-proxy.md\n"
        )
    );
}

#[test]
fn a_toml_syntax_error_is_one_line_and_a_missing_value_names_no_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, "client_id = \"proxy\"\nupstreams = [\n").unwrap();
    let file = path.display().to_string();
    let output = run(&["proxy".into(), "--config".into(), file.clone()], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "oidc: 1 problem in the proxy settings:\n  \u{2717} {file}:3:1: not valid TOML: invalid array; expected `]` [config_invalid_toml]\nhint: see `oidc proxy --help` and docs/migrating-from-oauth2-proxy.md\n"
        )
    );

    let output = run(
        &[
            "proxy".into(),
            "--oidc-issuer-url=https://op.example.com".into(),
            "--client-id=proxy".into(),
            "--redirect-url=https://app.example.com/oauth2/callback".into(),
            "--email-domain=*".into(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        "oidc: 1 problem in the proxy settings:\n  \u{2717} cookie-secret: a cookie secret is required (--cookie-secret or --cookie-secret-file; make one with `openssl rand -base64 32`) (not set by any flag, variable or file key) [missing]\nhint: see `oidc proxy --help` and docs/migrating-from-oauth2-proxy.md\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn problems_name_the_file_line_the_variable_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "# oidc proxy settings").unwrap();
    writeln!(file, "client_id = \"proxy\"").unwrap();
    writeln!(file, "cookie_secret = \"too-short\"").unwrap();
    writeln!(file, "upstreams = [\"file:///srv/www\"]").unwrap();
    drop(file);
    let args: Vec<String> = vec![
        "proxy".into(),
        "--config".into(),
        path.display().to_string(),
        "--oidc-issuer-url=https://op.example.com".into(),
        "--redirect-url=https://app.example.com/wrong".into(),
        "--check-config".into(),
    ];
    let env = [
        ("OIDC_PROXY_EMAIL_DOMAINS", "example.com,@bad"),
        ("OIDC_PROXY_COOKIE_SECURE", "sometimes"),
    ];
    let output = run(&args, &env);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    let file = path.display().to_string();
    for expected in [
        format!(
            "cookie-secret: secret #1 has 9 characters, at least 32 are required (`openssl rand -base64 32`) (from {file}:3 (key `cookie_secret`)) [cookie_secret_too_short]"
        ),
        format!("(from {file}:4 (key `upstreams`)) [unsupported_upstream]"),
        "(from environment variable OIDC_PROXY_COOKIE_SECURE) [invalid_bool]".to_owned(),
        "(from environment variable OIDC_PROXY_EMAIL_DOMAINS) [invalid_email_domain]".to_owned(),
        "(from flag --redirect-url) [callback_outside_prefix]".to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("too-short"),
        "a secret was printed:\n{stderr}"
    );

    std::fs::write(&path, "client_id = \"proxy\"\nclinet_secret = \"x\"\n").unwrap();
    let output = run(&["proxy".into(), "--config".into(), file.clone()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{file}:2: unknown key `clinet_secret` (did you mean `client_secret`?)"
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_win_over_variables_which_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        "http_address = \"127.0.0.1:1\"\nproxy_prefix = \"/from-file\"\nscope = \"openid\"\n",
    )
    .unwrap();
    let port = free_port();
    let op = provider(port).await;
    let mut args = flags(op.issuer().as_str(), port);
    // The flag's address wins; the variable's prefix wins over the file's.
    args.retain(|a| !a.starts_with("--redirect-url"));
    args.push(format!(
        "--redirect-url=http://127.0.0.1:{port}/from-env/callback"
    ));
    args.extend([
        "--config".into(),
        path.display().to_string(),
        "--check-config".into(),
    ]);
    let env = [
        ("OIDC_PROXY_PROXY_PREFIX", "/from-env"),
        ("OIDC_PROXY_HTTP_ADDRESS", "127.0.0.1:2"),
        ("OIDC_PROXY_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET),
    ];
    let output = tokio::task::block_in_place(|| run(&args, &env));
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("will run: listening on http://127.0.0.1:{port}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("forward-auth at /from-env/auth"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_request_in_flight_finish() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr: SocketAddr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let app = Router::new().fallback(|headers: HeaderMap| async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            format!(
                "slow answer for {}",
                headers
                    .get("x-forwarded-user")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("nobody")
            )
        });
        axum::serve(upstream, app).await.unwrap();
    });
    let port = free_port();
    let op = provider(port).await;
    let token = op.mint_access_token("alice", "proxy").unwrap();
    let mut args = flags(op.issuer().as_str(), port);
    args.push(format!("--upstream=http://{upstream_addr}/"));
    args.push("--skip-jwt-bearer-tokens".into());
    let metrics_port = free_port();
    args.push(format!("--metrics-address=127.0.0.1:{metrics_port}"));
    let env = [
        ("OIDC_PROXY_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET),
    ];
    let mut child = oidc(&args, &env).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(answer) = http.get(format!("{base}/readyz")).send().await
            && answer.status() == 200
        {
            ready = true;
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the proxy exited at start ({status}); is {base} taken?");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the proxy became ready");
    let metrics = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().ends_with("# EOF\n"));
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/slow");
        async move { http.get(url).bearer_auth(token).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "slow answer for alice");
    let refused = http.get(format!("{base}/slow")).send().await;
    assert!(refused.is_err(), "no new connections after SIGTERM");
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("protecting /* -> http://{upstream_addr}/")),
        "{stderr}"
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains(CLIENT_SECRET) && !stderr.contains(COOKIE_SECRET));
}

/// An upstream answering `<user> <email> <x-remote-user> <access token passed?>`.
async fn echo_upstream() -> SocketAddr {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let app = Router::new().fallback(|headers: HeaderMap| async move {
            let get = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            format!(
                "{} {} {} {}",
                get("x-forwarded-user"),
                get("x-forwarded-email"),
                get("x-remote-user"),
                headers.contains_key("x-forwarded-access-token")
            )
        });
        axum::serve(upstream, app).await.unwrap();
    });
    addr
}

/// Starts `oidc proxy` with `args` and waits until it is ready.
async fn start_proxy(args: &[String]) -> std::process::Child {
    let env = [
        ("OIDC_PROXY_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET),
    ];
    let mut child = oidc(args, &env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = args
        .iter()
        .find_map(|a| a.strip_prefix("--http-address="))
        .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(answer) = http.get(format!("http://{address}/readyz")).send().await
            && answer.status() == 200
        {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the proxy exited at start ({status}); is {address} taken?");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the proxy did not become ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_tokens_of_an_extra_issuer_pass_with_their_identity() {
    let upstream_addr = echo_upstream().await;
    let port = free_port();
    let op = provider(port).await;
    let ci = DevProvider::builder()
        .user(oidc_dev_provider::DevUser::new("ci-bot", "pw").email("ci@example.com"))
        .client(DevClient::confidential("pipeline", "s").access_token_audience("mlflow-api"))
        .client(DevClient::confidential("elsewhere", "s"))
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut args = flags(op.issuer().as_str(), port);
    args.push(format!("--upstream=http://{upstream_addr}/"));
    args.push("--skip-jwt-bearer-tokens".into());
    args.push(format!(
        "--extra-jwt-issuers={}=mlflow-api",
        ci.issuer().as_str()
    ));
    let mut child = start_proxy(&args).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let token = ci.mint_access_token("ci-bot", "pipeline").unwrap();
    let answer = http
        .get(format!("{base}/api"))
        .bearer_auth(&token)
        .header("x-remote-user", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        "ci-bot ci@example.com - false"
    );

    let other_audience = ci.mint_access_token("ci-bot", "elsewhere").unwrap();
    let answer = http
        .get(format!("{base}/api"))
        .bearer_auth(&other_audience)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert!(
        answer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    let main = op.mint_access_token("alice", "proxy").unwrap();
    let answer = http
        .get(format!("{base}/api"))
        .bearer_auth(&main)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.text().await.unwrap(),
        "alice alice@example.com - false"
    );

    kill_and_wait(&mut child);
}

#[tokio::test(flavor = "multi_thread")]
async fn user_headers_can_be_switched_off_while_the_token_is_passed() {
    let upstream_addr = echo_upstream().await;
    let port = free_port();
    let op = provider(port).await;
    let mut args = flags(op.issuer().as_str(), port);
    args.push(format!("--upstream=http://{upstream_addr}/"));
    args.push("--skip-jwt-bearer-tokens".into());
    args.push("--pass-user-headers=false".into());
    args.push("--pass-access-token".into());
    let mut child = start_proxy(&args).await;
    let token = op.mint_access_token("alice", "proxy").unwrap();
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api"))
        .bearer_auth(&token)
        .header("x-forwarded-user", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "- - - true");
    kill_and_wait(&mut child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_started_before_its_provider_listens_at_once_and_is_ready_when_the_provider_is() {
    let port = free_port();
    let provider_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let issuer = format!("http://{provider_addr}");
    let env = [
        ("OIDC_PROXY_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET),
    ];
    let mut child = oidc(&flags(&issuer, port), &env)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut healthz = None;
    for _ in 0..50 {
        if let Ok(answer) = http.get(format!("{base}/healthz")).send().await {
            healthz = Some(answer.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        healthz,
        Some(reqwest::StatusCode::OK),
        "/healthz within 2.5 s"
    );
    let readyz = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 503);
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().starts_with("provider_not_ready"));

    let _op = provider_at(port, provider_addr).await;
    let mut ready = false;
    for _ in 0..150 {
        if let Ok(answer) = http.get(format!("{base}/readyz")).send().await
            && answer.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready once the provider is up");
    let mut stderr = child.stderr.take().unwrap();
    kill_and_wait(&mut child);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let loaded = log.find("provider metadata and keys loaded").expect(&log);
    let announced = log.find("oidc proxy ready").expect(&log);
    assert!(loaded < announced, "{log}");
    assert_eq!(log.matches("oidc proxy ready").count(), 1, "{log}");
}

fn kill_and_wait(child: &mut std::process::Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    assert_eq!(status.code(), Some(0));
}
