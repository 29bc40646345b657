//! Runs the proxy: the upstream routes behind the login layer, forward-auth at
//! `{prefix}/auth`, `/healthz` and `/readyz`, bearer tokens of extra issuers, and `/metrics` on
//! its own address; until the shutdown signal, after which in-flight requests finish.
//!
//! Request order: health answers; forward-auth; a bearer token whose (unverified) `iss` names an
//! extra issuer is validated by that issuer's provider and passed on with identity headers;
//! everything else goes through the login layer (sign-in endpoints, sessions, bearer tokens of
//! the main issuer) to the router of upstreams.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use oidc_core::authorization::{AuthorizationRules, Identity as RuleIdentity};
use oidc_core::cookie::CookieSettings;
use oidc_core::login::{ClientAuthMethod, ClientCredentials};
use oidc_core::{Policy, RedirectPolicy};
use oidc_tower::auth::{AuthConfig, ForwardAuth, LoginSettings, OidcLogin, OidcLoginLayer};
use oidc_tower::bearer_response::{BearerRejection, QueryTokens, extract_bearer};
use oidc_tower::health::{Readiness, health_response};
use oidc_tower::identity_headers::{Identity, IdentityHeaders, strip_identity_headers};
use oidc_tower::metrics::Metrics;
use oidc_tower::provider::{Provider, ProviderConfig};
use oidc_tower::proxy::{BoxError, ProxyBody, ProxyRouter, ReverseProxy};
use oidc_tower::routes::RouteRules;
use oidc_tower::store::{RedisStore, RedisStoreConfig};
use oidc_tower::{HttpClient, ReqwestHttpClient};
use tower::{Layer as _, ServiceExt as _};

use super::settings::{ProxySettings, SessionStoreChoice};

/// How long in-flight requests may take to finish after the shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long start-up waits for the provider's metadata to pick default scopes.
const DISCOVERY_WAIT: Duration = Duration::from_secs(10);

/// Identity headers other software trusts (Apache `REMOTE_USER` front-ends, Grafana, Airflow's
/// `AUTH_REMOTE_USER`): never passed on from clients, in any spelling, whatever the route.
const FOREIGN_IDENTITY_HEADERS: [&str; 7] = [
    "remote-user",
    "x-remote-user",
    "x-remote-email",
    "x-remote-name",
    "x-remote-groups",
    "x-webauth-user",
    "x-webauth-email",
];

/// Why the proxy could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP client: {0}")]
    Http(#[from] oidc_tower::HttpError),
    #[error("token policy: {0}")]
    Policy(#[from] oidc_core::validation::PolicyError),
    #[error("{0}")]
    Auth(#[from] oidc_tower::auth::AuthConfigError),
    #[error("upstream: {0}")]
    Upstream(#[from] oidc_tower::proxy::ProxyConfigError),
    #[error("route rules: {0}")]
    Routes(#[from] oidc_tower::routes::RouteRuleError),
    #[error("whitelist-domain: {0}")]
    Redirect(#[from] oidc_core::redirect::RedirectConfigError),
    #[error("redis: {0}")]
    Store(#[from] oidc_tower::store::StoreError),
    #[error("cookie-secure=false: {0}")]
    Cookie(#[from] oidc_core::cookie::CookieConfigError),
    #[error("serving failed: {0}")]
    Io(std::io::Error),
}

impl ServeError {
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            ServeError::Bind { .. } => {
                Some("is another process using the port? see --http-address")
            }
            ServeError::Store(_) => Some("check --redis-connection-url and that Redis is up"),
            ServeError::Cookie(_) => Some(
                "cookies without Secure are only allowed when --redirect-url is on a loopback host; serve the proxy over https",
            ),
            _ => Some("`oidc proxy --check-config` with the same settings says more"),
        }
    }
}

/// Serves until `shutdown` completes.
pub(crate) async fn run(
    settings: ProxySettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    run_with_ready(settings, shutdown, None).await
}

/// Serves until `shutdown` completes; `ready` is told once the listener accepts requests.
pub(crate) async fn run_with_ready(
    settings: ProxySettings,
    shutdown: impl Future<Output = ()> + Send,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), ServeError> {
    let app = Arc::new(App::build(&settings).await?);
    let listener = tokio::net::TcpListener::bind(settings.http_address)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.http_address,
            source,
        })?;
    let metrics_listener = match settings.metrics_address {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };
    for line in settings.summary() {
        tracing::info!("{line}");
    }
    tracing::info!("oidc proxy ready");
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    let readiness = app.readiness.clone();
    let provider = app.provider.clone();
    let ready_task = tokio::spawn(async move {
        provider.wait_ready().await;
        readiness.set_ready(true);
        tracing::info!("provider metadata and keys loaded");
    });
    let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
    let metrics_task = metrics_listener.map(|listener| {
        let metrics = app.metrics.clone();
        let mut stopped = metrics_stopped.clone();
        tokio::spawn(async move {
            let service = tower::service_fn(move |request: Request<Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let response = if request.uri().path() == "/metrics" {
                        metrics.response()
                    } else {
                        plain(StatusCode::NOT_FOUND, "only /metrics is served here\n")
                    };
                    Ok::<_, Infallible>(response.map(Full::new))
                }
            });
            let _ = oidc_tower::proxy::serve(listener, service, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
        })
    });
    let service = tower::service_fn(move |request: Request<Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(request).await) }
    });
    let (drain_started, drain_signal) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, letting requests in flight finish");
        let _ = drain_started.send(());
    };
    let served = oidc_tower::proxy::serve(listener, service, shutdown);
    let result = async {
        tokio::pin!(served);
        tokio::select! {
            result = &mut served => result,
            () = async {
                let _ = drain_signal.await;
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } => {
                tracing::warn!("requests still running after {}s; stopping anyway", DRAIN_TIMEOUT.as_secs());
                Ok(())
            }
        }
    }
    .await;
    ready_task.abort();
    let _ = stop_metrics.send(true);
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    tracing::info!("oidc proxy stopped");
    result.map_err(ServeError::Io)
}

/// The router behind the login layer, with the user headers removed when
/// `--pass-user-headers=false`.
type Upstreams = tower::util::MapRequest<ProxyRouter, fn(Request<Incoming>) -> Request<Incoming>>;

/// The `X-Forwarded-*` user headers the login layer sets (the access token header is separate).
const USER_HEADERS: [&str; 4] = [
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
];

fn keep_user_headers(request: Request<Incoming>) -> Request<Incoming> {
    request
}

fn drop_user_headers(mut request: Request<Incoming>) -> Request<Incoming> {
    for name in USER_HEADERS {
        request.headers_mut().remove(name);
    }
    request
}

/// Everything a request may need, built once.
struct App {
    protected: OidcLogin<Upstreams>,
    router: ProxyRouter,
    forward_auth: Option<ForwardAuth>,
    forward_auth_path: String,
    set_xauthrequest: bool,
    extra: Vec<Provider>,
    extra_rules: AuthorizationRules,
    groups_claim: String,
    pass_user_headers: bool,
    pass_access_token: bool,
    provider: Provider,
    readiness: Readiness,
    metrics: Metrics,
}

impl App {
    async fn build(settings: &ProxySettings) -> Result<Self, ServeError> {
        let http: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new()?);
        let mut policy = Policy::builder()
            .issuer(settings.issuer.clone())
            .audience(settings.client_id.clone());
        for audience in &settings.extra_audiences {
            policy = policy.audience(audience.clone());
        }
        let provider = Provider::start(
            ProviderConfig::new(settings.issuer.clone(), policy.build()?),
            http.clone(),
        );
        let mut extra = Vec::with_capacity(settings.extra_issuers.len());
        for issuer in &settings.extra_issuers {
            let policy = Policy::builder()
                .issuer(issuer.issuer.clone())
                .audience(issuer.audience.clone())
                .build()?;
            extra.push(Provider::start(
                ProviderConfig::new(issuer.issuer.clone(), policy),
                http.clone(),
            ));
        }

        let method = match &settings.client_secret {
            Some(secret) => ClientAuthMethod::ClientSecretBasic(secret.clone()),
            None => ClientAuthMethod::None,
        };
        let credentials = ClientCredentials::new(settings.client_id.clone(), method);
        let mut cookie = CookieSettings::new(settings.cookie_name.clone())
            .with_path(settings.cookie_path.clone());
        if let Some(domain) = &settings.cookie_domain {
            cookie = cookie.with_domain(domain.clone());
        }
        if !settings.cookie_secure {
            cookie = cookie.insecure_allow_plain_http(&settings.redirect_url)?;
        }
        let rules = authorization_rules(settings);
        let scopes = default_scopes(settings, &provider).await;
        let metrics = Metrics::new();
        let mut config = AuthConfig::new(provider.clone(), http)
            .login(LoginSettings::new(
                credentials,
                settings.redirect_url.clone(),
                settings.cookie_secrets.clone(),
            ))
            .scopes(scopes)
            .prefix(settings.proxy_prefix.clone())
            .session_cookie(cookie)
            .session_lifetime(settings.session_lifetime)
            .refresh_margin(settings.refresh_margin)
            .skip_auth(RouteRules::skip_auth(&settings.skip_auth_routes)?)
            .api_routes(RouteRules::api(&settings.api_routes)?)
            .authorization(rules.clone())
            .groups_claim(settings.groups_claim.clone())
            .accept_bearer(settings.accept_bearer)
            .pass_access_token(settings.pass_access_token)
            .pass_authorization_bearer(settings.pass_authorization_header)
            .redirect_policy(RedirectPolicy::new(&settings.whitelist_domains)?)
            .trusted_proxies(settings.trusted_proxies.clone())
            .forward_auth_redirect(false)
            .metrics(metrics.clone());
        if let Some(url) = &settings.post_logout_redirect_url {
            config = config.post_logout_redirect_uri(url.clone());
        }
        if let SessionStoreChoice::Redis { url } = &settings.session_store {
            config = config.session_store(Arc::new(RedisStore::new(RedisStoreConfig::new(
                url.expose(),
            ))?));
        }
        let auth = config.build()?;

        let mut routes = Vec::with_capacity(settings.upstreams.len());
        for upstream in &settings.upstreams {
            let builder = if upstream.strip_prefix {
                ReverseProxy::builder(upstream.url.as_str().trim_end_matches('/'))
                    .strip_prefix(&upstream.prefix)
            } else {
                let origin = upstream.url.origin().ascii_serialization();
                let builder = ReverseProxy::builder(origin);
                if upstream.prefix == "/" {
                    builder
                } else {
                    builder.keep_prefix(&upstream.prefix)
                }
            };
            routes.push(
                builder
                    .trusted_proxies(settings.trusted_proxies.clone())
                    .build()?,
            );
        }
        let router = ProxyRouter::new(routes)?;
        let login = OidcLoginLayer::new(auth.clone())?;
        let forward_auth = if settings.forward_auth {
            Some(ForwardAuth::new(auth)?)
        } else {
            None
        };
        let user_headers: fn(Request<Incoming>) -> Request<Incoming> = if settings.pass_user_headers
        {
            keep_user_headers
        } else {
            drop_user_headers
        };
        Ok(App {
            protected: login.layer(tower::util::MapRequest::new(router.clone(), user_headers)),
            router,
            forward_auth,
            forward_auth_path: format!("{}/auth", settings.proxy_prefix),
            set_xauthrequest: settings.set_xauthrequest,
            extra,
            extra_rules: rules,
            groups_claim: settings.groups_claim.clone(),
            pass_user_headers: settings.pass_user_headers,
            pass_access_token: settings.pass_access_token,
            provider,
            readiness: Readiness::new(),
            metrics,
        })
    }

    async fn handle(&self, mut request: Request<Incoming>) -> Response<ProxyBody> {
        if let Some(answer) = health_response(request.uri().path(), &self.readiness) {
            return answer.map(boxed_full);
        }
        strip_foreign_identity_headers(request.headers_mut());
        if request.uri().path() == self.forward_auth_path {
            return match &self.forward_auth {
                Some(forward_auth) => {
                    let Ok(mut answer) = forward_auth.clone().oneshot(request).await;
                    if !self.set_xauthrequest {
                        strip_identity_headers(answer.headers_mut());
                    }
                    answer.map(|body| body.map_err(|never| match never {}).boxed_unsync())
                }
                None => {
                    plain(StatusCode::NOT_FOUND, "forward-auth is switched off\n").map(boxed_full)
                }
            };
        }
        if let Some(provider) = self.extra_provider_for(&request) {
            return self.pass_extra_bearer(provider, request).await;
        }
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, body);
        match self.protected.clone().oneshot(request).await {
            Ok(response) => {
                response.map(|body| body.map_err(Into::<BoxError>::into).boxed_unsync())
            }
            Err(never) => match never {},
        }
    }

    /// The extra issuer's provider when the request's bearer token claims to come from it.
    fn extra_provider_for(&self, request: &Request<Incoming>) -> Option<&Provider> {
        if self.extra.is_empty() {
            return None;
        }
        let token = extract_bearer(request.headers(), None, QueryTokens::Refuse).ok()??;
        let iss = unverified_issuer(token.expose())?;
        self.extra.iter().find(|p| p.issuer().matches(&iss))
    }

    async fn pass_extra_bearer(
        &self,
        provider: &Provider,
        request: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = request.into_parts();
        let Ok(Some(token)) = extract_bearer(&parts.headers, None, QueryTokens::Refuse) else {
            return rejection(
                &BearerRejection::invalid_token("no bearer token"),
                &parts.headers,
            );
        };
        let validated = match provider.validate(token.expose()).await {
            Ok(validated) => validated,
            Err(error) => {
                tracing::info!(
                    code = error.code(),
                    issuer = provider.issuer().as_str(),
                    "extra-issuer token refused"
                );
                return rejection(
                    &BearerRejection::invalid_token(error.code()),
                    &parts.headers,
                );
            }
        };
        let claims = match serde_json::to_value(&validated.claims) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let rule_identity = RuleIdentity::from_claims(&claims, &self.groups_claim);
        if let Err(denied) = self.extra_rules.evaluate(&rule_identity) {
            tracing::info!(code = denied.code(), "extra-issuer caller not allowed");
            return plain(StatusCode::FORBIDDEN, "not allowed\n").map(boxed_full);
        }
        strip_identity_headers(&mut parts.headers);
        if self.pass_user_headers {
            let mut identity = Identity::new(rule_identity.subject)
                .with_groups(rule_identity.groups.iter().cloned());
            if let Some(email) = rule_identity.email {
                identity = identity.with_email(email);
            }
            if let Some(name) = &validated.claims.preferred_username {
                identity = identity.with_preferred_username(name.clone());
            }
            if self.pass_access_token {
                identity =
                    identity.with_access_token(oidc_core::Secret::new(token.expose().to_owned()));
            }
            if let Err(error) = IdentityHeaders::upstream()
                .pass_access_token(self.pass_access_token)
                .apply(&mut parts.headers, &identity)
            {
                tracing::warn!(code = error.code(), "identity cannot be sent upstream");
                return plain(StatusCode::FORBIDDEN, "identity cannot be passed on\n")
                    .map(boxed_full);
            }
        }
        let Ok(response) = self
            .router
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await;
        response
    }
}

/// The configured scopes; without `--scope`, `openid email profile` plus `groups` when the
/// provider advertises a `groups` scope (waiting briefly for its metadata), so that group rules
/// and `X-Forwarded-Groups` work with providers that release groups only on request.
async fn default_scopes(settings: &ProxySettings, provider: &Provider) -> Vec<String> {
    let mut scopes = settings.scopes.clone();
    if settings.scope_explicit {
        return scopes;
    }
    if tokio::time::timeout(DISCOVERY_WAIT, provider.wait_ready())
        .await
        .is_err()
    {
        tracing::warn!("provider metadata not loaded yet; asking for the default scopes only");
        return scopes;
    }
    let advertises_groups = provider
        .metadata()
        .is_some_and(|m| m.scopes_supported.iter().any(|s| s == "groups"));
    if advertises_groups && !scopes.iter().any(|s| s == "groups") {
        scopes.push("groups".to_owned());
    }
    scopes
}

/// Removes [`FOREIGN_IDENTITY_HEADERS`], reading `_` as `-` and ignoring case.
fn strip_foreign_identity_headers(headers: &mut http::HeaderMap) {
    let doomed: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| {
            let normalized = name.as_str().replace('_', "-");
            FOREIGN_IDENTITY_HEADERS.contains(&normalized.as_str())
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

fn authorization_rules(settings: &ProxySettings) -> AuthorizationRules {
    let mut rules = AuthorizationRules::new();
    if !settings.any_email_domain {
        rules = rules
            .with_allowed_email_domains(settings.email_domains.iter().cloned())
            .with_allowed_emails(settings.allowed_emails.iter().cloned());
    }
    rules = rules.with_allowed_groups(settings.allowed_groups.iter().cloned());
    if settings.allow_unverified_email {
        rules = rules.insecure_allow_unverified_email();
    }
    rules
}

/// The `iss` of a JWT, read without verification, only to pick which provider verifies it.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

fn rejection(rejection: &BearerRejection, headers: &http::HeaderMap) -> Response<ProxyBody> {
    rejection.response("oidc", headers).map(boxed_full)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(text.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn boxed_full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_identity_headers_go_in_every_spelling() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-remote-user", HeaderValue::from_static("mallory"));
        headers.insert("remote_user", HeaderValue::from_static("mallory"));
        headers.insert("x_webauth_user", HeaderValue::from_static("mallory"));
        headers.insert("x-request-id", HeaderValue::from_static("7"));
        strip_foreign_identity_headers(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-request-id"], "7");
    }

    #[test]
    fn the_issuer_is_read_from_the_payload_only() {
        // {"iss":"https://ci.example"}
        assert_eq!(
            unverified_issuer("e30.eyJpc3MiOiJodHRwczovL2NpLmV4YW1wbGUifQ.x").as_deref(),
            Some("https://ci.example")
        );
        assert_eq!(unverified_issuer("not-a-jwt"), None);
        assert_eq!(unverified_issuer("a.e30.c"), None);
    }

    proptest::proptest! {
        #[test]
        fn issuer_peeking_never_panics(token in ".{0,200}") {
            let _ = unverified_issuer(&token);
        }
    }
}
