//! Several upstreams behind one listener, chosen by the longest matching path prefix.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use tower_service::Service;

use super::path::{normalize_path_cow, strip_segment_prefix};
use super::{BoxError, ProxyBody, ProxyConfigError, ProxyError, ResponseFuture, ReverseProxy};

/// Routes each request to the [`ReverseProxy`] whose prefix is the longest whole-segment match
/// of the normalized path; `404` (`no_route`) when none matches.
///
/// ```
/// use oidc_tower::proxy::{ProxyRouter, ReverseProxy};
///
/// let router = ProxyRouter::new([
///     ReverseProxy::builder("http://127.0.0.1:5000").strip_prefix("/mlflow").build()?,
///     ReverseProxy::builder("http://127.0.0.1:5001").keep_prefix("/mlflow/ajax-api").build()?,
///     ReverseProxy::builder("http://127.0.0.1:8080").build()?, // everything else
/// ])?;
/// assert_eq!(router.route_for("/mlflow/ajax-api/2.0/x").map(|p| p.upstream()), Some("http://127.0.0.1:5001"));
/// assert_eq!(router.route_for("/mlflow/#/experiments").map(|p| p.upstream()), Some("http://127.0.0.1:5000"));
/// assert_eq!(router.route_for("/mlflowx").map(|p| p.upstream()), Some("http://127.0.0.1:8080"));
/// # Ok::<(), oidc_tower::proxy::ProxyConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProxyRouter {
    /// Sorted by prefix length, longest first.
    routes: Arc<Vec<ReverseProxy>>,
}

impl ProxyRouter {
    /// A router over `routes`; two routes with the same prefix are rejected.
    pub fn new(routes: impl IntoIterator<Item = ReverseProxy>) -> Result<Self, ProxyConfigError> {
        let mut routes: Vec<ReverseProxy> = routes.into_iter().collect();
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix().len()));
        for pair in routes.windows(2) {
            if let [first, second] = pair
                && first.prefix() == second.prefix()
            {
                return Err(ProxyConfigError::DuplicateRoute {
                    prefix: first.prefix().to_owned(),
                });
            }
        }
        Ok(ProxyRouter {
            routes: Arc::new(routes),
        })
    }

    /// The proxy that serves `path` (normalized first), if any.
    pub fn route_for(&self, path: &str) -> Option<&ReverseProxy> {
        let normalized = normalize_path_cow(path);
        self.routes
            .iter()
            .find(|route| strip_segment_prefix(&normalized, route.prefix()).is_some())
    }
}

impl<B> Service<Request<B>> for ProxyRouter
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
        let Some(proxy) = self.route_for(request.uri().path()).cloned() else {
            let answer = ProxyError::NoRoute {
                path: normalize_path_cow(request.uri().path()).into_owned(),
            }
            .into_response();
            return ResponseFuture::new(std::future::ready(Ok(answer)));
        };
        let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
        ResponseFuture::new(async move { Ok(proxy.forward(request).await) })
    }
}
