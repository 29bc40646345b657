//! The proxy service: builds the upstream request, sends it, streams the answer back.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body::Body;
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower_service::Service;

use super::headers::{
    ForwardedContext, PeerAddr, TrustedProxies, remove_hop_by_hop, set_forwarded, wants_upgrade,
};
use super::idle::IdleTimeoutBody;
use super::path::{join_upstream_path, normalize_path_cow, normalize_prefix, strip_segment_prefix};
use super::unix::{UnixConnector, socket_path};
use super::{BoxError, ProxyBody, ProxyConfigError, ProxyError, UpstreamTls};

/// The pooled client of one upstream: over the network (http, https) or a socket file.
#[derive(Clone)]
enum UpstreamClient {
    Network(Client<HttpsConnector<HttpConnector>, ProxyBody>),
    UnixSocket(Client<UnixConnector, ProxyBody>),
}

impl UpstreamClient {
    fn request(&self, request: Request<ProxyBody>) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            UpstreamClient::Network(client) => client.request(request),
            UpstreamClient::UnixSocket(client) => client.request(request),
        }
    }
}

/// What happens to the mount prefix when a request is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrefixMode {
    /// Remove it: `/mlflow/api/x` reaches an upstream serving at `/` as `/api/x`.
    Strip,
    /// Keep it: `/mlflow/api/x` reaches an upstream that serves under its own static prefix
    /// (MLflow's `--static-prefix /mlflow`) as `/mlflow/api/x`.
    Keep,
}

/// A tower `Service` forwarding requests to one HTTP upstream; see the [module docs](super).
///
/// Cheap to clone: clones share the connection pool. The error type is `Infallible`: every
/// failure is a response (502, 504, 404 for a path outside the prefix).
#[derive(Clone)]
pub struct ReverseProxy {
    inner: Arc<Inner>,
}

struct Inner {
    client: UpstreamClient,
    /// For protocol upgrades to an `https://` upstream: offers only HTTP/1.1, since a WebSocket
    /// handshake is an HTTP/1.1 upgrade.
    upgrade_client: Option<UpstreamClient>,
    upstream_scheme: Scheme,
    upstream_text: String,
    upstream_authority: Authority,
    upstream_base_path: String,
    prefix: String,
    prefix_mode: PrefixMode,
    trusted: TrustedProxies,
    response_timeout: Duration,
    connect_timeout: Duration,
    body_idle_timeout: Duration,
    preserve_host: bool,
}

impl std::fmt::Debug for ReverseProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseProxy")
            .field("upstream", &self.inner.upstream_text)
            .field("prefix", &self.inner.prefix)
            .field("prefix_mode", &self.inner.prefix_mode)
            .finish_non_exhaustive()
    }
}

impl ReverseProxy {
    /// Starts configuring a proxy to `upstream`, an `http://` or `https://host[:port][/base-path]`
    /// URL, or `unix:///path/to/socket` for an upstream listening on a Unix domain socket.
    pub fn builder(upstream: impl Into<String>) -> ReverseProxyBuilder {
        ReverseProxyBuilder {
            upstream: upstream.into(),
            tls: UpstreamTls::new(),
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            prefix: String::new(),
            prefix_mode: PrefixMode::Keep,
            trusted: TrustedProxies::none(),
            response_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            preserve_host: true,
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle_per_host: 64,
        }
    }

    /// The normalized mount prefix (`""` when the proxy serves every path).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The upstream URL as configured.
    pub fn upstream(&self) -> &str {
        &self.inner.upstream_text
    }

    /// Forwards one request; every failure is turned into its error response.
    pub(crate) async fn forward(&self, request: Request<ProxyBody>) -> Response<ProxyBody> {
        match self.inner.forward(request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(code = error.code(), %error, "proxy request failed");
                error.into_response()
            }
        }
    }
}

impl<B> Service<Request<B>> for ReverseProxy
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let proxy = self.clone();
        let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
        ResponseFuture::new(async move { Ok(proxy.forward(request).await) })
    }
}

/// The response future of [`ReverseProxy`] and [`ProxyRouter`](super::ProxyRouter).
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>,
}

impl ResponseFuture {
    pub(crate) fn new(
        future: impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
    ) -> Self {
        ResponseFuture {
            inner: Box::pin(future),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Configures a [`ReverseProxy`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ReverseProxyBuilder {
    upstream: String,
    tls: UpstreamTls,
    body_idle_timeout: Duration,
    prefix: String,
    prefix_mode: PrefixMode,
    trusted: TrustedProxies,
    response_timeout: Duration,
    connect_timeout: Duration,
    preserve_host: bool,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
}

impl ReverseProxyBuilder {
    /// Serve only paths under `prefix` and remove it before forwarding.
    pub fn strip_prefix(mut self, prefix: &str) -> Self {
        self.prefix = normalize_prefix(prefix);
        self.prefix_mode = PrefixMode::Strip;
        self
    }

    /// Serve only paths under `prefix` and forward them unchanged.
    pub fn keep_prefix(mut self, prefix: &str) -> Self {
        self.prefix = normalize_prefix(prefix);
        self.prefix_mode = PrefixMode::Keep;
        self
    }

    /// Peers whose `X-Forwarded-*` headers are kept and appended to (default: none).
    pub fn trusted_proxies(mut self, trusted: TrustedProxies) -> Self {
        self.trusted = trusted;
        self
    }

    /// How long the upstream may take to send response headers (default 60 s); then 504.
    /// Bodies are not limited: a long download keeps streaming.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long connecting to the upstream may take (default 5 s); then 504.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Forward the client's `Host` header (default `true`, as Caddy does); with `false` the
    /// upstream's own authority is sent. `X-Forwarded-Host` carries the client's host either way.
    pub fn preserve_host(mut self, preserve: bool) -> Self {
        self.preserve_host = preserve;
        self
    }

    /// How an `https://` upstream is trusted and what client certificate is offered (default:
    /// the system's CA store, no client certificate). Ignored for `http://` upstreams.
    pub fn tls(mut self, tls: UpstreamTls) -> Self {
        self.tls = tls;
        self
    }

    /// How long a request or response body may go without a single byte moving before it is
    /// cut off (default 5 minutes): a stalled upstream or client does not hold the connection.
    pub fn body_idle_timeout(mut self, timeout: Duration) -> Self {
        self.body_idle_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept (default 60 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections to the upstream are kept (default 64).
    pub fn pool_max_idle(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Checks the upstream URL and creates the proxy with its own connection pool. Must be called
    /// inside a tokio runtime only when requests are sent, not to build.
    pub fn build(self) -> Result<ReverseProxy, ProxyConfigError> {
        let invalid = |reason: &'static str| ProxyConfigError::InvalidUpstream {
            url: self.upstream.clone(),
            reason,
        };
        if let Some(path) = socket_path(&self.upstream) {
            let path = path.map_err(invalid)?;
            return self.build_unix(path);
        }
        let uri: Uri = self
            .upstream
            .parse()
            .map_err(|_| invalid("not a valid URL"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => return Err(invalid("the scheme must be http, https or unix")),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| invalid("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(invalid("the URL must not have a query"));
        }
        let base_path = normalize_prefix(uri.path());

        let (client, upgrade_client) = if scheme == Scheme::HTTPS {
            if self.tls.skips_verification() {
                tracing::warn!(
                    upstream = %self.upstream,
                    "TLS certificate verification of this upstream is OFF: anyone on the path can read and change its traffic"
                );
            }
            let config = self.tls.client_config()?;
            (
                self.client(
                    hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config(config.clone())
                        .https_only()
                        .enable_all_versions()
                        .wrap_connector(self.http_connector()),
                ),
                Some(
                    self.client(
                        hyper_rustls::HttpsConnectorBuilder::new()
                            .with_tls_config(config)
                            .https_only()
                            .enable_http1()
                            .wrap_connector(self.http_connector()),
                    ),
                ),
            )
        } else {
            // Never used for TLS: an http upstream's URIs all have the http scheme.
            let unused = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|err| ProxyConfigError::Tls {
                detail: err.to_string(),
            })?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
            (
                self.client(
                    hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config(unused)
                        .https_or_http()
                        .enable_http1()
                        .wrap_connector(self.http_connector()),
                ),
                None,
            )
        };

        Ok(ReverseProxy {
            inner: Arc::new(Inner {
                client,
                upgrade_client,
                upstream_scheme: scheme,
                body_idle_timeout: self.body_idle_timeout,
                upstream_text: self.upstream.trim_end_matches('/').to_owned(),
                upstream_authority: authority,
                upstream_base_path: base_path,
                prefix: self.prefix,
                prefix_mode: self.prefix_mode,
                trusted: self.trusted,
                response_timeout: self.response_timeout,
                connect_timeout: self.connect_timeout,
                preserve_host: self.preserve_host,
            }),
        })
    }
}

impl ReverseProxyBuilder {
    /// A proxy to an upstream on a socket file. Requests carry `http://localhost` as their URI
    /// authority; the client's `Host` goes along unless [`Self::preserve_host`] is off.
    fn build_unix(self, path: std::path::PathBuf) -> Result<ReverseProxy, ProxyConfigError> {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .build(UnixConnector::new(path, self.connect_timeout));
        Ok(ReverseProxy {
            inner: Arc::new(Inner {
                client: UpstreamClient::UnixSocket(client),
                upgrade_client: None,
                upstream_scheme: Scheme::HTTP,
                body_idle_timeout: self.body_idle_timeout,
                upstream_text: self.upstream,
                upstream_authority: Authority::from_static("localhost"),
                upstream_base_path: String::new(),
                prefix: self.prefix,
                prefix_mode: self.prefix_mode,
                trusted: self.trusted,
                response_timeout: self.response_timeout,
                connect_timeout: self.connect_timeout,
                preserve_host: self.preserve_host,
            }),
        })
    }

    fn http_connector(&self) -> HttpConnector {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.connect_timeout));
        connector.set_nodelay(true);
        // The TLS layer on top decides the scheme.
        connector.enforce_http(false);
        connector
    }

    fn client(&self, connector: HttpsConnector<HttpConnector>) -> UpstreamClient {
        UpstreamClient::Network(
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(self.pool_idle_timeout)
                .pool_max_idle_per_host(self.pool_max_idle_per_host)
                .build(connector),
        )
    }
}

/// How long a body may stand still by default before it is cut off.
const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

impl Inner {
    async fn forward(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let host_header = request.headers().get(header::HOST).cloned();
        let host_in_headers = host_header.is_some();
        let client_host = host_header.or_else(|| {
            request
                .uri()
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
        });
        *request.uri_mut() = self.upstream_uri(request.uri())?;

        let upgrade = wants_upgrade(request.headers()) && request.version() == Version::HTTP_11;
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));

        let peer = peer_ip(&request);
        let trusted = peer.is_some_and(|ip| self.trusted.contains(ip));
        let headers = request.headers_mut();
        remove_hop_by_hop(headers, upgrade);
        set_forwarded(
            headers,
            &ForwardedContext {
                peer,
                trusted,
                proto: "http",
                host: client_host.as_ref(),
            },
        );
        match (&client_host, self.preserve_host) {
            // The client's own `Host` header is already in place.
            (Some(_), true) if host_in_headers => {}
            (Some(host), true) => {
                headers.insert(header::HOST, host.clone());
            }
            _ => {
                if let Ok(value) = HeaderValue::from_str(self.upstream_authority.as_str()) {
                    headers.insert(header::HOST, value);
                }
            }
        }
        // Sent as HTTP/1.1 whatever the client spoke; over a connection where the upstream chose
        // h2 by ALPN, the client sends it as HTTP/2.
        *request.version_mut() = Version::HTTP_11;
        let request =
            request.map(|body| IdleTimeoutBody::new(body, self.body_idle_timeout).boxed_unsync());
        let client = match (&self.upgrade_client, upgrade) {
            (Some(upgrade_client), true) => upgrade_client,
            _ => &self.client,
        };

        let sent = tokio::time::timeout(self.response_timeout, client.request(request)).await;
        let mut response = match sent {
            Err(_elapsed) => {
                return Err(ProxyError::TimedOut {
                    upstream: self.upstream_text.clone(),
                    after: self.response_timeout,
                });
            }
            Ok(Err(err)) => {
                return Err(ProxyError::from_client_error(
                    &err,
                    &self.upstream_text,
                    self.connect_timeout,
                    self.upstream_scheme == Scheme::HTTPS,
                ));
            }
            Ok(Ok(response)) => response,
        };

        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        match (switching, client_upgrade) {
            (true, Some(client_upgrade)) => {
                let upstream_upgrade = hyper::upgrade::on(&mut response);
                tokio::spawn(splice_upgraded(client_upgrade, upstream_upgrade));
                remove_hop_by_hop(response.headers_mut(), true);
            }
            (true, None) => {
                return Err(ProxyError::UpstreamFailed {
                    upstream: self.upstream_text.clone(),
                    detail: "switched protocols without being asked to".to_owned(),
                });
            }
            (false, _) => remove_hop_by_hop(response.headers_mut(), false),
        }
        let idle = self.body_idle_timeout;
        Ok(response.map(|body| IdleTimeoutBody::new(body, idle).boxed_unsync()))
    }

    fn upstream_uri(&self, original: &Uri) -> Result<Uri, ProxyError> {
        let normalized = normalize_path_cow(original.path());
        let rest =
            strip_segment_prefix(&normalized, &self.prefix).ok_or_else(|| ProxyError::NoRoute {
                path: normalized.clone().into_owned(),
            })?;
        let unchanged = matches!(normalized, Cow::Borrowed(_))
            && self.upstream_base_path.is_empty()
            && (self.prefix_mode == PrefixMode::Keep || self.prefix.is_empty());
        let path_and_query = match original.path_and_query() {
            // The common case: the path goes upstream as it came, query and all.
            Some(original) if unchanged => original.clone(),
            _ => {
                let path = match self.prefix_mode {
                    PrefixMode::Strip => join_upstream_path(&self.upstream_base_path, rest),
                    PrefixMode::Keep => join_upstream_path(&self.upstream_base_path, &normalized),
                };
                let path_and_query = match original.query() {
                    Some(query) => {
                        let mut joined = path;
                        joined.reserve(query.len() + 1);
                        joined.push('?');
                        joined.push_str(query);
                        joined
                    }
                    None => path,
                };
                PathAndQuery::try_from(path_and_query).map_err(|err| ProxyError::BadRequest {
                    detail: err.to_string(),
                })?
            }
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.upstream_scheme.clone());
        parts.authority = Some(self.upstream_authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).map_err(|err| ProxyError::BadRequest {
            detail: err.to_string(),
        })
    }
}

fn peer_ip<B>(request: &Request<B>) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = request.extensions().get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(addr.ip());
    }
    None
}

/// Copies bytes both ways between the client and upstream connections after a 101 response.
async fn splice_upgraded(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(err) => {
            tracing::debug!(%err, "protocol upgrade through the proxy failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%err, "upgraded connection closed with an error");
    }
}
