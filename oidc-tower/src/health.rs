//! Liveness (`/healthz`, and oauth2-proxy's `/ping`) and readiness (`/readyz`, and
//! oauth2-proxy's `/ready`) answers, so that probes copied from either kind of deployment work.
//!
//! Liveness is always `200`: the process answers. Readiness follows a shared flag that the
//! application sets once it can serve (for example after the first successful discovery and key
//! fetch) and clears when it cannot.
//!
//! ```
//! use http::StatusCode;
//! use oidc_tower::health::{health_response, Readiness};
//!
//! let readiness = Readiness::new();
//! assert_eq!(health_response("/readyz", &readiness).unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
//! readiness.set_ready(true);
//! assert_eq!(health_response("/readyz", &readiness).unwrap().status(), StatusCode::OK);
//! assert_eq!(health_response("/ready", &readiness).unwrap().status(), StatusCode::OK);
//! assert_eq!(health_response("/ping", &readiness).unwrap().status(), StatusCode::OK);
//! assert!(health_response("/other", &readiness).is_none());
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Path of the liveness answer.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Path of the readiness answer.
pub const READYZ_PATH: &str = "/readyz";
/// oauth2-proxy's path of the liveness answer.
pub const PING_PATH: &str = "/ping";
/// oauth2-proxy's path of the readiness answer.
pub const READY_PATH: &str = "/ready";

/// A shared readiness flag; clones see the same flag. Starts not ready.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
}

impl Readiness {
    /// A flag that is not ready yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether the service is ready.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the service is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// `200 ok`.
pub fn healthz() -> Response<Bytes> {
    plain(StatusCode::OK, "ok\n")
}

/// `200 ready` when ready, else `503 not ready`.
pub fn readyz(readiness: &Readiness) -> Response<Bytes> {
    if readiness.is_ready() {
        plain(StatusCode::OK, "ready\n")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// The answer for [`HEALTHZ_PATH`] or [`PING_PATH`] (liveness), [`READYZ_PATH`] or
/// [`READY_PATH`] (readiness); `None` for any other path.
pub fn health_response(path: &str, readiness: &Readiness) -> Option<Response<Bytes>> {
    match path {
        HEALTHZ_PATH | PING_PATH => Some(healthz()),
        READYZ_PATH | READY_PATH => Some(readyz(readiness)),
        _ => None,
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_is_always_ok() {
        let response = healthz();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body().as_ref(), b"ok\n");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn readiness_is_shared_between_clones() {
        let readiness = Readiness::new();
        let clone = readiness.clone();
        assert!(!readiness.is_ready());
        assert_eq!(readyz(&readiness).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readyz(&readiness).body().as_ref(), b"not ready\n");
        clone.set_ready(true);
        assert_eq!(readyz(&readiness).status(), StatusCode::OK);
        assert_eq!(readyz(&readiness).body().as_ref(), b"ready\n");
        clone.set_ready(false);
        assert_eq!(readyz(&readiness).status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn health_response_routes_exact_paths_only() {
        let readiness = Readiness::new();
        assert_eq!(
            health_response("/healthz", &readiness).map(|r| r.status()),
            Some(StatusCode::OK)
        );
        assert!(health_response("/healthz/", &readiness).is_none());
        assert!(health_response("/HEALTHZ", &readiness).is_none());
    }
}
