//! Which headers cross the proxy: hop-by-hop removal and the `X-Forwarded-*` chain.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub use crate::forwarded::TrustedProxies;

/// The address of the client connected to this proxy, as a request extension.
///
/// [`serve`](super::serve) inserts it; under axum, `ConnectInfo<SocketAddr>` is read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

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
    // One pass over the names present; most messages carry none of these, and then nothing is
    // allocated or removed.
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        if HOP_BY_HOP.contains(name) || name.as_str().starts_with("proxy-") {
            doomed.push(name.clone());
        }
    }
    if doomed.is_empty() {
        return;
    }
    let upgrade_value = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_str(token.trim()).ok())
        .collect();
    for name in doomed.iter().chain(named.iter()) {
        headers.remove(name);
    }
    if let Some(value) = upgrade_value {
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
    let mut chain = String::new();
    if context.trusted {
        for value in headers.get_all(&X_FORWARDED_FOR) {
            let Ok(value) = value.to_str() else { continue };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(value);
        }
    }
    if let Some(peer) = context.peer {
        if !chain.is_empty() {
            chain.push_str(", ");
        }
        push_ip(&mut chain, peer.to_canonical());
    }
    let chain_value = (!chain.is_empty())
        .then(|| HeaderValue::from_maybe_shared(Bytes::from(chain)).ok())
        .flatten();
    match chain_value {
        Some(value) => {
            headers.insert(X_FORWARDED_FOR, value);
        }
        None => {
            headers.remove(&X_FORWARDED_FOR);
        }
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
        let present: Vec<HeaderName> = headers
            .keys()
            .filter(|name| UNTRUSTED_ONLY_REMOVED.contains(name))
            .cloned()
            .collect();
        for name in &present {
            headers.remove(name);
        }
    }
}

/// Appends `ip` in its usual text form; IPv4 without the formatting machinery, which costs
/// more than the rest of the header work on every request.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
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
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "9.99.199.200",
            "::1",
            "2001:db8::5",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    proptest! {
        #[test]
        fn ipv4_text_matches_display(octets in any::<[u8; 4]>()) {
            let ip = IpAddr::from(octets);
            let mut out = String::new();
            push_ip(&mut out, ip);
            prop_assert_eq!(out, ip.to_string());
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
