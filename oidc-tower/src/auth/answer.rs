//! The answers the front-ends write themselves: small escaped HTML pages for browsers, JSON for
//! APIs, redirects, and the body and future types of the layers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};

use crate::bearer_response::escape_html;
use crate::request_kind::prefers_html;

/// The body of a layer's response: its own answer (`Left`) or the inner service's (`Right`).
pub type AuthBody<B> = Either<Full<Bytes>, B>;

/// The future of the layers' services: authentication, then the inner service.
///
/// Boxed because the decision awaits the provider and the session store before the inner
/// service is called; it is `Send`.
pub struct ResponseFuture<T, E> {
    inner: Pin<Box<dyn Future<Output = Result<T, E>> + Send>>,
}

impl<T, E> ResponseFuture<T, E> {
    pub(crate) fn new(future: impl Future<Output = Result<T, E>> + Send + 'static) -> Self {
        ResponseFuture {
            inner: Box::pin(future),
        }
    }
}

impl<T, E> Future for ResponseFuture<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T, E> std::fmt::Debug for ResponseFuture<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Wraps one of our own answers as a layer response.
pub(crate) fn own<B>(response: Response<Bytes>) -> Response<AuthBody<B>> {
    response.map(|body| Either::Left(Full::new(body)))
}

/// Wraps the inner service's answer as a layer response.
pub(crate) fn passed<B>(response: Response<B>) -> Response<AuthBody<B>> {
    response.map(Either::Right)
}

/// An error answer: an HTML page when the client prefers HTML, JSON otherwise. `code` is the
/// stable code; `message` is shown to people and must hold no secret.
pub(crate) fn error_answer(
    status: StatusCode,
    code: &str,
    message: &str,
    request_headers: &HeaderMap,
) -> Response<Bytes> {
    if prefers_html(request_headers) {
        html_page(status, message, code)
    } else {
        json_answer(
            status,
            &serde_json::json!({ "error": code, "error_description": message }),
        )
    }
}

/// A JSON answer, never cached.
pub(crate) fn json_answer(status: StatusCode, value: &serde_json::Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A small HTML page, never cached. Every piece of text is escaped.
pub(crate) fn html_page(status: StatusCode, message: &str, code: &str) -> Response<Bytes> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{}</p><p><small>{}</small></p></body></html>\n",
        escape_html(message),
        escape_html(code),
    );
    html_answer(status, body)
}

/// An HTML answer that is never cached; `body` is the finished page.
pub(crate) fn html_answer(status: StatusCode, body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `302 Found` to `location`, never cached. A location that cannot be a header value
/// (impossible for URLs built by the `url` crate and checked return-to paths) becomes `/`.
pub(crate) fn redirect(location: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::FOUND;
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, value);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Appends `Set-Cookie` headers to a response.
pub(crate) fn append_cookies<B>(response: &mut Response<B>, cookies: Vec<HeaderValue>) {
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_answers_escape_their_text() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        let response = error_answer(
            StatusCode::FORBIDDEN,
            "denied",
            "<script>x</script>",
            &headers,
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(body.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!body.contains("<script>"));
    }

    #[test]
    fn api_answers_are_json() {
        let response = error_answer(
            StatusCode::UNAUTHORIZED,
            "no_session",
            "sign in",
            &HeaderMap::new(),
        );
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let value: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(value["error"], "no_session");
    }

    #[test]
    fn unusable_locations_fall_back_to_root() {
        assert_eq!(redirect("/a\nb").headers()[header::LOCATION], "/");
        assert_eq!(redirect("/app?x=1").headers()[header::LOCATION], "/app?x=1");
    }
}
