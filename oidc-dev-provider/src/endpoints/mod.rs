//! The HTTP endpoints: what each request is checked against and what it answers. Everything
//! a browser or a client sends is untrusted; errors are answered in the protocol's own form
//! (a redirect with `error=`, a JSON error body, or an escaped HTML page).
//!
//! This module holds the routes; each endpoint's decisions live in its own file.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use oidc_core::Issuer;

use crate::provider::Shared;

mod authorize;
mod client_auth;
mod device;
mod discovery;
mod faults;
mod introspection;
mod issue;
mod logout;
mod par;
mod pkce;
mod respond;
mod revocation;
mod session_cookie;
mod token;
mod userinfo;

pub use discovery::minimal_discovery_document;
pub(crate) use issue::{IssueError, issue_access_token, issue_token_response};
pub(crate) use logout::send_backchannel_logouts;
pub use session_cookie::SESSION_COOKIE;

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    issuer: Issuer,
    /// The issuer's path without a trailing `/` (empty at the root): the prefix of every route.
    prefix: String,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer.as_str().trim_end_matches('/'), path)
    }

    fn cookie_path(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }
}

/// The routes under the issuer's path.
pub(crate) fn router(shared: Arc<Shared>, issuer: Issuer) -> Router {
    let prefix = issuer.url().path().trim_end_matches('/').to_owned();
    let app = App {
        shared,
        issuer,
        prefix: prefix.clone(),
    };
    let routes = Router::new()
        .route("/", get(discovery::index))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::discovery),
        )
        .route("/jwks", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/par", post(par::pushed_authorization))
        .route("/login", post(authorize::login))
        .route("/token", post(token::token))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/introspect", post(introspection::introspect))
        .route("/revoke", post(revocation::revoke))
        .route(
            "/end_session",
            get(logout::end_session_get).post(logout::end_session_post),
        )
        .route("/device_authorization", post(device::device_authorization))
        .route(
            "/device",
            get(device::device_page).post(device::device_approve),
        )
        .with_state(app);
    if prefix.is_empty() {
        routes
    } else {
        Router::new().nest(&prefix, routes)
    }
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::header;
    use proptest::prelude::*;

    use super::*;

    /// Arbitrary requests to every endpoint: never a panic, never a server error.
    #[test]
    fn hostile_requests_get_client_errors_not_server_errors() {
        use tower::ServiceExt as _;
        let provider = crate::DevProvider::builder().build().unwrap();
        let issuer = Issuer::new("http://127.0.0.1:9").unwrap();
        let router = router(provider.shared.clone(), issuer);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let paths = [
            "/authorize",
            "/login",
            "/token",
            "/userinfo",
            "/introspect",
            "/revoke",
            "/end_session",
            "/device_authorization",
            "/device",
            "/jwks",
            "/.well-known/openid-configuration",
        ];
        let config = proptest::test_runner::Config::with_cases(256);
        proptest!(config, |(
            path in proptest::sample::select(paths.to_vec()),
            post in any::<bool>(),
            query in "[a-zA-Z0-9=&%_.~+-]{0,80}",
            body in proptest::collection::vec(any::<u8>(), 0..160),
            authorization in "(Basic |Bearer )?[ -~]{0,40}",
            cookie in "(devop_session=)?[ -~]{0,40}",
        )| {
            let request = http::Request::builder()
                .method(if post { "POST" } else { "GET" })
                .uri(format!("{path}?{query}"))
                .header(header::AUTHORIZATION, authorization)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap();
            let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
            prop_assert!(!response.status().is_server_error(), "{} {path}", response.status());
        });
    }
}
