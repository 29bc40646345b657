//! Forward-auth with oauth2-proxy's contract, as Caddy `forward_auth` calls it, on 127.0.0.1.

use std::time::Duration;

use crate::support::layers::{Harness, Jar, Options, location};
use oidc_core::authorization::AuthorizationRules;
use oidc_core::redirect::RedirectPolicy;
use oidc_dev_provider::Endpoint;
use oidc_tower::auth::{AuthConfig, ForwardAuth};
use oidc_tower::forwarded::Scheme;

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

/// Forward-auth with the harness's configuration changed by `configure`, served on its own
/// port (127.0.0.1, so its peer is a trusted proxy). Returns its base URL and a stop handle.
async fn forward_auth_with(
    h: &Harness,
    configure: impl FnOnce(AuthConfig) -> AuthConfig,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let auth = configure(h.config.clone()).build().unwrap();
    let service = ForwardAuth::new(auth).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(oidc_tower::proxy::serve(listener, service, async {
        let _ = stopped.await;
    }));
    (url, stop)
}

/// A browser navigation checked at `forward_auth` with the forwarded headers given; signs in
/// as alice through that same service and returns where the callback sends the browser.
async fn return_after_sign_in(
    h: &Harness,
    forward_auth: &str,
    forwarded: &[(&str, &str)],
) -> String {
    let mut request = h
        .client
        .get(format!("{forward_auth}/oauth2/auth"))
        .header("accept", "text/html");
    for (name, value) in forwarded {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 302);
    let mut jar = Jar::default();
    jar.absorb(&response);
    let callback = h.authorize(&location(&response), "alice").await;
    let callback = callback.replacen(&h.app, forward_auth, 1);
    let response = h.callback(&callback, &mut jar).await;
    assert_eq!(response.status(), 302);
    location(&response)
}

#[tokio::test]
async fn the_direct_scheme_follows_the_callback_url_or_the_configured_external_scheme() {
    let h = Harness::start(Options::default()).await;
    let allow_mlflow = || RedirectPolicy::new(["mlflow.example.com"]).unwrap();
    let no_proto = [
        ("x-forwarded-host", "mlflow.example.com"),
        ("x-forwarded-uri", "/experiments?id=7"),
    ];

    // Derived from the callback URL (http://127.0.0.1:…/oauth2/callback).
    let (derived, _stop1) = forward_auth_with(&h, |c| {
        c.forward_auth_redirect(true)
            .redirect_policy(allow_mlflow())
    })
    .await;
    assert_eq!(
        return_after_sign_in(&h, &derived, &no_proto).await,
        "http://mlflow.example.com/experiments?id=7"
    );

    // Configured: TLS ends at a proxy in front that does not say so.
    let (configured, _stop2) = forward_auth_with(&h, |c| {
        c.forward_auth_redirect(true)
            .redirect_policy(allow_mlflow())
            .external_scheme(Scheme::Https)
    })
    .await;
    assert_eq!(
        return_after_sign_in(&h, &configured, &no_proto).await,
        "https://mlflow.example.com/experiments?id=7"
    );

    // A trusted proxy's X-Forwarded-Proto wins over the configured scheme.
    let with_proto = [
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "mlflow.example.com"),
        ("x-forwarded-uri", "/runs"),
    ];
    assert_eq!(
        return_after_sign_in(&h, &configured, &with_proto).await,
        "http://mlflow.example.com/runs"
    );
}

#[tokio::test]
async fn sign_in_returns_to_a_path_on_the_callback_origin_and_never_to_a_host_not_allowed() {
    let h = Harness::start(Options::default()).await;
    let (forward_auth, _stop) = forward_auth_with(&h, |c| c.forward_auth_redirect(true)).await;
    let app_host = h.app.trim_start_matches("http://").to_owned();
    // The original request is on the callback's own origin: a plain path.
    let same_origin = [
        ("x-forwarded-host", app_host.as_str()),
        ("x-forwarded-uri", "/experiments?id=7"),
    ];
    assert_eq!(
        return_after_sign_in(&h, &forward_auth, &same_origin).await,
        "/experiments?id=7"
    );
    // Another host the redirect policy does not allow: never an absolute URL to it.
    let elsewhere = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-uri", "/steal"),
    ];
    assert_eq!(
        return_after_sign_in(&h, &forward_auth, &elsewhere).await,
        "/steal"
    );
}

#[tokio::test]
async fn mlflow_api_paths_get_mlflow_error_bodies_others_rfc_6750() {
    let h = Harness::start(Options::default()).await;
    let ask = |uri: &'static str, bearer: Option<&'static str>| {
        let mut request = h
            .client
            .get(format!("{}/oauth2/auth", h.forward_auth))
            .header("accept", "application/json")
            .header("x-forwarded-uri", uri);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = response.json().await.unwrap();
            (status, challenge, body)
        }
    };
    // MLflow's client reads error_code; the RFC 6750 challenge is still there.
    for (uri, bearer) in [
        ("/mlflow/api/2.0/mlflow/experiments/create", None),
        ("/api/2.0/mlflow/runs/search", Some("not-a-token")),
        ("/mlflow/ajax-api/2.0/mlflow/experiments/search", None),
    ] {
        let (status, challenge, body) = ask(uri, bearer).await;
        assert_eq!(status, 401, "{uri}");
        assert_eq!(body["error_code"], "UNAUTHENTICATED", "{uri}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("MLFLOW_TRACKING_TOKEN")
        );
        assert!(challenge.unwrap().starts_with("Bearer"), "{uri}");
    }
    // Other clients keep the RFC 6750 answer.
    let (status, challenge, body) = ask("/airflow/api/v2/dags", None).await;
    assert_eq!(status, 401);
    assert!(body.get("error_code").is_none(), "{body}");
    assert_eq!(body["error"], "unauthorized");
    assert!(challenge.unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn navigations_get_a_sign_in_page_that_keeps_the_fragment() {
    let h = Harness::start(Options::default()).await;
    let page = |uri: &'static str| {
        let request = h
            .client
            .get(format!("{}/oauth2/auth", h.forward_auth))
            .header("accept", "text/html,application/xhtml+xml")
            .header("sec-fetch-mode", "navigate")
            .header("x-forwarded-uri", uri);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let kind = value(&response, "content-type").to_owned();
            (status, kind, response.text().await.unwrap())
        }
    };
    let (status, kind, body) = page("/mlflow/?a=1").await;
    assert_eq!(status, 401);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(
        body.contains("href=\"/oauth2/start?rd=%2Fmlflow%2F%3Fa%3D1\""),
        "{body}"
    );
    assert!(body.contains("encodeURIComponent(location.hash)"), "{body}");
    assert!(
        body.contains("http-equiv=\"refresh\""),
        "no-script fallback"
    );
    // A target the redirect policy refuses becomes the root.
    let (_, _, body) = page("/%2F%2Fevil.example/x").await;
    assert!(body.contains("href=\"/oauth2/start?rd=%2F\""), "{body}");
    assert!(!body.contains("evil.example"), "{body}");
}
