//! The login layer in front of the reverse proxy, driven like a browser against the dev
//! provider and an echo upstream, all on 127.0.0.1.

use std::time::Duration;

use crate::support::layers::{Harness, Jar, Options, echoed_headers, header, location};
use oidc_core::authorization::AuthorizationRules;
use oidc_dev_provider::Endpoint;
use oidc_tower::clock::ManualClock;

#[tokio::test]
async fn browser_login_reaches_the_upstream_with_identity_headers() {
    let h = Harness::start(Options::default()).await;
    let jar = h.sign_in("alice", "/experiments?tab=runs").await;

    let response = h.navigate("/experiments?tab=runs", &jar).await;
    let headers = echoed_headers(response).await;
    assert_eq!(
        header(&headers, "x-forwarded-email"),
        Some("alice@example.com")
    );
    assert_eq!(header(&headers, "x-forwarded-groups"), Some("ml,admins"));
    assert!(header(&headers, "x-forwarded-user").is_some_and(|user| !user.is_empty()));
    assert_eq!(header(&headers, "x-forwarded-access-token"), None);
    // Our own cookies never reach the upstream.
    assert_eq!(header(&headers, "cookie"), None);

    // The same session answers an API call too.
    let response = h.api("/api/2.0/mlflow/experiments/search", &jar).await;
    let headers = echoed_headers(response).await;
    assert_eq!(
        header(&headers, "x-forwarded-email"),
        Some("alice@example.com")
    );
}

#[tokio::test]
async fn api_requests_without_a_session_get_401_json() {
    let h = Harness::start(Options::default()).await;
    let response = h.api("/api/2.0/mlflow/runs/search", &Jar::default()).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    // A POST is never redirected, even from a browser.
    let response = h
        .client
        .post(format!("{}/ajax-api/2.0/mlflow/runs/create", h.app))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn bearer_tokens_share_the_front_door() {
    let h = Harness::start(Options::default()).await;
    let token = h.op.mint_access_token("alice", "app").unwrap();
    let response = h
        .client
        .get(format!("{}/api/2.0/mlflow/experiments/search", h.app))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let headers = echoed_headers(response).await;
    assert_eq!(
        header(&headers, "x-forwarded-email"),
        Some("alice@example.com")
    );

    let mut forged = token.clone();
    forged.push('x');
    let response = h
        .client
        .get(format!("{}/api/2.0/mlflow/experiments/search", h.app))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let h = Harness::start(Options {
        skip_auth: vec!["^/public/"],
        ..Options::default()
    })
    .await;
    let spoofs = [
        ("X-Forwarded-User", "admin"),
        ("x_forwarded_user", "admin"),
        ("X-FORWARDED-EMAIL", "admin@example.com"),
        ("x-forwarded_groups", "admins"),
        ("X-Forwarded-Preferred-Username", "admin"),
        ("X-Forwarded-Access-Token", "stolen"),
        ("X-Auth-Request-User", "admin"),
        ("x_auth_request_email", "admin@example.com"),
    ];
    let jar = h.sign_in("alice", "/").await;
    for (path, jar) in [("/public/page", Jar::default()), ("/private", jar)] {
        let mut request = h
            .client
            .get(format!("{}{path}", h.app))
            .header("accept", "text/html")
            .header("cookie", jar.header());
        for (name, value) in spoofs {
            request = request.header(name, value);
        }
        let headers = echoed_headers(request.send().await.unwrap()).await;
        for (name, value) in &headers {
            assert_ne!(value, "admin", "{path}: {name} reached the upstream");
            assert_ne!(
                value, "admin@example.com",
                "{path}: {name} reached the upstream"
            );
            assert_ne!(value, "admins", "{path}: {name} reached the upstream");
            assert_ne!(value, "stolen", "{path}: {name} reached the upstream");
        }
        if path == "/private" {
            assert_eq!(
                header(&headers, "x-forwarded-email"),
                Some("alice@example.com")
            );
        } else {
            assert_eq!(header(&headers, "x-forwarded-user"), None);
        }
    }
}

#[tokio::test]
async fn logins_from_several_tabs_all_complete() {
    let h = Harness::start(Options::default()).await;
    let mut jar = Jar::default();
    let mut authorizations = Vec::new();
    for path in ["/a", "/b", "/c"] {
        authorizations.push((path, h.start_login(path, &mut jar).await));
    }
    assert_eq!(
        jar.names()
            .iter()
            .filter(|n| n.starts_with("oidc_login_"))
            .count(),
        3
    );
    // The provider answers all three, then the callbacks arrive in another order.
    let mut callbacks = Vec::new();
    for (path, url) in &authorizations {
        callbacks.push((*path, h.authorize(url, "alice").await));
    }
    callbacks.reverse();
    for (path, callback) in callbacks {
        let response = h.callback(&callback, &mut jar).await;
        assert_eq!(response.status(), 302, "tab {path}");
        assert_eq!(location(&response), path);
    }
    assert!(
        !jar.has("oidc_login_"),
        "every pending login was consumed: {jar:?}"
    );
    assert_eq!(h.navigate("/c", &jar).await.status(), 200);
}

#[tokio::test]
async fn pending_logins_beyond_the_cap_drop_the_oldest() {
    let clock = ManualClock::starting_now();
    let h = Harness::start(Options {
        max_pending_logins: Some(3),
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let mut jar = Jar::default();
    let mut authorizations = Vec::new();
    for index in 0..5 {
        let path = format!("/tab{index}");
        authorizations.push(h.start_login(&path, &mut jar).await);
        // Pending logins are ordered by the second they started.
        clock.advance(Duration::from_secs(1));
        let pending = jar
            .names()
            .iter()
            .filter(|n| n.starts_with("oidc_login_"))
            .count();
        assert_eq!(pending, (index + 1).min(3), "after login {index}");
    }
    // The oldest tab's login is gone; the newest completes.
    let oldest = h.authorize(&authorizations[0], "alice").await;
    let response = h.callback(&oldest, &mut jar.clone()).await;
    assert_eq!(response.status(), 400);
    let newest = h.authorize(&authorizations[4], "alice").await;
    let response = h.callback(&newest, &mut jar).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/tab4");
}

#[tokio::test]
async fn sign_out_clears_cookies_revokes_and_logs_out_at_the_provider() {
    let h = Harness::start(Options::default()).await;
    let jar = h.sign_in("alice", "/").await;
    // Served once, so that the opened session is cached before the sign-out.
    assert_eq!(h.api("/", &jar).await.status(), 200);
    let stolen = jar.clone();
    let response = h
        .client
        .get(format!("{}/oauth2/sign_out?rd=/bye", h.app))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let provider_logout = location(&response);
    assert!(
        provider_logout.starts_with(h.op.issuer().as_str())
            && provider_logout.contains("id_token_hint="),
        "{provider_logout}"
    );
    let mut after = jar.clone();
    after.absorb(&response);
    assert!(!after.has("oidc_session"), "session cookie cleared");
    // A copy of the old cookie is dead too.
    assert_eq!(h.api("/", &stolen).await.status(), 401);
}

#[tokio::test]
async fn sign_out_returns_to_the_checked_target_through_the_provider() {
    let h = Harness::start(Options {
        post_logout_to_signed_out: true,
        ..Options::default()
    })
    .await;
    let jar = h.sign_in("alice", "/").await;
    let response = h
        .client
        .get(format!(
            "{}/oauth2/sign_out?rd=%2Fexperiments%3Fx%3D1",
            h.app
        ))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    let provider_logout = location(&response);
    assert!(
        provider_logout.starts_with(h.op.issuer().as_str()),
        "{provider_logout}"
    );
    // The provider hands the target back to signed_out, which goes on to it.
    let back = h.client.get(&provider_logout).send().await.unwrap();
    let signed_out = location(&back);
    assert!(
        signed_out.starts_with(&format!("{}/oauth2/signed_out?", h.app)),
        "{signed_out}"
    );
    let response = h.client.get(&signed_out).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/experiments?x=1");

    // signed_out checks its target like sign-in does: a forged one falls back to the root.
    for forged in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil",
    ] {
        let response = h
            .client
            .get(format!("{}/oauth2/signed_out?state={forged}", h.app))
            .send()
            .await
            .unwrap();
        assert_eq!(location(&response), "/", "{forged}");
    }
    let response = h
        .client
        .get(format!("{}/oauth2/signed_out", h.app))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn open_redirect_payloads_fall_back_to_root() {
    let h = Harness::start(Options::default()).await;
    let payloads = [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "/%2f%2fevil.example",
        "javascript:alert(1)",
        "http:evil.example",
        "/%09/evil.example",
        "\\\\evil.example",
    ];
    for payload in payloads {
        let encoded: String = url::form_urlencoded::byte_serialize(payload.as_bytes()).collect();
        // sign_out without a session goes straight to the return-to target.
        let response = h
            .client
            .get(format!("{}/oauth2/sign_out?rd={encoded}", h.app))
            .send()
            .await
            .unwrap();
        assert_eq!(location(&response), "/", "sign_out {payload}");

        // start keeps the target in the pending login and returns there after the callback.
        let mut jar = Jar::default();
        let response = h
            .client
            .get(format!("{}/oauth2/start?rd={encoded}", h.app))
            .send()
            .await
            .unwrap();
        jar.absorb(&response);
        let callback = h.authorize(&location(&response), "alice").await;
        let response = h.callback(&callback, &mut jar).await;
        assert_eq!(location(&response), "/", "start {payload}");
    }
    // A safe target is kept.
    let response = h
        .client
        .get(format!(
            "{}/oauth2/sign_out?rd=%2Fexperiments%3Fx%3D1",
            h.app
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/experiments?x=1");
}

#[tokio::test]
async fn a_new_sign_in_never_reuses_the_session_it_arrived_with() {
    let h = Harness::start(Options::default()).await;
    let first = h.sign_in("alice", "/").await;
    let mut jar = first.clone();
    let authorization = h.start_login_with_session(&mut jar).await;
    let callback = h.authorize(&authorization, "alice").await;
    let response = h.callback(&callback, &mut jar).await;
    assert_eq!(response.status(), 302);
    assert_ne!(jar.header(), first.header(), "a fresh session cookie");
    assert_eq!(h.api("/", &jar).await.status(), 200);
    assert_eq!(
        h.api("/", &first).await.status(),
        401,
        "the old session ended"
    );
}

#[tokio::test]
async fn back_channel_logout_from_the_provider_revokes() {
    let h = Harness::start(Options::default()).await;
    let jar = h.sign_in("alice", "/").await;
    assert_eq!(h.api("/", &jar).await.status(), 200);
    let deliveries = h.op.logout_user("alice").await;
    assert!(!deliveries.is_empty());
    assert!(
        deliveries.iter().all(|d| d.outcome == Ok(200)),
        "{deliveries:?}"
    );
    assert_eq!(h.api("/", &jar).await.status(), 401);
    // A replayed logout token is refused.
    let response = h
        .client
        .post(format!("{}/oauth2/backchannel_logout", h.app))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("logout_token=not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn parallel_requests_at_refresh_time_refresh_once() {
    // Access tokens live 30 s, the refresh margin is 60 s: every request is due for refresh.
    let h = Harness::start(Options {
        access_token_lifetime: Some(Duration::from_secs(30)),
        ..Options::default()
    })
    .await;
    let jar = h.sign_in("alice", "/").await;
    let before = h.op.request_count(Endpoint::Token);
    let requests = (0..12).map(|_| h.api("/api/2.0/mlflow/runs/search", &jar));
    let responses = futures_util::future::join_all(requests).await;
    let mut refreshed = 0;
    for response in responses {
        assert_eq!(response.status(), 200);
        if response.headers().get_all("set-cookie").iter().count() > 0 {
            refreshed += 1;
        }
    }
    assert_eq!(
        h.op.request_count(Endpoint::Token) - before,
        1,
        "exactly one refresh"
    );
    assert_eq!(
        refreshed, 12,
        "every response carries the refreshed session"
    );
}

#[tokio::test]
async fn key_rotation_at_the_provider_fails_no_request() {
    let h = Harness::start(Options::default()).await;
    let jar = h.sign_in("alice", "/").await;
    h.op.rotate_keys().unwrap();
    // Sessions keep working; new logins and new bearer tokens use the new key.
    assert_eq!(h.api("/", &jar).await.status(), 200);
    let second = h.sign_in("alice", "/after-rotation").await;
    assert_eq!(h.api("/", &second).await.status(), 200);
    let token = h.op.mint_access_token("alice", "app").unwrap();
    let response = h
        .client
        .get(format!("{}/api", h.app))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn userinfo_shows_the_session_identity() {
    let h = Harness::start(Options::default()).await;
    let response = h.api("/oauth2/userinfo", &Jar::default()).await;
    assert_eq!(response.status(), 401);
    let jar = h.sign_in("alice", "/").await;
    let response = h.api("/oauth2/userinfo", &jar).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["groups"], serde_json::json!(["ml", "admins"]));
    assert_eq!(body["source"], "session");
}

#[tokio::test]
async fn users_outside_the_allow_rules_get_403() {
    let h = Harness::start(Options {
        rules: Some(AuthorizationRules::new().with_allowed_email_domains(["example.com"])),
        ..Options::default()
    })
    .await;
    let jar = h.sign_in("mallory", "/").await;
    let page = h.navigate("/", &jar).await;
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("not allowed"));
    let call = h.api("/", &jar).await;
    assert_eq!(call.status(), 403);
    let body: serde_json::Value = call.json().await.unwrap();
    assert_eq!(body["error"], "email_not_allowed");
    let alice = h.sign_in("alice", "/").await;
    assert_eq!(h.api("/", &alice).await.status(), 200);
}

trait StartWithSession {
    async fn start_login_with_session(&self, jar: &mut Jar) -> String;
}

impl StartWithSession for Harness {
    /// Starts a login explicitly (a signed-in browser can still start one).
    async fn start_login_with_session(&self, jar: &mut Jar) -> String {
        let response = self
            .client
            .get(format!("{}/oauth2/start?rd=/", self.app))
            .header("cookie", jar.header())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        jar.absorb(&response);
        location(&response)
    }
}
