//! What reaches the upstream besides the request: identity headers, the access token, the
//! forward-auth endpoint; and whose `X-Forwarded-*` headers are believed (`--reverse-proxy`
//! and the trusted proxies).

use oidc_tower::forwarded::TrustedProxies;

use super::reader::{Resolver, values};
use crate::proxy::sources::Source;

/// The headers passed upstream and the trusted proxies.
pub(super) struct Forwarding {
    pub(super) pass_user_headers: bool,
    pub(super) set_xauthrequest: bool,
    pub(super) pass_access_token: bool,
    pub(super) pass_authorization_header: bool,
    pub(super) forward_auth: bool,
    pub(super) reverse_proxy: bool,
    pub(super) trusted_proxies: TrustedProxies,
    pub(super) trusted_proxy_entries: Vec<String>,
}

impl Resolver<'_> {
    /// The header options, forward-auth, and the proxies trusted with `--reverse-proxy`.
    pub(super) fn forwarding(&mut self) -> Forwarding {
        let pass_user_headers = self.bool("pass-user-headers", true);
        let set_xauthrequest = self.bool("set-xauthrequest", false);
        let pass_access_token = self.bool("pass-access-token", false);
        let pass_authorization_header = self.bool("pass-authorization-header", false);
        let forward_auth = self.bool("forward-auth", true);
        let reverse_proxy = self.bool("reverse-proxy", false);
        let (trusted_proxies, trusted_proxy_entries) = self.trusted_proxies(reverse_proxy);
        Forwarding {
            pass_user_headers,
            set_xauthrequest,
            pass_access_token,
            pass_authorization_header,
            forward_auth,
            reverse_proxy,
            trusted_proxies,
            trusted_proxy_entries,
        }
    }

    fn trusted_proxies(&mut self, reverse_proxy: bool) -> (TrustedProxies, Vec<String>) {
        let entries = self.list("trusted-proxy-ip");
        if !reverse_proxy {
            if let Some(first) = entries.first() {
                self.fail(
                    "trusted-proxy-ip",
                    &first.source,
                    "needs_reverse_proxy",
                    "trusted proxies are only consulted with --reverse-proxy".to_owned(),
                );
            }
            return (TrustedProxies::none(), Vec::new());
        }
        if entries.is_empty() {
            return (TrustedProxies::loopback(), vec!["loopback".to_owned()]);
        }
        let texts = values(&entries);
        match TrustedProxies::parse(texts.iter()) {
            Ok(trusted) => (trusted, texts),
            Err(e) => {
                let source = entries
                    .iter()
                    .find(|s| TrustedProxies::parse([s.value.trim()]).is_err())
                    .or(entries.first())
                    .map(|s| s.source.clone())
                    .unwrap_or(Source::Default);
                self.fail("trusted-proxy-ip", &source, e.code(), e.to_string());
                (TrustedProxies::none(), Vec::new())
            }
        }
    }
}
