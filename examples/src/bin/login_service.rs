//! An axum web app protected by the login layer: browsers are sent to the provider to sign in,
//! come back through `/oauth2/callback` with a sealed session cookie, and every handler knows
//! who they are. API-looking requests without a session get 401 instead of a redirect.
//!
//! ```text
//! oidc dev-provider --proxy-port 3000 &
//! OIDC_ISSUER=http://127.0.0.1:9090 OIDC_CLIENT_ID=demo OIDC_CLIENT_SECRET=demo-secret \
//!   COOKIE_SECRET=$(openssl rand -base64 32) cargo run -p oidc-examples --bin login_service
//! # open http://127.0.0.1:3000/ and sign in as alice / alice
//! ```
//!
//! Environment: `OIDC_ISSUER`, `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`, `COOKIE_SECRET` (at least
//! 32 characters) are required; `LISTEN` defaults to `127.0.0.1:3000` and the callback URL to
//! `http://{LISTEN}/oauth2/callback`.

use std::sync::Arc;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use oidc_core::cookie::CookieSettings;
use oidc_core::login::{ClientAuthMethod, ClientCredentials};
use oidc_core::{Issuer, Policy, Secret};
use oidc_tower::ReqwestHttpClient;
use oidc_tower::auth::{AuthConfig, Authenticated, LoginSettings, OidcLoginLayer};
use oidc_tower::provider::{Provider, ProviderConfig};
use url::Url;

/// What the app needs to sign people in.
struct Settings {
    issuer: Issuer,
    client_id: String,
    client_secret: Secret,
    callback: Url,
    cookie_secret: Secret,
}

/// The app: every route behind the login layer, which also serves `/oauth2/*`.
async fn app(settings: Settings) -> Result<Router, Box<dyn std::error::Error>> {
    let http = Arc::new(ReqwestHttpClient::new()?);
    let policy = Policy::builder()
        .issuer(settings.issuer.clone())
        .audience(settings.client_id.clone())
        .build()?;
    let provider = Provider::start(ProviderConfig::new(settings.issuer, policy), http.clone());
    let credentials = ClientCredentials::new(
        settings.client_id,
        ClientAuthMethod::ClientSecretBasic(settings.client_secret),
    );
    let mut cookie = CookieSettings::new("login_service_session");
    if settings.callback.scheme() == "http" {
        // Plain HTTP on loopback during development only.
        cookie = cookie.insecure_allow_plain_http();
    }
    let auth = AuthConfig::new(provider, http)
        .login(LoginSettings::new(
            credentials,
            settings.callback,
            vec![settings.cookie_secret],
        ))
        .session_cookie(cookie)
        .build()?;
    Ok(Router::new()
        .route("/", get(home))
        .route("/api/me", get(me))
        .layer(OidcLoginLayer::new(auth)?))
}

async fn home(caller: Authenticated) -> Html<String> {
    let name = caller
        .claims
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or(&caller.identity.user);
    Html(format!(
        "<!doctype html><title>login_service</title><p>Hello {}!</p><p><a href=\"/oauth2/sign_out\">Sign out</a></p>",
        escape(name)
    ))
}

async fn me(caller: Authenticated) -> String {
    caller.identity.user
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn required(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let settings = Settings {
        issuer: Issuer::new(required("OIDC_ISSUER")?)?,
        client_id: required("OIDC_CLIENT_ID")?,
        client_secret: Secret::new(required("OIDC_CLIENT_SECRET")?),
        callback: Url::parse(&format!("http://{listen}/oauth2/callback"))?,
        cookie_secret: Secret::new(required("COOKIE_SECRET")?),
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("login_service on http://{listen}/");
    axum::serve(listener, app(settings).await?)
        .with_graceful_shutdown(oidc_tower::proxy::shutdown_signal())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oidc_dev_provider::{DevClient, DevProvider, DevUser};

    /// The `name=value` of every `Set-Cookie` of `response` that sets a value.
    fn set_cookies(response: &reqwest::Response) -> Vec<String> {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .filter(|pair| !pair.ends_with('='))
            .collect()
    }

    #[tokio::test]
    async fn a_browser_signs_in_and_the_handler_greets_it_by_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let callback = format!("{base}/oauth2/callback");
        let op = DevProvider::builder()
            .user(DevUser::new("alice", "pw").name("Alice <Example>"))
            .client(DevClient::confidential("web", "web-secret").redirect_uri(&callback))
            .build()
            .unwrap()
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        op.auto_approve(Some("alice"));
        let router = app(Settings {
            issuer: op.issuer().clone(),
            client_id: "web".into(),
            client_secret: Secret::new("web-secret"),
            callback: Url::parse(&callback).unwrap(),
            cookie_secret: Secret::new("a cookie secret of at least thirty-two bytes"),
        })
        .await
        .unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();

        let api = http
            .get(format!("{base}/api/me"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 401, "API calls are not redirected");

        let start = http
            .get(format!("{base}/"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 302);
        let pending = set_cookies(&start).join("; ");
        let to_provider = start.headers()["location"].to_str().unwrap().to_owned();
        assert!(to_provider.starts_with(op.issuer().as_str()));

        let approved = http.get(&to_provider).send().await.unwrap();
        let back = approved.headers()["location"].to_str().unwrap().to_owned();
        assert!(back.starts_with(&callback), "{back}");

        let signed_in = http
            .get(&back)
            .header("cookie", &pending)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 302);
        assert_eq!(signed_in.headers()["location"], "/");
        let session = set_cookies(&signed_in).join("; ");

        let page = http
            .get(format!("{base}/"))
            .header("cookie", &session)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("Hello Alice &lt;Example&gt;!")
        );
        let me = http
            .get(format!("{base}/api/me"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(me.text().await.unwrap(), "alice");
    }
}
