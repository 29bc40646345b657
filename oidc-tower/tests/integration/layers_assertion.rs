//! The upstream can tell that a request came through the layers: a signed identity assertion
//! on every allowed request, verified here with jsonwebtoken (an independent implementation)
//! against the key set the layers publish, and an upstream reachable only on a socket file.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::support::layers::{ASSERTION_AUDIENCE, Harness, Jar, Options, echoed_headers, header};

const ASSERTION: &str = "x-identity-assertion";

async fn start(unix_upstream: bool) -> Harness {
    Harness::start(Options {
        identity_assertion: true,
        unix_upstream,
        skip_auth: vec!["GET=^/public$"],
        rules: Some(
            oidc_core::authorization::AuthorizationRules::new().with_allowed_groups(["ml"]),
        ),
        ..Options::default()
    })
    .await
}

async fn published_keys(h: &Harness, base: &str) -> JwkSet {
    let response = h
        .client
        .get(format!("{base}/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    response.json().await.unwrap()
}

/// Verifies as an upstream would: ES256 only, this issuer, this audience, not expired.
fn verify(keys: &JwkSet, issuer: &str, token: &str) -> Value {
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = keys.find(&kid).expect("the signing key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[ASSERTION_AUDIENCE]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn every_allowed_request_carries_an_assertion_the_published_keys_verify() {
    let h = start(true).await;
    assert!(h.upstream.starts_with("unix:///"), "{}", h.upstream);
    let keys = published_keys(&h, &h.app).await;
    assert_eq!(keys.keys.len(), 1);

    // A session, through the login layer to an upstream on a socket file; a forged assertion
    // from the client is replaced, never passed on beside ours.
    let alice = h.sign_in("alice", "/").await;
    let response = h
        .client
        .get(format!("{}/experiments", h.app))
        .header("cookie", alice.header())
        .header("x_identity_assertion", "forged")
        .header("X-Identity-Assertion", "forged")
        .send()
        .await
        .unwrap();
    let echoed = echoed_headers(response).await;
    let sent: Vec<&(String, String)> = echoed
        .iter()
        .filter(|(name, _)| name.replace('_', "-") == ASSERTION)
        .collect();
    assert_eq!(sent.len(), 1, "{echoed:?}");
    let claims = verify(&keys, &h.app, &sent[0].1);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["ml", "admins"]));
    assert_eq!(claims["sub"], header(&echoed, "x-forwarded-user").unwrap());

    // A bearer token through the same door gets the same kind of assertion.
    let token = h.op.mint_access_token("alice", "app").unwrap();
    let response = h
        .client
        .get(format!("{}/api/2.0/mlflow/experiments/search", h.app))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let echoed = echoed_headers(response).await;
    let claims = verify(&keys, &h.app, header(&echoed, ASSERTION).unwrap());
    assert_eq!(claims["email"], "alice@example.com");

    // Forward-auth answers with the same assertion for the proxy in front to copy.
    let response = h.forward_auth_check("/experiments", &alice, &[]).await;
    assert_eq!(response.status(), 202);
    let token = response.headers()[ASSERTION].to_str().unwrap().to_owned();
    let claims = verify(&published_keys(&h, &h.forward_auth).await, &h.app, &token);
    assert_eq!(claims["email"], "alice@example.com");
}

#[tokio::test]
async fn refused_and_anonymous_requests_carry_no_assertion() {
    let h = start(false).await;

    // Outside the allowed group: refused, and no assertion anywhere.
    let mallory = h.sign_in("mallory", "/").await;
    let response = h.forward_auth_check("/", &mallory, &[]).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get(ASSERTION).is_none());

    // A skipped route passes anonymously: the forward-auth answer's assertion is empty (so a
    // proxy copying it sends nothing believable), and a client's own is stripped.
    let response = h
        .forward_auth_check("/public", &Jar::default(), &[(ASSERTION, "forged")])
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()[ASSERTION], "");
    let response = h
        .client
        .get(format!("{}/public", h.app))
        .header(ASSERTION, "forged")
        .send()
        .await
        .unwrap();
    let echoed = echoed_headers(response).await;
    assert_eq!(header(&echoed, ASSERTION), None);
}

#[tokio::test]
async fn without_assertions_there_is_no_key_set() {
    let h = Harness::start(Options::default()).await;
    let alice = h.sign_in("alice", "/").await;
    let response = h
        .client
        .get(format!("{}/oauth2/jwks", h.app))
        .header("cookie", alice.header())
        .send()
        .await
        .unwrap();
    // Not an endpoint: the path goes to the upstream like any other.
    let echoed = echoed_headers(response).await;
    assert_eq!(header(&echoed, ASSERTION), None);
}

#[tokio::test]
async fn a_socket_upstream_that_is_gone_is_a_bad_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = oidc_tower::proxy::ReverseProxy::builder(format!(
        "unix://{}",
        dir.path().join("missing.sock").display()
    ))
    .build()
    .unwrap();
    let request = http::Request::get("/x")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = tower::ServiceExt::oneshot(proxy, request).await.unwrap();
    assert_eq!(response.status(), 502);

    for bad in ["unix://relative.sock", "unix:///run/"] {
        let error = oidc_tower::proxy::ReverseProxy::builder(bad)
            .build()
            .unwrap_err();
        assert_eq!(error.code(), "invalid_upstream", "{bad}");
    }
}
