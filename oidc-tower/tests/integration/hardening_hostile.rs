//! Hostile requests against the sidecar (login layer over the reverse proxy) and forward-auth,
//! over raw sockets on 127.0.0.1 so that no client library tidies the attack away.
//!
//! The echo upstream answers every request it receives with `200` and a JSON echo; a status
//! other than 200, or a body that is not the echo, therefore proves the upstream never saw the
//! request. Each case names the bug class it guards against (oauth2-proxy, mod_auth_openidc and
//! Pomerium advisories of the last years).

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::layers::{Harness, Jar, Options};
use oidc_dev_provider::Endpoint;
use oidc_tower::clock::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One raw HTTP/1.1 exchange: status, head (lower-cased names) and body.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn reached_upstream(&self) -> bool {
        self.status == 200 && self.body.contains("\"headers\"")
    }

    fn echoed_uri(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        json["uri"].as_str().map(str::to_owned)
    }

    fn echoed_header(&self, name: &str) -> Option<String> {
        let json: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        json["headers"].as_array()?.iter().find_map(|pair| {
            (pair[0].as_str()? == name).then(|| pair[1].as_str().unwrap_or("").to_owned())
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// Sends `request_head` (request line and headers, without the final empty line) as bytes.
async fn raw(base: &str, request_head: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr_of(base)).await.unwrap();
    let mut bytes = request_head.to_vec();
    bytes.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    stream.write_all(&bytes).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer within 10 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head: head.to_owned(),
        body: dechunk(body),
    }
}

/// Undoes chunked transfer coding when present (the echo is small; good enough for JSON).
fn dechunk(body: &str) -> String {
    if body.starts_with('{') || body.is_empty() {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

async fn get(base: &str, target: &str, extra: &str) -> Raw {
    let head = format!("GET {target} HTTP/1.1\r\nhost: app.test\r\naccept: text/html{extra}");
    raw(base, head.as_bytes()).await
}

/// Without a session: a browser navigation to a protected path is sent to sign in (302 to the
/// provider), never forwarded.
fn assert_sent_to_sign_in(h: &Harness, answer: &Raw, case: &str) {
    assert_eq!(answer.status, 302, "{case}: {}", answer.head);
    let location = answer.header("location").unwrap_or_default();
    assert!(
        location.starts_with(h.op.issuer().as_str()),
        "{case}: {location}"
    );
    assert!(!answer.reached_upstream(), "{case}");
}

/// oauth2-proxy CVE-2021-21291-style and Pomerium path confusions: a skip-auth rule must be
/// matched against the normalized path the upstream will receive, never the query or fragment,
/// and every spelling of a protected path stays protected.
#[tokio::test]
async fn skip_auth_rules_cannot_be_reached_by_query_fragment_or_path_tricks() {
    let h = Harness::start(Options {
        skip_auth: vec!["^/public/"],
        ..Options::default()
    })
    .await;
    // Sanity: the public path is public, the private one is not.
    let public = get(&h.app, "/public/logo.png", "").await;
    assert!(public.reached_upstream(), "{}", public.head);
    assert_sent_to_sign_in(&h, &get(&h.app, "/private", "").await, "/private");

    let protected_spellings = [
        "/private?/public/",
        "/private?x=/public/a",
        "/private#/public/",
        "/private%23/public/",
        "/private%3F/public/",
        "/PUBLIC/../private",
        "/Public/x",
        "//public/../private",
        "/public/../private",
        "/public/./../private",
        "/public/%2e%2e/private",
        "/public/%2E%2E/private",
        "/public/.%2e/private",
        "/public/%252e%252e/private",
        "/public%2f..%2fprivate",
        "/public/..%2fprivate",
        "/public/..;/private",
        "/public;/../private",
        "/public/%2e%2e%2fprivate",
        "/public/..\\private",
        "/public/%5c..%5cprivate",
        "/%70ublic/../private",
    ];
    for target in protected_spellings {
        let answer = get(&h.app, target, "").await;
        if answer.reached_upstream() {
            // Only acceptable if what the upstream received really is under /public/.
            let uri = answer.echoed_uri().unwrap_or_default();
            assert!(
                uri.starts_with("/public/") && !uri.contains(".."),
                "{target} reached the upstream unauthenticated as {uri}"
            );
        } else {
            assert!(
                matches!(answer.status, 302 | 400 | 404),
                "{target}: {}",
                answer.head
            );
        }
    }
}

/// Identity comes only from the layer: every spelling of every identity header a client sends
/// is removed, on public and on authenticated paths (oauth2-proxy GHSA for underscore headers).
#[tokio::test]
async fn identity_headers_in_every_spelling_are_stripped() {
    let h = Harness::start(Options {
        skip_auth: vec!["^/public/"],
        ..Options::default()
    })
    .await;
    let names = [
        "X-Forwarded-User",
        "x-forwarded-user",
        "X-FORWARDED-USER",
        "X_Forwarded_User",
        "x_forwarded_user",
        "X-Forwarded_User",
        "X-Forwarded-Email",
        "x_forwarded_email",
        "X-Forwarded-Groups",
        "X-Forwarded-Preferred-Username",
        "X-Forwarded-Access-Token",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "X-Auth-Request-Groups",
        "X-Auth-Request-Preferred-Username",
        "X-Auth-Request-Access-Token",
        "x_auth_request_user",
    ];
    let spoof: String = names
        .iter()
        .map(|name| format!("\r\n{name}: spoofed-admin"))
        .collect();
    let jar = h.sign_in("alice", "/").await;
    for (target, cookie) in [
        ("/public/page", String::new()),
        ("/private", format!("\r\ncookie: {}", jar.header())),
    ] {
        let answer = get(&h.app, target, &format!("{spoof}{cookie}")).await;
        assert!(answer.reached_upstream(), "{target}: {}", answer.head);
        assert!(
            !answer.body.contains("spoofed-admin"),
            "{target}: a spoofed header reached the upstream: {}",
            answer.body
        );
        let user = answer.echoed_header("x-forwarded-user");
        if target == "/private" {
            assert_eq!(
                answer.echoed_header("x-forwarded-email").as_deref(),
                Some("alice@example.com")
            );
        } else {
            assert_eq!(user, None);
        }
    }
}

/// `X-Forwarded-Uri`, `X-Original-URL` and friends from a client are not routing input for the
/// sidecar: they cannot turn a protected request into a skip-auth one, and `X-Forwarded-Host`
/// cannot steer where the login returns to.
#[tokio::test]
async fn forwarded_uri_and_host_from_clients_do_not_route_or_redirect() {
    let h = Harness::start(Options {
        skip_auth: vec!["^/public/"],
        ..Options::default()
    })
    .await;
    for header in [
        "x-forwarded-uri: /public/x",
        "x-original-url: /public/x",
        "x-original-uri: /public/x",
        "x-rewrite-url: /public/x",
        "x-forwarded-prefix: /public",
        "x-forwarded-path: /public/x",
    ] {
        let answer = get(&h.app, "/private", &format!("\r\n{header}")).await;
        assert_sent_to_sign_in(&h, &answer, header);
    }
    let answer = get(
        &h.app,
        "/private",
        "\r\nx-forwarded-host: evil.example\r\nx-forwarded-proto: https",
    )
    .await;
    assert_sent_to_sign_in(&h, &answer, "x-forwarded-host");
    let location = answer.header("location").unwrap_or_default().to_owned();
    assert!(
        !location.contains("evil.example"),
        "the authorization request names the attacker's host: {location}"
    );
}

/// Forward-auth decides on the `X-Forwarded-*` headers of the proxy in front; a caller that is
/// not a trusted proxy must not get a skip-auth answer by naming a public URI.
#[tokio::test]
async fn forward_auth_answers_are_exact_for_forged_forwarded_headers() {
    let h = Harness::start(Options {
        skip_auth: vec!["^/public/"],
        ..Options::default()
    })
    .await;
    let check = |uri: &'static str| {
        let h = &h;
        async move {
            h.forward_auth_check(uri, &Jar::default(), &[])
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(check("/public/x").await, 202, "public is public");
    for uri in [
        "/private",
        "/private?/public/",
        "/public/../private",
        "/public/%2e%2e/private",
        "/public%2f..%2fprivate",
    ] {
        assert_eq!(check(uri).await, 401, "{uri}");
    }
}

/// A special user agent or a health-looking path grants nothing (the Pomerium/Istio probe
/// bypass class).
#[tokio::test]
async fn probe_user_agents_and_health_paths_skip_nothing() {
    let h = Harness::start(Options::default()).await;
    for agent in [
        "kube-probe/1.29",
        "ELB-HealthChecker/2.0",
        "GoogleHC/1.0",
        "Consul Health Check",
        "Prometheus/2.0",
    ] {
        let answer = get(&h.app, "/private", &format!("\r\nuser-agent: {agent}")).await;
        assert_sent_to_sign_in(&h, &answer, agent);
    }
    for path in [
        "/healthz/../private",
        "/ping/../private",
        "/readyz/%2e%2e/private",
        "/oauth2/../private",
        "/oauth2/start/../../private",
        "/oauth2/userinfo/../../private",
    ] {
        let answer = get(&h.app, path, "").await;
        assert!(!answer.reached_upstream(), "{path}: {}", answer.head);
    }
}

/// Tampered, truncated, swapped or garbage session cookies are no session: a navigation is
/// sent to sign in, an API call gets 401, nothing crashes, and the upstream sees nothing.
#[tokio::test]
async fn tampered_truncated_and_swapped_cookies_are_refused() {
    let h = Harness::start(Options::default()).await;
    let alice = h.sign_in("alice", "/").await;
    let alice_cookie = alice.header();
    let (name, value) = alice_cookie
        .split("; ")
        .find(|pair| pair.starts_with("oidc_session"))
        .and_then(|pair| pair.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .unwrap();
    let mut flipped = value.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let variants = [
        ("flipped", format!("{name}={flipped}")),
        ("truncated", format!("{name}={}", &value[..value.len() / 2])),
        (
            "last char dropped",
            format!("{name}={}", &value[..value.len() - 1]),
        ),
        ("empty", format!("{name}=")),
        ("renamed", format!("oidc_login_x={value}")),
        ("prefixed", format!("{name}=v1.{value}")),
        ("appended", format!("{name}={value}AAAA")),
        (
            "duplicated garbage first",
            format!("{name}=garbage; {name}={value}x"),
        ),
        ("percent garbage", format!("{name}=%%%00%ff")),
        ("quoted", format!("{name}=\"{flipped}\"")),
    ];
    for (case, cookie) in variants {
        let answer = get(&h.app, "/private", &format!("\r\ncookie: {cookie}")).await;
        assert_sent_to_sign_in(&h, &answer, case);
        let api = raw(
            &h.app,
            format!(
                "GET /api/2.0/mlflow/runs/search HTTP/1.1\r\nhost: app.test\r\naccept: application/json\r\ncookie: {cookie}"
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(api.status, 401, "{case}: {}", api.head);
    }
    // The genuine cookie still works after all that.
    let answer = get(&h.app, "/private", &format!("\r\ncookie: {alice_cookie}")).await;
    assert!(answer.reached_upstream());
}

/// A session cookie past the session's lifetime is refused like a forged one (sign in again,
/// 401 for API calls, the cookie cleared), even though the layer had it opened and cached.
#[tokio::test]
async fn expired_session_cookies_are_refused() {
    let clock = ManualClock::starting_now();
    let h = Harness::start(Options {
        session_lifetime: Some(Duration::from_secs(2)),
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let alice = h.sign_in("alice", "/").await;
    let cookie = alice.header();
    let answer = get(&h.app, "/private", &format!("\r\ncookie: {cookie}")).await;
    assert!(answer.reached_upstream(), "fresh session: {}", answer.head);

    // Past the session's end on the layers' clock; the opened session is still in the cache.
    clock.advance(Duration::from_millis(3100));
    let answer = get(&h.app, "/private", &format!("\r\ncookie: {cookie}")).await;
    assert_sent_to_sign_in(&h, &answer, "expired session");
    assert!(
        answer
            .head
            .lines()
            .any(|line| line.starts_with("set-cookie: oidc_session=;")),
        "the expired cookie is cleared: {}",
        answer.head
    );
    let api = raw(
        &h.app,
        format!("GET /api/runs HTTP/1.1\r\nhost: app.test\r\naccept: application/json\r\ncookie: {cookie}")
            .as_bytes(),
    )
    .await;
    assert_eq!(api.status, 401, "{}", api.head);
    let forward_auth = h.forward_auth_check("/private", &alice, &[]).await;
    assert_eq!(forward_auth.status(), 401);
}

/// Compressed request bodies are never inflated: the endpoints that read a body refuse any
/// `Content-Encoding` (415) and cap plain bodies (413); the proxy streams a compressed upload
/// to the upstream as it came.
#[tokio::test]
async fn request_body_bombs_are_never_inflated() {
    let h = Harness::start(Options::default()).await;
    // 16 MiB of zeros in ~100 KiB of gzip.
    let bomb = support::gzip::gzip_of_zeros(16 << 20);
    for endpoint in ["/oauth2/callback", "/oauth2/backchannel_logout"] {
        let response = h
            .client
            .post(format!("{}{endpoint}", h.app))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{endpoint}");
        let body = response.text().await.unwrap();
        assert!(body.contains("content_encoding_unsupported"), "{body}");

        let response = h
            .client
            .post(format!("{}{endpoint}", h.app))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 1 << 20])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{endpoint}: a 1 MiB plain body");
    }

    let alice = h.sign_in("alice", "/").await;
    let response = h
        .client
        .post(format!("{}/upload", h.app))
        .header("cookie", alice.header())
        .header("content-encoding", "gzip")
        .body(bomb.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = support::layers::echoed_headers(response).await;
    assert_eq!(
        support::layers::header(&echoed, "content-encoding"),
        Some("gzip")
    );
    let length = bomb.len().to_string();
    assert_eq!(
        support::layers::header(&echoed, "content-length"),
        Some(length.as_str()),
        "the upstream got the compressed bytes"
    );
}

/// Crafted `Cookie` headers (thousands of pairs, no `=`, only separators, bytes that are not
/// UTF-8, huge values) never crash the parser or the process.
#[tokio::test]
async fn crafted_cookie_headers_do_not_crash_anything() {
    let h = Harness::start(Options::default()).await;
    let many: String = (0..2000).map(|i| format!("c{i}=v{i}; ")).collect();
    let big = "A".repeat(16 * 1024);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("only separators", b";;;;; ; ;=;=;==".to_vec()),
        ("no equals", b"oidc_session".to_vec()),
        ("many pairs", many.into_bytes()),
        ("big value", format!("oidc_session={big}").into_bytes()),
        (
            "chunk names",
            b"oidc_session.0=a; oidc_session.1=b; oidc_session.99999999999999999999=c".to_vec(),
        ),
        (
            "not utf-8",
            b"oidc_session=\xff\xfe\xfd; x=\xc3\x28".to_vec(),
        ),
        ("nul", b"oidc_session=a\x00b".to_vec()),
    ];
    for (case, cookie) in cases {
        let mut head =
            b"GET /private HTTP/1.1\r\nhost: app.test\r\naccept: text/html\r\ncookie: ".to_vec();
        head.extend_from_slice(&cookie);
        let answer = raw(&h.app, &head).await;
        assert!(
            matches!(answer.status, 302 | 400),
            "{case}: {}",
            answer.head
        );
        assert!(!answer.reached_upstream(), "{case}");
    }
    // Still serving.
    let jar = h.sign_in("alice", "/").await;
    assert_eq!(h.navigate("/", &jar).await.status(), 200);
}

/// Oversized headers and cookies are refused before any work (431 from the HTTP server), and
/// the server stays up.
#[tokio::test]
async fn oversized_headers_are_refused() {
    let h = Harness::start(Options::default()).await;
    let huge = "A".repeat(1024 * 1024);
    for (case, header) in [
        ("cookie", format!("\r\ncookie: oidc_session={huge}")),
        ("other header", format!("\r\nx-padding: {huge}")),
    ] {
        let answer = get(&h.app, "/private", &header).await;
        assert!(
            matches!(answer.status, 431 | 400 | 0),
            "{case}: {}",
            answer.head
        );
        assert!(!answer.reached_upstream(), "{case}");
    }
    let many: String = (0..500).map(|i| format!("\r\nx-h{i}: v")).collect();
    let answer = get(&h.app, "/private", &many).await;
    assert!(!answer.reached_upstream());
    let jar = h.sign_in("alice", "/").await;
    assert_eq!(h.navigate("/", &jar).await.status(), 200);
}

/// CR and LF in anything that is reflected (return-to paths, callback errors, state) never make
/// a header of their own.
#[tokio::test]
async fn crlf_in_reflected_values_never_splits_a_header() {
    let h = Harness::start(Options::default()).await;
    let targets = [
        "/x%0d%0aSet-Cookie:%20injected=1",
        "/x%0aSet-Cookie:%20injected=1",
        "/oauth2/start?rd=%2Fx%0d%0aSet-Cookie%3A%20injected%3D1",
        "/oauth2/sign_out?rd=%2Fx%0d%0aSet-Cookie%3A%20injected%3D1",
        "/oauth2/callback?error=access_denied&error_description=x%0d%0aSet-Cookie%3A%20injected%3D1",
        "/oauth2/callback?code=a&state=x%0d%0aSet-Cookie%3A%20injected%3D1",
        "/oauth2/callback?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E%0d%0aX-Injected:%201",
    ];
    for target in targets {
        let answer = get(&h.app, target, "").await;
        assert!(
            answer.status != 0 && answer.status < 500,
            "{target}: {}",
            answer.head
        );
        for line in answer.head.lines() {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("set-cookie: injected") && !lower.starts_with("x-injected"),
                "{target}: header injected: {line}"
            );
        }
        assert!(
            !answer.body.contains("<script>"),
            "{target}: markup reflected unescaped"
        );
    }
}

/// The callback refuses a state that matches no pending login, a code replayed after a
/// successful sign-in, and a callback carried to another browser; none creates a session.
#[tokio::test]
async fn callback_state_mismatch_and_replayed_codes_are_refused() {
    let h = Harness::start(Options::default()).await;
    // Browser A starts a login; the attacker finishes it in browser B (login CSRF / code
    // injection): B has no pending-login cookie for that state.
    let mut victim = Jar::default();
    let authorization = h.start_login("/", &mut victim).await;
    let callback = h.authorize(&authorization, "alice").await;
    let mut attacker = Jar::default();
    let response = h.callback(&callback, &mut attacker).await;
    assert_eq!(response.status(), 400, "callback in another browser");
    assert!(!attacker.has("oidc_session"));

    // A state altered in the URL matches no pending login.
    let altered = callback.replace("state=", "state=x");
    let mut jar = victim.clone();
    let response = h.callback(&altered, &mut jar).await;
    assert_eq!(response.status(), 400, "altered state");
    assert!(!jar.has("oidc_session"));

    // The genuine callback works once...
    let mut jar = victim.clone();
    let response = h.callback(&callback, &mut jar).await;
    assert_eq!(response.status(), 302);
    assert!(jar.has("oidc_session"));
    // ...and replaying it (same pending cookie, same code) creates nothing: the layer remembers
    // the completed login and refuses without sending the code to the provider again.
    let token_requests = h.op.request_count(Endpoint::Token);
    let mut replay = victim.clone();
    let response = h.callback(&callback, &mut replay).await;
    assert_eq!(response.status(), 400, "replayed code");
    let body = response.text().await.unwrap();
    assert!(body.contains("login_already_completed"), "{body}");
    assert!(!replay.has("oidc_session"));
    assert_eq!(h.op.request_count(Endpoint::Token), token_requests);

    // The used code injected into another pending login (its own valid state, so only the
    // provider can tell; the case of a second replica) is refused by the provider with
    // invalid_grant, which the layer answers 400, not as a provider failure.
    let mut other = Jar::default();
    let second = h.start_login("/", &mut other).await;
    let injected = with_state_of(&callback, &second);
    let response = h.callback(&injected, &mut other).await;
    assert_eq!(response.status(), 400, "used code in another login");
    let body = response.text().await.unwrap();
    assert!(body.contains("invalid_grant"), "{body}");
    assert!(!other.has("oidc_session"));
    assert_eq!(h.op.request_count(Endpoint::Token), token_requests + 1);
}

/// `callback` with its `state` replaced by the one `authorization` (another login's redirect to
/// the provider) carries: the attacker's own pending login, the victim's code.
fn with_state_of(callback: &str, authorization: &str) -> String {
    let state = url::Url::parse(authorization)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .unwrap();
    let mut injected = url::Url::parse(callback).unwrap();
    let pairs: Vec<(String, String)> = injected
        .query_pairs()
        .map(|(name, value)| {
            let value = if name == "state" {
                state.clone()
            } else {
                value.into_owned()
            };
            (name.into_owned(), value)
        })
        .collect();
    injected.query_pairs_mut().clear().extend_pairs(pairs);
    injected.into()
}

/// Code injection with a fresh code: the victim's unredeemed code, sent through the attacker's
/// own pending login (its state is valid, so only PKCE can tell), is refused by the provider
/// because the attacker's verifier does not match the victim's challenge; the layer answers
/// 400 and creates no session.
#[tokio::test]
async fn injected_code_fails_pkce_and_creates_no_session() {
    let h = Harness::start(Options::default()).await;
    let mut victim = Jar::default();
    let authorization = h.start_login("/", &mut victim).await;
    let callback = h.authorize(&authorization, "alice").await;

    let mut attacker = Jar::default();
    let own = h.start_login("/", &mut attacker).await;
    let token_requests = h.op.request_count(Endpoint::Token);
    let response = h
        .callback(&with_state_of(&callback, &own), &mut attacker)
        .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("invalid_grant"), "{body}");
    assert!(!attacker.has("oidc_session"));
    assert_eq!(h.op.request_count(Endpoint::Token), token_requests + 1);
}
