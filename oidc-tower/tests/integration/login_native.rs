//! Sign-in for native tools: the device authorization grant driven by `device::run_device_grant`
//! against the dev provider (and, for its timings, against scripted answers on a paused clock),
//! and the loopback redirect receiver fed real and hostile HTTP requests over a socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use oidc_core::ErrorKind;
use oidc_core::login::device::{DeviceGrant, device_authorization_endpoint};
use oidc_core::login::{ClientAuthMethod, ClientCredentials, ProviderEndpoints};
use oidc_dev_provider::{DevClient, DevProvider, RunningProvider, demo_users};
use oidc_tower::device::{DeviceGrantError, run_device_grant};
use oidc_tower::loopback::{LoopbackRedirect, MAX_CALLBACK_REQUEST_BYTES};
use oidc_tower::provider::fetch_metadata_and_keys;
use oidc_tower::{HttpClient, HttpError, ReqwestHttpClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENT: &str = "native-tool";

async fn provider() -> RunningProvider {
    let mut builder = DevProvider::builder()
        .client(DevClient::public(CLIENT).redirect_uri("http://127.0.0.1/callback"));
    for user in demo_users() {
        builder = builder.user(user);
    }
    builder
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn grant(client_id: &str) -> DeviceGrant {
    DeviceGrant::new(ClientCredentials::new(client_id, ClientAuthMethod::None)).scopes([
        "openid",
        "profile",
        "offline_access",
    ])
}

/// Runs the grant for `client_id` against `op`, calling `on_prompt` with the user code.
async fn device_sign_in(
    op: &RunningProvider,
    client_id: &str,
    on_prompt: impl FnOnce(String),
) -> Result<oidc_core::login::token::TokenResponse, DeviceGrantError> {
    let http = ReqwestHttpClient::new().unwrap();
    let (metadata, keys) = fetch_metadata_and_keys(&http, op.issuer()).await.unwrap();
    assert!(!keys.keys().is_empty());
    let endpoints = ProviderEndpoints::from_metadata(&metadata).unwrap();
    run_device_grant(
        &http,
        device_authorization_endpoint(&metadata).unwrap(),
        &endpoints.token_endpoint,
        &grant(client_id),
        |codes| on_prompt(codes.user_code.clone()),
    )
    .await
}

#[tokio::test]
async fn an_approved_device_gets_tokens() {
    let op = provider().await;
    op.auto_approve(Some("alice"));
    let tokens = device_sign_in(&op, CLIENT, |_| {}).await.unwrap();
    assert!(tokens.id_token.is_some());
    assert!(tokens.refresh_token.is_some());
}

#[tokio::test]
async fn polling_waits_while_the_user_approves_on_another_device() {
    let op = provider().await;
    let device_page = op.endpoint("/device");
    let tokens = device_sign_in(&op, CLIENT, move |user_code| {
        tokio::spawn(async move {
            // The first poll comes after one interval (1 s) and finds the code pending.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", &user_code)
                .append_pair("username", "bob")
                .append_pair("password", "bob")
                .finish();
            let approved = reqwest::Client::new()
                .post(device_page)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            assert!(approved.status().is_success());
        });
    })
    .await
    .unwrap();
    assert!(tokens.id_token.is_some());
}

#[tokio::test]
async fn an_expired_device_code_ends_the_grant() {
    let op = provider().await;
    let error = device_sign_in(&op, CLIENT, |_| op.advance_clock(Duration::from_secs(3600)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeviceCodeExpired, "{error}");
}

#[tokio::test]
async fn an_unknown_client_is_refused_at_the_device_endpoint() {
    let op = provider().await;
    let error = device_sign_in(&op, "nobody", |_| panic!("no codes for an unknown client"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "device_authorization_refused", "{error}");
}

/// Answers from a script, recording when each request came (on tokio's clock).
struct Scripted {
    answers: Mutex<Vec<(u16, &'static str)>>,
    times: Mutex<Vec<tokio::time::Instant>>,
}

#[async_trait]
impl HttpClient for Scripted {
    async fn execute(
        &self,
        _request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        self.times.lock().unwrap().push(tokio::time::Instant::now());
        let (status, body) = self.answers.lock().unwrap().remove(0);
        Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Bytes::from_static(body.as_bytes()))
            .unwrap())
    }
}

#[tokio::test(start_paused = true)]
async fn slow_down_adds_five_seconds_to_every_following_wait() {
    let scripted = Arc::new(Scripted {
        answers: Mutex::new(vec![
            (
                200,
                r#"{"device_code":"d","user_code":"BCDF-GHJK","verification_uri":"https://op.example/device","expires_in":60,"interval":2}"#,
            ),
            (400, r#"{"error":"authorization_pending"}"#),
            (400, r#"{"error":"slow_down"}"#),
            (400, r#"{"error":"authorization_pending"}"#),
            (
                200,
                r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#,
            ),
        ]),
        times: Mutex::new(Vec::new()),
    });
    let endpoint = url::Url::parse("https://op.example/device_authorization").unwrap();
    let token_endpoint = url::Url::parse("https://op.example/token").unwrap();
    let tokens = run_device_grant(
        scripted.as_ref(),
        &endpoint,
        &token_endpoint,
        &grant(CLIENT),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(tokens.access_token.expose(), "at");
    let times = scripted.times.lock().unwrap().clone();
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs())
        .collect();
    assert_eq!(gaps, [2, 2, 7, 7]);
}

#[tokio::test(start_paused = true)]
async fn polling_gives_up_when_the_code_expires_and_stops_on_denial() {
    let pending = (400, r#"{"error":"authorization_pending"}"#);
    let scripted = Scripted {
        answers: Mutex::new(vec![
            (
                200,
                r#"{"device_code":"d","user_code":"u","verification_uri":"https://op.example/device","expires_in":10}"#,
            ),
            pending,
            pending,
            pending,
        ]),
        times: Mutex::new(Vec::new()),
    };
    let endpoint = url::Url::parse("https://op.example/device_authorization").unwrap();
    let token_endpoint = url::Url::parse("https://op.example/token").unwrap();
    let error = run_device_grant(
        &scripted,
        &endpoint,
        &token_endpoint,
        &grant(CLIENT),
        |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "device_code_expired");
    // Default interval 5 s: polls at 5 s, none at 10 s, when the code is gone.
    assert_eq!(scripted.times.lock().unwrap().len(), 2);

    let denied = Scripted {
        answers: Mutex::new(vec![
            (
                200,
                r#"{"device_code":"d","user_code":"u","verification_uri":"https://op.example/device","expires_in":60,"interval":1}"#,
            ),
            (400, r#"{"error":"access_denied"}"#),
        ]),
        times: Mutex::new(Vec::new()),
    };
    let error = run_device_grant(&denied, &endpoint, &token_endpoint, &grant(CLIENT), |_| {})
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeviceAccessDenied);
}

/// Sends `bytes` on a new connection to `port` and reads the answer until the server closes.
async fn exchange(port: u16, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_loopback_receiver_answers_everything_and_returns_the_callback() {
    let receiver = LoopbackRedirect::bind(0).await.unwrap();
    let port = receiver.port();
    assert_eq!(
        receiver.redirect_uri().as_str(),
        format!("http://127.0.0.1:{port}/callback")
    );
    let waiting = tokio::spawn(async move { receiver.wait(Duration::from_secs(20)).await });

    // A connection that sends nothing does not hold up the others.
    let idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // One that closes at once is dropped.
    drop(TcpStream::connect(("127.0.0.1", port)).await.unwrap());

    let bad = exchange(port, b"BREW /callback HTCPCP/1.0\r\n\r\n").await;
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    let binary = exchange(port, &[0xff, 0x00, 0xfe, b'\r', b'\n', b'\r', b'\n']).await;
    assert!(binary.starts_with("HTTP/1.1 400 "), "{binary}");
    let other = exchange(port, b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
    let repeated = exchange(port, b"GET /callback?state=a&state=b HTTP/1.1\r\n\r\n").await;
    assert!(repeated.starts_with("HTTP/1.1 400 "), "{repeated}");
    let mut oversized = b"GET /callback?code=".to_vec();
    oversized.resize(MAX_CALLBACK_REQUEST_BYTES, b'a');
    let too_large = exchange(port, &oversized).await;
    assert!(too_large.starts_with("HTTP/1.1 431 "), "{too_large}");
    assert!(!waiting.is_finished(), "no hostile request ends the wait");

    let good = exchange(
        port,
        b"GET /callback?code=the-code&state=the-state&iss=https%3A%2F%2Fop HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    assert!(good.starts_with("HTTP/1.1 200 OK\r\n"), "{good}");
    assert!(good.contains("return to the terminal"), "{good}");
    let params = waiting.await.unwrap().unwrap();
    assert_eq!(params.state.as_deref(), Some("the-state"));
    assert_eq!(params.code.as_ref().map(|c| c.expose()), Some("the-code"));
    assert_eq!(params.iss.as_deref(), Some("https://op"));
    drop(idle);
}

#[tokio::test]
async fn the_loopback_receiver_times_out_and_reports_a_taken_port() {
    let receiver = LoopbackRedirect::bind(0).await.unwrap();
    let error = receiver.wait(Duration::from_millis(50)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::LoginTimedOut);
    let taken = LoopbackRedirect::bind(receiver.port()).await.unwrap_err();
    assert_eq!(taken.code(), "loopback_bind_failed", "{taken}");
}
