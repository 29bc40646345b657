//! Runs the proxy: turns the settings into the library's configuration, serves
//! [`oidc_tower::sidecar::Sidecar`] (health, forward-auth, the login layer in front of the
//! router of upstreams) and `/metrics` on its own address, until the shutdown signal, after
//! which in-flight requests finish. Every per-request decision is the library's, so a Rust
//! program mounting the same sidecar gets what this binary serves.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use oidc_core::cookie::CookieSettings;
use oidc_core::login::{ClientAuthMethod, ClientCredentials};
use oidc_core::{Issuer, Policy, RedirectPolicy};
use oidc_tower::auth::{AuthConfig, LoginSettings};
use oidc_tower::health::{Readiness, health_response};
use oidc_tower::identity_assertion::IdentityAssertion;
use oidc_tower::metrics::Metrics;
use oidc_tower::provider::{Provider, ProviderConfig};
use oidc_tower::proxy::{ProxyBody, ProxyRouter, ReverseProxy};
use oidc_tower::routes::RouteRules;
use oidc_tower::sidecar::Sidecar;
use oidc_tower::store::RedisStore;
use oidc_tower::{HttpClient, ReqwestHttpClient};
use tower::ServiceExt as _;

use super::settings::{ExtraIssuer, ProxySettings, SessionStoreChoice};

/// How long in-flight requests may take to finish after the shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long start-up waits for the provider's metadata to pick default scopes.
const DISCOVERY_WAIT: Duration = Duration::from_secs(10);

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
    #[error("identity assertion: {0}")]
    Assertion(#[from] oidc_tower::identity_assertion::IdentityAssertionError),
    #[error("serving failed: {0}")]
    Io(std::io::Error),
}

impl ServeError {
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            ServeError::Bind { .. } => {
                Some("is another process using the port? see --http-address")
            }
            ServeError::Store(_) => Some(
                "check the Redis settings (--redis-connection-url, Sentinel or Cluster URLs) and that Redis is up",
            ),
            ServeError::Cookie(_) => Some(
                "cookies without Secure are only allowed when --redirect-url is on a loopback host; serve the proxy over https",
            ),
            ServeError::Assertion(_) => Some(
                "--identity-assertion-key-file needs an unencrypted PKCS#8 P-256 key: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
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

/// Serves until `shutdown` completes; `ready` is told once the provider's metadata and keys are
/// loaded (when `/readyz` turns 200).
///
/// The listeners are bound first, so that `/healthz` answers 200 at once and `/readyz` 503 while
/// the provider is still being reached; until the rest is built every other request gets 503
/// `provider_not_ready`.
pub(crate) async fn run_with_ready(
    mut settings: ProxySettings,
    shutdown: impl Future<Output = ()> + Send,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(settings.http_address)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.http_address,
            source,
        })?;
    // Port 0 asks for any free port: the summary names the one bound.
    if let Ok(bound) = listener.local_addr() {
        settings.http_address = bound;
    }
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
    tracing::info!("waiting for the provider's metadata and keys; /readyz answers 503 until then");
    let built: Arc<std::sync::OnceLock<Arc<App>>> = Arc::new(std::sync::OnceLock::new());
    let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
    let metrics_task = metrics_listener.map(|listener| {
        let built = built.clone();
        let mut stopped = metrics_stopped.clone();
        tokio::spawn(async move {
            let service = tower::service_fn(move |request: Request<Incoming>| {
                let metrics = built.get().map(|app| app.metrics.clone());
                async move {
                    let response = match metrics {
                        _ if request.uri().path() != "/metrics" => {
                            plain(StatusCode::NOT_FOUND, "only /metrics is served here\n")
                        }
                        Some(metrics) => metrics.response(),
                        None => plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
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
    let starting = Readiness::new();
    let service = tower::service_fn({
        let built = built.clone();
        move |request: Request<Incoming>| {
            let app = built.get().cloned();
            let starting = starting.clone();
            async move {
                let response = match app {
                    Some(app) => app.handle(request).await,
                    None => while_starting(request.uri().path(), &starting).map(boxed_full),
                };
                Ok::<_, Infallible>(response)
            }
        }
    });
    let (drain_started, drain_signal) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, letting requests in flight finish");
        let _ = drain_started.send(());
    };
    let served = oidc_tower::proxy::serve_with_stall_timeout(
        listener,
        service,
        shutdown,
        settings.client_write_stall_timeout,
    );
    tokio::pin!(served);
    let app = tokio::select! {
        app = App::build(&settings) => match app {
            Ok(app) => Arc::new(app),
            Err(error) => {
                let _ = stop_metrics.send(true);
                return Err(error);
            }
        },
        result = &mut served => {
            let _ = stop_metrics.send(true);
            tracing::info!("oidc proxy stopped");
            return result.map_err(ServeError::Io);
        }
    };
    let readiness = app.readiness.clone();
    let provider = app.provider.clone();
    let _ = built.set(app);
    let ready_task = tokio::spawn(async move {
        provider.wait_ready().await;
        readiness.set_ready(true);
        tracing::info!("provider metadata and keys loaded");
        tracing::info!("oidc proxy ready");
        if let Some(ready) = ready {
            let _ = ready.send(());
        }
    });
    let result = async {
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

/// The answer while the proxy is still starting: `/healthz` 200, `/readyz` 503, anything else
/// 503 `provider_not_ready`.
fn while_starting(path: &str, starting: &Readiness) -> Response<Bytes> {
    health_response(path, starting).unwrap_or_else(|| {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_not_ready: the identity provider is not reachable yet; try again shortly\n",
        )
    })
}

/// Everything a request may need, built once.
struct App {
    sidecar: Sidecar<ProxyRouter>,
    provider: Provider,
    readiness: Readiness,
    metrics: Metrics,
}

impl App {
    async fn build(settings: &ProxySettings) -> Result<Self, ServeError> {
        let http: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new()?);
        let policy = Policy::builder()
            .issuer(settings.issuer.clone())
            .audience(settings.client_id.clone())
            .build()?;
        let provider = Provider::start(
            ProviderConfig::new(settings.issuer.clone(), policy),
            http.clone(),
        );
        let extra = extra_issuer_policies(&settings.issuer, &settings.extra_issuers)?;

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
        let rules = settings.authorization_rules();
        let scopes = default_scopes(settings, &provider).await;
        let metrics = Metrics::new();
        let mut config = AuthConfig::new(provider.clone(), http.clone())
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
            .pass_user_headers(settings.pass_user_headers)
            .forward_auth_identity_headers(settings.set_xauthrequest)
            .pass_access_token(settings.pass_access_token)
            .pass_authorization_bearer(settings.pass_authorization_header)
            .redirect_policy(RedirectPolicy::new(&settings.whitelist_domains)?)
            .trusted_proxies(settings.trusted_proxies.clone())
            .forward_auth_redirect(false)
            .accept_audiences(settings.extra_audiences.iter().cloned())
            .accept_audiences(extra.main_audiences)
            .accept_clients(settings.trusted_client_ids.iter().cloned())
            .metrics(metrics.clone());
        for (issuer, policy) in extra.others {
            config = config.accept_issuer(Provider::start(
                ProviderConfig::new(issuer, policy),
                http.clone(),
            ));
        }
        if let Some(url) = &settings.post_logout_redirect_url {
            config = config.post_logout_redirect_uri(url.clone());
        }
        if let Some(assertion) = &settings.identity_assertion {
            let signer = match &assertion.key_file {
                Some(path) => IdentityAssertion::from_key_file(
                    path,
                    assertion.issuer.clone(),
                    assertion.audience.clone(),
                )?,
                None => IdentityAssertion::generate(
                    assertion.issuer.clone(),
                    assertion.audience.clone(),
                )?,
            };
            config = config.identity_assertion(signer.with_lifetime(assertion.lifetime));
        }
        if let SessionStoreChoice::Redis(redis) = &settings.session_store {
            config = config.session_store(Arc::new(RedisStore::new(redis.store_config())?));
        }
        let auth = config.build()?;

        if settings.upstream_tls.skip_verify_by_old_name {
            tracing::warn!(
                "--ssl-upstream-insecure-skip-verify is oauth2-proxy's name; use --upstream-insecure-skip-verify"
            );
        }
        let mut routes = Vec::with_capacity(settings.upstreams.len());
        for upstream in &settings.upstreams {
            let builder = if upstream.strip_prefix {
                ReverseProxy::builder(upstream.url.as_str().trim_end_matches('/'))
                    .strip_prefix(&upstream.prefix)
            } else {
                // A socket upstream has no origin: its URL names the socket file.
                let target = if upstream.url.scheme() == "unix" {
                    upstream.url.as_str().to_owned()
                } else {
                    upstream.url.origin().ascii_serialization()
                };
                let builder = ReverseProxy::builder(target);
                if upstream.prefix == "/" {
                    builder
                } else {
                    builder.keep_prefix(&upstream.prefix)
                }
            };
            routes.push(
                builder
                    .trusted_proxies(settings.trusted_proxies.clone())
                    .tls(settings.upstream_tls.to_upstream_tls())
                    .body_idle_timeout(settings.upstream_body_idle_timeout)
                    .build()?,
            );
        }
        let router = ProxyRouter::new(routes)?;
        let readiness = Readiness::new();
        let mut sidecar = Sidecar::new(auth, router, readiness.clone())?;
        if !settings.forward_auth {
            sidecar = sidecar.without_forward_auth();
        }
        Ok(App {
            sidecar,
            provider,
            readiness,
            metrics,
        })
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let Ok(response) = self.sidecar.clone().oneshot(request).await;
        response.map(|body| match body {
            Either::Left(own) => own.map_err(|never| match never {}).boxed_unsync(),
            Either::Right(upstream) => upstream,
        })
    }
}

/// What `--extra-jwt-issuers` asks for: audiences added to the main issuer, and every other
/// issuer with its policy (one provider per issuer, with all of that issuer's audiences).
struct ExtraIssuerPolicies {
    main_audiences: Vec<String>,
    others: Vec<(Issuer, Policy)>,
}

fn extra_issuer_policies(
    main: &Issuer,
    extra_issuers: &[ExtraIssuer],
) -> Result<ExtraIssuerPolicies, oidc_core::validation::PolicyError> {
    let mut same_issuer = Vec::new();
    let mut others: Vec<(Issuer, Vec<String>)> = Vec::new();
    for extra in extra_issuers {
        if extra.issuer == *main {
            same_issuer.push(extra.audience.clone());
        } else if let Some((_, audiences)) = others.iter_mut().find(|(i, _)| *i == extra.issuer) {
            audiences.push(extra.audience.clone());
        } else {
            others.push((extra.issuer.clone(), vec![extra.audience.clone()]));
        }
    }
    let policies = others
        .into_iter()
        .map(|(issuer, audiences)| {
            let mut policy = Policy::builder().issuer(issuer.clone());
            for audience in audiences {
                policy = policy.audience(audience);
            }
            Ok((issuer, policy.build()?))
        })
        .collect::<Result<_, _>>()?;
    Ok(ExtraIssuerPolicies {
        main_audiences: same_issuer,
        others: policies,
    })
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

fn boxed_full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(url: &str) -> Issuer {
        Issuer::new(url).unwrap()
    }

    #[test]
    fn extra_issuers_group_by_issuer_and_the_main_one_adds_audiences() {
        let extra: Vec<ExtraIssuer> = [
            ("https://op.example", "mlflow-api"),
            ("https://ci.example", "mlflow"),
            ("https://ci.example", "mlflow-ci"),
            ("https://other.example", "x"),
        ]
        .into_iter()
        .map(|(i, a)| ExtraIssuer {
            issuer: issuer(i),
            audience: a.to_owned(),
        })
        .collect();
        let policies = extra_issuer_policies(&issuer("https://op.example"), &extra).unwrap();
        assert_eq!(policies.main_audiences, ["mlflow-api"]);
        let others = policies.others;
        assert_eq!(others.len(), 2);
        assert_eq!(others[0].0.as_str(), "https://ci.example");
        assert_eq!(others[0].1.audiences(), ["mlflow", "mlflow-ci"]);
        assert_eq!(others[1].1.audiences(), ["x"]);
    }
}
