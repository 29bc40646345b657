//! Inputs found by the fuzz targets in `fuzz/`, kept so that the fixes stay fixed.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderValue, Method, Uri};
use oidc_tower::forwarded::{OriginalRequest, Scheme, TrustedProxies};

const UNTRUSTED_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));

fn original_from_untrusted_peer(target: &str) -> OriginalRequest {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_static("app.example"));
    OriginalRequest::from_parts(
        &Method::GET,
        &Uri::try_from(target).unwrap(),
        &headers,
        UNTRUSTED_PEER,
        &TrustedProxies::loopback(),
        Scheme::Https,
    )
    .unwrap()
}

/// fuzz target `request_head`, input `GET //google.com HTTP/1.1\nHost: app.example\n`: the
/// request line's own target became a path starting with `//`, which a browser reads as another
/// host when it is used as a return-to path.
#[test]
fn request_target_with_two_leading_slashes_keeps_one() {
    let original = original_from_untrusted_peer("//google.com");
    assert_eq!(original.path_and_query(), "/google.com");
    assert_eq!(original.path(), "/google.com");
    assert_eq!(original.url(), "https://app.example/google.com");

    let original = original_from_untrusted_peer("///a//b?next=//c");
    assert_eq!(original.path_and_query(), "/a//b?next=//c");
}

/// The asterisk-form target of `OPTIONS *` has no leading `/` at all.
#[test]
fn asterisk_form_target_becomes_an_absolute_path() {
    let original = original_from_untrusted_peer("*");
    assert_eq!(original.path_and_query(), "/*");
    assert_eq!(original.url(), "https://app.example/*");
}

/// An ordinary origin-form target is kept byte for byte.
#[test]
fn ordinary_target_is_unchanged() {
    let original = original_from_untrusted_peer("/api/2.0/mlflow/runs/search?x=1&y=%2F");
    assert_eq!(
        original.path_and_query(),
        "/api/2.0/mlflow/runs/search?x=1&y=%2F"
    );
}

fn original_with_host(target: &str, host: &'static str) -> Result<OriginalRequest, String> {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_static(host));
    OriginalRequest::from_parts(
        &Method::GET,
        &Uri::try_from(target).unwrap(),
        &headers,
        UNTRUSTED_PEER,
        &TrustedProxies::loopback(),
        Scheme::Https,
    )
    .map_err(|e| e.code().to_owned())
}

/// fuzz target `request_head`, input `GET http:0xd83ad6ce HTTP/1.1` (from the open-redirect
/// seed list): the authority-form target gave the host `http:0xd83ad6ce`, whose "port" is not a
/// number, so `OriginalRequest::url()` did not parse as a URL.
#[test]
fn authority_with_a_non_numeric_port_is_refused() {
    assert!(original_with_host("http:0xd83ad6ce", "app.example").is_err());
    assert!(original_with_host("/", "app.example:http").is_err());
    assert!(original_with_host("/", "app.example:99999").is_err());
    assert!(original_with_host("/", "app.example:").is_err());
}

/// fuzz target `request_head`, input `E tsthp:+0` (found in the 10-minute run): the port `+0`
/// passed `u16`'s parser, which takes a sign, so the original URL `https://tsthp:+0/` did not
/// parse.
#[test]
fn port_with_a_sign_is_refused() {
    assert!(original_with_host("tsthp:+0", "app.example").is_err());
    assert!(original_with_host("/", "app.example:+443").is_err());
    assert!(original_with_host("/", "app.example:-1").is_err());
    assert!(original_with_host("/", "app.example: 443").is_err());
    assert_eq!(
        original_with_host("/", "app.example:8443").unwrap().url(),
        "https://app.example:8443/"
    );
}

/// fuzz target `request_head`, input `GET http://472.314.470.462 HTTP/1.1`: a dotted all-numeric
/// host that is no IPv4 address gave an original URL that does not parse.
#[test]
fn host_that_no_url_can_carry_is_refused() {
    assert!(original_with_host("http://472.314.470.462", "app.example").is_err());
    assert!(original_with_host("/", "1.2.3.256").is_err());
    assert!(
        original_with_host("/", "0x7f.1")
            .unwrap()
            .url()
            .starts_with("https://0x7f.1/")
    );
}

/// Hosts with a numeric port, and IPv6 literals with and without one, are kept.
#[test]
fn authority_with_a_numeric_port_is_kept() {
    let original = original_with_host("/x", "App.Example:8443").unwrap();
    assert_eq!(original.host(), "app.example:8443");
    assert_eq!(original.url(), "https://app.example:8443/x");
    assert_eq!(
        original_with_host("/", "[::1]:8080").unwrap().host(),
        "[::1]:8080"
    );
    assert_eq!(original_with_host("/", "[::1]").unwrap().host(), "[::1]");
}
