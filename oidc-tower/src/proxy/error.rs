//! What the client sees when the upstream cannot answer, and what a bad configuration is.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use oidc_core::ErrorKind;

use super::ProxyBody;
use crate::error_status::answer_status;

/// Why a request could not be forwarded. Each variant becomes a response with a plain-text body
/// naming the upstream and the stable code; the error itself is put in the response extensions
/// so outer layers and logs can see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Connecting to the upstream failed (refused, unreachable, reset during connect): 502.
    #[error("upstream {upstream} refused the connection: {detail}")]
    ConnectFailed {
        /// The upstream base URL.
        upstream: String,
        /// The operating system's description.
        detail: String,
    },
    /// Connecting to the upstream took longer than the connect timeout: 504.
    #[error("upstream {upstream} did not accept a connection within {after:?}")]
    ConnectTimedOut {
        /// The upstream base URL.
        upstream: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The upstream did not send response headers within the response timeout: 504.
    #[error("upstream {upstream} did not answer within {after:?}")]
    TimedOut {
        /// The upstream base URL.
        upstream: String,
        /// The response timeout.
        after: Duration,
    },
    /// The connection broke or the upstream spoke invalid HTTP before a response arrived: 502.
    #[error("upstream {upstream} failed before answering: {detail}")]
    UpstreamFailed {
        /// The upstream base URL.
        upstream: String,
        /// What went wrong.
        detail: String,
    },
    /// The TLS handshake with the upstream failed (untrusted or wrong-name certificate, client
    /// certificate refused): 502.
    #[error("upstream {upstream} failed the TLS handshake: {detail}")]
    TlsFailed {
        /// The upstream base URL.
        upstream: String,
        /// What rustls reported.
        detail: String,
    },
    /// A body stopped moving for longer than the idle timeout and was cut off. When it is the
    /// request body (a client stalled mid-upload) the answer is 408; a response body that stalls
    /// is simply cut.
    #[error("no body data moved for {after:?}")]
    BodyIdle {
        /// The idle timeout.
        after: Duration,
    },
    /// No route's prefix matches the request path: 404.
    #[error("no upstream is mapped for path {path}")]
    NoRoute {
        /// The normalized request path.
        path: String,
    },
    /// The request cannot be turned into an upstream request: 400.
    #[error("request cannot be forwarded: {detail}")]
    BadRequest {
        /// What is wrong with it.
        detail: String,
    },
}

impl ProxyError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::ConnectFailed { .. } => ErrorKind::UpstreamConnectFailed,
            ProxyError::ConnectTimedOut { .. } => ErrorKind::UpstreamConnectTimeout,
            ProxyError::TimedOut { .. } => ErrorKind::UpstreamTimeout,
            ProxyError::UpstreamFailed { .. } => ErrorKind::UpstreamFailed,
            ProxyError::TlsFailed { .. } => ErrorKind::UpstreamTlsFailed,
            ProxyError::BodyIdle { .. } => ErrorKind::BodyIdleTimeout,
            ProxyError::NoRoute { .. } => ErrorKind::NoRoute,
            ProxyError::BadRequest { .. } => ErrorKind::BadRequest,
        }
    }

    /// A stable snake_case code for this kind of failure.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// The status code the client receives, from [`answer_status`].
    pub fn status(&self) -> StatusCode {
        answer_status(self.kind()).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    /// The response for this error: status, `text/plain` body `"<status>: <message> (<code>)"`,
    /// and the error in the extensions.
    pub fn into_response(self) -> Response<ProxyBody> {
        let status = self.status();
        let body = format!("{status}: {self} ({})\n", self.code());
        let mut response = Response::new(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response.extensions_mut().insert(self);
        response
    }

    /// Sorts a client error into TLS/connect/timeout/other.
    pub(crate) fn from_client_error(
        err: &hyper_util::client::legacy::Error,
        upstream: &str,
        connect_timeout: Duration,
        over_tls: bool,
    ) -> ProxyError {
        if let Some(idle) = find_in_chain::<ProxyError>(err) {
            return idle.clone();
        }
        let detail = error_chain(err);
        if let Some(tls) = rustls_error(err) {
            return ProxyError::TlsFailed {
                upstream: upstream.to_owned(),
                detail: tls.to_string(),
            };
        }
        // An HTTP/2 connection keeps only the kind and text of the I/O error that ended it; over
        // TLS, invalid data on the socket is the TLS layer's complaint (an alert such as
        // "certificate required" after a TLS 1.3 handshake).
        if over_tls && has_io_kind(err, std::io::ErrorKind::InvalidData) {
            return ProxyError::TlsFailed {
                upstream: upstream.to_owned(),
                detail,
            };
        }
        if err.is_connect() {
            if has_io_kind(err, std::io::ErrorKind::TimedOut) {
                ProxyError::ConnectTimedOut {
                    upstream: upstream.to_owned(),
                    after: connect_timeout,
                }
            } else {
                ProxyError::ConnectFailed {
                    upstream: upstream.to_owned(),
                    detail,
                }
            }
        } else {
            ProxyError::UpstreamFailed {
                upstream: upstream.to_owned(),
                detail,
            }
        }
    }
}

/// Why a proxy or router configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyConfigError {
    /// The upstream is not an absolute `http://host[:port][/path]` URL.
    #[error("upstream URL {url:?} is not usable: {reason}")]
    InvalidUpstream {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The TLS settings for the upstream cannot be used (unreadable CA or key file, no trust
    /// anchor).
    #[error("upstream TLS settings are not usable: {detail}")]
    Tls {
        /// What is wrong with them.
        detail: String,
    },
    /// Two routes of a router have the same (normalized) prefix.
    #[error("two routes share the prefix {prefix:?}")]
    DuplicateRoute {
        /// The normalized prefix.
        prefix: String,
    },
}

impl ProxyConfigError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProxyConfigError::InvalidUpstream { .. } => ErrorKind::InvalidUpstream,
            ProxyConfigError::Tls { .. } => ErrorKind::InvalidUpstreamTls,
            ProxyConfigError::DuplicateRoute { .. } => ErrorKind::DuplicateRoute,
        }
    }

    /// A stable snake_case code for this kind of failure.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The rustls error somewhere in the chain. TLS streams wrap it in an `io::Error` (sometimes
/// twice), whose own `source` skips it, so each I/O error's inner error is followed too.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(cause) = current {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let mut io = cause.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(|io| io.get_ref()) {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        current = cause.source();
    }
    None
}

fn find_in_chain<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(err);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<E>() {
            return Some(found);
        }
        current = cause.source();
    }
    None
}

fn has_io_kind(err: &(dyn std::error::Error + 'static), kind: std::io::ErrorKind) -> bool {
    let mut current = Some(err);
    while let Some(cause) = current {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        current = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_response_carries_status_code_and_error() {
        let error = ProxyError::TimedOut {
            upstream: "http://127.0.0.1:5000".to_owned(),
            after: Duration::from_secs(3),
        };
        let response = error.clone().into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.extensions().get::<ProxyError>(), Some(&error));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body,
            "504 Gateway Timeout: upstream http://127.0.0.1:5000 did not answer within 3s (upstream_timeout)\n"
        );
    }

    #[test]
    fn every_proxy_error_has_its_own_status() {
        let after = Duration::from_secs(1);
        let errors = [
            ProxyError::ConnectFailed {
                upstream: "u".into(),
                detail: "d".into(),
            },
            ProxyError::ConnectTimedOut {
                upstream: "u".into(),
                after,
            },
            ProxyError::TimedOut {
                upstream: "u".into(),
                after,
            },
            ProxyError::UpstreamFailed {
                upstream: "u".into(),
                detail: "d".into(),
            },
            ProxyError::TlsFailed {
                upstream: "u".into(),
                detail: "d".into(),
            },
            ProxyError::BodyIdle { after },
            ProxyError::NoRoute { path: "/".into() },
            ProxyError::BadRequest { detail: "d".into() },
        ];
        for error in errors {
            assert!(answer_status(error.kind()).is_some(), "{}", error.code());
        }
    }

    #[test]
    fn statuses() {
        let connect = ProxyError::ConnectFailed {
            upstream: "u".into(),
            detail: "refused".into(),
        };
        assert_eq!(connect.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(connect.code(), "upstream_connect_failed");
        let route = ProxyError::NoRoute { path: "/x".into() };
        assert_eq!(route.status(), StatusCode::NOT_FOUND);
    }
}
