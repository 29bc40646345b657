//! Sign-in through pushed authorization requests (RFC 9126) against the dev provider on
//! 127.0.0.1: the browser's authorization URL carries only `client_id` and `request_uri`, a
//! provider that requires pushing is satisfied, and a failed push is a clear 502.

use crate::support::layers::{CLIENT_ID, Harness, Jar, Options, echoed_headers, header, location};
use oidc_dev_provider::{Endpoint, Fault};

/// Navigates to `path` without a session and follows the detour through `start`, which pushes;
/// returns the provider URL the browser is sent to.
async fn pushed_login(h: &Harness, path: &str, jar: &mut Jar) -> String {
    let response = h.navigate(path, jar).await;
    assert_eq!(response.status(), 302);
    let start = location(&response);
    assert_eq!(
        start,
        format!(
            "/oauth2/start?rd={}",
            url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
        ),
        "a pushed login starts at the start endpoint, which can reach the provider"
    );
    let response = h
        .client
        .get(format!("{}{start}", h.app))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "start answers with the redirect");
    jar.absorb(&response);
    location(&response)
}

fn query_names(url: &str) -> Vec<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(name, _)| name.into_owned())
        .collect()
}

#[tokio::test]
async fn an_advertised_par_endpoint_is_used_and_the_url_carries_only_a_reference() {
    let h = Harness::start(Options {
        provider_offers_par: true,
        ..Options::default()
    })
    .await;
    let mut jar = Jar::default();
    let authorization = pushed_login(&h, "/experiments?tab=runs", &mut jar).await;
    assert!(authorization.starts_with(&format!("{}/authorize?", h.op.issuer().as_str())));
    assert_eq!(query_names(&authorization), ["client_id", "request_uri"]);
    assert!(authorization.contains(&format!("client_id={CLIENT_ID}&")));
    assert!(authorization.contains("request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A"));
    assert_eq!(h.op.request_count(Endpoint::PushedAuthorization), 1);

    let callback = h.authorize(&authorization, "alice").await;
    let response = h.callback(&callback, &mut jar).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/experiments?tab=runs");
    let headers = echoed_headers(h.navigate("/experiments?tab=runs", &jar).await).await;
    assert_eq!(
        header(&headers, "x-forwarded-email"),
        Some("alice@example.com")
    );

    // The reference is good for one authorization request only.
    let replay = h.client.get(&authorization).send().await.unwrap();
    assert_eq!(replay.status(), 400);
}

#[tokio::test]
async fn a_provider_that_requires_par_signs_users_in_and_refuses_plain_requests() {
    let h = Harness::start(Options {
        provider_requires_par: true,
        ..Options::default()
    })
    .await;
    let metadata: serde_json::Value = h
        .client
        .get(format!(
            "{}/.well-known/openid-configuration",
            h.op.issuer().as_str()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["require_pushed_authorization_requests"], true);

    let mut jar = Jar::default();
    let authorization = pushed_login(&h, "/", &mut jar).await;
    assert_eq!(query_names(&authorization), ["client_id", "request_uri"]);
    let callback = h.authorize(&authorization, "alice").await;
    let response = h.callback(&callback, &mut jar).await;
    assert_eq!(response.status(), 302);
    assert!(jar.has("oidc_session"));

    let plain = format!(
        "{}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid",
        h.op.issuer().as_str(),
        url::form_urlencoded::byte_serialize(format!("{}/oauth2/callback", h.app).as_bytes())
            .collect::<String>()
    );
    let refused = h.client.get(plain).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("pushed authorization")
    );
}

#[tokio::test]
async fn a_failed_push_is_a_502_with_its_code_and_no_pending_login() {
    let h = Harness::start(Options {
        provider_offers_par: true,
        ..Options::default()
    })
    .await;
    h.op.fail_next(Endpoint::PushedAuthorization, Fault::Status(503), 1);
    let response = h
        .client
        .get(format!("{}/oauth2/start?rd=%2F", h.app))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers().get("set-cookie").is_none());
    let body = response.text().await.unwrap();
    assert!(body.contains("provider_unexpected_status"), "{body}");

    // The next attempt pushes again and succeeds.
    let mut jar = Jar::default();
    let authorization = pushed_login(&h, "/", &mut jar).await;
    assert_eq!(query_names(&authorization), ["client_id", "request_uri"]);
    assert_eq!(h.op.request_count(Endpoint::PushedAuthorization), 2);
}

#[tokio::test]
async fn without_an_advertised_endpoint_the_login_is_a_plain_redirect() {
    let h = Harness::start(Options::default()).await;
    let mut jar = Jar::default();
    let authorization = h.start_login("/", &mut jar).await;
    assert!(query_names(&authorization).contains(&"code_challenge".to_owned()));
    assert_eq!(h.op.request_count(Endpoint::PushedAuthorization), 0);
}
