//! Key rotation seen from the login endpoints and the bearer path: ID tokens and logout tokens
//! naming a key the provider handle does not hold yet, and cached tokens whose key the provider
//! withdrew, against the dev provider on 127.0.0.1.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::layers::{CLIENT_ID, Harness, Options, location};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_dev_provider::Endpoint;

#[tokio::test]
async fn an_id_token_signed_by_a_freshly_rotated_key_costs_exactly_one_key_fetch() {
    let h = Harness::start(Options::default()).await;
    let first = h.sign_in("alice", "/").await;
    let new_kid = h.op.rotate_keys().unwrap();
    assert!(!h.auth.provider().keys().unwrap().contains_kid(&new_kid));

    let jwks_before = h.op.request_count(Endpoint::Jwks);
    let fetches_before = h.auth.provider().key_fetches();
    let second = h.sign_in("alice", "/after-rotation").await;
    assert_eq!(h.api("/", &second).await.status(), 200);
    assert_eq!(h.api("/", &first).await.status(), 200);
    // A second login with the new key needs no fetch: the key is known now.
    let third = h.sign_in("alice", "/again").await;
    assert_eq!(h.api("/", &third).await.status(), 200);

    assert_eq!(h.op.request_count(Endpoint::Jwks), jwks_before + 1);
    assert_eq!(h.auth.provider().key_fetches(), fetches_before + 1);
    assert!(h.auth.provider().keys().unwrap().contains_kid(&new_kid));
}

#[tokio::test]
async fn a_login_whose_new_key_cannot_be_fetched_is_an_outage_not_a_refusal() {
    // Without a refetch interval, the login after the outage may fetch again at once.
    let h = Harness::start(Options {
        refetch_interval: Some(Duration::ZERO),
        ..Options::default()
    })
    .await;
    h.op.rotate_keys().unwrap();
    h.op.fail(Endpoint::Jwks, oidc_dev_provider::Fault::Status(500));
    let mut jar = support::layers::Jar::default();
    let authorization = h.start_login("/", &mut jar).await;
    let callback = h.authorize(&authorization, "alice").await;
    let response = h
        .client
        .get(&callback)
        .header("cookie", jar.header())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(location(&response), "");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "provider_unexpected_status");

    // Once the provider serves its keys again, the next login completes.
    h.op.clear_faults();
    let jar = h.sign_in("alice", "/").await;
    assert_eq!(h.api("/", &jar).await.status(), 200);
}

/// A logout token that names `kid` and carries a signature nobody made.
fn logout_token_with_kid(issuer: &str, kid: &str) -> String {
    let header = serde_json::json!({ "alg": "RS256", "typ": "logout+jwt", "kid": kid });
    let now = oidc_tower::clock::now().as_secs();
    let claims = serde_json::json!({
        "iss": issuer, "aud": CLIENT_ID, "iat": now, "jti": format!("jti-{kid}"),
        "sub": "alice",
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        encode(&header),
        encode(&claims),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

#[tokio::test]
async fn a_flood_of_logout_tokens_with_invented_kids_costs_at_most_one_fetch_per_interval() {
    let interval = Duration::from_secs(2);
    let h = Harness::start(Options {
        refetch_interval: Some(interval),
        ..Options::default()
    })
    .await;
    let alice = h.sign_in("alice", "/").await;

    let issuer = h.op.issuer().as_str().trim_end_matches('/').to_owned();
    let jwks_before = h.op.request_count(Endpoint::Jwks);
    let started = Instant::now();
    let posts = (0..100).map(|i| {
        let body = format!(
            "logout_token={}",
            logout_token_with_kid(&issuer, &format!("invented-{i}"))
        );
        h.client
            .post(format!("{}/oauth2/backchannel_logout", h.app))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    });
    let responses = futures_util::future::join_all(posts).await;
    let elapsed = started.elapsed();
    for response in responses {
        let response = response.unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error_description"], "unknown_kid");
    }
    let fetches = h.op.request_count(Endpoint::Jwks) - jwks_before;
    // The limiter allowed one fetch at the start; another needs a whole interval to pass.
    assert!(fetches >= 1, "the first unknown kid was worth one fetch");
    assert!(
        u128::from(fetches) <= 1 + elapsed.as_millis() / interval.as_millis(),
        "{fetches} fetches in {elapsed:?}"
    );
    // Nobody was logged out by the forgeries.
    assert_eq!(h.api("/", &alice).await.status(), 200);
}

/// A bearer request to the login layer's upstream.
async fn with_bearer(h: &Harness, token: &str) -> reqwest::Response {
    h.client
        .get(format!("{}/api/x", h.app))
        .bearer_auth(token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_withdrawn_from_the_jwks_stops_vouching_for_cached_tokens() {
    let h = Harness::start(Options::default()).await;
    let old_kid = h.op.signing_kid();
    let cached = h.op.mint_access_token("alice", CLIENT_ID).unwrap();
    assert_eq!(with_bearer(&h, &cached).await.status(), 200);
    assert_eq!(
        with_bearer(&h, &cached).await.status(),
        200,
        "now from the cache"
    );
    assert!(h.auth.provider().validate(&cached).await.is_ok());

    // The provider rotates and withdraws the old key; a token signed with the new key makes
    // the handle fetch the key set again.
    h.op.rotate_keys().unwrap();
    assert_eq!(h.op.retire_old_keys(), 1);
    assert!(!h.op.published_kids().contains(&old_kid));
    let fresh = h.op.mint_access_token("alice", CLIENT_ID).unwrap();
    assert_eq!(with_bearer(&h, &fresh).await.status(), 200);
    assert!(!h.auth.provider().keys().unwrap().contains_kid(&old_kid));

    let refused = with_bearer(&h, &cached).await;
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("unknown_kid"), "{challenge}");
    let err = h.auth.provider().validate(&cached).await.unwrap_err();
    assert_eq!(err.code(), "unknown_kid");
    assert_eq!(with_bearer(&h, &fresh).await.status(), 200);
}
