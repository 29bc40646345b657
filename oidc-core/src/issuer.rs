//! What an issuer identifier is, where its discovery document lives, and which `iss` values
//! match it: exactly, or through an explicit tenant template for multi-tenant providers.

use url::Url;

use crate::ErrorKind;

/// An OpenID Provider's issuer identifier, as configured.
///
/// Comparison with the `iss` of metadata and tokens is exact, character for character, as
/// OpenID Connect Core §3.1.3.7 requires: `https://op.example/` and `https://op.example` are
/// different issuers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Issuer {
    text: String,
    url: Url,
}

/// Why a configured issuer or issuer template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The value is not an absolute URL.
    #[error("issuer {value:?} is not an absolute URL: {reason}")]
    NotAUrl {
        /// The value given.
        value: String,
        /// What the URL parser said.
        reason: String,
    },
    /// The scheme is neither `https` nor `http`.
    #[error("issuer {value:?} must use https (or http for local development)")]
    BadScheme {
        /// The value given.
        value: String,
    },
    /// Issuers carry no query or fragment (OpenID Connect Discovery §2).
    #[error("issuer {value:?} must not have a query or fragment")]
    QueryOrFragment {
        /// The value given.
        value: String,
    },
    /// A template needs exactly one `{tenantid}` placeholder.
    #[error("issuer template {value:?} must contain the placeholder {{tenantid}} exactly once")]
    BadTemplate {
        /// The value given.
        value: String,
    },
}

impl IssuerError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IssuerError::NotAUrl { .. } => ErrorKind::IssuerNotAUrl,
            IssuerError::BadScheme { .. } => ErrorKind::IssuerBadScheme,
            IssuerError::QueryOrFragment { .. } => ErrorKind::IssuerQueryOrFragment,
            IssuerError::BadTemplate { .. } => ErrorKind::IssuerBadTemplate,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl Issuer {
    /// Checks and wraps an issuer identifier. `http` is accepted so that local development
    /// providers work; [`Issuer::is_insecure`] tells callers to warn about it.
    pub fn new(value: impl Into<String>) -> Result<Self, IssuerError> {
        let text = value.into();
        let url = Url::parse(&text).map_err(|e| IssuerError::NotAUrl {
            value: text.clone(),
            reason: e.to_string(),
        })?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(IssuerError::BadScheme { value: text });
        }
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(IssuerError::NotAUrl {
                value: text,
                reason: "no host".into(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(IssuerError::QueryOrFragment { value: text });
        }
        Ok(Issuer { text, url })
    }

    /// The identifier exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The identifier as a parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether `iss` is this issuer, compared exactly.
    pub fn matches(&self, iss: &str) -> bool {
        self.text == iss
    }

    /// The discovery document's location: the issuer with any terminating `/` removed, then
    /// `/.well-known/openid-configuration` appended (OpenID Connect Discovery §4).
    pub fn discovery_url(&self) -> Url {
        let base = self.text.trim_end_matches('/');
        let joined = format!("{base}/.well-known/openid-configuration");
        // The issuer parsed as a URL and has no query or fragment, so appending path segments
        // keeps it a URL; fall back to the parsed form should the parser ever disagree.
        Url::parse(&joined).unwrap_or_else(|_| {
            let mut url = self.url.clone();
            url.set_path(&format!(
                "{}/.well-known/openid-configuration",
                url.path().trim_end_matches('/')
            ));
            url
        })
    }

    /// `http` outside loopback: tokens and codes would cross the network in clear text.
    pub fn is_insecure(&self) -> bool {
        self.url.scheme() == "http" && !is_loopback_host(&self.url)
    }
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether the URL's host is `localhost` or a loopback address.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A multi-tenant issuer such as Entra ID's `https://login.microsoftonline.com/{tenantid}/v2.0`.
///
/// A token matches when its `iss` equals the template with `{tenantid}` replaced by the token's
/// own `tid` claim, so each tenant's tokens name their own issuer. This never turns issuer
/// checks off: which tenants are allowed is still decided by the audience and any claim rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IssuerTemplate {
    template: String,
    prefix: String,
    suffix: String,
}

/// The placeholder an [`IssuerTemplate`] must contain once.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

impl IssuerTemplate {
    /// Parses a template containing `{tenantid}` exactly once.
    pub fn new(template: impl Into<String>) -> Result<Self, IssuerError> {
        let template = template.into();
        let mut parts = template.split(TENANT_PLACEHOLDER);
        let (Some(prefix), Some(suffix), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(IssuerError::BadTemplate { value: template });
        };
        let (prefix, suffix) = (prefix.to_owned(), suffix.to_owned());
        Issuer::new(format!("{prefix}tenant{suffix}"))?;
        Ok(IssuerTemplate {
            template,
            prefix,
            suffix,
        })
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// Whether `iss` is this template filled with `tenant_id` (the token's `tid` claim).
    /// Tenant ids are non-empty and made of ASCII letters, digits, `-` and `.`.
    pub fn matches(&self, iss: &str, tenant_id: &str) -> bool {
        is_plain_tenant_id(tenant_id)
            && iss.len() == self.prefix.len() + tenant_id.len() + self.suffix.len()
            && iss.starts_with(&self.prefix)
            && iss.ends_with(&self.suffix)
            && &iss[self.prefix.len()..iss.len() - self.suffix.len()] == tenant_id
    }

    /// The issuer for one tenant.
    pub fn for_tenant(&self, tenant_id: &str) -> String {
        format!("{}{}{}", self.prefix, tenant_id, self.suffix)
    }
}

fn is_plain_tenant_id(tenant_id: &str) -> bool {
    !tenant_id.is_empty()
        && tenant_id.len() <= 128
        && tenant_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_strips_one_trailing_slash_and_keeps_the_path() {
        let cases = [
            (
                "https://op.example",
                "https://op.example/.well-known/openid-configuration",
            ),
            (
                "https://op.example/",
                "https://op.example/.well-known/openid-configuration",
            ),
            (
                "https://op.example/realms/main",
                "https://op.example/realms/main/.well-known/openid-configuration",
            ),
            (
                "https://op.example/realms/main/",
                "https://op.example/realms/main/.well-known/openid-configuration",
            ),
        ];
        for (issuer, expected) in cases {
            assert_eq!(
                Issuer::new(issuer).unwrap().discovery_url().as_str(),
                expected
            );
        }
    }

    #[test]
    fn matching_is_exact() {
        let issuer = Issuer::new("https://op.example").unwrap();
        assert!(issuer.matches("https://op.example"));
        assert!(!issuer.matches("https://op.example/"));
        assert!(!issuer.matches("https://OP.example"));
    }

    #[test]
    fn refuses_bad_issuers() {
        assert_eq!(
            Issuer::new("op.example").unwrap_err().code(),
            "issuer_not_a_url"
        );
        assert_eq!(
            Issuer::new("ftp://op.example").unwrap_err().code(),
            "issuer_bad_scheme"
        );
        assert_eq!(
            Issuer::new("https://op.example/?a=b").unwrap_err().code(),
            "issuer_query_or_fragment"
        );
        assert_eq!(
            Issuer::new("https://op.example/#x").unwrap_err().code(),
            "issuer_query_or_fragment"
        );
    }

    #[test]
    fn flags_plain_http_outside_loopback() {
        assert!(Issuer::new("http://op.example").unwrap().is_insecure());
        assert!(!Issuer::new("http://127.0.0.1:8080").unwrap().is_insecure());
        assert!(!Issuer::new("http://localhost:8080").unwrap().is_insecure());
        assert!(!Issuer::new("http://[::1]:8080").unwrap().is_insecure());
        assert!(!Issuer::new("https://op.example").unwrap().is_insecure());
    }

    #[test]
    fn tenant_template_matches_only_the_tokens_own_tenant() {
        let t = IssuerTemplate::new("https://login.microsoftonline.com/{tenantid}/v2.0").unwrap();
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let iss = format!("https://login.microsoftonline.com/{tid}/v2.0");
        assert!(t.matches(&iss, tid));
        assert!(!t.matches(&iss, "72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!t.matches("https://login.microsoftonline.com//v2.0", ""));
        assert!(!t.matches("https://login.microsoftonline.com/a/b/v2.0", "a/b"));
        assert_eq!(t.for_tenant(tid), iss);
    }

    #[test]
    fn tenant_template_needs_one_placeholder() {
        for bad in [
            "https://login.microsoftonline.com/common/v2.0",
            "https://x/{tenantid}/{tenantid}",
        ] {
            assert_eq!(
                IssuerTemplate::new(bad).unwrap_err().code(),
                "issuer_bad_template"
            );
        }
    }
}
