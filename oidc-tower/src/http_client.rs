//! How the adapter talks to the provider: an [`HttpClient`] trait that sends the core's
//! `http::Request<Vec<u8>>` and returns a fully read, size-limited `http::Response<Bytes>`,
//! and [`ReqwestHttpClient`], its default implementation (rustls, no OpenSSL).
//!
//! Every provider call has a connect timeout, a total timeout and a body limit. The limit is
//! enforced while the body streams in, whatever `Content-Length` says.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use oidc_core::ErrorKind;
use oidc_core::provider_response::MAX_PROVIDER_RESPONSE_BYTES;

/// Sends one request to the provider and reads the whole answer.
///
/// Implement it to route provider calls through your own client (a proxy, mTLS, a test double
/// that answers from memory). The trait is object-safe: the adapter holds an
/// `Arc<dyn HttpClient>`.
#[async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends `request` and returns the answer with its body read in full.
    ///
    /// Any status is a successful exchange; only transport failures are errors.
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Bytes>, HttpError>;
}

#[async_trait]
impl<T: HttpClient + ?Sized> HttpClient for Arc<T> {
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        (**self).execute(request).await
    }
}

/// Why a provider call failed before an answer was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The call took longer than the total timeout.
    #[error("{url}: no complete answer within {after:?}")]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// No connection could be made (refused, DNS, TLS handshake).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL called.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The answer's body exceeded the limit.
    #[error("{url}: the answer exceeds the {limit}-byte limit")]
    TooLarge {
        /// The URL called.
        url: String,
        /// The limit applied.
        limit: usize,
    },
    /// The request could not be sent as given (e.g. a URI without scheme or host).
    #[error("cannot send the request to {url}: {reason}")]
    InvalidRequest {
        /// The URI of the request.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection broke while sending or reading.
    #[error("{url}: transport error: {reason}")]
    Transport {
        /// The URL called.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The client could not be built (TLS backend setup).
    #[error("cannot build the HTTP client: {reason}")]
    Build {
        /// What failed.
        reason: String,
    },
}

impl HttpError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::Timeout { .. } => ErrorKind::HttpTimeout,
            HttpError::Connect { .. } => ErrorKind::HttpConnect,
            HttpError::TooLarge { .. } => ErrorKind::HttpTooLarge,
            HttpError::InvalidRequest { .. } => ErrorKind::HttpInvalidRequest,
            HttpError::Transport { .. } => ErrorKind::HttpTransport,
            HttpError::Build { .. } => ErrorKind::HttpClientBuild,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The default connect timeout (5 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default total timeout for one call, body included (10 s).
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings for [`ReqwestHttpClient`].
#[derive(Clone, Debug)]
#[must_use]
pub struct ReqwestHttpClientBuilder {
    connect_timeout: Duration,
    total_timeout: Duration,
    max_body_bytes: usize,
    user_agent: String,
}

impl Default for ReqwestHttpClientBuilder {
    fn default() -> Self {
        ReqwestHttpClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            max_body_bytes: MAX_PROVIDER_RESPONSE_BYTES,
            user_agent: concat!("oidc-tower/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ReqwestHttpClientBuilder {
    /// How long to wait for a connection (TCP and TLS).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one call may take, from sending to the last byte of the body.
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// The largest body read; larger answers fail with [`HttpError::TooLarge`].
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The `User-Agent` sent.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the client. Redirects are not followed: a provider's endpoints are stated in its
    /// metadata, and following redirects would let another host answer for it.
    pub fn build(self) -> Result<ReqwestHttpClient, HttpError> {
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| HttpError::Build {
                reason: error_chain(&e),
            })?;
        Ok(ReqwestHttpClient {
            client,
            total_timeout: self.total_timeout,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// The default [`HttpClient`]: reqwest over rustls, with timeouts and a streamed body limit.
#[derive(Clone, Debug)]
pub struct ReqwestHttpClient {
    client: reqwest::Client,
    total_timeout: Duration,
    max_body_bytes: usize,
}

impl ReqwestHttpClient {
    /// A client with the default timeouts and the core's response limit.
    pub fn new() -> Result<Self, HttpError> {
        Self::builder().build()
    }

    /// Settings for a client.
    pub fn builder() -> ReqwestHttpClientBuilder {
        ReqwestHttpClientBuilder::default()
    }

    fn classify(&self, url: &str, error: &reqwest::Error) -> HttpError {
        // reqwest repeats the URL in its message; the error names it once.
        let describe =
            |error: &reqwest::Error| error_chain(error).replace(&format!(" for url ({url})"), "");
        let url = url.to_owned();
        if error.is_timeout() {
            HttpError::Timeout {
                url,
                after: self.total_timeout,
            }
        } else if error.is_connect() {
            HttpError::Connect {
                url,
                reason: root_cause(error),
            }
        } else if error.is_builder() {
            HttpError::InvalidRequest {
                url,
                reason: describe(error),
            }
        } else {
            HttpError::Transport {
                url,
                reason: describe(error),
            }
        }
    }
}

#[async_trait]
impl HttpClient for ReqwestHttpClient {
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let url = request.uri().to_string();
        let request =
            reqwest::Request::try_from(request).map_err(|e| HttpError::InvalidRequest {
                url: url.clone(),
                reason: error_chain(&e),
            })?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.classify(&url, &e))?;
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify(&url, &e))?
        {
            if body.len().saturating_add(chunk.len()) > self.max_body_bytes {
                return Err(HttpError::TooLarge {
                    url,
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = http::Response::new(body.freeze());
        *answer.status_mut() = response.status();
        *answer.version_mut() = response.version();
        *answer.headers_mut() = std::mem::take(response.headers_mut());
        Ok(answer)
    }
}

/// The innermost cause of a failed connection (`Connection refused (os error 111)`, a DNS or
/// TLS failure): the outer layers only repeat the URL and say "connect error".
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// The error's message followed by its causes, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection server that answers every request with `answer`, then closes.
    async fn serve_raw(answer: Vec<u8>, delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            }
        });
        addr
    }

    fn get(addr: SocketAddr, path: &str) -> http::Request<Vec<u8>> {
        http::Request::get(format!("http://{addr}{path}"))
            .body(Vec::new())
            .unwrap()
    }

    #[tokio::test]
    async fn reads_status_headers_and_body() {
        let addr = serve_raw(
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
                .to_vec(),
            Duration::ZERO,
        )
        .await;
        let client = ReqwestHttpClient::new().unwrap();
        let response = client.execute(get(addr, "/x")).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.body().as_ref(), b"{}");
    }

    #[tokio::test]
    async fn limit_holds_with_or_without_an_announced_length() {
        let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'a', 10));
        let addr = serve_raw(answer, Duration::ZERO).await;
        let client = ReqwestHttpClient::builder()
            .max_body_bytes(5)
            .build()
            .unwrap();
        let err = client.execute(get(addr, "/")).await.unwrap_err();
        assert_eq!(err.code(), "too_large");

        // Chunked: no length announced at all.
        let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\naaaa\r\n4\r\naaaa\r\n0\r\n\r\n".to_vec();
        let addr = serve_raw(answer, Duration::ZERO).await;
        let err = client.execute(get(addr, "/")).await.unwrap_err();
        assert_eq!(err.code(), "too_large");
    }

    #[tokio::test]
    async fn slow_answers_time_out() {
        let addr = serve_raw(b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), Duration::from_secs(5)).await;
        let client = ReqwestHttpClient::builder()
            .total_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let err = client.execute(get(addr, "/")).await.unwrap_err();
        assert_eq!(
            err,
            HttpError::Timeout {
                url: format!("http://{addr}/"),
                after: Duration::from_millis(200)
            }
        );
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = ReqwestHttpClient::new().unwrap();
        let err = client.execute(get(addr, "/")).await.unwrap_err();
        assert_eq!(err.code(), "connect");
        assert_eq!(
            err.to_string(),
            format!("cannot connect to http://{addr}/: Connection refused (os error 111)")
        );
    }

    #[tokio::test]
    async fn a_uri_without_host_is_an_invalid_request() {
        let client = ReqwestHttpClient::new().unwrap();
        let request = http::Request::get("/relative").body(Vec::new()).unwrap();
        let err = client.execute(request).await.unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn the_client_is_usable_as_a_trait_object() {
        let client: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new().unwrap());
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        assert_send_sync(&client);
    }
}
