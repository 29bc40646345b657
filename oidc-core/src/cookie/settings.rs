//! Where and how a codec's cookies are set: name, `Path`, `Domain`, `Secure`, the chunk limit,
//! and the `__Host-`/`__Secure-` prefix the browser sees.

use super::CookieConfigError;
use super::request_cookies::is_token_byte;

/// How many chunks a [`CookieSettings`] allows unless told otherwise: with the 4 KB cookie limit,
/// about 16 KB of sealed value, still within common 32 KB request-header limits.
pub const DEFAULT_MAX_CHUNKS: usize = 4;

/// Where and how the cookies of one [`CookieCodec`](super::CookieCodec) are set. Build with
/// [`CookieSettings::new`] and the `with_*` methods; [`CookieCodec::new`](super::CookieCodec::new)
/// checks it. The fields are private so that `Secure` can only be dropped through
/// [`CookieSettings::insecure_allow_plain_http`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    pub(super) name: String,
    pub(super) path: String,
    pub(super) domain: Option<String>,
    pub(super) secure: bool,
    pub(super) max_chunks: usize,
}

impl CookieSettings {
    /// Settings for a cookie named `name`: `Path=/`, no `Domain`, `Secure`, up to
    /// [`DEFAULT_MAX_CHUNKS`] chunks.
    pub fn new(name: impl Into<String>) -> Self {
        CookieSettings {
            name: name.into(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            max_chunks: DEFAULT_MAX_CHUNKS,
        }
    }

    /// The base name, without a `__Host-`/`__Secure-` prefix (one is added when possible).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Path` attribute; `/` by default.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Domain` attribute; none by default (a host-only cookie).
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether the `Secure` attribute is set: always, unless
    /// [`CookieSettings::insecure_allow_plain_http`] allowed plain HTTP on loopback.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// How many cookies one value may be split into.
    pub fn max_chunks(&self) -> usize {
        self.max_chunks
    }

    /// The same settings for a cookie with another base name (e.g. one pending-login cookie
    /// per browser tab, sharing path, domain and `Secure`).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the `Path` attribute (which drops the `__Host-` prefix unless it is `/`).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the `Domain` attribute, sharing the cookie with subdomains (drops `__Host-`).
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets how many cookies one value may be split into (1 to
    /// [`MAX_CHUNKS_LIMIT`](super::MAX_CHUNKS_LIMIT)).
    #[must_use]
    pub fn with_max_chunks(mut self, max_chunks: usize) -> Self {
        self.max_chunks = max_chunks;
        self
    }

    /// Leaves out the `Secure` attribute so that cookies work over plain HTTP, for a service
    /// whose public URL (the one the browser uses) is on a loopback host (`localhost`,
    /// `127.0.0.0/8`, `[::1]`); any other host is refused.
    ///
    /// # Security warning
    /// Cookies without `Secure` travel in clear text and can be set by any plain-HTTP page of the
    /// same host. This is for development on one machine only.
    pub fn insecure_allow_plain_http(
        mut self,
        public_url: &url::Url,
    ) -> Result<Self, CookieConfigError> {
        if !crate::issuer::is_loopback_host(public_url) {
            return Err(CookieConfigError::PlainHttpNotLoopback {
                url: public_url.to_string(),
            });
        }
        self.secure = false;
        Ok(self)
    }
}

/// The name the browser sees: `__Host-` when Secure, `Path=/` and no Domain; `__Secure-` when
/// only Secure; the bare name otherwise.
pub(super) fn effective_name(settings: &CookieSettings) -> Result<String, CookieConfigError> {
    let name = settings.name.as_str();
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(CookieConfigError::InvalidName {
            name: name.to_owned(),
        });
    }
    let prefixed = name.starts_with("__Host-") || name.starts_with("__Secure-");
    if prefixed && !settings.secure {
        return Err(CookieConfigError::PrefixNeedsSecure {
            name: name.to_owned(),
        });
    }
    if prefixed || !settings.secure {
        return Ok(name.to_owned());
    }
    if settings.path == "/" && settings.domain.is_none() {
        Ok(format!("__Host-{name}"))
    } else {
        Ok(format!("__Secure-{name}"))
    }
}

pub(super) fn is_plain_domain(domain: &str) -> bool {
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        for allowed in [
            "http://localhost:5000/",
            "http://127.0.0.2/",
            "http://[::1]:8/",
        ] {
            let url = url::Url::parse(allowed).unwrap();
            let settings = CookieSettings::new("s")
                .insecure_allow_plain_http(&url)
                .unwrap();
            assert!(!settings.secure(), "{allowed}");
        }
        for refused in [
            "http://mlflow.example.com/",
            "http://10.0.0.1/",
            "http://localhost.evil/",
        ] {
            let url = url::Url::parse(refused).unwrap();
            let err = CookieSettings::new("s")
                .insecure_allow_plain_http(&url)
                .unwrap_err();
            assert_eq!(err.code(), "cookie_plain_http_not_loopback", "{refused}");
        }
    }
}
