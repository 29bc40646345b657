//! The session cookie: its name, secrets, domain, path and lifetime, and when it may go without
//! the Secure attribute (only for a loopback callback).

use std::time::Duration;

use oidc_core::Secret;
use url::Url;

use super::reader::Resolver;

/// Bytes a cookie secret needs at least (the cookie codec's minimum).
pub(crate) const MIN_COOKIE_SECRET_BYTES: usize = oidc_core::cookie::MIN_SECRET_BYTES;

/// The cookie options.
pub(super) struct Cookies {
    pub(super) name: String,
    pub(super) secrets: Vec<Secret>,
    pub(super) secure: bool,
    pub(super) domain: Option<String>,
    pub(super) path: String,
    pub(super) session_lifetime: Duration,
    pub(super) refresh_margin: Duration,
}

impl Resolver<'_> {
    /// The cookie's name, secrets, attributes and the session's lifetime.
    pub(super) fn cookies(&mut self) -> Cookies {
        let name = self.text_or("cookie-name", "oidc_session");
        let secrets = self.cookie_secrets();
        let secure = self.bool("cookie-secure", true);
        let domain = self.cookie_domain();
        let path = self.text_or("cookie-path", "/");
        let session_lifetime = self.duration("cookie-expire", Duration::from_secs(168 * 3600));
        let refresh_margin = self.duration("cookie-refresh", Duration::from_secs(60));
        if session_lifetime.is_zero()
            && let Some(s) = self.text("cookie-expire").cloned()
        {
            self.fail(
                "cookie-expire",
                &s.source,
                "invalid_duration",
                "a session must last longer than 0s".to_owned(),
            );
        }
        Cookies {
            name,
            secrets,
            secure,
            domain,
            path,
            session_lifetime,
            refresh_margin,
        }
    }

    /// A cookie without Secure is refused for an https callback, and for a callback off
    /// loopback.
    pub(super) fn check_cookie_secure(&mut self, cookie_secure: bool, redirect_url: Option<&Url>) {
        if !cookie_secure
            && let Some(url) = redirect_url
            && url.scheme() == "https"
            && let Some(s) = self.layers.value("cookie-secure").cloned()
        {
            self.fail(
                "cookie-secure",
                &s.source,
                "insecure_cookie_on_https",
                "the callback is https: cookies must keep the Secure attribute".to_owned(),
            );
        }
        if !cookie_secure
            && let Some(url) = redirect_url
            && url.scheme() == "http"
            && !oidc_core::issuer::is_loopback_host(url)
            && let Some(s) = self.layers.value("cookie-secure").cloned()
        {
            self.fail(
                "cookie-secure",
                &s.source,
                "insecure_cookie_off_loopback",
                "cookies without Secure are allowed only for a loopback callback (127.0.0.1, localhost, [::1]); serve the proxy over https".to_owned(),
            );
        }
    }

    fn cookie_secrets(&mut self) -> Vec<Secret> {
        let (secrets, source) = self.secret_lines("cookie-secret", "cookie-secret-file");
        if secrets.is_empty() {
            if source.is_none() {
                self.missing(
                    "cookie-secret",
                    "a cookie secret is required (--cookie-secret or --cookie-secret-file; make one with `openssl rand -base64 32`)",
                );
            } else if let Some(source) = source
                && !self.errors.iter().any(|e| e.option == "cookie-secret-file")
            {
                self.fail(
                    "cookie-secret-file",
                    &source,
                    "empty_file",
                    "the file holds no secret".to_owned(),
                );
            }
            return Vec::new();
        }
        let mut accepted = Vec::with_capacity(secrets.len());
        for (index, (secret, source)) in secrets.into_iter().enumerate() {
            let len = secret.expose().len();
            if len < MIN_COOKIE_SECRET_BYTES {
                self.fail(
                    "cookie-secret",
                    &source,
                    "cookie_secret_too_short",
                    format!(
                        "secret #{} has {len} characters, at least {MIN_COOKIE_SECRET_BYTES} are required (`openssl rand -base64 32`)",
                        index + 1
                    ),
                );
            } else {
                accepted.push(secret);
            }
        }
        accepted
    }

    fn cookie_domain(&mut self) -> Option<String> {
        let domains = self.list("cookie-domain");
        if let Some(second) = domains.get(1) {
            self.fail(
                "cookie-domain",
                &second.source,
                "several_cookie_domains",
                "only one cookie domain is supported; run one proxy per domain".to_owned(),
            );
        }
        domains
            .first()
            .map(|s| s.value.trim().trim_start_matches('.').to_owned())
    }
}

#[cfg(test)]
mod tests {
    use crate::proxy::settings::ProxySettings;
    use crate::proxy::settings::testing::{SECRET, errors, flags, minimal};

    #[test]
    fn secrets_come_from_files_and_not_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cookie");
        std::fs::write(&path, format!("{SECRET}\n{SECRET}-old\n")).unwrap();
        let path = path.display().to_string();
        let mut pairs: Vec<_> = minimal()
            .into_iter()
            .filter(|(n, _)| *n != "cookie-secret")
            .collect();
        pairs.push(("cookie-secret-file", &path));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(s.cookie_secrets.len(), 2);
        pairs.push(("cookie-secret", SECRET));
        assert_eq!(errors(&pairs)[0].code, "conflicting_options");
    }

    #[test]
    fn https_callbacks_keep_secure_cookies_and_plain_pkce_is_refused() {
        let mut pairs = minimal();
        pairs.push(("cookie-secure", "false"));
        pairs.push(("code-challenge-method", "plain"));
        let codes: Vec<_> = errors(&pairs).iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            ["unsupported_pkce_method", "insecure_cookie_on_https"]
        );
    }

    #[test]
    fn cookies_without_secure_only_for_a_loopback_callback() {
        let with_callback = |callback: &'static str| {
            let mut pairs: Vec<_> = minimal()
                .into_iter()
                .filter(|(n, _)| *n != "redirect-url")
                .collect();
            pairs.push(("redirect-url", callback));
            pairs.push(("cookie-secure", "false"));
            pairs
        };
        let codes: Vec<_> = errors(&with_callback("http://mlflow.example.com/oauth2/callback"))
            .iter()
            .map(|e| e.code)
            .collect();
        assert_eq!(codes, ["insecure_cookie_off_loopback"]);
        let s = ProxySettings::resolve(&flags(&with_callback(
            "http://127.0.0.1:4180/oauth2/callback",
        )))
        .unwrap();
        assert!(!s.cookie_secure);
    }
}
