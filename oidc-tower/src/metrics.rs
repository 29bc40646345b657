//! Prometheus metrics of the layers, and their text rendering for a metrics endpoint.
//!
//! One [`Metrics`] value (cheap to clone: the counters are shared) is handed to every layer and
//! background task; label values are `&'static str` codes, so the number of series stays bounded.
//!
//! | metric | labels | counts |
//! | --- | --- | --- |
//! | `oidc_requests_total` | `outcome`, `code` | requests by outcome and rejection code |
//! | `oidc_request_duration_seconds` | | time spent deciding, histogram |
//! | `oidc_key_refreshes_total` | `result` | JWKS refreshes, `success` or `failure` |
//! | `oidc_provider_errors_total` | `code` | failed provider calls by error code |
//! | `oidc_token_cache_total` | `result` | validated-token cache `hit` / `miss` |
//!
//! ```
//! use std::time::Duration;
//! use oidc_tower::metrics::{Metrics, RequestOutcome};
//!
//! let metrics = Metrics::new();
//! metrics.record_request(RequestOutcome::Rejected, Some("token_expired"), Duration::from_millis(2));
//! let text = metrics.render();
//! assert!(text.contains(r#"oidc_requests_total{outcome="rejected",code="token_expired"} 1"#));
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Content type of [`Metrics::render`] output (OpenMetrics text, read by Prometheus).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a request ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// Authenticated and passed on.
    Allowed,
    /// Matched a skip-auth rule and passed on without authentication.
    Skipped,
    /// Sent to the provider to sign in.
    Redirected,
    /// Answered with an error (401, 403, 400).
    Rejected,
}

impl RequestOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Skipped => "skipped",
            Self::Redirected => "redirected",
            Self::Rejected => "rejected",
        }
    }
}

/// The layers' metrics. Clones share the same counters.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics in their own registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "oidc_requests",
            "Requests by outcome and rejection code",
            requests.clone(),
        );
        // 0.5 ms .. ~4 s
        let latency = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "oidc_request_duration_seconds",
            "Time spent authenticating a request",
            latency.clone(),
        );
        let key_refreshes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "oidc_key_refreshes",
            "JWKS refreshes by result",
            key_refreshes.clone(),
        );
        let provider_errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "oidc_provider_errors",
            "Failed calls to the OpenID Provider by error code",
            provider_errors.clone(),
        );
        let token_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "oidc_token_cache",
            "Validated-token cache lookups by result",
            token_cache.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                key_refreshes,
                provider_errors,
                token_cache,
            }),
        }
    }

    /// Counts a request and observes how long the decision took.
    ///
    /// `code` is the stable rejection code (`None` when allowed, skipped or redirected).
    pub fn record_request(
        &self,
        outcome: RequestOutcome,
        code: Option<&'static str>,
        elapsed: Duration,
    ) {
        let labels = RequestLabels {
            outcome: outcome.as_str(),
            code: code.unwrap_or(""),
        };
        self.inner.requests.get_or_create(&labels).inc();
        self.inner.latency.observe(elapsed.as_secs_f64());
    }

    /// Counts a JWKS refresh.
    pub fn record_key_refresh(&self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.inner
            .key_refreshes
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Counts a failed provider call by its stable error code.
    pub fn record_provider_error(&self, code: &'static str) {
        self.inner
            .provider_errors
            .get_or_create(&CodeLabels { code })
            .inc();
    }

    /// Counts a validated-token cache hit.
    pub fn record_token_cache_hit(&self) {
        self.inner
            .token_cache
            .get_or_create(&ResultLabels { result: "hit" })
            .inc();
    }

    /// Counts a validated-token cache miss.
    pub fn record_token_cache_miss(&self) {
        self.inner
            .token_cache
            .get_or_create(&ResultLabels { result: "miss" })
            .inc();
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; on the impossible error the output is partial.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }

    /// A `200` answer with [`Metrics::render`] for a metrics endpoint.
    pub fn response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.render()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    key_refreshes: Family<ResultLabels, Counter>,
    provider_errors: Family<CodeLabels, Counter>,
    token_cache: Family<ResultLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    outcome: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, prefix: &str) -> Option<String> {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .map(|line| line.rsplit(' ').next().unwrap_or_default().to_owned())
    }

    #[test]
    fn requests_are_counted_by_outcome_and_code() {
        let metrics = Metrics::new();
        metrics.record_request(RequestOutcome::Allowed, None, Duration::from_millis(1));
        metrics.record_request(RequestOutcome::Allowed, None, Duration::from_millis(1));
        metrics.record_request(
            RequestOutcome::Rejected,
            Some("token_expired"),
            Duration::from_secs(1),
        );
        let text = metrics.render();
        assert_eq!(
            line_value(&text, r#"oidc_requests_total{outcome="allowed",code=""}"#).as_deref(),
            Some("2")
        );
        assert_eq!(
            line_value(
                &text,
                r#"oidc_requests_total{outcome="rejected",code="token_expired"}"#
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            line_value(&text, "oidc_request_duration_seconds_count").as_deref(),
            Some("3")
        );
        assert_eq!(
            line_value(&text, "oidc_request_duration_seconds_sum").as_deref(),
            Some("1.002")
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn clones_share_counters() {
        let metrics = Metrics::new();
        let clone = metrics.clone();
        clone.record_key_refresh(true);
        clone.record_key_refresh(false);
        metrics.record_key_refresh(true);
        clone.record_provider_error("discovery_status");
        metrics.record_token_cache_hit();
        metrics.record_token_cache_hit();
        metrics.record_token_cache_miss();
        let text = metrics.render();
        assert_eq!(
            line_value(&text, r#"oidc_key_refreshes_total{result="success"}"#).as_deref(),
            Some("2")
        );
        assert_eq!(
            line_value(&text, r#"oidc_key_refreshes_total{result="failure"}"#).as_deref(),
            Some("1")
        );
        assert_eq!(
            line_value(
                &text,
                r#"oidc_provider_errors_total{code="discovery_status"}"#
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            line_value(&text, r#"oidc_token_cache_total{result="hit"}"#).as_deref(),
            Some("2")
        );
        assert_eq!(
            line_value(&text, r#"oidc_token_cache_total{result="miss"}"#).as_deref(),
            Some("1")
        );
    }

    #[test]
    fn response_has_openmetrics_content_type() {
        let response = Metrics::default().response();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            METRICS_CONTENT_TYPE
        );
        let body = std::str::from_utf8(response.body()).unwrap();
        assert!(
            body.contains("# TYPE oidc_request_duration_seconds histogram"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"));
    }
}
