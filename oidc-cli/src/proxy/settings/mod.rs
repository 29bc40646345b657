//! The proxy's settings, typed and checked: every problem names the option, the source it was
//! read from, and what would be accepted. Secrets are never part of a message.
//!
//! This module holds the settings and puts them together; each topic's options are read and
//! checked in its own module, in the order their problems are reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use oidc_core::{AuthorizationRules, IdentityClaims, Issuer, Secret};
use oidc_tower::forwarded::TrustedProxies;
use url::Url;

use super::sources::{Layers, Source};

mod access;
mod assertion;
mod cookies;
mod forwarding;
mod provider;
mod reader;
mod routes;
mod session_store;
#[cfg(test)]
mod testing;
mod upstreams;

pub(crate) use access::ExtraIssuer;
use assertion::IdentityAssertionSettings;
use reader::Resolver;
pub(crate) use session_store::SessionStoreChoice;
use session_store::{RedisSettings, RedisTarget};
use upstreams::{Upstream, UpstreamTlsSettings};

/// Everything `oidc proxy` runs with.
#[derive(Clone, Debug)]
pub(crate) struct ProxySettings {
    pub(crate) http_address: SocketAddr,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) upstream_tls: UpstreamTlsSettings,
    pub(crate) upstream_body_idle_timeout: Duration,
    /// How long a client may take no response byte before its connection is closed.
    pub(crate) client_write_stall_timeout: Duration,
    pub(crate) issuer: Issuer,
    pub(crate) extra_audiences: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) redirect_url: Url,
    pub(crate) scopes: Vec<String>,
    /// Whether the scopes were configured (else the defaults, plus `groups` when offered).
    pub(crate) scope_explicit: bool,
    pub(crate) cookie_name: String,
    pub(crate) cookie_secrets: Vec<Secret>,
    pub(crate) cookie_secure: bool,
    pub(crate) cookie_domain: Option<String>,
    pub(crate) cookie_path: String,
    pub(crate) session_lifetime: Duration,
    pub(crate) refresh_margin: Duration,
    pub(crate) any_email_domain: bool,
    pub(crate) email_domains: Vec<String>,
    pub(crate) allowed_emails: Vec<String>,
    pub(crate) allowed_groups: Vec<String>,
    pub(crate) allowed_client_ids: Vec<String>,
    pub(crate) allowed_roles: Vec<String>,
    /// The e-mail and user-id claims and the role client (`--oidc-email-claim`,
    /// `--user-id-claim`, `--oidc-role-client`).
    pub(crate) identity_claims: IdentityClaims,
    pub(crate) trusted_client_ids: Vec<String>,
    pub(crate) groups_claim: String,
    pub(crate) allow_unverified_email: bool,
    pub(crate) accept_bearer: bool,
    pub(crate) extra_issuers: Vec<ExtraIssuer>,
    pub(crate) session_store: SessionStoreChoice,
    pub(crate) skip_auth_routes: Vec<String>,
    pub(crate) api_routes: Vec<String>,
    pub(crate) whitelist_domains: Vec<String>,
    /// Registered at the provider; `{proxy_prefix}/signed_out` honours sign-out's `rd`.
    pub(crate) post_logout_redirect_url: Option<Url>,
    pub(crate) pass_user_headers: bool,
    pub(crate) set_xauthrequest: bool,
    pub(crate) pass_access_token: bool,
    pub(crate) pass_authorization_header: bool,
    pub(crate) forward_auth: bool,
    pub(crate) proxy_prefix: String,
    pub(crate) reverse_proxy: bool,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) trusted_proxy_entries: Vec<String>,
    pub(crate) metrics_address: Option<SocketAddr>,
    pub(crate) identity_assertion: Option<IdentityAssertionSettings>,
}

/// One thing wrong with the settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {problem} ({})", describe_origin(origin, code))]
pub(crate) struct SettingError {
    /// The option, as its flag name.
    pub(crate) option: &'static str,
    pub(crate) origin: Source,
    pub(crate) problem: String,
    /// A stable snake_case code.
    pub(crate) code: &'static str,
}

/// Where a problem's value came from, as the end of its message.
fn describe_origin(origin: &Source, code: &str) -> String {
    match origin {
        Source::Default if code == "missing" => "not set by any flag, variable or file key".into(),
        origin => format!("from {origin}"),
    }
}

impl ProxySettings {
    /// The allow rules these settings describe: e-mails and domains (unless any is admitted),
    /// groups, roles, machine clients, and the claim names identities are read with.
    pub(crate) fn authorization_rules(&self) -> AuthorizationRules {
        let mut rules = AuthorizationRules::new();
        if !self.any_email_domain {
            rules = rules
                .with_allowed_email_domains(self.email_domains.iter().cloned())
                .with_allowed_emails(self.allowed_emails.iter().cloned());
        }
        rules = rules
            .with_allowed_groups(self.allowed_groups.iter().cloned())
            .with_allowed_roles(self.allowed_roles.iter().cloned())
            .with_allowed_clients(self.allowed_client_ids.iter().cloned())
            .with_identity_claims(self.identity_claims.clone());
        if self.allow_unverified_email {
            rules = rules.insecure_allow_unverified_email();
        }
        rules
    }

    /// Checks every option and gives the settings, or every problem found (not only the first).
    pub(crate) fn resolve(layers: &Layers) -> Result<Self, Vec<SettingError>> {
        let mut r = Resolver {
            layers,
            errors: Vec::new(),
        };
        let settings = r.resolve_all();
        match settings {
            Some(settings) if r.errors.is_empty() => Ok(settings),
            _ => Err(r.errors),
        }
    }

    /// What the proxy protects and how, one line per fact, with no secret in it.
    pub(crate) fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!("listening on http://{}", self.http_address)];
        for upstream in &self.upstreams {
            lines.push(format!(
                "protecting {}* -> {}{}",
                upstream.prefix,
                upstream.url,
                if upstream.strip_prefix {
                    " (prefix stripped)"
                } else {
                    ""
                }
            ));
        }
        lines.push(format!(
            "provider {} as client {} (callback {})",
            self.issuer.as_str(),
            self.client_id,
            self.redirect_url
        ));
        lines.push(format!("admitting {}", self.admitted().join("; ")));
        if let Some(line) = self.claim_names_line() {
            lines.push(line);
        }
        lines.push(format!(
            "sessions in {} ({} cookie secret(s)), bearer tokens {}",
            self.store_name(),
            self.cookie_secrets.len(),
            if self.accept_bearer {
                "accepted"
            } else {
                "refused"
            }
        ));
        if !self.skip_auth_routes.is_empty() {
            lines.push(format!(
                "without authentication: {}",
                self.skip_auth_routes.join(" ")
            ));
        }
        if self.forward_auth {
            lines.push(format!("forward-auth at {}/auth", self.proxy_prefix));
        }
        if self.reverse_proxy {
            lines.push(format!(
                "X-Forwarded-* believed from {}",
                self.trusted_proxy_entries.join(", ")
            ));
        }
        if let Some(assertion) = &self.identity_assertion {
            lines.push(format!(
                "identity assertions for {} from {}, valid {}s, keys at {}/jwks ({})",
                assertion.audience,
                assertion.issuer,
                assertion.lifetime.as_secs(),
                self.proxy_prefix,
                match &assertion.key_file {
                    Some(path) => format!("signing key {}", path.display()),
                    None => "a new signing key at each start".to_owned(),
                }
            ));
        }
        if let Some(metrics) = self.metrics_address {
            lines.push(format!("metrics on http://{metrics}/metrics"));
        }
        lines
    }

    /// Who the allow rules admit, one part per kind of rule.
    fn admitted(&self) -> Vec<String> {
        let mut who = Vec::new();
        if self.any_email_domain {
            who.push("any authenticated user".to_owned());
        }
        if !self.email_domains.is_empty() {
            who.push(format!("emails @{}", self.email_domains.join(", @")));
        }
        if !self.allowed_emails.is_empty() {
            who.push(format!("{} listed emails", self.allowed_emails.len()));
        }
        if !self.allowed_groups.is_empty() {
            who.push(format!("groups {}", self.allowed_groups.join(", ")));
        }
        if !self.allowed_roles.is_empty() {
            who.push(format!("roles {}", self.allowed_roles.join(", ")));
        }
        if !self.allowed_client_ids.is_empty() {
            who.push(format!("clients {}", self.allowed_client_ids.join(", ")));
        }
        who
    }

    /// The claim names identities are read with, when they are not the defaults.
    fn claim_names_line(&self) -> Option<String> {
        let defaults = IdentityClaims::new();
        if self.identity_claims == defaults {
            return None;
        }
        let names = &self.identity_claims;
        Some(format!(
            "e-mail from `{}`, user id from `{}`, roles{}",
            names.email_claim,
            names.user_id_claim,
            names
                .role_client
                .as_deref()
                .map_or_else(String::new, |client| format!(" also of client `{client}`"))
        ))
    }

    /// Where sessions live, in words.
    fn store_name(&self) -> &'static str {
        match self.session_store {
            SessionStoreChoice::Cookie => "cookies",
            SessionStoreChoice::Redis(RedisSettings {
                target: RedisTarget::Single { .. },
                ..
            }) => "Redis",
            SessionStoreChoice::Redis(RedisSettings {
                target: RedisTarget::Sentinel { .. },
                ..
            }) => "Redis via Sentinel",
            SessionStoreChoice::Redis(RedisSettings {
                target: RedisTarget::Cluster { .. },
                ..
            }) => "Redis Cluster",
        }
    }
}

impl Resolver<'_> {
    /// Every option, topic by topic; the settings when nothing required is missing.
    fn resolve_all(&mut self) -> Option<ProxySettings> {
        let endpoints = self.endpoints();
        let provider = self.provider();
        let cookies = self.cookies();
        let access = self.access();
        let session_store = self.session_store();
        let routes = self.routes();
        let identity_assertion = self.identity_assertion(provider.redirect_url.as_ref());
        let post_logout_redirect_url = self.post_logout_redirect_url();
        let forwarding = self.forwarding();
        self.check_cookie_secure(cookies.secure, provider.redirect_url.as_ref());
        Some(ProxySettings {
            http_address: endpoints.http_address?,
            upstreams: endpoints.upstreams,
            upstream_tls: endpoints.upstream_tls,
            upstream_body_idle_timeout: endpoints.upstream_body_idle_timeout,
            client_write_stall_timeout: endpoints.client_write_stall_timeout,
            issuer: provider.issuer?,
            extra_audiences: access.extra_audiences,
            client_id: provider.client_id?,
            client_secret: provider.client_secret,
            redirect_url: provider.redirect_url?,
            scopes: provider.scopes,
            scope_explicit: provider.scope_explicit,
            cookie_name: cookies.name,
            cookie_secrets: cookies.secrets,
            cookie_secure: cookies.secure,
            cookie_domain: cookies.domain,
            cookie_path: cookies.path,
            session_lifetime: cookies.session_lifetime,
            refresh_margin: cookies.refresh_margin,
            any_email_domain: access.any_email_domain,
            email_domains: access.email_domains,
            allowed_emails: access.allowed_emails,
            allowed_groups: access.allowed_groups,
            allowed_client_ids: access.allowed_client_ids,
            allowed_roles: access.allowed_roles,
            identity_claims: access.identity_claims,
            trusted_client_ids: access.trusted_client_ids,
            groups_claim: access.groups_claim,
            allow_unverified_email: access.allow_unverified_email,
            accept_bearer: access.accept_bearer,
            extra_issuers: access.extra_issuers,
            session_store,
            skip_auth_routes: routes.skip_auth_routes,
            api_routes: routes.api_routes,
            whitelist_domains: routes.whitelist_domains,
            post_logout_redirect_url,
            pass_user_headers: forwarding.pass_user_headers,
            set_xauthrequest: forwarding.set_xauthrequest,
            pass_access_token: forwarding.pass_access_token,
            pass_authorization_header: forwarding.pass_authorization_header,
            forward_auth: forwarding.forward_auth,
            proxy_prefix: provider.proxy_prefix?,
            reverse_proxy: forwarding.reverse_proxy,
            trusted_proxies: forwarding.trusted_proxies,
            trusted_proxy_entries: forwarding.trusted_proxy_entries,
            metrics_address: endpoints.metrics_address,
            identity_assertion,
        })
    }
}

/// The path of the TOML file to read: `--config`, else `OIDC_PROXY_CONFIG`.
pub(crate) fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("OIDC_PROXY_CONFIG").map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::settings::testing::{errors, flags, minimal};

    #[test]
    fn a_minimal_configuration_resolves_with_oauth2_proxy_defaults() {
        let s = ProxySettings::resolve(&flags(&minimal())).unwrap();
        assert_eq!(s.http_address, "127.0.0.1:4180".parse().unwrap());
        assert_eq!(s.scopes, ["openid", "email", "profile"]);
        assert_eq!(s.proxy_prefix, "/oauth2");
        assert!(s.cookie_secure && s.any_email_domain && s.pass_user_headers && s.forward_auth);
        assert!(!s.accept_bearer && !s.reverse_proxy && !s.set_xauthrequest);
        assert_eq!(s.session_lifetime, Duration::from_secs(168 * 3600));
        assert_eq!(
            s.upstreams,
            [Upstream {
                prefix: "/".into(),
                url: Url::parse("http://127.0.0.1:5000/").unwrap(),
                strip_prefix: false
            }]
        );
        assert_eq!(s.client_secret.unwrap().expose(), "s3cret");
        assert!(matches!(s.session_store, SessionStoreChoice::Cookie));
        assert_eq!(s.post_logout_redirect_url, None);
    }

    #[test]
    fn every_problem_is_reported_with_its_source_and_no_secret() {
        let errs = errors(&[
            ("oidc-issuer-url", "not a url"),
            ("redirect-url", "https://x.example/callback"),
            ("cookie-secret", "short-secret-value"),
            ("cookie-secure", "maybe"),
            ("upstream", "file:///srv"),
            ("skip-auth-route", "GET=^/api/(unclosed"),
        ]);
        let codes: Vec<&str> = errs.iter().map(|e| e.code).collect();
        assert!(codes.contains(&"missing"), "{codes:?}");
        assert!(codes.contains(&"cookie_secret_too_short"));
        assert!(codes.contains(&"invalid_bool"));
        assert!(codes.contains(&"unsupported_upstream"));
        assert!(codes.contains(&"invalid_route_rule"));
        assert!(codes.contains(&"callback_outside_prefix"));
        let secret = errs
            .iter()
            .find(|e| e.code == "cookie_secret_too_short")
            .unwrap();
        assert_eq!(
            secret.to_string(),
            "cookie-secret: secret #1 has 18 characters, at least 32 are required (`openssl rand -base64 32`) (from flag --cookie-secret)"
        );
        assert!(
            errs.iter()
                .all(|e| !e.to_string().contains("short-secret-value"))
        );
    }
}
