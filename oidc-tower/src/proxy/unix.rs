//! Upstreams on a Unix domain socket (`unix:///run/mlflow/mlflow.sock`).
//!
//! An upstream that listens only on a socket file is reachable only by processes the file's
//! permissions admit, not by everything that can open a port on the host. The connector ignores
//! the request URI's authority: every connection goes to the one socket.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tower_service::Service;

/// The socket path of a `unix:///absolute/path` upstream URL, if it is one.
pub(crate) fn socket_path(upstream: &str) -> Option<Result<PathBuf, &'static str>> {
    let rest = upstream.strip_prefix("unix://")?;
    if !rest.starts_with('/') {
        return Some(Err(
            "a unix upstream names an absolute socket path: unix:///run/app.sock",
        ));
    }
    if rest.contains(['?', '#']) || rest.ends_with('/') {
        return Some(Err(
            "a unix upstream is a socket file path, without query or trailing /",
        ));
    }
    Some(Ok(PathBuf::from(rest)))
}

/// Connects every request to one socket file.
#[derive(Debug, Clone)]
pub(crate) struct UnixConnector {
    path: Arc<Path>,
    timeout: Duration,
}

impl UnixConnector {
    pub(crate) fn new(path: PathBuf, timeout: Duration) -> Self {
        UnixConnector {
            path: path.into(),
            timeout,
        }
    }
}

impl Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = Arc::clone(&self.path);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, UnixStream::connect(&*path)).await {
                Ok(connected) => connected.map(TokioIo::new),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to the upstream socket timed out",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_socket_paths_are_unix_upstreams() {
        assert_eq!(socket_path("http://127.0.0.1:5000"), None);
        assert_eq!(
            socket_path("unix:///run/mlflow/mlflow.sock"),
            Some(Ok(PathBuf::from("/run/mlflow/mlflow.sock")))
        );
        assert!(matches!(socket_path("unix://run/app.sock"), Some(Err(_))));
        assert!(matches!(
            socket_path("unix:///run/app.sock?x=1"),
            Some(Err(_))
        ));
        assert!(matches!(socket_path("unix:///run/"), Some(Err(_))));
    }
}
