//! Forward-auth with oauth2-proxy's contract, as Caddy `forward_auth` calls it, on 127.0.0.1.

mod support;

use std::time::Duration;

use oidc_core::authorization::AuthorizationRules;
use oidc_dev_provider::Endpoint;
use support::layers::{Harness, Jar, Options, location};

const IDENTITY_HEADERS: [&str; 4] = [
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-auth-request-groups",
];

fn value<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn answers_202_401_and_403_with_every_identity_header() {
    let h = Harness::start(Options {
        rules: Some(AuthorizationRules::new().with_allowed_groups(["ml"])),
        pass_access_token: true,
        ..Options::default()
    })
    .await;
    let response = h
        .forward_auth_check("/#/experiments", &Jar::default(), &[])
        .await;
    assert_eq!(response.status(), 401);

    let alice = h.sign_in("alice", "/").await;
    let response = h.forward_auth_check("/#/experiments", &alice, &[]).await;
    assert_eq!(response.status(), 202);
    for name in IDENTITY_HEADERS {
        assert!(response.headers().contains_key(name), "{name}");
    }
    assert_eq!(
        value(&response, "x-auth-request-email"),
        "alice@example.com"
    );
    assert_eq!(value(&response, "x-auth-request-groups"), "ml,admins");
    assert!(!value(&response, "x-auth-request-user").is_empty());
    assert_eq!(
        value(&response, "x-auth-request-preferred-username"),
        "alice"
    );
    assert!(!value(&response, "x-auth-request-access-token").is_empty());
    assert!(
        response.headers().get("set-cookie").is_none(),
        "nothing refreshed"
    );

    let mallory = h.sign_in("mallory", "/").await;
    let response = h.forward_auth_check("/", &mallory, &[]).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("x-auth-request-user").is_none());
}

#[tokio::test]
async fn skip_auth_routes_pass_with_empty_identity() {
    let h = Harness::start(Options {
        skip_auth: vec!["GET=^/health$"],
        ..Options::default()
    })
    .await;
    let response = h.forward_auth_check("/health", &Jar::default(), &[]).await;
    assert_eq!(response.status(), 202);
    for name in IDENTITY_HEADERS {
        assert_eq!(value(&response, name), "", "{name}");
    }
    // Only the exact route is skipped, on the original path.
    let response = h
        .forward_auth_check("/health/../admin", &Jar::default(), &[])
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn browser_navigations_are_sent_to_sign_in_when_enabled() {
    let h = Harness::start(Options {
        forward_auth_redirect: true,
        ..Options::default()
    })
    .await;
    let browser = [("accept", "text/html,application/xhtml+xml")];
    let response = h
        .forward_auth_check("/experiments?id=7", &Jar::default(), &browser)
        .await;
    assert_eq!(response.status(), 302);
    assert!(location(&response).starts_with(h.op.issuer().as_str()));
    let mut jar = Jar::default();
    jar.absorb(&response);
    assert!(jar.has("oidc_login_"), "pending login cookie set");
    // The login returns to the original URL.
    let callback = h.authorize(&location(&response), "alice").await;
    let response = h.callback(&callback, &mut jar).await;
    assert_eq!(location(&response), "/experiments?id=7");

    // API calls still get 401.
    let response = h
        .forward_auth_check(
            "/api/2.0/mlflow/runs/search",
            &Jar::default(),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_refresh_during_the_check_returns_set_cookie() {
    let h = Harness::start(Options {
        access_token_lifetime: Some(Duration::from_secs(30)),
        ..Options::default()
    })
    .await;
    let jar = h.sign_in("alice", "/").await;
    let before = h.op.request_count(Endpoint::Token);
    let response = h.forward_auth_check("/", &jar, &[]).await;
    assert_eq!(response.status(), 202);
    assert_eq!(h.op.request_count(Endpoint::Token), before + 1);
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("oidc_session=")),
        "refreshed session cookie returned"
    );
}

#[tokio::test]
async fn repeated_forwarded_headers_are_refused_and_bearer_tokens_accepted() {
    let h = Harness::start(Options {
        forward_auth_redirect: true,
        ..Options::default()
    })
    .await;
    // Loopback is trusted by default: a repeated header is an error, not a guess.
    let response = h
        .client
        .get(format!("{}/oauth2/auth", h.forward_auth))
        .header("x-forwarded-uri", "/a")
        .header("x-forwarded-uri", "/b")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Bearer tokens work at forward-auth too.
    let token = h.op.mint_access_token("alice", "app").unwrap();
    let response = h
        .client
        .get(format!("{}/oauth2/auth", h.forward_auth))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        value(&response, "x-auth-request-email"),
        "alice@example.com"
    );
}
