//! A streaming reverse proxy: forwards requests to an HTTP or HTTPS upstream, or to one on a
//! Unix domain socket (`unix:///run/app.sock`), without buffering bodies.
//!
//! [`ReverseProxy`] is a tower `Service` that sends each request to one upstream over a pooled
//! hyper client and streams the response back. Bodies pass through frame by frame, so a
//! multi-gigabyte upload or download uses constant memory. Hop-by-hop headers are removed,
//! `X-Forwarded-For/Proto/Host` are set (see [`TrustedProxies`]), protocol upgrades such as
//! WebSocket are spliced through, and upstream failures become 502 or 504 responses with a
//! plain-text body (see [`ProxyError`]). An `https://` upstream is verified as [`UpstreamTls`]
//! says and spoken to over HTTP/2 when it offers h2 by ALPN. A body that stops moving for the
//! idle timeout is cut off. [`ProxyRouter`] picks among several proxies by
//! longest path prefix; [`serve`] runs any service on hyper with graceful shutdown.
//!
//! ```
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Empty};
//! use oidc_tower::proxy::ReverseProxy;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An upstream that serves at `/`, mounted under `/mlflow` here.
//! let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let upstream_url = format!("http://{}", upstream.local_addr().unwrap());
//! drop(upstream); // nothing listens there now
//!
//! let proxy = ReverseProxy::builder(&upstream_url)
//!     .strip_prefix("/mlflow")
//!     .build()
//!     .unwrap();
//! let request = Request::get("/mlflow/api/2.0/mlflow/experiments/search")
//!     .body(Empty::<bytes::Bytes>::new())
//!     .unwrap();
//! let response = proxy.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert!(body.ends_with(b"(upstream_connect_failed)\n"));
//! # }
//! ```
//!
//! # Under plain hyper
//!
//! Pass the service to [`serve`], which accepts connections, records each client's address as a
//! [`PeerAddr`] extension (used for `X-Forwarded-For`), enables upgrades and drains in-flight
//! requests when the shutdown future completes:
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use oidc_tower::proxy::{ReverseProxy, serve, shutdown_signal};
//! let proxy = ReverseProxy::builder("http://127.0.0.1:5000").build().expect("valid upstream");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, proxy, shutdown_signal()).await
//! # }
//! ```
//!
//! # Under axum
//!
//! The service's error type is `Infallible` and it accepts `axum::body::Body`, so it can be a
//! fallback: `Router::new().fallback_service(proxy)`. Serve the app with
//! `into_make_service_with_connect_info::<SocketAddr>()` so that the client address reaches
//! `X-Forwarded-For` (the proxy reads axum's `ConnectInfo<SocketAddr>`). axum's own `serve`
//! enables upgrades, so WebSocket passes through as well.

mod error;
mod headers;
mod idle;
mod path;
mod router;
mod serve;
mod service;
mod tls;
mod unix;

pub use self::error::{ProxyConfigError, ProxyError};
pub use self::headers::{PeerAddr, TrustedProxies};
pub use self::path::normalize_path;
pub use self::router::ProxyRouter;
pub use self::serve::{
    DEFAULT_WRITE_STALL_TIMEOUT, serve, serve_with_stall_timeout, shutdown_signal,
};
pub use self::service::{PrefixMode, ResponseFuture, ReverseProxy, ReverseProxyBuilder};
pub use self::tls::UpstreamTls;

/// The error type carried by streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The streaming body of every response the proxy returns (and of the requests it sends).
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
