//! Which headers cross the proxy: hop-by-hop removal and the `X-Forwarded-*` chain.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::ProxyConfigError;

/// The address of the client connected to this proxy, as a request extension.
///
/// [`serve`](super::serve) inserts it; under axum, `ConnectInfo<SocketAddr>` is read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Peers whose `X-Forwarded-*` headers are believed (Caddy, a load balancer).
///
/// Requests from a trusted peer get the peer appended to their `X-Forwarded-For` chain and keep
/// their `X-Forwarded-Proto`/`-Host`; from anyone else these headers are replaced, and
/// `Forwarded`, `X-Real-IP`, `X-Forwarded-Port` and `X-Forwarded-Prefix` are removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Trust no peer (the default).
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Trust loopback peers (`127.0.0.0/8`, `::1`): a reverse proxy on the same host.
    pub fn loopback() -> Self {
        TrustedProxies {
            networks: vec![
                (IpAddr::from([127, 0, 0, 0]), 8),
                (IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), 128),
            ],
        }
    }

    /// Trust the given addresses and CIDR networks (`10.0.0.0/8`, `192.168.1.7`, `fd00::/8`).
    pub fn parse<I, S>(entries: I) -> Result<Self, ProxyConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut networks = Vec::new();
        for entry in entries {
            networks.push(parse_network(entry.as_ref().trim())?);
        }
        Ok(TrustedProxies { networks })
    }

    /// True when `ip` is inside one of the trusted networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .any(|(network, prefix_len)| in_network(ip, *network, *prefix_len))
    }
}

/// Headers that describe one connection and must not be forwarded.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers: the fixed list, every `Proxy-*` header and every header named in
/// `Connection`. With `upgrade` set (a protocol switch in progress), `Connection: upgrade` and the
/// original `Upgrade` value are put back.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let upgrade_value = headers.get(header::UPGRADE).cloned();
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_str(token.trim()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    let proxy_headers: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy_headers {
        headers.remove(name);
    }
    if let (true, Some(value)) = (upgrade, upgrade_value) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, value);
    }
}

/// True when the headers ask to switch protocols (`Connection: upgrade` plus `Upgrade`).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// What the proxy knows about the hop it received the request on.
pub(crate) struct ForwardedContext<'a> {
    pub(crate) peer: Option<IpAddr>,
    pub(crate) trusted: bool,
    pub(crate) proto: &'static str,
    pub(crate) host: Option<&'a HeaderValue>,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const UNTRUSTED_ONLY_REMOVED: [HeaderName; 4] = [
    header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
];

/// Sets `X-Forwarded-For/Proto/Host`, appending to the incoming chain only from a trusted peer.
pub(crate) fn set_forwarded(headers: &mut HeaderMap, context: &ForwardedContext<'_>) {
    let incoming_chain: Vec<String> = if context.trusted {
        headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    headers.remove(&X_FORWARDED_FOR);
    let mut chain = incoming_chain;
    if let Some(peer) = context.peer {
        chain.push(peer.to_canonical().to_string());
    }
    if let (false, Ok(value)) = (chain.is_empty(), HeaderValue::from_str(&chain.join(", "))) {
        headers.insert(X_FORWARDED_FOR, value);
    }

    let keep_incoming = |headers: &HeaderMap, name: &HeaderName| {
        context.trusted && headers.get(name).is_some_and(|value| !value.is_empty())
    };
    if !keep_incoming(headers, &X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(context.proto));
    }
    if !keep_incoming(headers, &X_FORWARDED_HOST) {
        match context.host {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host.clone());
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
    if !context.trusted {
        for name in &UNTRUSTED_ONLY_REMOVED {
            headers.remove(name);
        }
    }
}

fn parse_network(entry: &str) -> Result<(IpAddr, u8), ProxyConfigError> {
    let invalid = || ProxyConfigError::InvalidTrustedProxy {
        entry: entry.to_owned(),
    };
    let (address, prefix_len) = match entry.split_once('/') {
        Some((address, len)) => (address, Some(len)),
        None => (entry, None),
    };
    let address = IpAddr::from_str(address)
        .map_err(|_| invalid())?
        .to_canonical();
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix_len {
        None => max,
        Some(len) => len
            .parse::<u8>()
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(invalid)?,
    };
    Ok((address, prefix_len))
}

fn in_network(ip: IpAddr, network: IpAddr, prefix_len: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_str(name).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn removes_hop_by_hop_and_connection_named_headers() {
        let mut headers = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("accept", "text/html"),
        ]);
        remove_hop_by_hop(&mut headers, false);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn keeps_upgrade_when_switching_protocols() {
        let mut headers = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(wants_upgrade(&headers));
        remove_hop_by_hop(&mut headers, true);
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["sec-websocket-key"], "k");
        assert!(!wants_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn untrusted_peer_replaces_forwarded_headers() {
        let mut headers = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        let host = HeaderValue::from_static("app.example");
        set_forwarded(
            &mut headers,
            &ForwardedContext {
                peer: Some(IpAddr::from([10, 0, 0, 5])),
                trusted: false,
                proto: "http",
                host: Some(&host),
            },
        );
        assert_eq!(headers["x-forwarded-for"], "10.0.0.5");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "app.example");
        assert!(!headers.contains_key("forwarded"));
        assert!(!headers.contains_key("x-real-ip"));
    }

    #[test]
    fn trusted_peer_appends_to_the_chain() {
        let mut headers = map(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "sso.example"),
        ]);
        let host = HeaderValue::from_static("127.0.0.1:8080");
        set_forwarded(
            &mut headers,
            &ForwardedContext {
                peer: Some("::ffff:127.0.0.1".parse().unwrap()),
                trusted: true,
                proto: "http",
                host: Some(&host),
            },
        );
        assert_eq!(
            headers["x-forwarded-for"],
            "203.0.113.9, 198.51.100.1, 127.0.0.1"
        );
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "sso.example");
    }

    #[test]
    fn trusted_networks() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap();
        assert!(trusted.contains("10.200.1.1".parse().unwrap()));
        assert!(trusted.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(trusted.contains("192.168.1.7".parse().unwrap()));
        assert!(!trusted.contains("192.168.1.8".parse().unwrap()));
        assert!(trusted.contains("fd12::1".parse().unwrap()));
        assert!(!trusted.contains("fe80::1".parse().unwrap()));
        assert!(
            TrustedProxies::parse(["0.0.0.0/0"])
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(TrustedProxies::loopback().contains("127.0.0.2".parse().unwrap()));
        assert!(!TrustedProxies::none().contains("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/", "::1/129", "1.2.3.4/-1"] {
            let err = TrustedProxies::parse([bad]).unwrap_err();
            assert_eq!(err.code(), "invalid_trusted_proxy", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn trusted_proxy_parser_never_panics(entry in ".{0,50}") {
            let _ = TrustedProxies::parse([entry]);
        }

        #[test]
        fn hop_by_hop_removal_never_panics(connection in "[ -~]{0,60}") {
            if let Ok(value) = HeaderValue::from_str(&connection) {
                let mut headers = HeaderMap::new();
                headers.insert(header::CONNECTION, value);
                remove_hop_by_hop(&mut headers, true);
                prop_assert!(!headers.contains_key(header::CONNECTION));
            }
        }
    }
}
