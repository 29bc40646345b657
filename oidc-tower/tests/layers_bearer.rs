//! The bearer layer on an axum API served on 127.0.0.1, against the dev provider: JWTs,
//! opaque tokens through introspection (cached), RFC 6750 answers, scopes, the extractor.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use oidc_core::Policy;
use oidc_dev_provider::{
    AccessTokenFormat, DevClient, DevProvider, DevUser, Endpoint, RunningProvider,
};
use oidc_tower::auth::{AuthConfig, Authenticated, BearerAuthLayer, LoginSettings};
use oidc_tower::provider::{Provider, ProviderConfig};
use oidc_tower::{HttpClient, ReqwestHttpClient};

struct Api {
    op: RunningProvider,
    url: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn whoami(caller: Authenticated) -> String {
    format!(
        "{} {} {}",
        caller.identity.user,
        caller.source.as_str(),
        caller.scopes.join(",")
    )
}

async fn start(required_scopes: &[&str], leeway: Duration) -> Api {
    let op = DevProvider::builder()
        .user(
            DevUser::new("alice", "alice")
                .email("alice@example.com")
                .email_verified(true),
        )
        .client(DevClient::confidential("api", "api-secret"))
        .client(
            DevClient::confidential("opaque", "opaque-secret")
                .access_token_format(AccessTokenFormat::Opaque)
                .access_token_audience("api"),
        )
        .access_token_lifetime(Duration::from_secs(2))
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new().unwrap());
    let policy = Policy::builder()
        .issuer(op.issuer().clone())
        .audience("api")
        .leeway(leeway)
        .build()
        .unwrap();
    let provider = Provider::start(
        ProviderConfig::new(op.issuer().clone(), policy),
        http.clone(),
    );
    provider.wait_ready().await;
    // Introspection authenticates as a client: the API's own credentials.
    let credentials = oidc_core::login::ClientCredentials::new(
        "api",
        oidc_core::login::ClientAuthMethod::ClientSecretBasic(oidc_core::Secret::new("api-secret")),
    );
    let auth = AuthConfig::new(provider, http)
        .login(LoginSettings::new(
            credentials,
            "http://127.0.0.1:1/oauth2/callback".parse().unwrap(),
            vec![oidc_core::Secret::new(
                "a cookie secret that is long enough for the codec",
            )],
        ))
        .required_scopes(required_scopes.iter().copied())
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/whoami", get(whoami))
        .layer(BearerAuthLayer::new(auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Api {
        op,
        url,
        client: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Api {
    async fn call(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}/whoami", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn jwt_access_tokens_reach_the_handler_through_the_extractor() {
    let api = start(&[], Duration::from_secs(60)).await;
    let token = api.op.mint_access_token("alice", "api").unwrap();
    let response = api.call(Some(&token)).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains(" bearer_jwt "), "{body}");
    assert!(body.contains("openid"), "{body}");
}

#[tokio::test]
async fn missing_malformed_and_invalid_tokens_get_rfc6750_answers() {
    let api = start(&[], Duration::from_secs(60)).await;
    let response = api.call(None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(challenge(&response), r#"Bearer realm="oidc""#);

    let response = api
        .client
        .get(format!("{}/whoami", api.url))
        .header("authorization", "Bearer  two spaces")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(challenge(&response).contains(r#"error="invalid_request""#));

    let response = api.call(Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")).await;
    assert_eq!(response.status(), 401);
    let text = challenge(&response);
    assert!(text.contains(r#"error="invalid_token""#), "{text}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn expired_tokens_get_401_invalid_token() {
    let api = start(&[], Duration::ZERO).await;
    let token = api.op.mint_access_token("alice", "api").unwrap();
    assert_eq!(api.call(Some(&token)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // A fresh validation (the cache never outlives exp) rejects it.
    let response = api.call(Some(&token)).await;
    assert_eq!(response.status(), 401);
    let text = challenge(&response);
    assert!(
        text.contains(r#"error="invalid_token", error_description="expired""#),
        "{text}"
    );
}

#[tokio::test]
async fn opaque_tokens_are_introspected_once_then_cached() {
    let api = start(&[], Duration::from_secs(60)).await;
    let token = api.op.mint_access_token("alice", "opaque").unwrap();
    assert_eq!(token.split('.').count(), 1, "opaque");
    for _ in 0..3 {
        let response = api.call(Some(&token)).await;
        assert_eq!(response.status(), 200);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("bearer_introspected")
        );
    }
    assert_eq!(api.op.request_count(Endpoint::Introspection), 1);
    // An unknown opaque token is inactive.
    let response = api.call(Some("not-a-real-token")).await;
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("token_inactive"));
}

#[tokio::test]
async fn missing_scopes_get_403_insufficient_scope() {
    let api = start(&["mlflow.write"], Duration::from_secs(60)).await;
    let token = api.op.mint_access_token("alice", "api").unwrap();
    let response = api.call(Some(&token)).await;
    assert_eq!(response.status(), 403);
    let text = challenge(&response);
    assert!(
        text.contains(r#"error="insufficient_scope""#) && text.contains(r#"scope="mlflow.write""#),
        "{text}"
    );
}

#[tokio::test]
async fn provider_outage_keeps_cached_keys_working() {
    let mut api = start(&[], Duration::from_secs(60)).await;
    let token = api.op.mint_access_token("alice", "api").unwrap();
    api.op.stop().await;
    // Keys fetched before the outage still validate.
    assert_eq!(api.call(Some(&token)).await.status(), 200);
    api.op.start().await.unwrap();
}
