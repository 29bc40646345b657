//! Runs the real `oidc` binary: exit codes, `--json` shapes, stdin, files, and a local issuer on
//! 127.0.0.1 for discover, jwks and verify.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use crate::support::sample::{self, SAMPLE_AUDIENCE, SAMPLE_EXP, SAMPLE_ISSUER};
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

fn oidc(args: &[&str]) -> Output {
    oidc_with_stdin(args, "")
}

fn oidc_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sample_path(name: &str) -> String {
    sample::tokens_dir().join(name).display().to_string()
}

/// A provider on 127.0.0.1 serving discovery and the sample key set. The server thread ends
/// with the test process.
fn local_issuer(jwks: Value) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = format!("http://{addr}");
    let mut metadata = oidc_dev_provider::minimal_discovery_document(&issuer, "RS256");
    metadata["code_challenge_methods_supported"] = json!(["S256"]);
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    get(move || async move { axum::Json(metadata) }),
                )
                .route("/jwks", get(move || async move { axum::Json(jwks) }));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    issuer
}

#[test]
fn committed_sample_files_match_their_generator() {
    for (name, contents) in sample::sample_files() {
        assert_eq!(
            std::fs::read_to_string(sample::tokens_dir().join(name)).unwrap(),
            contents,
            "{name} drifted: run `cargo run -p oidc-cli --example mint_sample_token`"
        );
    }
}

#[test]
fn verify_sample_token_with_jwks_file_exits_0() {
    let out = oidc(&[
        "verify",
        &sample_path("sample.jwt"),
        "--issuer",
        SAMPLE_ISSUER,
        "--audience",
        SAMPLE_AUDIENCE,
        "--jwks",
        &sample_path("jwks.json"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("VALID: signed with RS256 (kid sample-2025)"));
    assert!(stdout(&out).contains("2100-01-01 00:00:00 UTC  (expires in"));
}

#[test]
fn verify_json_shapes_for_valid_and_rejected() {
    let token = sample::sample_token();
    let jwks = sample_path("jwks.json");
    let base = [
        "verify",
        &token,
        "--issuer",
        SAMPLE_ISSUER,
        "--jwks",
        &jwks,
        "--json",
    ];

    let out = oidc(&[&base[..], &["--audience", SAMPLE_AUDIENCE]].concat());
    assert_eq!(code(&out), 0);
    let body = stdout_json(&out);
    assert_eq!(body["valid"], true);
    assert_eq!(body["header"]["kid"], "sample-2025");
    assert_eq!(body["claims"], sample::sample_claims());
    assert_eq!(body["times"]["exp"]["utc"], "2100-01-01 00:00:00 UTC");

    let out = oidc(&[&base[..], &["--audience", "someone-else"]].concat());
    assert_eq!(code(&out), 1);
    let body = stdout_json(&out);
    assert_eq!(body["valid"], false);
    assert_eq!(body["error"]["code"], "wrong_audience");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("audience")
    );
    assert!(stderr(&out).starts_with("oidc: token rejected:"));
}

#[test]
fn verify_rejects_expired_tokens_with_exit_1_and_honours_now() {
    let jwks = sample_path("jwks.json");
    let token = sample::sample_token();
    let after_expiry = (SAMPLE_EXP + 100).to_string(); // past the default 60 s leeway
    let args = [
        "verify",
        &token,
        "--issuer",
        SAMPLE_ISSUER,
        "--audience",
        SAMPLE_AUDIENCE,
        "--jwks",
        &jwks,
        "--now",
    ];
    let out = oidc(&[&args[..], &[after_expiry.as_str()]].concat());
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("[expired]"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"));

    let leeway = oidc(&[&args[..], &[after_expiry.as_str(), "--leeway", "200"]].concat());
    assert_eq!(code(&leeway), 0, "{}", stderr(&leeway));
}

#[test]
fn verify_rejects_a_wrong_issuer_a_tampered_token_and_a_disallowed_alg() {
    let jwks = sample_path("jwks.json");
    let token = sample::sample_token();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                token.clone(),
                "--issuer".into(),
                "https://other.example".into(),
            ],
            "wrong_issuer",
        ),
        (
            vec![tamper(&token), "--issuer".into(), SAMPLE_ISSUER.into()],
            "bad_signature",
        ),
        (
            vec![
                token.clone(),
                "--issuer".into(),
                SAMPLE_ISSUER.into(),
                "--alg".into(),
                "ES256".into(),
            ],
            "alg_not_allowed",
        ),
    ];
    for (extra, expected) in cases {
        let mut args: Vec<&str> = vec!["verify", "--json", "--audience", SAMPLE_AUDIENCE];
        args.extend(["--jwks", &jwks]);
        args.extend(extra.iter().map(String::as_str));
        let out = oidc(&args);
        assert_eq!(code(&out), 1, "{expected}: {}", stderr(&out));
        assert_eq!(stdout_json(&out)["error"]["code"], expected);
    }
}

fn tamper(token: &str) -> String {
    let claims = sample::sample_claims();
    let mut forged = claims.clone();
    forged["sub"] = json!("mallory");
    let forged_token = sample::mint(&forged);
    // The forged payload with the original signature.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_payload = forged_token.split('.').nth(1).unwrap();
    parts[1] = forged_payload;
    parts.join(".")
}

#[test]
fn verify_without_audience_is_a_usage_error_unless_skipped_loudly() {
    let jwks = sample_path("jwks.json");
    let token = sample::sample_token();
    let out = oidc(&["verify", &token, "--issuer", SAMPLE_ISSUER, "--jwks", &jwks]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--audience is required"));

    let out = oidc(&[
        "verify",
        &token,
        "--issuer",
        SAMPLE_ISSUER,
        "--jwks",
        &jwks,
        "--insecure-skip-audience",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["audience_checked"], false);
    assert!(stderr(&out).contains("audience was NOT checked"));
}

#[test]
fn decode_reads_stdin_and_says_nothing_was_verified() {
    let token = format!("Bearer {}\n", sample::sample_token());
    let out = oidc_with_stdin(&["decode"], &token);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("WARNING: NOTHING WAS VERIFIED"));
    assert!(text.contains("\"sub\": \"alice\""));
    assert!(text.contains("exp       2100-01-01 00:00:00 UTC  (expires in"));

    let out = oidc_with_stdin(&["decode", "-", "--json"], &token);
    assert_eq!(code(&out), 0);
    let body = stdout_json(&out);
    assert_eq!(body["verified"], false);
    assert_eq!(body["claims"], sample::sample_claims());
    assert_eq!(
        body["header"],
        json!({"alg": "RS256", "kid": "sample-2025", "typ": "JWT"})
    );
    assert!(stderr(&out).contains("NOTHING WAS VERIFIED"));
}

#[test]
fn decode_shows_expired_tokens_as_expired() {
    let mut claims = sample::sample_claims();
    claims["exp"] = json!(1_000_000_000u64);
    let out = oidc(&["decode", &sample::mint(&claims), "--json"]);
    assert_eq!(code(&out), 0);
    let relative = stdout_json(&out)["times"]["exp"]["relative"].clone();
    assert!(
        relative.as_str().unwrap().starts_with("expired "),
        "{relative}"
    );
    assert!(relative.as_str().unwrap().ends_with(" ago"));
}

#[test]
fn decode_of_garbage_is_a_clear_error() {
    for garbage in ["hello", "a.b.c", "....", "eyJhbGciOiJub25lIn0"] {
        let out = oidc(&["decode", garbage]);
        assert_eq!(code(&out), 1, "{garbage}");
        let err = stderr(&out);
        assert!(err.starts_with("oidc: not a JWT:"), "{garbage}: {err}");
        assert!(err.contains("hint:"));
        assert!(!err.contains("panicked"));
        assert!(stdout(&out).is_empty());
    }
    let out = oidc(&["decode", "hello", "--json"]);
    assert_eq!(stdout_json(&out)["error"]["code"], "malformed_segments");
}

#[test]
fn missing_files_and_empty_stdin_exit_2() {
    let out = oidc(&["decode", "/nonexistent/token.jwt"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).starts_with("oidc: cannot read /nonexistent/token.jwt"));

    let out = oidc(&["decode"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no token given"));

    let out = oidc(&[
        "verify",
        &sample::sample_token(),
        "--issuer",
        SAMPLE_ISSUER,
        "--audience",
        "a",
        "--jwks",
        "/nonexistent/jwks.json",
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "oidc: cannot get the keys to verify with: cannot read /nonexistent/jwks.json: No such file or directory (os error 2) [read_file]\n\
         hint: check the path; a key set is a JWKS file or an http(s) URL\n"
    );
}

/// Runs `oidc` in an empty directory, so that bare file names name nothing.
fn oidc_in_empty_dir(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A loopback address nobody listens on.
fn closed_address() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    address
}

#[test]
fn a_missing_bare_file_name_is_a_file_error_not_a_token() {
    let out = oidc_in_empty_dir(&[
        "verify",
        "token.jwt",
        "--issuer",
        SAMPLE_ISSUER,
        "--audience",
        SAMPLE_AUDIENCE,
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "oidc: cannot read token.jwt: No such file or directory (os error 2) [read_file]\n\
         hint: check the path; pass the token itself or `-` for stdin\n"
    );
    let out = oidc_in_empty_dir(&["jwks", "keys.json"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "oidc: cannot read keys.json: No such file or directory (os error 2) [read_file]\n\
         hint: check the path; a key set is a JWKS file or an http(s) URL\n"
    );
}

#[test]
fn verify_refuses_a_malformed_token_before_fetching_keys_with_a_hint() {
    // The issuer is unreachable: had the keys been fetched first, this would be a network error.
    let issuer = format!("http://{}", closed_address());
    let out = oidc(&["verify", "hello", "--issuer", &issuer, "--audience", "a"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "oidc: not a JWT: a signed token has 3 dot-separated segments, this one has 1 [malformed_segments]\n\
         hint: a JWT is three base64url parts separated by dots; was it copied whole?\n"
    );
}

#[test]
fn network_errors_name_the_url_once_with_the_cause() {
    let address = closed_address();
    let out = oidc(&["discover", &format!("http://{address}")]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "oidc: cannot connect to http://{address}/.well-known/openid-configuration: Connection refused (os error 111) [connect]\n\
             hint: is the provider up and the URL right?\n"
        )
    );
}

#[test]
fn a_non_json_answer_names_its_media_type() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new().fallback(|| async { axum::response::Html("<h1>login</h1>") });
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let out = oidc(&["discover", &issuer]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "oidc: discovery: the provider answered with `text/html; charset=utf-8` instead of JSON [provider_not_json]\n\
         hint: is this the issuer URL? Its discovery document lives under /.well-known/openid-configuration\n"
    );
}

#[test]
fn rejections_show_dates_and_the_expected_issuer() {
    let jwks = sample_path("jwks.json");
    let token = sample::sample_token();
    let verify = |issuer: &str, extra: &[&str]| {
        let mut args = vec![
            "verify",
            token.as_str(),
            "--issuer",
            issuer,
            "--audience",
            SAMPLE_AUDIENCE,
            "--jwks",
            jwks.as_str(),
        ];
        args.extend_from_slice(extra);
        oidc(&args)
    };
    let out = verify("https://other.example", &[]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "oidc: token rejected: the issuer \"https://op.example\" is not the expected \"https://other.example\" [wrong_issuer]\n\
         hint: --issuer must equal the token's iss exactly (see `oidc decode`)\n"
    );
    let after_expiry = (SAMPLE_EXP + 100).to_string();
    let out = verify(SAMPLE_ISSUER, &["--now", &after_expiry]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "oidc: token rejected: the token expired at 2100-01-01 00:00:00 UTC (now 2100-01-01 00:01:40 UTC, leeway 60s) [expired]\n\
         hint: the token is past its exp; get a fresh one, or check with --now\n"
    );
    let before_nbf = (1_735_689_600u64 - 1000).to_string();
    let out = verify(SAMPLE_ISSUER, &["--now", &before_nbf]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "oidc: token rejected: the token is not valid before 2025-01-01 00:00:00 UTC (now 2024-12-31 23:43:20 UTC, leeway 60s) [not_yet_valid]\n\
         hint: check the clocks, or allow skew with --leeway\n"
    );
}

#[test]
fn verify_help_shows_the_leeway_default() {
    let out = oidc(&["verify", "--help"]);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out)
            .contains("Clock skew tolerated for exp, nbf and iat, in seconds [default: 60]"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(code(&oidc(&["frobnicate"])), 2);
    assert_eq!(code(&oidc(&["verify", "x.y.z"])), 2, "--issuer is required");
    let help = oidc(&["--help"]);
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("Exit codes"));
}

#[test]
fn completions_are_generated() {
    let out = oidc(&["completions", "bash"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("_oidc()"));
    assert_eq!(code(&oidc(&["completions", "no-such-shell"])), 2);
}

#[test]
fn discover_checks_a_local_issuer() {
    let issuer = local_issuer(sample::sample_jwks());
    let out = oidc(&["discover", &issuer]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("jwks_uri                {issuer}/jwks")),
        "{text}"
    );
    assert!(text.contains("no_end_session_endpoint"));

    let out = oidc(&["discover", &issuer, "--json"]);
    let body = stdout_json(&out);
    assert_eq!(body["valid"], true);
    assert_eq!(body["metadata"]["issuer"], issuer.as_str());
    assert_eq!(body["warnings"][0]["code"], "no_end_session_endpoint");

    // The same provider under another name: its metadata names a different issuer.
    let out = oidc(&["discover", &format!("{issuer}/"), "--json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stdout_json(&out)["error"]["code"],
        "discovery_issuer_mismatch"
    );
}

#[test]
fn jwks_lists_keys_from_an_issuer_or_a_url() {
    let issuer = local_issuer(sample::sample_jwks());
    for source in [issuer.clone(), format!("{issuer}/jwks")] {
        let out = oidc(&["jwks", &source, "--json"]);
        assert_eq!(code(&out), 0, "{source}: {}", stderr(&out));
        let body = stdout_json(&out);
        assert_eq!(body["source"], format!("{issuer}/jwks"));
        let key = &body["keys"][0];
        assert_eq!(key["kid"], "sample-2025");
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["size_bits"], 2048);
        assert_eq!(key["use"], "sig");
        assert_eq!(key["thumbprint"].as_str().unwrap().len(), 43);
    }
    let text = stdout(&oidc(&["jwks", &issuer]));
    assert!(
        text.contains("sample-2025  RSA  RS256  sig  2048 bits"),
        "{text}"
    );
}

#[test]
fn verify_through_discovery_of_a_local_issuer() {
    let issuer = local_issuer(sample::sample_jwks());
    let mut claims = sample::sample_claims();
    claims["iss"] = json!(issuer);
    let token = sample::mint(&claims);
    let out = oidc(&[
        "verify",
        &token,
        "--issuer",
        &issuer,
        "--audience",
        SAMPLE_AUDIENCE,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Nobody listening: a network error, exit 2, not a rejection.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = oidc(&[
        "verify",
        &token,
        "--issuer",
        &gone,
        "--audience",
        "a",
        "--json",
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(stdout_json(&out)["error"]["code"], "connect");
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
