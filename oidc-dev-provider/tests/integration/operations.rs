//! Logout with back-channel notification, key rotation, the device grant, configuration, and
//! the hostile knobs tests use against relying parties (faults, stop and restart).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use oidc_dev_provider::{
    DevClient, DevProvider, Endpoint, Fault, ProviderConfig, ServeError, SigningAlgorithm,
};
use serde_json::Value;

/// A relying party's back-channel logout endpoint: records every `logout_token` it receives.
async fn logout_receiver() -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
                let token = pairs
                    .into_iter()
                    .find(|(k, _)| k == "logout_token")
                    .unwrap()
                    .1;
                sink.lock().unwrap().push(token);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/backchannel"), received, task)
}

fn with_query(url: String, pairs: &[(&str, &str)]) -> String {
    format!("{url}?{}", serde_urlencoded::to_string(pairs).unwrap())
}

#[tokio::test]
async fn end_session_logs_out_and_notifies_clients_over_the_back_channel() {
    let (backchannel_uri, received, receiver) = logout_receiver().await;
    let provider = start_with(
        builder().client(
            DevClient::confidential("notified", "notified-secret")
                .redirect_uri("http://127.0.0.1:4190/cb")
                .backchannel_logout_uri(&backchannel_uri),
        ),
    )
    .await;
    let (redirected_to, cookie) =
        login(&provider, &Authorize::app(None), "alice", "alice-password").await;
    let code = query_param(&redirected_to, "code").unwrap();
    let (_, tokens) = redeem(&provider, &code, None).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let (_, id_claims) = verify(&provider, &id_token).await;

    // The notified client joins the same session by single sign-on.
    let sso = Authorize {
        client_id: "notified",
        redirect_uri: "http://127.0.0.1:4190/cb",
        scope: "openid",
        challenge: None,
        extra: vec![],
    };
    let response = http()
        .get(sso.url(&provider))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);

    // An unregistered post_logout_redirect_uri is refused, and nothing is ended.
    let response = http()
        .get(with_query(
            provider.endpoint("/end_session"),
            &[
                ("id_token_hint", id_token.as_str()),
                ("post_logout_redirect_uri", "http://evil.example/"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(received.lock().unwrap().is_empty());

    let response = http()
        .get(with_query(
            provider.endpoint("/end_session"),
            &[
                ("id_token_hint", id_token.as_str()),
                (
                    "post_logout_redirect_uri",
                    "http://127.0.0.1:4180/signed-out",
                ),
                ("state", "bye"),
            ],
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "http://127.0.0.1:4180/signed-out?state=bye"
    );
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("devop_session=;") && cleared.contains("Max-Age=0"));

    let tokens_received = received.lock().unwrap().clone();
    assert_eq!(
        tokens_received.len(),
        1,
        "only the client with a back-channel URI"
    );
    let (typ, logout) = verify(&provider, &tokens_received[0]).await;
    assert_eq!(typ.as_deref(), Some("logout+jwt"));
    assert_eq!(logout["iss"], provider.issuer().as_str());
    assert_eq!(logout["aud"], "notified");
    assert_eq!(logout["sub"], "alice");
    assert_eq!(logout["sid"], id_claims["sid"]);
    assert!(logout["jti"].is_string());
    assert!(logout["iat"].is_u64());
    assert_eq!(logout.get("nonce"), None);
    assert_eq!(
        logout["events"],
        serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    let deliveries = provider.backchannel_deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].outcome, Ok(200));
    assert_eq!(deliveries[0].client_id, "notified");

    // The session's tokens are dead and the old cookie no longer signs in.
    assert_eq!(
        introspect(&provider, tokens["access_token"].as_str().unwrap()).await["active"],
        false
    );
    let response = http()
        .get(Authorize::app(None).url(&provider))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the login form again");
    receiver.abort();
}

#[tokio::test]
async fn logout_user_notifies_without_a_browser() {
    let (backchannel_uri, received, receiver) = logout_receiver().await;
    let provider = start_with(
        builder().client(
            DevClient::confidential("notified", "s")
                .redirect_uri("http://127.0.0.1:4190/cb")
                .backchannel_logout_uri(&backchannel_uri),
        ),
    )
    .await;
    provider.auto_approve(Some("bob"));
    let sso = Authorize {
        client_id: "notified",
        redirect_uri: "http://127.0.0.1:4190/cb",
        scope: "openid",
        challenge: None,
        extra: vec![],
    };
    let response = http().get(sso.url(&provider)).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let deliveries = provider.logout_user("bob").await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].outcome, Ok(200));
    let logout_token = received.lock().unwrap()[0].clone();
    let (_, logout) = verify(&provider, &logout_token).await;
    assert_eq!(logout["sub"], "bob");
    assert!(
        provider.logout_user("bob").await.is_empty(),
        "no session left"
    );
    receiver.abort();
}

#[tokio::test]
async fn keys_rotate_with_a_grace_period() {
    let provider = start().await;
    let old_kid = provider.signing_kid();
    let before = provider.mint_access_token("alice", "app").unwrap();
    let new_kid = provider.rotate_keys_to(SigningAlgorithm::Es256).unwrap();
    assert_ne!(old_kid, new_kid);
    assert_eq!(
        provider.published_kids(),
        vec![old_kid.clone(), new_kid.clone()]
    );

    let after = provider.mint_access_token("alice", "app").unwrap();
    let header = jsonwebtoken::decode_header(&after).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    // Both verify against the JWKS during the grace period.
    assert_eq!(verify(&provider, &before).await.1["sub"], "alice");
    assert_eq!(verify(&provider, &after).await.1["sub"], "alice");

    assert_eq!(provider.retire_old_keys(), 1);
    let jwks: Value = http()
        .get(provider.endpoint("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![new_kid.as_str()]);
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
}

#[tokio::test]
async fn injected_faults_and_request_counts() {
    let provider = start().await;
    let discovery = provider.endpoint("/.well-known/openid-configuration");
    provider.fail_next(Endpoint::Discovery, Fault::Status(500), 2);
    for _ in 0..2 {
        assert_eq!(http().get(&discovery).send().await.unwrap().status(), 500);
    }
    assert_eq!(http().get(&discovery).send().await.unwrap().status(), 200);
    assert_eq!(provider.request_count(Endpoint::Discovery), 3);

    provider.fail(Endpoint::Jwks, Fault::Garbage);
    let response = http().get(provider.endpoint("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());
    assert!(
        http()
            .get(provider.endpoint("/jwks"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .is_err()
    );

    provider.fail(Endpoint::Jwks, Fault::Delay(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    let response = http().get(provider.endpoint("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    provider.clear_faults();
    assert_eq!(provider.request_count(Endpoint::Jwks), 3);

    provider.fail(Endpoint::Token, Fault::Status(503));
    let (status, _) = post_token_raw(&provider).await;
    assert_eq!(status, 503);
}

async fn post_token_raw(provider: &oidc_dev_provider::RunningProvider) -> (u16, String) {
    let response = http()
        .post(provider.endpoint("/token"))
        .basic_auth("app", Some("app-secret"))
        .form_urlencoded(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn stop_and_restart_keep_the_issuer_keys_and_tokens() {
    let mut provider = start().await;
    let issuer = provider.issuer().clone();
    let token = provider.mint_access_token("alice", "app").unwrap();
    let discovery = provider.endpoint("/.well-known/openid-configuration");
    // One pooled client throughout: its idle keep-alive connection must not outlive stop().
    let pooled = http();
    assert_eq!(pooled.get(&discovery).send().await.unwrap().status(), 200);
    let stopping = std::time::Instant::now();
    provider.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "idle connections do not hold stop()"
    );
    assert!(
        pooled.get(&discovery).send().await.is_err(),
        "connection refused while stopped"
    );
    provider.start().await.unwrap();
    let doc: Value = pooled
        .get(&discovery)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer.as_str());
    assert_eq!(introspect(&provider, &token).await["active"], true);
    provider.shutdown().await;
}

#[tokio::test]
async fn non_loopback_addresses_are_refused_by_default() {
    let provider = builder().build().unwrap();
    let err = provider
        .serve("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::NonLoopback { .. }));
    assert_eq!(err.code(), "non_loopback_address");
}

#[tokio::test]
async fn issuer_with_a_path_prefixes_every_endpoint() {
    // Reserve a free port, then configure an issuer naming it.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let issuer = format!("http://localhost:{}/realms/dev", addr.port());
    let provider = builder()
        .issuer(&issuer)
        .build()
        .unwrap()
        .serve(addr)
        .await
        .unwrap();
    assert_eq!(provider.issuer().as_str(), issuer);
    let doc: Value = http()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    provider.auto_approve(Some("alice"));
    let response = http()
        .get(Authorize::app(None).url(&provider))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("Path=/realms/dev"), "{set_cookie}");
    let code = query_param(&location(&response), "code").unwrap();
    let (status, tokens) = redeem(&provider, &code, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        verify(&provider, tokens["id_token"].as_str().unwrap())
            .await
            .1["iss"],
        issuer
    );
}

#[tokio::test]
async fn device_authorization_grant() {
    let provider = start().await;
    let response = http()
        .post(provider.endpoint("/device_authorization"))
        .form_urlencoded(&[("client_id", "spa"), ("scope", "openid email")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let device: Value = response.json().await.unwrap();
    let device_code = device["device_code"].as_str().unwrap();
    let user_code = device["user_code"].as_str().unwrap();
    assert_eq!(device["verification_uri"], provider.endpoint("/device"));

    let poll = || async {
        let response = http()
            .post(provider.endpoint("/token"))
            .form_urlencoded(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", "spa"),
                ("device_code", device_code),
            ])
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    let (status, body) = poll().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );

    let page = http()
        .get(device["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(user_code));
    let response = http()
        .post(provider.endpoint("/device"))
        .form_urlencoded(&[
            ("user_code", &user_code.to_lowercase()),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (status, tokens) = poll().await;
    assert_eq!(status, 200, "{tokens}");
    let (_, id) = verify(&provider, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["aud"], "spa");
    let (status, body) = poll().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("expired_token")),
        "single use"
    );
}

#[tokio::test]
async fn configuration_file_and_demo_defaults() {
    let config = ProviderConfig::from_toml(
        r#"
        [[users]]
        username = "carol"
        password = "carol-pw"
        email = "carol@example.com"
        groups = ["ops"]

        [[clients]]
        client_id = "tool"
        client_secret = "tool-secret"
        redirect_uris = ["http://127.0.0.1:4180/oauth2/callback"]
        "#,
    )
    .unwrap();
    let provider = start_with(DevProvider::builder().config(&config)).await;
    let token = provider.mint_access_token("carol", "tool").unwrap();
    assert_eq!(
        verify(&provider, &token).await.1["groups"],
        serde_json::json!(["ops"])
    );

    let demo = start_with(DevProvider::builder()).await;
    assert!(demo.mint_access_token("alice", "demo").is_ok());
    assert_eq!(
        demo.mint_access_token("mallory", "demo")
            .unwrap_err()
            .code(),
        "unknown_user"
    );
    assert_eq!(
        demo.mint_access_token("alice", "nope").unwrap_err().code(),
        "unknown_client"
    );

    let err = DevProvider::builder()
        .user(oidc_dev_provider::DevUser::new("a", "1"))
        .user(oidc_dev_provider::DevUser::new("a", "2"))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "duplicate_user");
    let err = DevProvider::builder()
        .client(DevClient::public("x").redirect_uri("not a url"))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "invalid_uri");
}

#[tokio::test]
async fn minted_tokens_carry_a_session_that_logout_ends() {
    let (backchannel_uri, received, receiver) = logout_receiver().await;
    let provider = start_with(
        builder().client(
            DevClient::confidential("notified", "s")
                .redirect_uri("http://127.0.0.1:4190/cb")
                .backchannel_logout_uri(&backchannel_uri),
        ),
    )
    .await;
    let tokens = provider
        .mint_tokens("alice", "notified", "openid email")
        .unwrap();
    let (_, id) = verify(&provider, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["aud"], "notified");
    assert_eq!(id["email"], "alice@example.com");
    assert!(id["sid"].is_string());
    assert_eq!(
        introspect(&provider, tokens["refresh_token"].as_str().unwrap()).await["active"],
        true
    );

    let deliveries = provider.logout_user("alice").await;
    assert_eq!(deliveries.len(), 1);
    let logout_token = received.lock().unwrap()[0].clone();
    assert_eq!(verify(&provider, &logout_token).await.1["sid"], id["sid"]);
    assert_eq!(
        introspect(&provider, tokens["access_token"].as_str().unwrap()).await["active"],
        false
    );
    receiver.abort();
}

/// The handle can live in axum state and its futures can be spawned.
#[allow(dead_code)]
fn handles_and_futures_are_send_and_sync(mut provider: oidc_dev_provider::RunningProvider) {
    fn send<T: Send>(_: T) {}
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(&provider);
    send(provider.logout_user("alice"));
    send(provider.stop());
    send(provider.start());
    send(
        DevProvider::builder()
            .build()
            .unwrap()
            .serve("127.0.0.1:0".parse().unwrap()),
    );
}
