//! The layers' test bed, all on 127.0.0.1: the in-process dev provider, an axum echo upstream
//! that answers with the headers it received, the login layer in front of the streaming reverse
//! proxy (the sidecar shape), and forward-auth on its own port. Cookies are carried by hand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::HeaderMap;
use oidc_core::authorization::AuthorizationRules;
use oidc_core::cookie::CookieSettings;
use oidc_core::login::{ClientAuthMethod, ClientCredentials};
use oidc_core::{Policy, Secret};
use oidc_dev_provider::{AccessTokenFormat, DevClient, DevProvider, DevUser, RunningProvider};
use oidc_tower::auth::{AuthConfig, Authenticator, ForwardAuth, LoginSettings, OidcLoginLayer};
use oidc_tower::clock::ManualClock;
use oidc_tower::identity_assertion::IdentityAssertion;
use oidc_tower::provider::{Provider, ProviderConfig};
use oidc_tower::proxy::{ReverseProxy, serve};
use oidc_tower::routes::RouteRules;
use oidc_tower::store::SessionStore;
use oidc_tower::{HttpClient, ReqwestHttpClient};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_layer::Layer;

pub const CLIENT_ID: &str = "app";
pub const CLIENT_SECRET: &str = "app-secret";
pub const OPAQUE_CLIENT: &str = "opaque-api";
pub const COOKIE_SECRET: &str = "a cookie secret that is long enough for the codec";

/// What varies between test beds.
#[derive(Clone, Default)]
pub struct Options {
    pub store: Option<Arc<dyn SessionStore>>,
    pub access_token_lifetime: Option<Duration>,
    pub rules: Option<AuthorizationRules>,
    pub forward_auth_redirect: bool,
    pub provider_logout: Option<bool>,
    pub skip_auth: Vec<&'static str>,
    pub required_scopes: Vec<&'static str>,
    pub max_pending_logins: Option<usize>,
    pub pass_access_token: bool,
    /// The shortest time between unknown-`kid` key refetches (default 200 ms).
    pub refetch_interval: Option<Duration>,
    pub session_lifetime: Option<Duration>,
    /// The provider offers pushed authorization requests (RFC 9126).
    pub provider_offers_par: bool,
    /// The provider requires pushed authorization requests.
    pub provider_requires_par: bool,
    /// The provider returns to `{prefix}/signed_out` after logout (default: the app's root).
    pub post_logout_to_signed_out: bool,
    /// Signed identity assertions for the audience `upstream-app`, with a generated key.
    pub identity_assertion: bool,
    /// The echo upstream listens on a Unix domain socket only.
    pub unix_upstream: bool,
    /// The layers take the time of day from this clock, which the test moves (default: the
    /// system's). The dev provider keeps the system's time.
    pub clock: Option<ManualClock>,
}

/// The audience of the test bed's identity assertions.
pub const ASSERTION_AUDIENCE: &str = "upstream-app";

pub struct Harness {
    pub op: RunningProvider,
    /// The login layer in front of the reverse proxy.
    pub app: String,
    /// Forward-auth.
    pub forward_auth: String,
    pub auth: Authenticator,
    pub config: AuthConfig,
    pub upstream: String,
    pub client: reqwest::Client,
    stops: Vec<oneshot::Sender<()>>,
    /// Holds the upstream's socket file, when it has one.
    _socket_dir: Option<tempfile::TempDir>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// The echo upstream: answers JSON `{method, uri, headers: [[name, value], ...]}`.
async fn echo(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    Json(
        serde_json::json!({ "method": method.as_str(), "uri": uri.to_string(), "headers": headers }),
    )
}

impl Harness {
    pub async fn start(options: Options) -> Harness {
        let mut stops = Vec::new();
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        let stopped = async {
            let _ = stopped.await;
        };
        let router = axum::Router::new().fallback(echo);
        let (upstream, socket_dir) = if options.unix_upstream {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("upstream.sock");
            let upstream_listener = tokio::net::UnixListener::bind(&path).unwrap();
            tokio::spawn(async move {
                let _ = axum::serve(upstream_listener, router)
                    .with_graceful_shutdown(stopped)
                    .await;
            });
            (format!("unix://{}", path.display()), Some(dir))
        } else {
            let (upstream_listener, upstream_addr) = listener().await;
            tokio::spawn(async move {
                let _ = axum::serve(upstream_listener, router)
                    .with_graceful_shutdown(stopped)
                    .await;
            });
            (format!("http://{upstream_addr}"), None)
        };

        let (app_listener, app_addr) = listener().await;
        let (fa_listener, fa_addr) = listener().await;
        let app = format!("http://{app_addr}");
        let callback = format!("{app}/oauth2/callback");

        let mut builder = DevProvider::builder()
            .user(
                DevUser::new("alice", "alice")
                    .email("alice@example.com")
                    .email_verified(true)
                    .name("Alice")
                    .groups(["ml", "admins"]),
            )
            .user(
                DevUser::new("carol", "carol")
                    .email("carol@personal.example")
                    .email_verified(true)
                    .claim("upn", "carol@company.example".into())
                    .claim(
                        "realm_access",
                        serde_json::json!({"roles": ["mlflow-editor", "offline_access"]}),
                    ),
            )
            .user(
                DevUser::new("mallory", "mallory")
                    .email("mallory@evil.test")
                    .email_verified(true)
                    .groups(["outsiders"]),
            )
            .client(
                DevClient::confidential(CLIENT_ID, CLIENT_SECRET)
                    .redirect_uri(callback.clone())
                    .post_logout_redirect_uri(format!("{app}/"))
                    .post_logout_redirect_uri(format!("{app}/oauth2/signed_out"))
                    .backchannel_logout_uri(format!("{app}/oauth2/backchannel_logout")),
            )
            .client(
                DevClient::confidential(OPAQUE_CLIENT, "opaque-secret")
                    .access_token_format(AccessTokenFormat::Opaque)
                    .access_token_audience(CLIENT_ID),
            );
        if let Some(lifetime) = options.access_token_lifetime {
            builder = builder.access_token_lifetime(lifetime);
        }
        builder = builder
            .pushed_authorization_requests(options.provider_offers_par)
            .require_pushed_authorization_requests(options.provider_requires_par);
        let op = builder
            .build()
            .unwrap()
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();

        let http: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new().unwrap());
        let policy = Policy::builder()
            .issuer(op.issuer().clone())
            .audience(CLIENT_ID)
            .build()
            .unwrap();
        let provider = Provider::start(
            ProviderConfig::new(op.issuer().clone(), policy)
                .refetch_interval(
                    options
                        .refetch_interval
                        .unwrap_or(Duration::from_millis(200)),
                )
                .retry_backoff(Duration::from_millis(50), Duration::from_millis(200)),
            http.clone(),
        );
        tokio::time::timeout(Duration::from_secs(10), provider.wait_ready())
            .await
            .expect("provider ready");

        let credentials = ClientCredentials::new(
            CLIENT_ID,
            ClientAuthMethod::ClientSecretBasic(Secret::new(CLIENT_SECRET)),
        );
        let mut config = AuthConfig::new(provider, http)
            .login(LoginSettings::new(
                credentials,
                callback.parse().unwrap(),
                vec![Secret::new(COOKIE_SECRET)],
            ))
            .session_cookie(
                CookieSettings::new("oidc_session")
                    .insecure_allow_plain_http(&callback.parse().unwrap())
                    .unwrap(),
            )
            .post_logout_redirect_uri(
                if options.post_logout_to_signed_out {
                    format!("{app}/oauth2/signed_out")
                } else {
                    format!("{app}/")
                }
                .parse()
                .unwrap(),
            )
            .forward_auth_redirect(options.forward_auth_redirect)
            .pass_access_token(options.pass_access_token)
            .required_scopes(options.required_scopes.clone());
        if let Some(store) = options.store.clone() {
            config = config.session_store(store);
        }
        if let Some(rules) = options.rules.clone() {
            config = config.authorization(rules);
        }
        if let Some(enabled) = options.provider_logout {
            config = config.provider_logout(enabled);
        }
        if !options.skip_auth.is_empty() {
            config = config.skip_auth(RouteRules::skip_auth(options.skip_auth.clone()).unwrap());
        }
        if let Some(lifetime) = options.session_lifetime {
            config = config.session_lifetime(lifetime);
        }
        if let Some(max) = options.max_pending_logins {
            config = config.max_pending_logins(max);
        }
        if let Some(clock) = options.clock.clone() {
            config = config.clock(clock);
        }
        if options.identity_assertion {
            config = config.identity_assertion(
                IdentityAssertion::generate(app.clone(), ASSERTION_AUDIENCE).unwrap(),
            );
        }
        let auth = config.clone().build().unwrap();

        let proxy = ReverseProxy::builder(upstream.clone()).build().unwrap();
        let sidecar = OidcLoginLayer::new(auth.clone()).unwrap().layer(proxy);
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(serve(app_listener, sidecar, async {
            let _ = stopped.await;
        }));

        let forward_auth = ForwardAuth::new(auth.clone()).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(serve(fa_listener, forward_auth, async {
            let _ = stopped.await;
        }));

        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Harness {
            op,
            app,
            forward_auth: format!("http://{fa_addr}"),
            auth,
            config,
            upstream,
            client,
            stops,
            _socket_dir: socket_dir,
        }
    }

    /// Another replica of the sidecar: the same configuration (and shared session store), its
    /// own process-local state. Returns its base URL.
    pub async fn replica(&mut self) -> String {
        let auth = self.config.clone().build().unwrap();
        let proxy = ReverseProxy::builder(self.upstream.clone())
            .build()
            .unwrap();
        let sidecar = OidcLoginLayer::new(auth).unwrap().layer(proxy);
        let (listener, addr) = listener().await;
        let (stop, stopped) = oneshot::channel::<()>();
        self.stops.push(stop);
        tokio::spawn(serve(listener, sidecar, async {
            let _ = stopped.await;
        }));
        format!("http://{addr}")
    }

    /// A browser-like navigation to `path` of the app, carrying `jar`.
    pub async fn navigate(&self, path: &str, jar: &Jar) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.app))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("cookie", jar.header())
            .send()
            .await
            .unwrap()
    }

    /// An API-like call to `path` of the app, carrying `jar`.
    pub async fn api(&self, path: &str, jar: &Jar) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.app))
            .header("accept", "application/json")
            .header("cookie", jar.header())
            .send()
            .await
            .unwrap()
    }

    /// Starts a login by navigating to `path`; returns the provider URL to follow.
    pub async fn start_login(&self, path: &str, jar: &mut Jar) -> String {
        let response = self.navigate(path, jar).await;
        assert_eq!(
            response.status(),
            302,
            "navigation without a session is redirected"
        );
        jar.absorb(&response);
        let location = location(&response);
        assert!(
            location.starts_with(self.op.issuer().as_str()),
            "{location}"
        );
        location
    }

    /// The provider's answer to an authorization URL (scripted user): the callback URL.
    pub async fn authorize(&self, authorization_url: &str, user: &str) -> String {
        self.op.auto_approve(Some(user));
        let response = self.client.get(authorization_url).send().await.unwrap();
        assert!(
            matches!(response.status().as_u16(), 302 | 303),
            "the provider redirects back"
        );
        let callback = location(&response);
        assert!(
            callback.starts_with(&format!("{}/oauth2/callback?", self.app)),
            "{callback}"
        );
        callback
    }

    /// Completes a login at the callback; returns the response (302 to the return-to target).
    pub async fn callback(&self, callback_url: &str, jar: &mut Jar) -> reqwest::Response {
        let response = self
            .client
            .get(callback_url)
            .header("cookie", jar.header())
            .send()
            .await
            .unwrap();
        jar.absorb(&response);
        response
    }

    /// The whole browser sign-in of `user`, starting at `path`; the jar then holds the session.
    pub async fn sign_in(&self, user: &str, path: &str) -> Jar {
        let mut jar = Jar::default();
        let authorization = self.start_login(path, &mut jar).await;
        let callback = self.authorize(&authorization, user).await;
        let response = self.callback(&callback, &mut jar).await;
        assert_eq!(response.status(), 302, "callback: {}", response.status());
        assert_eq!(location(&response), path);
        assert!(jar.has("oidc_session"), "session cookie set: {jar:?}");
        jar
    }

    /// A forward-auth check for the original request `uri`, carrying `jar` and extra headers.
    pub async fn forward_auth_check(
        &self,
        uri: &str,
        jar: &Jar,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}/oauth2/auth", self.forward_auth))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "mlflow.example.com")
            .header("x-forwarded-uri", uri)
            .header("cookie", jar.header());
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }
}

/// The `Location` header of a response.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The headers the echo upstream received, lower-case names, in order.
pub async fn echoed_headers(response: reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(response.status(), 200, "upstream reached");
    let body: serde_json::Value = response.json().await.unwrap();
    body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The value of one echoed header.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Cookies carried by hand, as a browser would: `Set-Cookie` adds or replaces, `Max-Age=0`
/// removes.
#[derive(Debug, Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    pub fn absorb(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            self.absorb_one(value.to_str().unwrap());
        }
    }

    pub fn absorb_one(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        if set_cookie.contains("Max-Age=0") {
            self.0.remove(name);
        } else {
            self.0.insert(name.to_owned(), value.to_owned());
        }
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn has(&self, prefix: &str) -> bool {
        self.0.keys().any(|name| name.starts_with(prefix))
    }

    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn remove_prefix(&mut self, prefix: &str) {
        self.0.retain(|name, _| !name.starts_with(prefix));
    }

    pub fn merge(&mut self, other: &Jar) {
        for (name, value) in &other.0 {
            self.0.insert(name.clone(), value.clone());
        }
    }
}
