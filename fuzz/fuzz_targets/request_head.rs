//! The proxy's request head handling in oidc-tower.
//!
//! Input: an HTTP/1-style request head: a request line `METHOD TARGET [VERSION]`, then
//! `name: value` header lines (invalid ones are skipped). Checked on it:
//! - `routes::normalize_path` (result absolute, without dot segments or empty segments, and
//!   stable) and skip-auth rule matching (a match really is under a skipped prefix);
//! - `identity_headers::strip_identity_headers`: no spelling of an identity header survives;
//! - `identity_headers::strip_own_cookies`: no own cookie survives, as the codec reads cookies;
//! - `bearer_response::extract_bearer`: a token is token68 and within the size limit;
//! - `forwarded::OriginalRequest` from an untrusted and from a trusted (loopback) peer: a path
//!   that starts with exactly one `/`, a plain host, and forwarded headers ignored when untrusted.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use http::{HeaderMap, Method, Uri};
use libfuzzer_sys::fuzz_target;
use oidc_core::cookie::RequestCookies;
use oidc_tower::bearer_response::{MAX_BEARER_TOKEN_BYTES, QueryTokens, extract_bearer};
use oidc_tower::forwarded::{OriginalRequest, Scheme, TrustedProxies};
use oidc_tower::identity_headers::{
    CookiePrefixes, IDENTITY_HEADER_NAMES, strip_identity_headers, strip_own_cookies,
};
use oidc_tower::routes::{RouteRules, normalize_path};

const UNTRUSTED_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
const SKIPPED_PREFIXES: [&str; 3] = ["/health", "/public/", "/api/hooks/"];

fn skip_rules() -> &'static RouteRules {
    static RULES: OnceLock<RouteRules> = OnceLock::new();
    RULES.get_or_init(|| {
        RouteRules::skip_auth(["GET=^/health$", "/public/", "POST=/api/hooks/[a-z]+"])
            .expect("valid rules")
    })
}

fuzz_target!(|data: &[u8]| {
    let (request_line, header_lines) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let mut parts = request_line.split(|b| *b == b' ');
    let method = Method::from_bytes(parts.next().unwrap_or_default()).unwrap_or(Method::GET);
    let target = parts.next().unwrap_or_default();
    let headers = oidc_fuzz::header_map_from_lines(header_lines);

    if let Ok(raw) = std::str::from_utf8(target) {
        check_path(raw);
    }
    let Ok(uri) = Uri::try_from(target) else {
        check_headers(&method, &Uri::from_static("/"), headers);
        return;
    };
    check_path(uri.path());
    if skip_rules().matches_request(&method, &uri) {
        let path = normalize_path(uri.path()).expect("a matched path normalizes");
        assert!(
            SKIPPED_PREFIXES
                .iter()
                .any(|p| path.as_str().starts_with(p)),
            "{method} {uri} skipped as {path}"
        );
    }
    check_headers(&method, &uri, headers);
});

fn check_path(raw: &str) {
    let Ok(path) = normalize_path(raw) else {
        return;
    };
    let path = path.as_str();
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    assert!(!path.contains("//"), "{raw:?} -> {path:?}");
    for segment in path.split('/') {
        assert!(segment != "." && segment != "..", "{raw:?} -> {path:?}");
    }
    if !path.contains('%') {
        let again = normalize_path(path).expect("a normalized path normalizes again");
        assert_eq!(
            again.as_str(),
            path,
            "normalization of {raw:?} is not stable"
        );
    }
}

fn check_headers(method: &Method, uri: &Uri, mut headers: HeaderMap) {
    for query_tokens in [QueryTokens::Refuse, QueryTokens::Accept] {
        if let Ok(Some(token)) = extract_bearer(&headers, uri.query(), query_tokens) {
            let token = token.expose();
            assert!(!token.is_empty() && token.len() <= MAX_BEARER_TOKEN_BYTES);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)),
                "{token:?} is not token68"
            );
        }
    }

    for (peer, trusted) in [(UNTRUSTED_PEER, false), (oidc_fuzz::LOOPBACK, true)] {
        let Ok(original) = OriginalRequest::from_parts(
            method,
            uri,
            &headers,
            peer,
            &TrustedProxies::loopback(),
            Scheme::Https,
        ) else {
            continue;
        };
        assert_eq!(original.via_trusted_proxy(), trusted);
        let path = original.path_and_query();
        assert!(
            path.starts_with('/') && !path.starts_with("//"),
            "path {path:?}"
        );
        let host = original.host();
        assert!(
            !host.is_empty() && !host.contains(['@', '/', '\\', '?', '#']),
            "host {host:?}"
        );
        if !trusted {
            assert_eq!(original.method(), method);
            assert_eq!(original.scheme(), Scheme::Https);
            assert_eq!(original.client_ip(), peer);
        }
        let url = url::Url::parse(&original.url());
        let url = url.unwrap_or_else(|e| panic!("{:?} does not parse: {e}", original.url()));
        assert!(url.has_host(), "{:?}", original.url());
    }

    let stripped = strip_identity_headers(&mut headers);
    assert!(stripped <= IDENTITY_HEADER_NAMES.len() * 4096);
    for name in headers.keys() {
        let canonical = name.as_str().replace('_', "-").to_ascii_lowercase();
        assert!(
            !IDENTITY_HEADER_NAMES.contains(&canonical.as_str()),
            "{name} survived"
        );
    }

    let own = CookiePrefixes::new(["__Host-session"]);
    strip_own_cookies(&mut headers, |name| own.matches(name));
    let cookies = RequestCookies::from_headers(&headers);
    for name in cookies.names() {
        assert!(!own.matches(name), "own cookie {name:?} survived");
    }
}
