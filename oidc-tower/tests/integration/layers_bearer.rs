//! The bearer layer on an axum API served on 127.0.0.1, against the dev provider: JWTs,
//! opaque tokens through introspection (cached), RFC 6750 answers, scopes, the extractor, and
//! DPoP-bound tokens (RFC 9449) with their proofs.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use oidc_core::Policy;
use oidc_dev_provider::{
    AccessTokenFormat, DevClient, DevProvider, DevUser, Endpoint, RunningProvider,
};
use oidc_tower::auth::{AuthConfig, Authenticated, BearerAuthLayer, LoginSettings};
use oidc_tower::clock::ManualClock;
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
    start_on(required_scopes, leeway, None).await
}

/// [`start`], the layer taking the time of day from `clock` when given.
async fn start_on(required_scopes: &[&str], leeway: Duration, clock: Option<ManualClock>) -> Api {
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
    let mut config = AuthConfig::new(provider, http)
        .login(LoginSettings::new(
            credentials,
            "http://127.0.0.1:1/oauth2/callback".parse().unwrap(),
            vec![oidc_core::Secret::new(
                "a cookie secret that is long enough for the codec",
            )],
        ))
        .required_scopes(required_scopes.iter().copied());
    if let Some(clock) = clock {
        config = config.clock(clock);
    }
    let auth = config.build().unwrap();
    let app = axum::Router::new()
        .route("/whoami", get(whoami))
        .route("/headers", get(header_names))
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

/// The names of the headers the handler received, one per line.
async fn header_names(headers: axum::http::HeaderMap) -> String {
    headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
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
async fn identity_headers_a_client_sent_never_reach_the_handler() {
    let api = start(&[], Duration::ZERO).await;
    let token = api.op.mint_access_token("alice", "api").unwrap();
    let response = api
        .client
        .get(format!("{}/headers", api.url))
        .bearer_auth(&token)
        .header("X-Forwarded-User", "admin")
        .header("x_forwarded_email", "admin@example.com")
        .header("Remote-User", "admin")
        .header("X-Identity-Assertion", "forged")
        .header("X-Kept", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let names = response.text().await.unwrap();
    let names: Vec<&str> = names.lines().collect();
    assert!(names.contains(&"x-kept"), "{names:?}");
    for stripped in [
        "x-forwarded-user",
        "x_forwarded_email",
        "remote-user",
        "x-identity-assertion",
    ] {
        assert!(
            !names.contains(&stripped),
            "{stripped} reached the handler: {names:?}"
        );
    }
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
    let clock = ManualClock::starting_now();
    let api = start_on(&[], Duration::ZERO, Some(clock.clone())).await;
    // The provider's tokens live 2 s; the layer's clock is moved over that instead of waiting.
    let token = api.op.mint_access_token("alice", "api").unwrap();
    let claims = oidc_core::danger::decode_unverified(&token).unwrap().claims;
    let time = |name: &str| oidc_core::UnixTime::from_secs(claims[name].as_u64().unwrap());
    clock.set(time("iat"));
    assert_eq!(api.call(Some(&token)).await.status(), 200);
    clock.advance(Duration::from_secs(1));
    assert_eq!(api.call(Some(&token)).await.status(), 200, "before exp");
    clock.set(time("exp"));
    // The admitted token is still in the cache (its own expiry runs on the real clock), but a
    // hit past exp on the layer's clock is a miss: a fresh validation rejects it.
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

/// A bearer-only API (no sign-in configured) in front of `whoami`, introspecting opaque tokens
/// as `introspection_client` when one is given.
async fn start_bearer_only(
    introspection_client: Option<oidc_core::login::ClientCredentials>,
) -> Api {
    let op = DevProvider::builder()
        .user(DevUser::new("alice", "alice").email("alice@example.com"))
        .client(DevClient::confidential("api", "api-secret"))
        .client(
            DevClient::confidential("opaque", "opaque-secret")
                .access_token_format(AccessTokenFormat::Opaque)
                .access_token_audience("api"),
        )
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new().unwrap());
    let policy = Policy::builder()
        .issuer(op.issuer().clone())
        .audience("api")
        .build()
        .unwrap();
    let provider = Provider::start(
        ProviderConfig::new(op.issuer().clone(), policy),
        http.clone(),
    );
    provider.wait_ready().await;
    let mut config = AuthConfig::new(provider, http);
    if let Some(credentials) = introspection_client {
        config = config.introspection_client(credentials);
    }
    let auth = config.build().unwrap();
    assert!(!auth.has_login());
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

fn credentials(client_id: &str, secret: &str) -> oidc_core::login::ClientCredentials {
    oidc_core::login::ClientCredentials::new(
        client_id,
        oidc_core::login::ClientAuthMethod::ClientSecretPost(oidc_core::Secret::new(secret)),
    )
}

#[tokio::test]
async fn a_bearer_only_api_introspects_opaque_tokens_as_its_own_client() {
    let api = start_bearer_only(Some(credentials("opaque", "opaque-secret"))).await;
    let token = api.op.mint_access_token("alice", "opaque").unwrap();
    assert_eq!(token.split('.').count(), 1, "opaque");
    let response = api.call(Some(&token)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.ends_with(" bearer_introspected openid,profile,email"),
        "{text}"
    );
    assert_eq!(api.op.request_count(Endpoint::Introspection), 1);
    // JWTs still go through the keys, not introspection.
    let jwt = api.op.mint_access_token("alice", "api").unwrap();
    let response = api.call(Some(&jwt)).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains(" bearer_jwt "));
    assert_eq!(api.op.request_count(Endpoint::Introspection), 1);
}

#[tokio::test]
async fn without_an_introspection_client_opaque_tokens_are_unsupported() {
    let api = start_bearer_only(None).await;
    let token = api.op.mint_access_token("alice", "opaque").unwrap();
    let response = api.call(Some(&token)).await;
    assert_eq!(response.status(), 401);
    assert!(
        challenge(&response).contains(r#"error_description="opaque_token_unsupported""#),
        "{}",
        challenge(&response)
    );
    assert_eq!(api.op.request_count(Endpoint::Introspection), 0);
}

#[tokio::test]
async fn an_introspection_client_the_provider_refuses_is_an_outage() {
    let api = start_bearer_only(Some(credentials("opaque", "wrong-secret"))).await;
    let token = api.op.mint_access_token("alice", "opaque").unwrap();
    let response = api.call(Some(&token)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(api.op.request_count(Endpoint::Introspection), 1);
}

/// A client's DPoP key (P-256) and the proofs it signs (RFC 9449 §4).
struct ProofKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    jwk: serde_json::Value,
}

impl ProofKey {
    fn generate() -> ProofKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        use base64::Engine as _;
        let random = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
        });
        ProofKey { pair, jwk }
    }

    fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let now = oidc_tower::clock::now().as_secs();
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = serde_json::json!({
            "jti": b64.encode(jti), "htm": method, "htu": url, "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = oidc_core::dpop::access_token_hash(token).into();
        }
        let input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let random = aws_lc_rs::rand::SystemRandom::new();
        let signature = self.pair.sign(&random, input.as_bytes()).unwrap();
        format!("{input}.{}", b64.encode(signature.as_ref()))
    }
}

#[tokio::test]
async fn dpop_bound_tokens_pass_only_with_their_proof_and_never_as_bearer() {
    let api = start(&[], Duration::from_secs(60)).await;
    let key = ProofKey::generate();
    let token_endpoint = api.op.endpoint("/token");
    let issued: serde_json::Value = api
        .client
        .post(&token_endpoint)
        .basic_auth("api", Some("api-secret"))
        .header("dpop", key.proof("POST", &token_endpoint, None))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issued["token_type"], "DPoP", "{issued}");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let url = format!("{}/whoami", api.url);
    let with_proof = |proof: String| {
        api.client
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
    };

    // A bound token without its proof is refused, with a DPoP challenge.
    let as_bearer = api.call(Some(&token)).await;
    assert_eq!(as_bearer.status(), 401);
    let text = challenge(&as_bearer);
    assert!(text.starts_with("DPoP "), "{text}");
    assert!(text.contains("dpop_bound_token_sent_as_bearer"), "{text}");

    let proof = key.proof("GET", &url, Some(&token));
    let accepted = with_proof(proof.clone()).send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(accepted.text().await.unwrap().starts_with("api "));

    let refusals = [
        (proof, "dpop_replayed"),
        (
            ProofKey::generate().proof("GET", &url, Some(&token)),
            "dpop_jkt_mismatch",
        ),
        (
            key.proof("GET", &format!("{}/elsewhere", api.url), Some(&token)),
            "dpop_htu_mismatch",
        ),
        (key.proof("POST", &url, Some(&token)), "dpop_htm_mismatch"),
        (
            key.proof("GET", &url, Some("another token")),
            "dpop_ath_mismatch",
        ),
    ];
    for (proof, code) in refusals {
        let refused = with_proof(proof).send().await.unwrap();
        assert_eq!(refused.status(), 401, "{code}");
        let text = challenge(&refused);
        assert!(text.contains(r#"error="invalid_dpop_proof""#), "{text}");
        assert!(text.contains(code), "{code}: {text}");
    }

    // Still accepted after the refusals (a refused proof consumed nothing), and once more
    // from the validated-token cache.
    for _ in 0..2 {
        let again = with_proof(key.proof("GET", &url, Some(&token)))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200);
    }
    let without_proof = api
        .client
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(without_proof.status(), 400);

    // A token bound to no key is not accepted under the DPoP scheme.
    let plain = api.op.mint_access_token("alice", "api").unwrap();
    let unbound = api
        .client
        .get(&url)
        .header("authorization", format!("DPoP {plain}"))
        .header("dpop", key.proof("GET", &url, Some(&plain)))
        .send()
        .await
        .unwrap();
    assert_eq!(unbound.status(), 401);
    assert!(challenge(&unbound).contains("dpop_token_not_bound"));
}
