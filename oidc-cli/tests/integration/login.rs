//! `oidc login` and `oidc token` against the dev provider in this process: the real binary,
//! with a scripted user who follows the printed URL with reqwest instead of a browser.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use oidc_dev_provider::{DevClient, DevProvider, RunningProvider, demo_users};

const CLIENT: &str = "oidc-cli";

async fn provider() -> RunningProvider {
    let mut builder = DevProvider::builder()
        .client(DevClient::public(CLIENT).redirect_uri("http://127.0.0.1/callback"));
    for user in demo_users() {
        builder = builder.user(user);
    }
    let running = builder
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    running.auto_approve(Some("alice"));
    running
}

fn oidc(cache: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args(args)
        .env("OIDC_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env("PATH", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stderr until a line starting with `prefix` (after trimming) appears; the
/// rest of stderr keeps draining in the background.
fn wait_for_line(child: &mut Child, prefix: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let found = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.trim().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}"));
    std::thread::spawn(move || for _ in lines {});
    found.trim().to_owned()
}

fn finish(child: Child) -> (i32, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_caches_tokens_that_token_prints_and_refreshes() {
    let op = provider().await;
    let issuer = op.issuer().as_str().to_owned();
    let cache = tempfile::tempdir().unwrap();
    let base = ["--issuer", issuer.as_str(), "--client-id", CLIENT];

    let mut login = oidc(
        cache.path(),
        &[&["login", "--no-browser"], &base[..]].concat(),
    );
    let url = tokio::task::block_in_place(|| wait_for_line(&mut login, "http://"));
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );

    // The scripted user: the provider signs alice in and redirects to the loopback listener.
    let http = no_redirects();
    let answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let callback = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    let page = http.get(&callback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("return to the terminal")
    );

    let (code, stdout) = tokio::task::block_in_place(|| finish(login));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with(&format!("signed in to {issuer} as alice;")),
        "{stdout}"
    );
    assert!(stdout.contains("(refreshable)"), "{stdout}");

    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // A fresh cached token is printed as is, without contacting anyone.
    let token = oidc(
        cache.path(),
        &[&["token", "--no-login"], &base[..]].concat(),
    );
    let (code, first) = tokio::task::block_in_place(|| finish(token));
    assert_eq!(code, 0);
    let first = first.trim().to_owned();
    assert_eq!(first.split('.').count(), 3, "a JWT access token");
    let answer = http
        .get(op.endpoint("/userinfo"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let userinfo: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(userinfo["sub"], "alice");

    // Asking for more validity than the token has left refreshes it with the refresh token.
    let token = oidc(
        cache.path(),
        &[&["token", "--no-login", "--min-valid", "86400"], &base[..]].concat(),
    );
    let (code, second) = tokio::task::block_in_place(|| finish(token));
    assert_eq!(code, 0);
    assert_ne!(second.trim(), first, "a refreshed token");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_device_grant_signs_in_without_a_redirect() {
    let op = provider().await;
    let issuer = op.issuer().as_str().to_owned();
    let cache = tempfile::tempdir().unwrap();
    let mut login = oidc(
        cache.path(),
        &[
            "login",
            "--device",
            "--json",
            "--issuer",
            &issuer,
            "--client-id",
            CLIENT,
        ],
    );
    let line = tokio::task::block_in_place(|| wait_for_line(&mut login, "To sign in, open"));
    assert!(line.contains("/device and enter the code "), "{line}");
    let (code, stdout) = tokio::task::block_in_place(|| finish(login));
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["subject"], "alice");
    assert_eq!(json["issuer"], issuer);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_without_a_cache_and_without_login_fails_with_usage() {
    let op = provider().await;
    let issuer = op.issuer().as_str().to_owned();
    let cache = tempfile::tempdir().unwrap();
    let token = oidc(
        cache.path(),
        &[
            "token",
            "--no-login",
            "--issuer",
            &issuer,
            "--client-id",
            CLIENT,
        ],
    );
    let output = tokio::task::block_in_place(|| token.wait_with_output().unwrap());
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--no-login"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_at_the_provider_shows_an_error_page_and_fails_with_its_code() {
    let op = provider().await;
    let issuer = op.issuer().as_str().to_owned();
    let cache = tempfile::tempdir().unwrap();
    let mut login = oidc(
        cache.path(),
        &[
            "login",
            "--no-browser",
            "--issuer",
            &issuer,
            "--client-id",
            CLIENT,
        ],
    );
    // The first lines of stderr up to the URL; the rest is collected for the end.
    let stderr = login.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map(Result::unwrap);
    let url = lines
        .by_ref()
        .map(|line| line.trim().to_owned())
        .find(|line| line.starts_with("http://"))
        .expect("the login URL");
    let rest = std::thread::spawn(move || lines.collect::<Vec<_>>().join("\n"));
    let url = url::Url::parse(&url).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap()
    };
    let (redirect_uri, state) = (param("redirect_uri"), param("state"));

    // The provider sends the browser back with its refusal instead of a code.
    let mut callback = url::Url::parse(&redirect_uri).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("error_description", "alice said <no>")
        .append_pair("state", &state);
    let page = no_redirects().get(callback).send().await.unwrap();
    assert_eq!(page.status(), 400);
    let page = page.text().await.unwrap();
    assert!(!page.contains("Signed in"), "{page}");
    assert!(
        page.contains("the provider answered <code>access_denied</code>"),
        "{page}"
    );
    assert!(page.contains("alice said &lt;no&gt;"), "{page}");

    let (code, stdout) = tokio::task::block_in_place(|| finish(login));
    let stderr = rest.join().unwrap();
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(
            "oidc: sign-in failed: the provider refused the login: access_denied (alice said <no>) [authorization_error]"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the sign-in was refused at the provider"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing cached"
    );
}
