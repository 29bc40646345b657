//! The original request behind a reverse proxy, believed only when the proxy is trusted.
//!
//! A forward-auth sub-request (Caddy `forward_auth`, nginx `auth_request`, Traefik ForwardAuth)
//! describes the user's request in `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` and `-For`.
//! Those headers are believed only when the TCP peer is in the configured [`TrustedProxies`]; from
//! anyone else they are ignored and the request's own method, host and path are used, so a client
//! cannot choose where its sign-in returns to, nor which address it appears to come from.
//!
//! From a trusted proxy each `X-Forwarded-*` header must appear at most once and hold one value
//! (configure the proxy to *set* them, not append); a repeated or malformed header is an error,
//! not a guess. The RFC 7239 `Forwarded` header is not read.
//!
//! ```
//! use std::net::IpAddr;
//! use http::Request;
//! use oidc_tower::forwarded::{OriginalRequest, Scheme, TrustedProxies};
//!
//! let trusted = TrustedProxies::parse(["10.0.0.0/8", "::1"]).unwrap();
//! let request = Request::get("/auth")
//!     .header("host", "auth.internal:4180")
//!     .header("x-forwarded-proto", "https")
//!     .header("x-forwarded-host", "mlflow.example.com")
//!     .header("x-forwarded-uri", "/#/experiments?x=1")
//!     .body(())
//!     .unwrap();
//!
//! let proxy: IpAddr = "10.1.2.3".parse().unwrap();
//! let original = OriginalRequest::reconstruct(&request, proxy, &trusted, Scheme::Http).unwrap();
//! assert_eq!(original.url(), "https://mlflow.example.com/#/experiments?x=1");
//!
//! let stranger: IpAddr = "203.0.113.9".parse().unwrap();
//! let original = OriginalRequest::reconstruct(&request, stranger, &trusted, Scheme::Http).unwrap();
//! assert_eq!(original.url(), "http://auth.internal:4180/auth");
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use oidc_core::ErrorKind;

/// Header naming the original method.
pub const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
/// Header naming the original scheme.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// Header naming the original host (and port).
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// Header naming the original path and query.
pub const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
/// Header listing the client and the proxies a request went through.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

const METHOD: &str = "x-forwarded-method";
const PROTO: &str = "x-forwarded-proto";
const HOST: &str = "x-forwarded-host";
const URI: &str = "x-forwarded-uri";

/// Longest `X-Forwarded-Uri` accepted, in bytes.
pub const MAX_FORWARDED_URI_BYTES: usize = 8 * 1024;

/// Why a trusted-proxy entry cannot be parsed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustedProxyError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("trusted proxy #{index} is not an IP address or CIDR")]
    InvalidAddress {
        /// Position of the entry, from 0.
        index: usize,
    },
    /// The prefix length is not a number within the address family's width.
    #[error("trusted proxy #{index} has an invalid prefix length (at most {max})")]
    InvalidPrefix {
        /// Position of the entry, from 0.
        index: usize,
        /// The largest prefix length for the address family.
        max: u8,
    },
    /// The address has bits set beyond the prefix (`10.0.0.1/8`): write the network address.
    #[error("trusted proxy #{index} has host bits set beyond its /{prefix}")]
    HostBitsSet {
        /// Position of the entry, from 0.
        index: usize,
        /// The prefix length given.
        prefix: u8,
    },
}

impl TrustedProxyError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidAddress { .. } => ErrorKind::TrustedProxyInvalidAddress,
            Self::InvalidPrefix { .. } => ErrorKind::TrustedProxyInvalidPrefix,
            Self::HostBitsSet { .. } => ErrorKind::TrustedProxyHostBitsSet,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// A set of IP networks whose `X-Forwarded-*` headers are believed.
///
/// IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`) are compared as IPv4.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// Trust no proxy: forwarded headers are always ignored.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trust loopback peers (`127.0.0.0/8`, `::1`): a reverse proxy on the same host.
    pub fn loopback() -> Self {
        Self {
            networks: vec![
                Network {
                    address: IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Network {
                    address: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                    prefix: 128,
                },
            ],
        }
    }

    /// Parses addresses (`10.0.0.1`, `::1`) and CIDR networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<I, S>(entries: I) -> Result<Self, TrustedProxyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let networks = entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| Network::parse(index, entry.as_ref().trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Whether `ip` is inside one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|network| network.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

/// The scheme of the original request.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the original request cannot be reconstructed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    /// A forwarded header from a trusted proxy appears more than once or lists several values.
    #[error("the {header} header holds more than one value")]
    Ambiguous {
        /// The header's name.
        header: &'static str,
    },
    /// A forwarded header from a trusted proxy holds a value that is not allowed.
    #[error("the {header} header holds an invalid value")]
    InvalidValue {
        /// The header's name.
        header: &'static str,
    },
    /// Neither the request nor a trusted proxy names the host.
    #[error("the request names no host")]
    MissingHost,
    /// The request carries several `Host` headers or an invalid one.
    #[error("the request's host is invalid or repeated")]
    InvalidHost,
}

impl ForwardedError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Ambiguous { .. } => ErrorKind::ForwardedHeaderAmbiguous,
            Self::InvalidValue { .. } => ErrorKind::ForwardedHeaderInvalid,
            Self::MissingHost => ErrorKind::ForwardedMissingHost,
            Self::InvalidHost => ErrorKind::ForwardedInvalidHost,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The request the user made, as seen by the outermost trusted proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    method: Method,
    scheme: Scheme,
    host: String,
    path_and_query: String,
    client_ip: IpAddr,
    via_trusted_proxy: bool,
}

impl OriginalRequest {
    /// Reconstructs the original request of `request`, received from TCP peer `peer`.
    ///
    /// `direct_scheme` is the scheme of the connection itself (`Https` when this server
    /// terminates TLS); it is used when no trusted proxy says otherwise.
    pub fn reconstruct<B>(
        request: &http::Request<B>,
        peer: IpAddr,
        trusted: &TrustedProxies,
        direct_scheme: Scheme,
    ) -> Result<Self, ForwardedError> {
        Self::from_parts(
            request.method(),
            request.uri(),
            request.headers(),
            peer,
            trusted,
            direct_scheme,
        )
    }

    /// Same as [`OriginalRequest::reconstruct`], from the parts of a request.
    pub fn from_parts(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        peer: IpAddr,
        trusted: &TrustedProxies,
        direct_scheme: Scheme,
    ) -> Result<Self, ForwardedError> {
        let via_trusted_proxy = trusted.contains(peer);
        let client_ip = client_ip(headers, peer, trusted);
        // The request line's own target may start with `//` (or be `*`): keep exactly one
        // leading `/`, so that the path can never be read as a scheme-relative `//host`.
        let own_path = || {
            let raw = uri.path_and_query().map_or("/", |p| p.as_str());
            format!("/{}", raw.trim_start_matches('/'))
        };
        if !via_trusted_proxy {
            return Ok(Self {
                method: method.clone(),
                scheme: direct_scheme,
                host: own_host(uri, headers)?,
                path_and_query: own_path(),
                client_ip,
                via_trusted_proxy,
            });
        }
        let method = match single_value(headers, METHOD)? {
            Some(value) => Method::from_bytes(value.as_bytes())
                .map_err(|_| ForwardedError::InvalidValue { header: METHOD })?,
            None => method.clone(),
        };
        let scheme = match single_value(headers, PROTO)? {
            Some(value) if value.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(value) if value.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(_) => {
                return Err(ForwardedError::InvalidValue { header: PROTO });
            }
            None => direct_scheme,
        };
        let host = match single_value(headers, HOST)? {
            Some(value) => {
                parse_host(value).ok_or(ForwardedError::InvalidValue { header: HOST })?
            }
            None => own_host(uri, headers)?,
        };
        let path_and_query = match single_value(headers, URI)? {
            Some(value) => {
                parse_forwarded_uri(value).ok_or(ForwardedError::InvalidValue { header: URI })?
            }
            None => own_path(),
        };
        Ok(Self {
            method,
            scheme,
            host,
            path_and_query,
            client_ip,
            via_trusted_proxy,
        })
    }

    /// The original method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The original scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The original host, lower-cased, with the port if one was given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The original path and query (always starts with `/`, never with `//`).
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The original path, without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path)
    }

    /// The client's address (see [`client_ip`]).
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    /// Whether the forwarded headers were believed.
    pub fn via_trusted_proxy(&self) -> bool {
        self.via_trusted_proxy
    }

    /// The original absolute URL, e.g. the place to return to after sign-in.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path_and_query)
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy.
///
/// Behind trusted proxies, `X-Forwarded-For` is read from right to left, skipping trusted
/// proxies; the first untrusted address is the client. If every listed address is trusted, the
/// leftmost one is the client. An entry that is not an address (with or without a port) stops the
/// walk at the last trusted hop.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let mut current = peer.to_canonical();
    if !trusted.contains(current) {
        return current;
    }
    let entries: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded_for_entry(entry) else {
            return current;
        };
        current = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    current
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(index: usize, entry: &str) -> Result<Self, TrustedProxyError> {
        let (address_text, prefix_text) = match entry.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (entry, None),
        };
        let written = IpAddr::from_str(address_text)
            .map_err(|_| TrustedProxyError::InvalidAddress { index })?;
        let written_max: u8 = if written.is_ipv4() { 32 } else { 128 };
        let written_prefix = match prefix_text {
            None => written_max,
            Some(text) => text
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= written_max && !text.starts_with('+'))
                .ok_or(TrustedProxyError::InvalidPrefix {
                    index,
                    max: written_max,
                })?,
        };
        let address = written.to_canonical();
        // An IPv4-mapped network (`::ffff:10.0.0.0/104`) is kept as the IPv4 network it maps.
        let prefix = if address.is_ipv4() && written.is_ipv6() {
            written_prefix
                .checked_sub(96)
                .ok_or(TrustedProxyError::InvalidPrefix { index, max: 128 })?
        } else {
            written_prefix
        };
        if masked(address, prefix) != address {
            return Err(TrustedProxyError::HostBitsSet {
                index,
                prefix: written_prefix,
            });
        }
        Ok(Self { address, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                masked(ip, self.prefix) == self.address
            }
            _ => false,
        }
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// The only value of a header, or `None` when absent; repeated or comma-separated is an error.
fn single_value<'a>(
    headers: &'a HeaderMap,
    header: &'static str,
) -> Result<Option<&'a str>, ForwardedError> {
    let mut values = headers.get_all(header).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ForwardedError::Ambiguous { header });
    }
    let text = visible_ascii(first).ok_or(ForwardedError::InvalidValue { header })?;
    let text = text.trim();
    if text.contains(',') && header != URI {
        return Err(ForwardedError::Ambiguous { header });
    }
    if text.is_empty() {
        return Err(ForwardedError::InvalidValue { header });
    }
    Ok(Some(text))
}

fn visible_ascii(value: &HeaderValue) -> Option<&str> {
    value.to_str().ok()
}

fn own_host(uri: &Uri, headers: &HeaderMap) -> Result<String, ForwardedError> {
    if let Some(authority) = uri.authority() {
        return parse_host(authority.as_str()).ok_or(ForwardedError::InvalidHost);
    }
    let mut values = headers.get_all(header::HOST).iter();
    let first = values.next().ok_or(ForwardedError::MissingHost)?;
    if values.next().is_some() {
        return Err(ForwardedError::InvalidHost);
    }
    let text = visible_ascii(first).ok_or(ForwardedError::InvalidHost)?;
    parse_host(text.trim()).ok_or(ForwardedError::InvalidHost)
}

/// A host with optional port: no user info, no path, not empty; lower-cased.
fn parse_host(text: &str) -> Option<String> {
    if text.is_empty() || text.contains(['@', '/', '\\', '?', '#']) {
        return None;
    }
    let authority = Authority::from_str(text).ok()?;
    if authority.host().is_empty() {
        return None;
    }
    // `Authority` accepts any text after the last `:` and then reports no port; only digits
    // (or nothing) may follow the host, or the URL built from it does not parse. (`u16`'s
    // parser alone would also take a sign: `+0`.)
    let after_host = authority.as_str().get(authority.host().len()..)?;
    if let Some(port) = after_host.strip_prefix(':') {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        port.parse::<u16>().ok()?;
    } else if !after_host.is_empty() {
        return None;
    }
    // The host must also be one a URL can carry (`472.314.470.462` is not: all-numeric hosts
    // are IPv4 addresses to a URL parser).
    url::Host::parse(authority.host()).ok()?;
    Some(authority.as_str().to_ascii_lowercase())
}

/// A path and query that starts with exactly one `/` (never a scheme-relative `//host`) and holds
/// only visible ASCII (no space, no control character, no backslash).
fn parse_forwarded_uri(text: &str) -> Option<String> {
    let well_formed = text.len() <= MAX_FORWARDED_URI_BYTES
        && text.starts_with('/')
        && !text.starts_with("//")
        && text.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    well_formed.then(|| text.to_owned())
}

fn parse_forwarded_for_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(entry) {
        return Some(ip.to_canonical());
    }
    // `[v6]:port`
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return IpAddr::from_str(inside).ok().map(|ip| ip.to_canonical());
    }
    // `a.b.c.d:port`
    let (address, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    match IpAddr::from_str(address).ok()? {
        ip @ IpAddr::V4(_) => Some(ip),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse(["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap()
    }

    fn request(pairs: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::get("/oauth2/auth?rd=1");
        for (name, value) in pairs {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn caddy_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "auth:4180"),
            ("x-forwarded-method", "POST"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "MLflow.Example.com"),
            ("x-forwarded-uri", "/api/2.0/mlflow/runs/search?x=1"),
            ("x-forwarded-for", "198.51.100.4"),
        ]
    }

    #[test]
    fn trusted_proxy_headers_are_believed() {
        let original = OriginalRequest::reconstruct(
            &request(&caddy_headers()),
            ip("10.9.8.7"),
            &trusted(),
            Scheme::Http,
        )
        .unwrap();
        assert_eq!(original.method(), Method::POST);
        assert_eq!(original.scheme(), Scheme::Https);
        assert_eq!(original.host(), "mlflow.example.com");
        assert_eq!(original.path_and_query(), "/api/2.0/mlflow/runs/search?x=1");
        assert_eq!(original.path(), "/api/2.0/mlflow/runs/search");
        assert_eq!(original.client_ip(), ip("198.51.100.4"));
        assert!(original.via_trusted_proxy());
        assert_eq!(
            original.url(),
            "https://mlflow.example.com/api/2.0/mlflow/runs/search?x=1"
        );
    }

    #[test]
    fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
        let original = OriginalRequest::reconstruct(
            &request(&caddy_headers()),
            ip("203.0.113.50"),
            &trusted(),
            Scheme::Https,
        )
        .unwrap();
        assert_eq!(original.method(), Method::GET);
        assert_eq!(original.scheme(), Scheme::Https);
        assert_eq!(original.host(), "auth:4180");
        assert_eq!(original.path_and_query(), "/oauth2/auth?rd=1");
        assert_eq!(original.client_ip(), ip("203.0.113.50"));
        assert!(!original.via_trusted_proxy());
    }

    #[test]
    fn no_trusted_proxies_means_headers_are_always_ignored() {
        let original = OriginalRequest::reconstruct(
            &request(&caddy_headers()),
            ip("127.0.0.1"),
            &TrustedProxies::none(),
            Scheme::Http,
        )
        .unwrap();
        assert_eq!(original.url(), "http://auth:4180/oauth2/auth?rd=1");
    }

    #[test]
    fn missing_forwarded_headers_fall_back_to_the_request() {
        let original = OriginalRequest::reconstruct(
            &request(&[("host", "svc.local"), ("x-forwarded-proto", "HTTPS")]),
            ip("10.0.0.1"),
            &trusted(),
            Scheme::Http,
        )
        .unwrap();
        assert_eq!(original.url(), "https://svc.local/oauth2/auth?rd=1");
        assert_eq!(original.client_ip(), ip("10.0.0.1"));
    }

    #[test]
    fn repeated_or_listed_forwarded_headers_are_ambiguous() {
        let mut pairs = caddy_headers();
        pairs.push(("x-forwarded-host", "evil.example"));
        let err = OriginalRequest::reconstruct(
            &request(&pairs),
            ip("10.0.0.1"),
            &trusted(),
            Scheme::Http,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ForwardedError::Ambiguous {
                header: "x-forwarded-host"
            }
        );
        assert_eq!(err.code(), "forwarded_header_ambiguous");
        let listed = request(&[("host", "a"), ("x-forwarded-proto", "https,http")]);
        assert_eq!(
            OriginalRequest::reconstruct(&listed, ip("10.0.0.1"), &trusted(), Scheme::Http),
            Err(ForwardedError::Ambiguous {
                header: "x-forwarded-proto"
            })
        );
    }

    #[test]
    fn invalid_forwarded_values_are_refused() {
        let cases: [(&str, &str); 8] = [
            ("x-forwarded-proto", "javascript"),
            ("x-forwarded-host", "user@evil.example"),
            ("x-forwarded-host", "evil.example/path"),
            ("x-forwarded-uri", "//evil.example/x"),
            ("x-forwarded-uri", "https://evil.example/x"),
            ("x-forwarded-uri", "/a\\b"),
            ("x-forwarded-method", "GE T"),
            ("x-forwarded-host", " "),
        ];
        for (name, value) in cases {
            let req = request(&[("host", "a"), (name, value)]);
            let err = OriginalRequest::reconstruct(&req, ip("10.0.0.1"), &trusted(), Scheme::Http)
                .unwrap_err();
            assert!(
                matches!(err, ForwardedError::InvalidValue { header } if header == name),
                "{name}: {value} gave {err:?}"
            );
        }
    }

    #[test]
    fn forwarded_uri_keeps_spa_fragments_and_commas() {
        let req = request(&[("host", "a"), ("x-forwarded-uri", "/#/experiments/1?a=1,2")]);
        let original =
            OriginalRequest::reconstruct(&req, ip("10.0.0.1"), &trusted(), Scheme::Http).unwrap();
        assert_eq!(original.path_and_query(), "/#/experiments/1?a=1,2");
    }

    #[test]
    fn host_is_required_and_single() {
        let none = request(&[]);
        assert_eq!(
            OriginalRequest::reconstruct(&none, ip("1.2.3.4"), &trusted(), Scheme::Http),
            Err(ForwardedError::MissingHost)
        );
        let two = request(&[("host", "a"), ("host", "b")]);
        assert_eq!(
            OriginalRequest::reconstruct(&two, ip("1.2.3.4"), &trusted(), Scheme::Http),
            Err(ForwardedError::InvalidHost)
        );
        let absolute = http::Request::get("http://Direct.Example:8080/p")
            .body(())
            .unwrap();
        let original =
            OriginalRequest::reconstruct(&absolute, ip("1.2.3.4"), &trusted(), Scheme::Http)
                .unwrap();
        assert_eq!(original.url(), "http://direct.example:8080/p");
    }

    #[test]
    fn client_ip_walks_forwarded_for_from_the_right() {
        let mut headers = HeaderMap::new();
        headers.append(
            &X_FORWARDED_FOR,
            HeaderValue::from_static("6.6.6.6, 198.51.100.4"),
        );
        headers.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        // The spoofed leftmost entry is never reached: the first untrusted from the right wins.
        assert_eq!(
            client_ip(&headers, ip("10.0.0.1"), &trusted()),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_ip(&headers, ip("203.0.113.1"), &trusted()),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn client_ip_handles_ports_garbage_and_all_trusted_chains() {
        let headers = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(&X_FORWARDED_FOR, HeaderValue::from_static(value));
            h
        };
        assert_eq!(
            client_ip(&headers("198.51.100.4:5555"), ip("10.0.0.1"), &trusted()),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_ip(&headers("[2001:db8::1]:443"), ip("10.0.0.1"), &trusted()),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(
                &headers("1.1.1.1, garbage, 10.0.0.3"),
                ip("10.0.0.1"),
                &trusted()
            ),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_ip(&headers("10.0.0.5, 10.0.0.3"), ip("10.0.0.1"), &trusted()),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_ip(&HeaderMap::new(), ip("10.0.0.1"), &trusted()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_networks() {
        let set = trusted();
        assert!(set.contains(ip("10.255.0.1")));
        assert!(set.contains(ip("::ffff:10.1.1.1")));
        assert!(set.contains(ip("192.168.1.7")));
        assert!(!set.contains(ip("192.168.1.8")));
        assert!(set.contains(ip("fd12::1")));
        assert!(!set.contains(ip("fe80::1")));
        assert!(!set.contains(ip("11.0.0.0")));
        let all = TrustedProxies::parse(["0.0.0.0/0"]).unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("2001:db8::1")));
        let mapped = TrustedProxies::parse(["::ffff:10.0.0.0/104"]).unwrap();
        assert!(mapped.contains(ip("10.2.3.4")));
        assert!(TrustedProxies::none().is_empty());
    }

    #[test]
    fn trusted_proxy_errors_are_exact() {
        assert_eq!(
            TrustedProxies::parse(["10.0.0.0/8", "nope"]),
            Err(TrustedProxyError::InvalidAddress { index: 1 })
        );
        assert_eq!(
            TrustedProxies::parse(["10.0.0.0/33"]),
            Err(TrustedProxyError::InvalidPrefix { index: 0, max: 32 })
        );
        assert_eq!(
            TrustedProxies::parse(["::/x"]),
            Err(TrustedProxyError::InvalidPrefix { index: 0, max: 128 })
        );
        assert_eq!(
            TrustedProxies::parse(["10.0.0.1/8"]),
            Err(TrustedProxyError::HostBitsSet {
                index: 0,
                prefix: 8
            })
        );
        assert_eq!(
            TrustedProxies::parse(["::ffff:10.0.0.0/64"]),
            Err(TrustedProxyError::InvalidPrefix { index: 0, max: 128 })
        );
        assert_eq!(
            TrustedProxyError::HostBitsSet {
                index: 0,
                prefix: 8
            }
            .code(),
            "trusted_proxy_host_bits_set"
        );
    }

    #[test]
    fn loopback_trusts_only_loopback_peers() {
        let trusted = TrustedProxies::loopback();
        assert!(trusted.contains("127.0.0.2".parse().unwrap()));
        assert!(trusted.contains("::1".parse().unwrap()));
        assert!(trusted.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!trusted.contains("10.0.0.1".parse().unwrap()));
        assert!(!TrustedProxies::none().contains("127.0.0.1".parse().unwrap()));
    }
}
