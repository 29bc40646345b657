//! Whether an unauthenticated request is a browser navigation (answer: redirect to sign-in) or an
//! API call (answer: 401).
//!
//! The decision, in order (the first rule that applies wins):
//! 1. the path is on a configured API route → [`RequestKind::Api`];
//! 2. the method is neither `GET` nor `HEAD` → `Api`;
//! 3. `X-Requested-With` is present (XHR) or `Upgrade` is present (WebSocket) → `Api`;
//! 4. `Sec-Fetch-Mode: navigate` → `Navigation`; any other `Sec-Fetch-Mode` → `Api`;
//! 5. `Sec-Fetch-Dest` of `document`, `iframe`, `frame`, `embed` or `object` → `Navigation`;
//!    any other `Sec-Fetch-Dest` → `Api`;
//! 6. `Accept` names `text/html` or `application/xhtml+xml` with a non-zero quality →
//!    `Navigation`; otherwise (JSON, `*/*`, no `Accept`: scripts and SDKs) → `Api`.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, Method, header::ACCEPT};
//! use oidc_tower::request_kind::{classify, RequestKind};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"));
//! assert_eq!(classify(&Method::GET, &headers, false), RequestKind::Navigation);
//! headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
//! assert_eq!(classify(&Method::GET, &headers, false), RequestKind::Api);
//! ```

use http::{HeaderMap, Method, Uri, header};

use crate::routes::RouteRules;

/// What kind of client a request comes from, for answering it when it is not authenticated.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A browser navigating to a page: redirect it to sign in.
    Navigation,
    /// A script, SDK, XHR/fetch or non-GET request: answer 401 (a redirect would break it).
    Api,
}

/// Classifies a request from its method and headers; `on_api_route` comes from the API rules.
pub fn classify(method: &Method, headers: &HeaderMap, on_api_route: bool) -> RequestKind {
    if on_api_route {
        return RequestKind::Api;
    }
    if method != Method::GET && method != Method::HEAD {
        return RequestKind::Api;
    }
    if headers.contains_key("x-requested-with") || headers.contains_key(header::UPGRADE) {
        return RequestKind::Api;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return if mode.as_bytes().eq_ignore_ascii_case(b"navigate") {
            RequestKind::Navigation
        } else {
            RequestKind::Api
        };
    }
    if let Some(dest) = headers.get("sec-fetch-dest") {
        let is_document = [&b"document"[..], b"iframe", b"frame", b"embed", b"object"]
            .iter()
            .any(|d| dest.as_bytes().eq_ignore_ascii_case(d));
        return if is_document {
            RequestKind::Navigation
        } else {
            RequestKind::Api
        };
    }
    if accepts_html(headers) {
        RequestKind::Navigation
    } else {
        RequestKind::Api
    }
}

/// A classifier holding the compiled API route rules.
///
/// ```
/// use http::{Request, Method};
/// use oidc_tower::{request_kind::{RequestClassifier, RequestKind}, routes::RouteRules};
///
/// let classifier = RequestClassifier::new(RouteRules::api(["^/api/"]).unwrap());
/// let request = Request::get("/api/2.0/runs").header("accept", "text/html").body(()).unwrap();
/// assert_eq!(classifier.classify_request(&request), RequestKind::Api);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestClassifier {
    api_routes: RouteRules,
}

impl RequestClassifier {
    /// A classifier with these API routes.
    pub fn new(api_routes: RouteRules) -> Self {
        Self { api_routes }
    }

    /// Classifies from the parts of a request.
    pub fn classify_parts(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> RequestKind {
        let on_api_route = self.api_routes.matches_request(method, uri);
        classify(method, headers, on_api_route)
    }

    /// Classifies a request.
    pub fn classify_request<B>(&self, request: &http::Request<B>) -> RequestKind {
        self.classify_parts(request.method(), request.uri(), request.headers())
    }
}

/// Whether `Accept` explicitly names an HTML media type with a non-zero quality.
///
/// Wildcards (`*/*`, `text/*`) do not count: every HTTP client sends them.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    media_ranges(headers).any(|range| {
        range.quality > 0
            && ((range.kind == "text" && range.subtype == "html")
                || (range.kind == "application" && range.subtype == "xhtml+xml"))
    })
}

/// Whether an error body should be HTML rather than JSON for this request.
///
/// True when the quality `Accept` gives to `text/html` by an explicit range is higher than the
/// quality it gives to `application/json` (by any range, wildcards included).
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let html = media_ranges(headers)
        .filter(|r| r.kind == "text" && r.subtype == "html")
        .map(|r| r.quality)
        .max()
        .unwrap_or(0);
    html > 0 && html > quality_of(headers, "application", "json")
}

/// One media range of an `Accept` header, quality in thousandths.
struct MediaRange {
    kind: String,
    subtype: String,
    quality: u16,
}

/// Quality (0..=1000) of a media type under the most specific matching range; 0 if none matches,
/// 1000 when there is no `Accept` header at all.
fn quality_of(headers: &HeaderMap, kind: &str, subtype: &str) -> u16 {
    if !headers.contains_key(header::ACCEPT) {
        return 1000;
    }
    let mut best: Option<(u8, u16)> = None;
    for range in media_ranges(headers) {
        let specificity = match (range.kind.as_str(), range.subtype.as_str()) {
            (k, s) if k == kind && s == subtype => 3,
            (k, "*") if k == kind => 2,
            ("*", "*") => 1,
            _ => continue,
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, range.quality));
        }
    }
    best.map_or(0, |(_, q)| q)
}

fn media_ranges(headers: &HeaderMap) -> impl Iterator<Item = MediaRange> + '_ {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(parse_media_range)
}

fn parse_media_range(text: &str) -> Option<MediaRange> {
    let mut parts = text.split(';');
    let media = parts.next()?.trim();
    let (kind, subtype) = media.split_once('/')?;
    if kind.is_empty() || subtype.is_empty() {
        return None;
    }
    let mut quality = 1000;
    for param in parts {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            quality = parse_quality(value.trim())?;
        }
    }
    Some(MediaRange {
        kind: kind.to_ascii_lowercase(),
        subtype: subtype.to_ascii_lowercase(),
        quality,
    })
}

/// Parses an RFC 9110 qvalue (`0`, `0.5`, `1.000`) into thousandths.
fn parse_quality(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const BROWSER_ACCEPT: &str =
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

    #[test]
    fn browser_navigation_is_a_navigation() {
        let h = headers(&[
            ("accept", BROWSER_ACCEPT),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ]);
        assert_eq!(classify(&Method::GET, &h, false), RequestKind::Navigation);
        assert_eq!(classify(&Method::HEAD, &h, false), RequestKind::Navigation);
    }

    #[test]
    fn api_route_wins_over_browser_headers() {
        let h = headers(&[("accept", BROWSER_ACCEPT), ("sec-fetch-mode", "navigate")]);
        assert_eq!(classify(&Method::GET, &h, true), RequestKind::Api);
    }

    #[test]
    fn non_get_methods_are_api() {
        let h = headers(&[("accept", BROWSER_ACCEPT), ("sec-fetch-mode", "navigate")]);
        assert_eq!(classify(&Method::POST, &h, false), RequestKind::Api);
        assert_eq!(classify(&Method::DELETE, &h, false), RequestKind::Api);
    }

    #[test]
    fn xhr_and_websocket_are_api() {
        let xhr = headers(&[
            ("accept", BROWSER_ACCEPT),
            ("x-requested-with", "XMLHttpRequest"),
        ]);
        assert_eq!(classify(&Method::GET, &xhr, false), RequestKind::Api);
        let ws = headers(&[("accept", BROWSER_ACCEPT), ("upgrade", "websocket")]);
        assert_eq!(classify(&Method::GET, &ws, false), RequestKind::Api);
    }

    #[test]
    fn fetch_modes_other_than_navigate_are_api() {
        for mode in ["cors", "no-cors", "same-origin", "websocket"] {
            let mut h = headers(&[("accept", BROWSER_ACCEPT)]);
            h.insert("sec-fetch-mode", HeaderValue::from_static(mode));
            assert_eq!(
                classify(&Method::GET, &h, false),
                RequestKind::Api,
                "{mode}"
            );
        }
    }

    #[test]
    fn fetch_dest_decides_when_mode_is_absent() {
        let doc = headers(&[("sec-fetch-dest", "iframe")]);
        assert_eq!(classify(&Method::GET, &doc, false), RequestKind::Navigation);
        let empty = headers(&[("accept", BROWSER_ACCEPT), ("sec-fetch-dest", "empty")]);
        assert_eq!(classify(&Method::GET, &empty, false), RequestKind::Api);
    }

    #[test]
    fn accept_decides_for_old_browsers_and_scripts() {
        assert_eq!(
            classify(&Method::GET, &headers(&[("accept", "text/html")]), false),
            RequestKind::Navigation
        );
        assert_eq!(
            classify(&Method::GET, &headers(&[("accept", "*/*")]), false),
            RequestKind::Api
        );
        assert_eq!(
            classify(
                &Method::GET,
                &headers(&[("accept", "application/json")]),
                false
            ),
            RequestKind::Api
        );
        assert_eq!(
            classify(&Method::GET, &HeaderMap::new(), false),
            RequestKind::Api
        );
        assert_eq!(
            classify(
                &Method::GET,
                &headers(&[("accept", "text/html;q=0, application/json")]),
                false
            ),
            RequestKind::Api
        );
    }

    #[test]
    fn accept_spread_over_several_headers_is_read() {
        let h = headers(&[
            ("accept", "application/json;q=0.1"),
            ("accept", "TEXT/HTML"),
        ]);
        assert!(accepts_html(&h));
    }

    #[test]
    fn malformed_accept_is_ignored_without_panic() {
        let h = headers(&[("accept", "text/html;q=2, ;;, /, text/, a/b;q=0.12345")]);
        assert!(!accepts_html(&h));
        assert_eq!(classify(&Method::GET, &h, false), RequestKind::Api);
    }

    #[test]
    fn prefers_html_compares_qualities() {
        assert!(prefers_html(&headers(&[("accept", BROWSER_ACCEPT)])));
        assert!(!prefers_html(&headers(&[("accept", "*/*")])));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&headers(&[(
            "accept",
            "text/html;q=0.5, application/json"
        )])));
        assert!(prefers_html(&headers(&[(
            "accept",
            "text/html, application/json;q=0.9"
        )])));
    }

    #[test]
    fn quality_parsing() {
        assert_eq!(parse_quality("1"), Some(1000));
        assert_eq!(parse_quality("1.000"), Some(1000));
        assert_eq!(parse_quality("0.8"), Some(800));
        assert_eq!(parse_quality("0.125"), Some(125));
        assert_eq!(parse_quality("0"), Some(0));
        assert_eq!(parse_quality("1.5"), None);
        assert_eq!(parse_quality("0.1234"), None);
        assert_eq!(parse_quality("x"), None);
    }

    #[test]
    fn classifier_uses_api_routes() {
        let classifier = RequestClassifier::new(RouteRules::api(["^/api/"]).unwrap());
        let h = headers(&[("accept", BROWSER_ACCEPT)]);
        let api: Uri = "/api/2.0/mlflow/runs".parse().unwrap();
        let page: Uri = "/experiments".parse().unwrap();
        assert_eq!(
            classifier.classify_parts(&Method::GET, &api, &h),
            RequestKind::Api
        );
        assert_eq!(
            classifier.classify_parts(&Method::GET, &page, &h),
            RequestKind::Navigation
        );
    }
}
