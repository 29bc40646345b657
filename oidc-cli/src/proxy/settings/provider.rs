//! The provider and this client's registration at it: the issuer, the client id and secret, the
//! callback URL under the proxy prefix, the scopes, PKCE, and the URL sign-out returns to.

use oidc_core::{Issuer, Secret};
use url::Url;

use super::reader::Resolver;

/// The provider, the client and its callback.
pub(super) struct Provider {
    pub(super) issuer: Option<Issuer>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<Secret>,
    pub(super) redirect_url: Option<Url>,
    pub(super) proxy_prefix: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) scope_explicit: bool,
}

impl Resolver<'_> {
    /// The issuer, the client, the callback (which must be `{proxy_prefix}/callback`), the
    /// scopes and the PKCE method.
    pub(super) fn provider(&mut self) -> Provider {
        let issuer = self.issuer();
        let client_id = self.text("client-id").map(|s| s.value.trim().to_owned());
        if client_id.is_none() {
            self.missing("client-id", "the client id is required (--client-id)");
        }
        let (client_secret, _) = self.secret_lines("client-secret", "client-secret-file");
        let client_secret = client_secret.into_iter().next().map(|(secret, _)| secret);
        let redirect_url = self.redirect_url();
        let proxy_prefix = self.proxy_prefix();
        if let (Some(url), Some(prefix)) = (&redirect_url, &proxy_prefix) {
            self.check_callback_path(url, prefix);
        }
        let scopes = self.scopes();
        if let Some(s) = self.text("code-challenge-method").cloned()
            && !s.value.trim().eq_ignore_ascii_case("S256")
        {
            self.fail(
                "code-challenge-method",
                &s.source,
                "unsupported_pkce_method",
                format!(
                    "{:?} is not supported: only S256 (plain PKCE protects nothing)",
                    s.value
                ),
            );
        }
        Provider {
            issuer,
            client_id,
            client_secret,
            redirect_url,
            proxy_prefix,
            scopes,
            scope_explicit: self.text("scope").is_some(),
        }
    }

    /// `--oidc-issuer-url`, required.
    fn issuer(&mut self) -> Option<Issuer> {
        match self.text("oidc-issuer-url").cloned() {
            None => {
                self.missing(
                    "oidc-issuer-url",
                    "the provider's issuer URL is required (--oidc-issuer-url)",
                );
                None
            }
            Some(s) => match Issuer::new(s.value.trim()) {
                Ok(issuer) => Some(issuer),
                Err(e) => {
                    self.fail("oidc-issuer-url", &s.source, e.code(), e.to_string());
                    None
                }
            },
        }
    }

    /// `--redirect-url`, required.
    fn redirect_url(&mut self) -> Option<Url> {
        match self.text("redirect-url").cloned() {
            Some(s) => self.url("redirect-url", &s),
            None => {
                self.missing(
                    "redirect-url",
                    "the callback URL registered at the provider is required (--redirect-url, e.g. https://mlflow.example.com/oauth2/callback)",
                );
                None
            }
        }
    }

    /// The callback must be `{proxy_prefix}/callback`.
    fn check_callback_path(&mut self, url: &Url, prefix: &str) {
        let expected = format!("{prefix}/callback");
        if url.path() != expected
            && let Some(s) = self.text("redirect-url").cloned()
        {
            self.fail(
                "redirect-url",
                &s.source,
                "callback_outside_prefix",
                format!(
                    "the callback path is {:?}; it must be {expected:?} (--proxy-prefix + /callback)",
                    url.path()
                ),
            );
        }
    }

    /// `--scope`, with `openid` first when it is not listed.
    fn scopes(&self) -> Vec<String> {
        let scope = self.text_or("scope", "openid email profile");
        let mut scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        scopes
    }

    /// Where sign-out returns to, registered at the provider.
    pub(super) fn post_logout_redirect_url(&mut self) -> Option<Url> {
        match self.text("post-logout-redirect-url").cloned() {
            Some(s) => self.url("post-logout-redirect-url", &s),
            None => None,
        }
    }

    fn proxy_prefix(&mut self) -> Option<String> {
        let Some(s) = self.text("proxy-prefix").cloned() else {
            return Some("/oauth2".to_owned());
        };
        let prefix = s.value.trim();
        let valid = prefix.starts_with('/')
            && prefix.len() > 1
            && !prefix.ends_with('/')
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if valid {
            Some(prefix.to_owned())
        } else {
            self.fail(
                "proxy-prefix",
                &s.source,
                "invalid_prefix",
                format!("{prefix:?} must start with '/', not end with '/', and use plain path characters"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::proxy::settings::ProxySettings;
    use crate::proxy::settings::testing::{errors, flags, minimal};

    #[test]
    fn the_post_logout_redirect_url_must_be_an_http_url() {
        let mut pairs = minimal();
        pairs.push((
            "post-logout-redirect-url",
            "https://mlflow.example.com/oauth2/signed_out",
        ));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(
            s.post_logout_redirect_url.unwrap().as_str(),
            "https://mlflow.example.com/oauth2/signed_out"
        );
        let mut pairs = minimal();
        pairs.push(("post-logout-redirect-url", "/oauth2/signed_out"));
        let problems = errors(&pairs);
        assert!(
            problems
                .iter()
                .any(|e| e.option == "post-logout-redirect-url" && e.code == "invalid_url"),
            "{problems:?}"
        );
    }
}
