//! An axum API protected by the bearer layer: every route but `/healthz` needs an
//! `Authorization: Bearer` access token from the configured issuer, for the configured audience.
//!
//! ```text
//! OIDC_ISSUER=http://127.0.0.1:9090 OIDC_AUDIENCE=demo cargo run -p oidc-examples --bin bearer_service
//! curl -H "Authorization: Bearer $(oidc token --issuer http://127.0.0.1:9090 --client-id oidc-cli)" \
//!   http://127.0.0.1:8080/whoami
//! ```
//!
//! Environment: `OIDC_ISSUER` (required), `OIDC_AUDIENCE` (required), `LISTEN`
//! (default `127.0.0.1:8080`).

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use oidc_core::{Issuer, Policy};
use oidc_tower::ReqwestHttpClient;
use oidc_tower::auth::{AuthConfig, Authenticated, Authenticator, BearerAuthLayer};
use oidc_tower::provider::{Provider, ProviderConfig};
use serde_json::{Value, json};

/// The service: `/whoami` behind the bearer layer, `/healthz` open.
fn app(auth: Authenticator) -> Router {
    let protected = Router::new()
        .route("/whoami", get(whoami))
        .layer(BearerAuthLayer::new(auth));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(protected)
}

/// Who called: the verified identity and the token's scopes.
async fn whoami(caller: Authenticated) -> Json<Value> {
    Json(json!({
        "user": caller.identity.user,
        "email": caller.identity.email,
        "groups": caller.identity.groups,
        "scopes": caller.scopes,
    }))
}

/// The authenticator for tokens of `issuer` meant for `audience`.
async fn authenticator(
    issuer: Issuer,
    audience: &str,
) -> Result<Authenticator, Box<dyn std::error::Error>> {
    let http = Arc::new(ReqwestHttpClient::new()?);
    let policy = Policy::builder()
        .issuer(issuer.clone())
        .audience(audience)
        .build()?;
    let provider = Provider::start(ProviderConfig::new(issuer, policy), http.clone());
    Ok(AuthConfig::new(provider, http).build()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = Issuer::new(std::env::var("OIDC_ISSUER").map_err(|_| "set OIDC_ISSUER")?)?;
    let audience = std::env::var("OIDC_AUDIENCE").map_err(|_| "set OIDC_AUDIENCE")?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let auth = authenticator(issuer, &audience).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("bearer_service on http://{listen}/whoami");
    axum::serve(listener, app(auth))
        .with_graceful_shutdown(oidc_tower::proxy::shutdown_signal())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oidc_dev_provider::{DevClient, DevProvider, DevUser};

    #[tokio::test]
    async fn tokens_for_the_audience_pass_and_others_get_401() {
        let op = DevProvider::builder()
            .user(
                DevUser::new("alice", "pw")
                    .email("alice@example.com")
                    .groups(["ml"]),
            )
            .client(DevClient::confidential("api", "secret"))
            .client(DevClient::confidential("other", "secret"))
            .build()
            .unwrap()
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let auth = authenticator(op.issuer().clone(), "api").await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app(auth)).await });
        let http = reqwest::Client::new();

        let open = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(open.status(), 200);

        let anonymous = http.get(format!("{base}/whoami")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
        assert!(
            anonymous.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );

        let token = op.mint_access_token("alice", "api").unwrap();
        let answer = http
            .get(format!("{base}/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["user"], "alice");
        assert_eq!(body["email"], "alice@example.com");

        let foreign = op.mint_access_token("alice", "other").unwrap();
        let answer = http
            .get(format!("{base}/whoami"))
            .bearer_auth(&foreign)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "a token for another audience");
    }
}
