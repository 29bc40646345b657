//! The login layer with sessions in a real `redis-server` shared by two replicas: sign-out and
//! back-channel logout reach both, a refresh happens once for both, and a stopped Redis gives
//! 503, never a silent logout.

use std::sync::Arc;
use std::time::Duration;

use crate::support::layers::{Harness, Jar, Options, location};
use crate::support::redis::RedisServer;
use oidc_tower::store::{RedisStore, RedisStoreConfig, SessionStore};

fn redis_store(server: &RedisServer) -> Arc<dyn SessionStore> {
    Arc::new(
        RedisStore::new(
            RedisStoreConfig::new(server.url()).command_timeout(Duration::from_millis(500)),
        )
        .unwrap(),
    )
}

async fn get(client: &reqwest::Client, url: String, cookie: String) -> reqwest::Response {
    client
        .get(url)
        .header("accept", "application/json")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_out_on_one_replica_kills_the_cookie_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut h = Harness::start(Options {
        store: Some(redis_store(&redis)),
        provider_logout: Some(false),
        ..Options::default()
    })
    .await;
    let second = h.replica().await;
    let jar = h.sign_in("alice", "/").await;
    // The cookie holds a handle only: no token, small.
    assert!(jar.header().len() < 400, "{}", jar.header());
    let on_second = get(&h.client, format!("{second}/api"), jar.header()).await;
    assert_eq!(
        on_second.status(),
        200,
        "the second replica reads the shared session"
    );

    let response = get(
        &h.client,
        format!("{}/oauth2/sign_out?rd=/bye", h.app),
        jar.header(),
    )
    .await;
    assert_eq!(location(&response), "/bye");
    let on_second = get(&h.client, format!("{second}/api"), jar.header()).await;
    assert_eq!(on_second.status(), 401, "revoked on every replica");
}

#[tokio::test]
async fn back_channel_logout_reaches_every_replica() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut h = Harness::start(Options {
        store: Some(redis_store(&redis)),
        ..Options::default()
    })
    .await;
    let second = h.replica().await;
    let jar = h.sign_in("alice", "/").await;
    assert_eq!(
        get(&h.client, format!("{second}/x"), jar.header())
            .await
            .status(),
        200
    );
    let deliveries = h.op.logout_user("alice").await;
    assert!(
        deliveries.iter().all(|d| d.outcome == Ok(200)),
        "{deliveries:?}"
    );
    assert_eq!(
        get(&h.client, format!("{second}/x"), jar.header())
            .await
            .status(),
        401
    );
    assert_eq!(
        get(&h.client, format!("{}/x", h.app), jar.header())
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn redis_down_answers_503_and_keeps_the_session() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let h = Harness::start(Options {
        store: Some(redis_store(&redis)),
        ..Options::default()
    })
    .await;
    let jar = h.sign_in("alice", "/").await;
    let port = redis.port;
    redis.stop();

    let response = get(&h.client, format!("{}/api", h.app), jar.header()).await;
    assert_eq!(response.status(), 503);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "the session cookie is kept"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("session store is unavailable"),
        "{body}"
    );
    let response = h.forward_auth_check("/", &jar, &[]).await;
    assert_eq!(response.status(), 503);
    let response = get(
        &h.client,
        format!("{}/oauth2/sign_out", h.app),
        jar.header(),
    )
    .await;
    assert_eq!(response.status(), 503, "sign-out does not pretend");

    // Redis is back (empty: it kept nothing on disk), and the layer recovers without a restart.
    let _restarted = RedisServer::start_on(port);
    let mut recovered = false;
    for _ in 0..40 {
        let status = get(&h.client, format!("{}/api", h.app), jar.header())
            .await
            .status();
        if status != 503 {
            assert_eq!(status, 401, "the session did not survive the Redis restart");
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered);
}

/// After Redis is killed and started again, the very first request is served: the store
/// reconnects before answering instead of failing with the outage's last connection error. This
/// holds for a session read and for a login callback, which creates a session.
#[tokio::test]
async fn first_requests_after_a_redis_restart_are_served() {
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let h = Harness::start(Options {
        store: Some(redis_store(&redis)),
        ..Options::default()
    })
    .await;
    let jar = h.sign_in("alice", "/").await;
    // A login in flight: the provider has answered, the callback is still to come.
    let mut pending = Jar::default();
    let authorization = h.start_login("/after", &mut pending).await;
    let callback = h.authorize(&authorization, "mallory").await;

    redis.stop();
    for _ in 0..2 {
        let during = get(&h.client, format!("{}/api", h.app), jar.header()).await;
        assert_eq!(during.status(), 503);
    }
    redis.restart();
    let first = get(&h.client, format!("{}/api", h.app), jar.header()).await;
    assert_eq!(first.status(), 200, "the first read after the restart");

    redis.stop();
    let during = get(&h.client, format!("{}/api", h.app), jar.header()).await;
    assert_eq!(during.status(), 503);
    redis.restart();
    let response = h.callback(&callback, &mut pending).await;
    assert_eq!(
        response.status(),
        302,
        "the first request after the restart, a login callback, signs in"
    );
    assert_eq!(location(&response), "/after");
    assert!(pending.has("oidc_session"), "{pending:?}");
    let signed_in = get(&h.client, format!("{}/api", h.app), pending.header()).await;
    assert_eq!(signed_in.status(), 200);
    // Nothing was lost across two outages.
    let still = get(&h.client, format!("{}/api", h.app), jar.header()).await;
    assert_eq!(still.status(), 200);
}

#[tokio::test]
async fn a_session_due_for_refresh_is_refreshed_once_across_replicas() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Access tokens live 30 s, the refresh margin is 60 s: every request is due for refresh.
    let mut h = Harness::start(Options {
        store: Some(redis_store(&redis)),
        access_token_lifetime: Some(Duration::from_secs(30)),
        ..Options::default()
    })
    .await;
    let second = h.replica().await;
    let jar = h.sign_in("alice", "/").await;
    let before = h.op.request_count(oidc_dev_provider::Endpoint::Token);
    let requests = (0..12).map(|i| {
        let base = if i % 2 == 0 {
            h.app.clone()
        } else {
            second.clone()
        };
        get(&h.client, format!("{base}/api"), jar.header())
    });
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        h.op.request_count(oidc_dev_provider::Endpoint::Token) - before,
        1,
        "one refresh for both replicas"
    );
    // The refreshed session is the one both replicas now serve.
    assert_eq!(
        get(&h.client, format!("{second}/api"), jar.header())
            .await
            .status(),
        200
    );
}
