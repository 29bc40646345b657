//! One answer per token, whatever the door: every kind of token a deployment meets, sent
//! through every front-end (the bearer layer, an API request through the login layer,
//! forward-auth, and `oidc proxy` as a child process), must get the same status, the same
//! rejection code, the same identity and the same metric label.
//!
//! The deployment: a main provider with the login client `app` (opaque access tokens), an API
//! audience added for the main issuer itself (`--extra-jwt-issuers MAIN=mlflow-api`), a second
//! issuer for CI (`--extra-jwt-issuers CI=mlflow`), group `ml` required, and the machine client
//! `ci-bot` allowed by client id.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use oidc_core::Policy;
use oidc_core::Secret;
use oidc_core::authorization::AuthorizationRules;
use oidc_core::cookie::CookieSettings;
use oidc_core::login::{ClientAuthMethod, ClientCredentials};
use oidc_dev_provider::{AccessTokenFormat, DevClient, DevProvider, DevUser, RunningProvider};
use oidc_tower::ReqwestHttpClient;
use oidc_tower::auth::{
    AuthConfig, AuthFailure, AuthSource, Authenticated, BearerAuthLayer, ForwardAuth,
    LoginSettings, OidcLoginLayer,
};
use oidc_tower::metrics::Metrics;
use oidc_tower::provider::{Provider, ProviderConfig};
use serde_json::json;
use tower::{Layer as _, ServiceExt as _};

use crate::support::ports::free_port;

const CLIENT_SECRET: &str = "app-client-secret-value";
const COOKIE_SECRET: &str = "cookie-secret-with-at-least-32-characters";

/// Every kind of token in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    IdTokenOfTheClient,
    JwtForAnExtraAudience,
    JwtOfAnExtraIssuer,
    OpaqueOfThisClient,
    OpaqueOfAnotherClient,
    ClientCredentials,
    Expired,
    WrongAudience,
    UserOutsideTheGroup,
}

const KINDS: [Kind; 9] = [
    Kind::IdTokenOfTheClient,
    Kind::JwtForAnExtraAudience,
    Kind::JwtOfAnExtraIssuer,
    Kind::OpaqueOfThisClient,
    Kind::OpaqueOfAnotherClient,
    Kind::ClientCredentials,
    Kind::Expired,
    Kind::WrongAudience,
    Kind::UserOutsideTheGroup,
];

/// Every front-end that decides who may pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Door {
    BearerLayer,
    LoginLayerApi,
    ForwardAuth,
    Proxy,
}

const DOORS: [Door; 4] = [
    Door::BearerLayer,
    Door::LoginLayerApi,
    Door::ForwardAuth,
    Door::Proxy,
];

/// What a door answered, normalized: forward-auth's `202 Accepted` is its "pass".
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    passed: bool,
    status: StatusCode,
    /// The metric label the request was counted under (`outcome`, `code`).
    metric: (String, String),
    /// user, email, groups as the upstream (or the handler) is told.
    identity: Option<(String, String, String)>,
}

/// The expected outcome per kind: `Ok(user)` or `Err((status, code))`. The match is exhaustive,
/// so a new kind cannot be added without its expectation.
fn expected(kind: Kind) -> Result<&'static str, (StatusCode, &'static str)> {
    match kind {
        Kind::IdTokenOfTheClient | Kind::JwtForAnExtraAudience | Kind::OpaqueOfThisClient => {
            Ok("alice")
        }
        Kind::JwtOfAnExtraIssuer => Ok("builder"),
        Kind::ClientCredentials => Ok("ci-bot"),
        Kind::OpaqueOfAnotherClient => Err((StatusCode::UNAUTHORIZED, "wrong_client")),
        Kind::Expired => Err((StatusCode::UNAUTHORIZED, "expired")),
        Kind::WrongAudience => Err((StatusCode::UNAUTHORIZED, "wrong_audience")),
        Kind::UserOutsideTheGroup => Err((StatusCode::FORBIDDEN, "not_in_allowed_group")),
    }
}

/// The source every passing kind is authenticated as; together the kinds cover every bearer
/// source the library knows.
fn source(kind: Kind) -> Option<AuthSource> {
    match kind {
        Kind::IdTokenOfTheClient | Kind::JwtForAnExtraAudience | Kind::JwtOfAnExtraIssuer => {
            Some(AuthSource::BearerJwt)
        }
        Kind::OpaqueOfThisClient | Kind::ClientCredentials => Some(AuthSource::BearerIntrospected),
        Kind::OpaqueOfAnotherClient
        | Kind::Expired
        | Kind::WrongAudience
        | Kind::UserOutsideTheGroup => None,
    }
}

struct Deployment {
    main: RunningProvider,
    ci: RunningProvider,
    proxy_port: u16,
}

async fn deployment() -> Deployment {
    let proxy_port = free_port();
    let main = DevProvider::builder()
        .user(
            DevUser::new("alice", "pw")
                .email("alice@example.com")
                .groups(["ml"]),
        )
        .user(
            DevUser::new("mallory", "pw")
                .email("mallory@example.com")
                .groups(["sales"]),
        )
        .client(
            DevClient::confidential("app", CLIENT_SECRET)
                .redirect_uri(format!("http://127.0.0.1:{proxy_port}/oauth2/callback"))
                .access_token_format(AccessTokenFormat::Opaque),
        )
        .client(DevClient::confidential("api-client", "s").access_token_audience("mlflow-api"))
        .client(
            DevClient::confidential("airflow", "s").access_token_format(AccessTokenFormat::Opaque),
        )
        .client(
            DevClient::confidential("ci-bot", "ci-secret")
                .access_token_format(AccessTokenFormat::Opaque),
        )
        .client(DevClient::confidential("elsewhere", "s"))
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ci = DevProvider::builder()
        .user(
            DevUser::new("builder", "pw")
                .email("builder@example.com")
                .groups(["ml"]),
        )
        .client(DevClient::confidential("pipeline", "s").access_token_audience("mlflow"))
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Deployment {
        main,
        ci,
        proxy_port,
    }
}

async fn token_of(kind: Kind, d: &Deployment) -> String {
    let main = &d.main;
    match kind {
        Kind::IdTokenOfTheClient => {
            let tokens = main
                .mint_tokens("alice", "app", "openid profile email")
                .unwrap();
            tokens["id_token"].as_str().unwrap().to_owned()
        }
        Kind::JwtForAnExtraAudience => main.mint_access_token("alice", "api-client").unwrap(),
        Kind::JwtOfAnExtraIssuer => d.ci.mint_access_token("builder", "pipeline").unwrap(),
        Kind::OpaqueOfThisClient => main.mint_access_token("alice", "app").unwrap(),
        Kind::OpaqueOfAnotherClient => main.mint_access_token("alice", "airflow").unwrap(),
        Kind::ClientCredentials => {
            let answer: serde_json::Value = reqwest::Client::new()
                .post(main.endpoint("/token"))
                .basic_auth("ci-bot", Some("ci-secret"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=api")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["access_token"].as_str().unwrap().to_owned()
        }
        Kind::Expired => {
            let now = oidc_tower::clock::now().as_secs();
            let claims = json!({
                "iss": main.issuer().as_str(), "sub": "alice", "aud": "app",
                "email": "alice@example.com", "email_verified": true, "groups": ["ml"],
                "iat": now - 7200, "exp": now - 3600,
            });
            main.sign_access_token(claims.as_object().unwrap()).unwrap()
        }
        Kind::WrongAudience => main.mint_access_token("alice", "elsewhere").unwrap(),
        Kind::UserOutsideTheGroup => {
            let tokens = main
                .mint_tokens("mallory", "app", "openid profile email")
                .unwrap();
            tokens["id_token"].as_str().unwrap().to_owned()
        }
    }
}

/// The library's configuration for the deployment, as a Rust service would write it.
async fn config(d: &Deployment) -> AuthConfig {
    let http = Arc::new(ReqwestHttpClient::new().unwrap());
    let main_policy = Policy::builder()
        .issuer(d.main.issuer().clone())
        .audience("app")
        .build()
        .unwrap();
    let main = Provider::start(
        ProviderConfig::new(d.main.issuer().clone(), main_policy),
        http.clone(),
    );
    let ci_policy = Policy::builder()
        .issuer(d.ci.issuer().clone())
        .audience("mlflow")
        .build()
        .unwrap();
    let ci = Provider::start(
        ProviderConfig::new(d.ci.issuer().clone(), ci_policy),
        http.clone(),
    );
    main.wait_ready().await;
    ci.wait_ready().await;
    let callback: url::Url = format!("http://127.0.0.1:{}/oauth2/callback", d.proxy_port)
        .parse()
        .unwrap();
    let credentials = ClientCredentials::new(
        "app",
        ClientAuthMethod::ClientSecretBasic(Secret::new(CLIENT_SECRET)),
    );
    AuthConfig::new(main, http)
        .login(LoginSettings::new(
            credentials,
            callback.clone(),
            vec![Secret::new(COOKIE_SECRET)],
        ))
        .session_cookie(
            CookieSettings::new("oidc_session")
                .insecure_allow_plain_http(&callback)
                .unwrap(),
        )
        .accept_issuer(ci)
        .accept_audiences(["mlflow-api"])
        .authorization(
            AuthorizationRules::new()
                .with_allowed_groups(["ml"])
                .with_allowed_clients(["ci-bot"]),
        )
}

type Seen = Arc<Mutex<Option<(String, String, String)>>>;

/// Counters of `oidc_requests_total` by (outcome, code).
fn counters(text: &str) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("oidc_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        counts.insert((label("outcome"), label("code")), value.parse().unwrap());
    }
    counts
}

/// The one label whose counter went up between two scrapes.
fn counted(before: &str, after: &str) -> (String, String) {
    let (before, after) = (counters(before), counters(after));
    let grown: Vec<_> = after
        .iter()
        .filter(|(label, count)| before.get(*label).copied().unwrap_or(0) < **count)
        .map(|(label, _)| label.clone())
        .collect();
    assert_eq!(grown.len(), 1, "exactly one counter moves: {grown:?}");
    grown[0].clone()
}

fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn identity_from(headers: &http::HeaderMap, family: &str) -> (String, String, String) {
    (
        header(headers, &format!("{family}-user")),
        header(headers, &format!("{family}-email")),
        header(headers, &format!("{family}-groups")),
    )
}

/// Sends `token` through one of the library's doors, each with its own authenticator (fresh
/// caches) and metrics.
async fn through_library(door: Door, config: &AuthConfig, token: &str) -> Answer {
    let metrics = Metrics::new();
    let auth = config.clone().metrics(metrics.clone()).build().unwrap();
    let before = metrics.render();
    let seen: Seen = Arc::default();
    let request = Request::get("/api/2.0/mlflow/experiments/list")
        .header("host", "app.internal")
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("remote_user", "mallory")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, failure) = match door {
        Door::BearerLayer => {
            let seen = seen.clone();
            let inner = tower::service_fn(move |request: Request<Full<Bytes>>| {
                let seen = seen.clone();
                async move {
                    let who = request.extensions().get::<Authenticated>().map(|a| {
                        let i = &a.identity;
                        (
                            i.user.clone(),
                            i.email.clone().unwrap_or_default(),
                            i.groups.join(","),
                        )
                    });
                    *seen.lock().unwrap() = who;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            let answer = BearerAuthLayer::new(auth)
                .layer(inner)
                .oneshot(request)
                .await
                .unwrap();
            let failure = AuthFailure::from_response(&answer).cloned();
            (answer.status(), failure)
        }
        Door::LoginLayerApi => {
            let seen = seen.clone();
            let inner = tower::service_fn(move |request: Request<Full<Bytes>>| {
                let seen = seen.clone();
                async move {
                    assert!(
                        request.headers().get("remote_user").is_none(),
                        "a client's REMOTE_USER never reaches the upstream"
                    );
                    *seen.lock().unwrap() = Some(identity_from(request.headers(), "x-forwarded"));
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            let answer = OidcLoginLayer::new(auth)
                .unwrap()
                .layer(inner)
                .oneshot(request)
                .await
                .unwrap();
            let failure = AuthFailure::from_response(&answer).cloned();
            (answer.status(), failure)
        }
        Door::ForwardAuth => {
            let (mut parts, body) = request.into_parts();
            parts.uri = "/oauth2/auth".parse().unwrap();
            let answer = ForwardAuth::new(auth)
                .unwrap()
                .oneshot(Request::from_parts(parts, body))
                .await
                .unwrap();
            if answer.status() == StatusCode::ACCEPTED {
                *seen.lock().unwrap() = Some(identity_from(answer.headers(), "x-auth-request"));
            }
            let failure = AuthFailure::from_response(&answer).cloned();
            (answer.status(), failure)
        }
        Door::Proxy => unreachable!("the proxy runs as a process"),
    };
    let metric = counted(&before, &metrics.render());
    if let Some(failure) = failure {
        assert_eq!(
            failure.code(),
            metric.1,
            "{door:?}: the response names the counted code"
        );
    }
    let passed = status == StatusCode::OK || status == StatusCode::ACCEPTED;
    let identity = seen.lock().unwrap().clone();
    Answer {
        passed,
        status: if passed { StatusCode::OK } else { status },
        metric,
        identity: identity.filter(|_| passed),
    }
}

/// An upstream answering the identity headers it received, `user|email|groups|remote-user`.
async fn echo_upstream() -> SocketAddr {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let app = Router::new().fallback(|headers: HeaderMap| async move {
            let (user, email, groups) = identity_from(&headers, "x-forwarded");
            format!(
                "{user}|{email}|{groups}|{}",
                header(&headers, "remote-user")
            )
        });
        axum::serve(upstream, app).await.unwrap();
    });
    addr
}

struct ProxyProcess {
    child: std::process::Child,
    base: String,
    metrics: String,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `oidc proxy` with the deployment's settings, as flags.
async fn start_proxy(d: &Deployment) -> ProxyProcess {
    let upstream = echo_upstream().await;
    let port = d.proxy_port;
    let metrics_port = free_port();
    let main = d.main.issuer().as_str();
    let args = vec![
        "proxy".to_owned(),
        format!("--http-address=127.0.0.1:{port}"),
        format!("--oidc-issuer-url={main}"),
        "--client-id=app".into(),
        format!("--redirect-url=http://127.0.0.1:{port}/oauth2/callback"),
        "--cookie-secure=false".into(),
        "--skip-jwt-bearer-tokens".into(),
        "--allowed-group=ml".into(),
        "--allowed-client-id=ci-bot".into(),
        format!("--extra-jwt-issuers={main}=mlflow-api"),
        format!("--extra-jwt-issuers={}=mlflow", d.ci.issuer().as_str()),
        format!("--upstream=http://{upstream}/"),
        format!("--metrics-address=127.0.0.1:{metrics_port}"),
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args(&args)
        .env("NO_COLOR", "1")
        .env("OIDC_PROXY_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proxy = ProxyProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
    };
    let http = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(answer) = http.get(format!("{}/readyz", proxy.base)).send().await
            && answer.status() == 200
        {
            return proxy;
        }
        if let Some(status) = proxy.child.try_wait().unwrap() {
            panic!(
                "the proxy exited at start ({status}); is {} or its metrics address taken?",
                proxy.base
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the proxy did not become ready");
}

async fn through_proxy(proxy: &ProxyProcess, token: &str) -> Answer {
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(&proxy.metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    let answer = http
        .get(format!("{}/api/2.0/mlflow/experiments/list", proxy.base))
        .header("accept", "application/json")
        .header("remote_user", "mallory")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body = answer.text().await.unwrap();
    let metric = counted(&before, &scrape().await);
    let passed = status == StatusCode::OK;
    let identity = passed.then(|| {
        let parts: Vec<&str> = body.split('|').collect();
        assert_eq!(parts.len(), 4, "{body}");
        assert_eq!(
            parts[3], "",
            "a client's REMOTE_USER never reaches the upstream"
        );
        (
            parts[0].to_owned(),
            parts[1].to_owned(),
            parts[2].to_owned(),
        )
    });
    Answer {
        passed,
        status,
        metric,
        identity,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_kind_gets_one_answer_at_every_door() {
    let d = deployment().await;
    let config = config(&d).await;
    let proxy = start_proxy(&d).await;
    let bearer_sources: Vec<AuthSource> = AuthSource::ALL
        .into_iter()
        .filter(|s| *s != AuthSource::Session)
        .collect();
    for required in &bearer_sources {
        assert!(
            KINDS.iter().any(|kind| source(*kind) == Some(*required)),
            "the table has no token kind authenticated as {required:?}"
        );
    }
    let mut table = Vec::new();
    for kind in KINDS {
        let token = token_of(kind, &d).await;
        let mut answers = Vec::new();
        for door in DOORS {
            // Twice: the second answer comes from the caches and must not differ.
            for _ in 0..2 {
                let answer = match door {
                    Door::Proxy => through_proxy(&proxy, &token).await,
                    _ => through_library(door, &config, &token).await,
                };
                answers.push((door, answer));
            }
        }
        let (first_door, first) = &answers[0];
        for (door, answer) in &answers {
            assert_eq!(
                answer, first,
                "{kind:?}: {door:?} disagrees with {first_door:?}"
            );
        }
        match expected(kind) {
            Ok(user) => {
                assert!(first.passed, "{kind:?} should pass: {first:?}");
                let identity = first.identity.as_ref().unwrap();
                assert_eq!(identity.0, user, "{kind:?}");
                assert_eq!(first.metric, ("allowed".to_owned(), String::new()));
            }
            Err((status, code)) => {
                assert!(!first.passed, "{kind:?} should be refused: {first:?}");
                assert_eq!(first.status, status, "{kind:?}");
                assert_eq!(first.metric.1, code, "{kind:?}");
            }
        }
        table.push(format!("{kind:?}: {:?} {:?}", first.status, first.metric));
    }
    // The machine identity is named by its client and carries no person's attributes.
    let token = token_of(Kind::ClientCredentials, &d).await;
    let answer = through_proxy(&proxy, &token).await;
    assert_eq!(
        answer.identity,
        Some(("ci-bot".into(), String::new(), String::new()))
    );
    println!("{}", table.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_proxy_liveness_paths_answer_unauthenticated_and_are_never_forwarded() {
    let d = deployment().await;
    let proxy = start_proxy(&d).await;
    let http = reqwest::Client::new();
    for path in ["/ping", "/healthz", "/ready", "/readyz"] {
        let answer = http
            .get(format!("{}{path}", proxy.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let body = answer.text().await.unwrap();
        assert!(!body.contains('|'), "{path} reached the upstream: {body}");
    }
}
