//! The proxy's settings, typed and checked: every problem names the option, the source it was
//! read from, and what would be accepted. Secrets are never part of a message.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oidc_core::{AuthorizationRules, IdentityClaims, Issuer, Secret};
use oidc_tower::forwarded::TrustedProxies;
use oidc_tower::routes::RouteRules;
use url::Url;

use super::sources::{Layers, Source, Sourced};

fn is_redis_url(value: &str) -> bool {
    let value = value.trim();
    value.starts_with("redis://") || value.starts_with("rediss://")
}

/// Bytes a cookie secret needs at least (the cookie codec's minimum).
pub(crate) const MIN_COOKIE_SECRET_BYTES: usize = oidc_core::cookie::MIN_SECRET_BYTES;

/// One upstream: requests whose path starts with `prefix` go to `url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub(crate) prefix: String,
    pub(crate) url: Url,
    /// Whether the prefix is removed before forwarding (the `PREFIX=URL` form).
    pub(crate) strip_prefix: bool,
}

/// How https upstreams are trusted, and the client certificate offered to them.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpstreamTlsSettings {
    pub(crate) ca_files: Vec<PathBuf>,
    /// Certificate chain and private key files.
    pub(crate) client_certificate: Option<(PathBuf, PathBuf)>,
    pub(crate) insecure_skip_verify: bool,
    /// Set through oauth2-proxy's `ssl-upstream-insecure-skip-verify`: worth a warning.
    pub(crate) skip_verify_by_old_name: bool,
}

impl UpstreamTlsSettings {
    /// The proxy's TLS configuration for https upstreams.
    pub(crate) fn to_upstream_tls(&self) -> oidc_tower::proxy::UpstreamTls {
        let mut tls = oidc_tower::proxy::UpstreamTls::new();
        for file in &self.ca_files {
            tls = tls.ca_file(file);
        }
        if let Some((chain, key)) = &self.client_certificate {
            tls = tls.client_certificate(chain, key);
        }
        tls.dangerous_skip_verify(self.insecure_skip_verify)
    }
}

/// Where sessions live.
#[derive(Clone, Debug)]
pub(crate) enum SessionStoreChoice {
    Cookie,
    Redis(RedisSettings),
}

/// Which Redis deployment, and how to sign in to it.
#[derive(Clone, Debug)]
pub(crate) struct RedisSettings {
    pub(crate) target: RedisTarget,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) sentinel_password: Option<Secret>,
    pub(crate) ca_path: Option<PathBuf>,
}

/// One server, the primary named by Sentinel, or a cluster.
#[derive(Clone, Debug)]
pub(crate) enum RedisTarget {
    Single {
        url: Secret,
    },
    Sentinel {
        master_name: String,
        urls: Vec<Secret>,
    },
    Cluster {
        urls: Vec<Secret>,
    },
}

impl RedisSettings {
    /// The store configuration these settings describe.
    pub(crate) fn store_config(&self) -> oidc_tower::store::RedisStoreConfig {
        use oidc_tower::store::RedisStoreConfig;
        let expose = |urls: &[Secret]| -> Vec<String> {
            urls.iter().map(|url| url.expose().to_owned()).collect()
        };
        let mut config = match &self.target {
            RedisTarget::Single { url } => RedisStoreConfig::new(url.expose()),
            RedisTarget::Sentinel { master_name, urls } => {
                RedisStoreConfig::sentinel(master_name.clone(), expose(urls))
            }
            RedisTarget::Cluster { urls } => RedisStoreConfig::cluster(expose(urls)),
        };
        if let Some(password) = &self.password {
            config = config.credentials(self.username.clone(), password.expose());
        }
        if let Some(password) = &self.sentinel_password {
            config = config.sentinel_password(password.expose());
        }
        if let Some(path) = &self.ca_path {
            config = config.ca_file(path);
        }
        config
    }

    /// The option that names where Redis is, for messages.
    pub(crate) fn location_option(&self) -> &'static str {
        match self.target {
            RedisTarget::Single { .. } => "redis-connection-url",
            RedisTarget::Sentinel { .. } => "redis-sentinel-connection-urls",
            RedisTarget::Cluster { .. } => "redis-cluster-connection-urls",
        }
    }
}

/// Another issuer whose bearer tokens are accepted, for one audience.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExtraIssuer {
    pub(crate) issuer: Issuer,
    pub(crate) audience: String,
}

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

/// The signed identity assertion sent with every allowed request (`--identity-assertion-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdentityAssertionSettings {
    pub(crate) audience: String,
    pub(crate) issuer: String,
    /// `None`: a key generated at start.
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) lifetime: Duration,
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
        lines.push(format!("admitting {}", who.join("; ")));
        let defaults = IdentityClaims::new();
        if self.identity_claims != defaults {
            let names = &self.identity_claims;
            lines.push(format!(
                "e-mail from `{}`, user id from `{}`, roles{}",
                names.email_claim,
                names.user_id_claim,
                names
                    .role_client
                    .as_deref()
                    .map_or_else(String::new, |client| format!(" also of client `{client}`"))
            ));
        }
        lines.push(format!(
            "sessions in {} ({} cookie secret(s)), bearer tokens {}",
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
            },
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
        if let Some(metrics) = self.metrics_address {
            lines.push(format!("metrics on http://{metrics}/metrics"));
        }
        lines
    }
}

struct Resolver<'a> {
    layers: &'a Layers,
    errors: Vec<SettingError>,
}

impl Resolver<'_> {
    fn fail(&mut self, option: &'static str, source: &Source, code: &'static str, problem: String) {
        self.errors.push(SettingError {
            option,
            origin: source.clone(),
            problem,
            code,
        });
    }

    fn missing(&mut self, option: &'static str, problem: &str) {
        self.fail(option, &Source::Default, "missing", problem.to_owned());
    }

    fn text(&self, option: &'static str) -> Option<&Sourced> {
        self.layers
            .value(option)
            .filter(|s| !s.value.trim().is_empty())
    }

    fn text_or(&self, option: &'static str, default: &str) -> String {
        self.text(option)
            .map_or_else(|| default.to_owned(), |s| s.value.trim().to_owned())
    }

    fn list(&self, option: &'static str) -> Vec<Sourced> {
        self.layers
            .values(option)
            .iter()
            .filter(|s| !s.value.trim().is_empty())
            .cloned()
            .collect()
    }

    fn bool(&mut self, option: &'static str, default: bool) -> bool {
        let Some(sourced) = self.layers.value(option).cloned() else {
            return default;
        };
        match parse_bool(&sourced.value) {
            Some(value) => value,
            None => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_bool",
                    format!("{:?} is not a boolean (true or false)", sourced.value),
                );
                default
            }
        }
    }

    fn duration(&mut self, option: &'static str, default: Duration) -> Duration {
        let Some(sourced) = self.text(option).cloned() else {
            return default;
        };
        match parse_duration(sourced.value.trim()) {
            Some(value) => value,
            None => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_duration",
                    format!(
                        "{:?} is not a duration such as 168h, 30m, 1h30m or 45s",
                        sourced.value
                    ),
                );
                default
            }
        }
    }

    fn address(&mut self, option: &'static str, default: Option<&str>) -> Option<SocketAddr> {
        let (value, source) = match self.text(option) {
            Some(s) => (s.value.trim().to_owned(), s.source.clone()),
            None => (default?.to_owned(), Source::Default),
        };
        // oauth2-proxy accepts ":4180" for all interfaces.
        let candidate = if value.starts_with(':') {
            format!("0.0.0.0{value}")
        } else {
            value.clone()
        };
        match candidate.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.fail(
                    option,
                    &source,
                    "invalid_address",
                    format!("{value:?} is not HOST:PORT with an IP address, e.g. 127.0.0.1:4180"),
                );
                None
            }
        }
    }

    fn url(&mut self, option: &'static str, sourced: &Sourced) -> Option<Url> {
        match Url::parse(sourced.value.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            Ok(_) => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_url",
                    format!("{:?} is not an http(s) URL with a host", sourced.value),
                );
                None
            }
            Err(e) => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_url",
                    format!("{:?} is not a URL: {e}", sourced.value),
                );
                None
            }
        }
    }

    /// A secret from its option or, failing that, from its file option.
    fn secret_lines(
        &mut self,
        option: &'static str,
        file_option: &'static str,
    ) -> (Vec<(Secret, Source)>, Option<Source>) {
        let direct = self.list(option);
        let file = self.text(file_option).cloned();
        if let (Some(first), Some(file)) = (direct.first(), &file) {
            self.fail(
                option,
                &first.source,
                "conflicting_options",
                format!(
                    "give either --{option} or --{file_option} ({}), not both",
                    file.source
                ),
            );
        }
        if !direct.is_empty() {
            let source = direct.first().map(|s| s.source.clone());
            return (
                direct
                    .into_iter()
                    .map(|s| (Secret::new(s.value.trim().to_owned()), s.source))
                    .collect(),
                source,
            );
        }
        let Some(file) = file else {
            return (Vec::new(), None);
        };
        match read_secret_file(Path::new(file.value.trim())) {
            Ok(lines) => (
                lines
                    .into_iter()
                    .map(|line| (Secret::new(line), file.source.clone()))
                    .collect(),
                Some(file.source),
            ),
            Err(e) => {
                self.fail(
                    file_option,
                    &file.source,
                    "unreadable_file",
                    format!("cannot read {}: {e}", file.value.trim()),
                );
                (Vec::new(), Some(file.source))
            }
        }
    }

    fn resolve_all(&mut self) -> Option<ProxySettings> {
        let http_address = self.address("http-address", Some("127.0.0.1:4180"));
        let metrics_address = self.address("metrics-address", None);
        let upstreams = self.upstreams();
        let upstream_tls = self.upstream_tls();
        let upstream_body_idle_timeout =
            self.duration("upstream-body-idle-timeout", Duration::from_secs(300));
        let client_write_stall_timeout = self.duration(
            "client-write-stall-timeout",
            oidc_tower::proxy::DEFAULT_WRITE_STALL_TIMEOUT,
        );

        let issuer = match self.text("oidc-issuer-url").cloned() {
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
        };
        let client_id = self.text("client-id").map(|s| s.value.trim().to_owned());
        if client_id.is_none() {
            self.missing("client-id", "the client id is required (--client-id)");
        }
        let (client_secret, _) = self.secret_lines("client-secret", "client-secret-file");
        let client_secret = client_secret.into_iter().next().map(|(secret, _)| secret);

        let redirect_url = match self.text("redirect-url").cloned() {
            Some(s) => self.url("redirect-url", &s),
            None => {
                self.missing(
                    "redirect-url",
                    "the callback URL registered at the provider is required (--redirect-url, e.g. https://mlflow.example.com/oauth2/callback)",
                );
                None
            }
        };
        let proxy_prefix = self.proxy_prefix();
        if let (Some(url), Some(prefix)) = (&redirect_url, &proxy_prefix) {
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

        let scope = self.text_or("scope", "openid email profile");
        let mut scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
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

        let cookie_name = self.text_or("cookie-name", "oidc_session");
        let cookie_secrets = self.cookie_secrets();
        let cookie_secure = self.bool("cookie-secure", true);
        let cookie_domain = self.cookie_domain();
        let cookie_path = self.text_or("cookie-path", "/");
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

        let (any_email_domain, email_domains) = self.email_domains();
        let allowed_emails = self.allowed_emails();
        let allowed_groups: Vec<String> = values(&self.list("allowed-group"));
        let allowed_client_ids: Vec<String> = values(&self.list("allowed-client-id"));
        let trusted_client_ids: Vec<String> = values(&self.list("trusted-client-id"));
        let allowed_roles = self.allowed_roles();
        if !any_email_domain
            && email_domains.is_empty()
            && allowed_emails.is_empty()
            && allowed_groups.is_empty()
            && allowed_roles.is_empty()
            && allowed_client_ids.is_empty()
        {
            self.missing(
                "email-domain",
                "no one would be admitted: give --email-domain (`*` admits every user the provider authenticates), --allowed-email, --authenticated-emails-file, --allowed-group, --allowed-role or --allowed-client-id",
            );
        }
        let groups_claim = self.text_or("oidc-groups-claim", "groups");
        let identity_claims = self.identity_claims();
        let allow_unverified_email = self.bool("insecure-oidc-allow-unverified-email", false);
        let accept_bearer = self.bool("skip-jwt-bearer-tokens", false);
        let extra_issuers = self.extra_issuers();
        if !accept_bearer
            && !extra_issuers.is_empty()
            && let Some(first) = self.list("extra-jwt-issuers").first().cloned()
        {
            self.fail(
                "extra-jwt-issuers",
                &first.source,
                "needs_bearer_tokens",
                "extra issuers only matter with --skip-jwt-bearer-tokens".to_owned(),
            );
        }
        let extra_audiences = values(&self.list("oidc-extra-audience"));
        let session_store = self.session_store();
        let mut skip_auth_routes = self.route_rules("skip-auth-route", RouteRules::skip_auth);
        if self.bool("skip-auth-preflight", false) {
            skip_auth_routes.push("OPTIONS=/".to_owned());
        }
        let api_routes = self.route_rules("api-route", RouteRules::api);
        let whitelist_domains = self.whitelist_domains();
        let identity_assertion = self.identity_assertion(redirect_url.as_ref());
        let post_logout_redirect_url = match self.text("post-logout-redirect-url").cloned() {
            Some(s) => self.url("post-logout-redirect-url", &s),
            None => None,
        };
        let pass_user_headers = self.bool("pass-user-headers", true);
        let set_xauthrequest = self.bool("set-xauthrequest", false);
        let pass_access_token = self.bool("pass-access-token", false);
        let pass_authorization_header = self.bool("pass-authorization-header", false);
        let forward_auth = self.bool("forward-auth", true);
        let reverse_proxy = self.bool("reverse-proxy", false);
        let (trusted_proxies, trusted_proxy_entries) = self.trusted_proxies(reverse_proxy);

        if !cookie_secure
            && let Some(url) = &redirect_url
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
            && let Some(url) = &redirect_url
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

        Some(ProxySettings {
            http_address: http_address?,
            upstreams,
            upstream_tls,
            upstream_body_idle_timeout,
            client_write_stall_timeout,
            issuer: issuer?,
            extra_audiences,
            client_id: client_id?,
            client_secret,
            redirect_url: redirect_url?,
            scopes,
            scope_explicit: self.text("scope").is_some(),
            cookie_name,
            cookie_secrets,
            cookie_secure,
            cookie_domain,
            cookie_path,
            session_lifetime,
            refresh_margin,
            any_email_domain,
            email_domains,
            allowed_emails,
            allowed_groups,
            allowed_client_ids,
            allowed_roles,
            identity_claims,
            trusted_client_ids,
            groups_claim,
            allow_unverified_email,
            accept_bearer,
            extra_issuers,
            session_store,
            skip_auth_routes,
            api_routes,
            whitelist_domains,
            post_logout_redirect_url,
            pass_user_headers,
            set_xauthrequest,
            pass_access_token,
            pass_authorization_header,
            forward_auth,
            proxy_prefix: proxy_prefix?,
            reverse_proxy,
            trusted_proxies,
            trusted_proxy_entries,
            metrics_address,
            identity_assertion,
        })
    }

    /// On when an audience is named; the issuer defaults to the callback's origin.
    fn identity_assertion(
        &mut self,
        redirect_url: Option<&Url>,
    ) -> Option<IdentityAssertionSettings> {
        let lifetime = self.duration(
            "identity-assertion-lifetime",
            oidc_core::identity_assertion::DEFAULT_ASSERTION_LIFETIME,
        );
        let key_file = self
            .text("identity-assertion-key-file")
            .map(|s| PathBuf::from(s.value.trim()));
        let explicit_issuer = self.text("identity-assertion-issuer").cloned();
        let Some(audience) = self.text("identity-assertion-audience").cloned() else {
            for option in [
                "identity-assertion-issuer",
                "identity-assertion-key-file",
                "identity-assertion-lifetime",
            ] {
                if let Some(set) = self.text(option).cloned() {
                    self.fail(
                        option,
                        &set.source,
                        "needs_identity_assertion_audience",
                        "identity assertions are on only with --identity-assertion-audience (the upstream's name)".to_owned(),
                    );
                }
            }
            return None;
        };
        if lifetime < oidc_core::identity_assertion::MIN_ASSERTION_LIFETIME
            && let Some(set) = self.text("identity-assertion-lifetime").cloned()
        {
            self.fail(
                "identity-assertion-lifetime",
                &set.source,
                "invalid_duration",
                "an identity assertion lives at least 10s".to_owned(),
            );
        }
        let issuer = match (explicit_issuer, redirect_url) {
            (Some(issuer), _) => issuer.value.trim().to_owned(),
            (None, Some(url)) => url.origin().ascii_serialization(),
            (None, None) => return None,
        };
        Some(IdentityAssertionSettings {
            audience: audience.value.trim().to_owned(),
            issuer,
            key_file,
            lifetime,
        })
    }

    fn upstreams(&mut self) -> Vec<Upstream> {
        let mut upstreams = Vec::new();
        for sourced in self.list("upstream") {
            let value = sourced.value.trim();
            let (explicit_prefix, url_text) = match value.split_once('=') {
                Some((prefix, url)) if prefix.starts_with('/') => (Some(prefix), url),
                _ => (None, value),
            };
            if url_text.starts_with("file://") || url_text.starts_with("static://") {
                self.fail(
                    "upstream",
                    &sourced.source,
                    "unsupported_upstream",
                    format!("{url_text:?}: file:// and static:// upstreams are not supported; serve files with the web server in front"),
                );
                continue;
            }
            let is_socket = url_text.starts_with("unix:");
            let url = if is_socket {
                match Url::parse(url_text) {
                    Ok(url)
                        if url.host().is_none()
                            && url.path().len() > 1
                            && !url.path().ends_with('/') =>
                    {
                        url
                    }
                    _ => {
                        self.fail(
                            "upstream",
                            &sourced.source,
                            "invalid_url",
                            format!(
                                "{url_text:?}: a socket upstream is unix:///absolute/path/to/socket"
                            ),
                        );
                        continue;
                    }
                }
            } else {
                let Some(url) = self.url(
                    "upstream",
                    &Sourced {
                        value: url_text.to_owned(),
                        source: sourced.source.clone(),
                    },
                ) else {
                    continue;
                };
                url
            };
            if url.query().is_some() || url.fragment().is_some() {
                self.fail(
                    "upstream",
                    &sourced.source,
                    "invalid_url",
                    format!("{url_text:?}: an upstream URL takes no query or fragment"),
                );
                continue;
            }
            let upstream = match explicit_prefix {
                Some(prefix) => Upstream {
                    prefix: prefix.to_owned(),
                    url,
                    strip_prefix: true,
                },
                // A socket path is no URL path: the upstream serves at `/`.
                None if is_socket => Upstream {
                    prefix: "/".to_owned(),
                    url,
                    strip_prefix: false,
                },
                None => Upstream {
                    prefix: url.path().to_owned(),
                    url,
                    strip_prefix: false,
                },
            };
            if upstreams
                .iter()
                .any(|u: &Upstream| u.prefix == upstream.prefix)
            {
                self.fail(
                    "upstream",
                    &sourced.source,
                    "duplicate_upstream_prefix",
                    format!("two upstreams serve the prefix {:?}", upstream.prefix),
                );
                continue;
            }
            upstreams.push(upstream);
        }
        upstreams
    }

    fn upstream_tls(&mut self) -> UpstreamTlsSettings {
        let ca_files = self
            .list("upstream-ca-file")
            .into_iter()
            .map(|s| PathBuf::from(s.value.trim()))
            .collect();
        let chain = self.text("upstream-client-cert").cloned();
        let key = self.text("upstream-client-key").cloned();
        let client_certificate = match (chain, key) {
            (Some(chain), Some(key)) => Some((
                PathBuf::from(chain.value.trim()),
                PathBuf::from(key.value.trim()),
            )),
            (Some(given), None) | (None, Some(given)) => {
                let missing = if self.text("upstream-client-key").is_none() {
                    "upstream-client-key"
                } else {
                    "upstream-client-cert"
                };
                self.fail(
                    missing,
                    &given.source,
                    "incomplete_client_certificate",
                    "--upstream-client-cert and --upstream-client-key go together".to_owned(),
                );
                None
            }
            (None, None) => None,
        };
        let skip_verify = self.bool("upstream-insecure-skip-verify", false);
        let old_name = self.bool("ssl-upstream-insecure-skip-verify", false);
        UpstreamTlsSettings {
            ca_files,
            client_certificate,
            insecure_skip_verify: skip_verify || old_name,
            skip_verify_by_old_name: old_name,
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

    fn email_domains(&mut self) -> (bool, Vec<String>) {
        let mut any = false;
        let mut domains = Vec::new();
        for s in self.list("email-domain") {
            let value = s.value.trim();
            if value == "*" {
                any = true;
            } else if value.contains('@') || value.contains('*') || value.contains('/') {
                self.fail(
                    "email-domain",
                    &s.source,
                    "invalid_email_domain",
                    format!(
                        "{value:?} is not a domain (example.com, .example.com for subdomains, or *)"
                    ),
                );
            } else {
                domains.push(value.to_owned());
            }
        }
        (any, domains)
    }

    fn allowed_emails(&mut self) -> Vec<String> {
        let mut emails = values(&self.list("allowed-email"));
        if let Some(file) = self.text("authenticated-emails-file").cloned() {
            match std::fs::read_to_string(file.value.trim()) {
                Ok(text) => emails.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned),
                ),
                Err(e) => self.fail(
                    "authenticated-emails-file",
                    &file.source,
                    "unreadable_file",
                    format!("cannot read {}: {e}", file.value.trim()),
                ),
            }
        }
        emails
    }

    /// `--allowed-role` values. oauth2-proxy's `client:role` spelling for a client role is
    /// refused rather than read as a role name: the client is named once, by
    /// `--oidc-role-client`.
    fn allowed_roles(&mut self) -> Vec<String> {
        let mut roles = Vec::new();
        for s in self.list("allowed-role") {
            let role = s.value.trim();
            if let Some((client, name)) = role.split_once(':') {
                self.fail(
                    "allowed-role",
                    &s.source,
                    "client_role_spelling",
                    format!(
                        "{role:?}: name the client once with --oidc-role-client={client} and list the role as --allowed-role={name}"
                    ),
                );
            } else if !role.is_empty() {
                roles.push(role.to_owned());
            }
        }
        roles
    }

    /// The e-mail and user-id claims and the role client; each name must be non-empty and free
    /// of whitespace.
    fn identity_claims(&mut self) -> IdentityClaims {
        let mut names = IdentityClaims::new();
        for option in ["oidc-email-claim", "user-id-claim", "oidc-role-client"] {
            let Some(s) = self.text(option).cloned() else {
                continue;
            };
            let value = s.value.trim();
            if value.is_empty() || value.contains(char::is_whitespace) {
                self.fail(
                    option,
                    &s.source,
                    "invalid_claim_name",
                    format!("{:?} is not a claim or client name", s.value),
                );
                continue;
            }
            names = match option {
                "oidc-email-claim" => names.with_email_claim(value),
                "user-id-claim" => names.with_user_id_claim(value),
                _ => names.with_role_client(value),
            };
        }
        names
    }

    fn extra_issuers(&mut self) -> Vec<ExtraIssuer> {
        let mut extra = Vec::new();
        for s in self.list("extra-jwt-issuers") {
            // The issuer is a URL and may contain '=' in its query; the audience is after the
            // last '='.
            let Some((issuer, audience)) = s.value.trim().rsplit_once('=') else {
                self.fail(
                    "extra-jwt-issuers",
                    &s.source,
                    "invalid_extra_issuer",
                    format!("{:?} is not ISSUER=AUDIENCE", s.value),
                );
                continue;
            };
            if audience.is_empty() {
                self.fail(
                    "extra-jwt-issuers",
                    &s.source,
                    "invalid_extra_issuer",
                    format!("{:?} has no audience after '='", s.value),
                );
                continue;
            }
            match Issuer::new(issuer) {
                Ok(issuer) => extra.push(ExtraIssuer {
                    issuer,
                    audience: audience.to_owned(),
                }),
                Err(e) => self.fail("extra-jwt-issuers", &s.source, e.code(), e.to_string()),
            }
        }
        extra
    }

    fn session_store(&mut self) -> SessionStoreChoice {
        let kind = self.text("session-store-type").cloned();
        match kind.as_ref().map(|s| s.value.trim().to_ascii_lowercase()) {
            None => SessionStoreChoice::Cookie,
            Some(k) if k == "cookie" => SessionStoreChoice::Cookie,
            Some(k) if k == "redis" => match self.redis_target() {
                Some(target) => SessionStoreChoice::Redis(RedisSettings {
                    target,
                    username: self
                        .text("redis-username")
                        .map(|s| s.value.trim().to_owned()),
                    password: self
                        .text("redis-password")
                        .map(|s| Secret::new(s.value.clone())),
                    sentinel_password: self
                        .text("redis-sentinel-password")
                        .map(|s| Secret::new(s.value.clone())),
                    ca_path: self
                        .text("redis-ca-path")
                        .map(|s| PathBuf::from(s.value.trim())),
                }),
                None => SessionStoreChoice::Cookie,
            },
            Some(other) => {
                if let Some(s) = kind {
                    self.fail(
                        "session-store-type",
                        &s.source,
                        "invalid_session_store",
                        format!("{other:?} is not a session store: cookie or redis"),
                    );
                }
                SessionStoreChoice::Cookie
            }
        }
    }

    fn redis_target(&mut self) -> Option<RedisTarget> {
        let sentinel = self.bool("redis-use-sentinel", false);
        let cluster = self.bool("redis-use-cluster", false);
        if sentinel && cluster {
            let source = self
                .layers
                .value("redis-use-cluster")
                .map(|s| s.source.clone())
                .unwrap_or(Source::Default);
            self.fail(
                "redis-use-cluster",
                &source,
                "conflicting_redis_modes",
                "--redis-use-sentinel and --redis-use-cluster exclude each other".to_owned(),
            );
            return None;
        }
        if sentinel {
            let master_name = self.text("redis-sentinel-master-name").cloned();
            let urls = self.redis_urls("redis-sentinel-connection-urls");
            let Some(master_name) = master_name else {
                self.missing(
                    "redis-sentinel-master-name",
                    "--redis-use-sentinel needs --redis-sentinel-master-name",
                );
                return None;
            };
            return Some(RedisTarget::Sentinel {
                master_name: master_name.value.trim().to_owned(),
                urls: urls?,
            });
        }
        if cluster {
            return Some(RedisTarget::Cluster {
                urls: self.redis_urls("redis-cluster-connection-urls")?,
            });
        }
        match self.text("redis-connection-url").cloned() {
            Some(url) if is_redis_url(&url.value) => Some(RedisTarget::Single {
                url: Secret::new(url.value.trim().to_owned()),
            }),
            Some(url) => {
                self.fail(
                    "redis-connection-url",
                    &url.source,
                    "invalid_redis_url",
                    "must start with redis:// or rediss:// (value not shown: it may hold a password)"
                        .to_owned(),
                );
                None
            }
            None => {
                self.missing(
                    "redis-connection-url",
                    "--session-store-type=redis needs --redis-connection-url (or Sentinel or Cluster)",
                );
                None
            }
        }
    }

    /// The URLs of `option`, all `redis://` or `rediss://`, at least one.
    fn redis_urls(&mut self, option: &'static str) -> Option<Vec<Secret>> {
        let values = self.list(option);
        if values.is_empty() {
            self.missing(option, &format!("--{option} needs at least one URL"));
            return None;
        }
        let mut urls = Vec::with_capacity(values.len());
        for value in values {
            if !is_redis_url(&value.value) {
                self.fail(
                    option,
                    &value.source,
                    "invalid_redis_url",
                    "must start with redis:// or rediss:// (value not shown: it may hold a password)"
                        .to_owned(),
                );
                return None;
            }
            urls.push(Secret::new(value.value.trim().to_owned()));
        }
        Some(urls)
    }

    fn route_rules<E: std::fmt::Display>(
        &mut self,
        option: &'static str,
        compile: fn(Vec<String>) -> Result<RouteRules, E>,
    ) -> Vec<String> {
        let rules = self.list(option);
        let texts = values(&rules);
        for (index, rule) in rules.iter().enumerate() {
            if let Err(e) = compile(vec![rule.value.trim().to_owned()]) {
                self.fail(
                    option,
                    &rule.source,
                    "invalid_route_rule",
                    format!("rule #{} {:?}: {e}", index + 1, rule.value),
                );
            }
        }
        if let (Err(e), Some(first)) = (compile(texts.clone()), rules.first())
            && !self.errors.iter().any(|err| err.option == option)
        {
            self.fail(option, &first.source, "invalid_route_rule", e.to_string());
        }
        texts
    }

    fn whitelist_domains(&mut self) -> Vec<String> {
        let domains = self.list("whitelist-domain");
        for s in &domains {
            if let Err(e) = oidc_core::RedirectPolicy::new([s.value.trim()]) {
                self.fail(
                    "whitelist-domain",
                    &s.source,
                    e.code(),
                    format!("{:?}: {e}", s.value),
                );
            }
        }
        values(&domains)
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

fn values(list: &[Sourced]) -> Vec<String> {
    list.iter().map(|s| s.value.trim().to_owned()).collect()
}

/// Go's boolean spellings, as oauth2-proxy takes them.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A Go duration as oauth2-proxy takes it (`168h`, `1h30m`, `45s`, `500ms`, `0`), or a plain
/// number of seconds.
pub(crate) fn parse_duration(value: &str) -> Option<Duration> {
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let part = match unit {
            "h" => Duration::from_secs(number.checked_mul(3600)?),
            "m" => Duration::from_secs(number.checked_mul(60)?),
            "s" => Duration::from_secs(number),
            "ms" => Duration::from_millis(number),
            _ => return None,
        };
        total = total.checked_add(part)?;
    }
    Some(total)
}

fn read_secret_file(path: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The path of the TOML file to read: `--config`, else `OIDC_PROXY_CONFIG`.
pub(crate) fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("OIDC_PROXY_CONFIG").map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::sources::Layer;

    const SECRET: &str = "0123456789abcdef0123456789abcdef0123";

    fn flags(pairs: &[(&'static str, &str)]) -> Layers {
        let mut layer = Layer::default();
        let mut grouped: std::collections::BTreeMap<&'static str, Vec<Sourced>> =
            Default::default();
        for (name, value) in pairs {
            grouped.entry(name).or_default().push(Sourced {
                value: (*value).to_owned(),
                source: Source::Flag { name },
            });
        }
        for (name, values) in grouped {
            layer.set(name, values);
        }
        Layers {
            flags: layer,
            ..Layers::default()
        }
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("oidc-issuer-url", "https://op.example.com"),
            ("client-id", "mlflow"),
            ("client-secret", "s3cret"),
            ("redirect-url", "https://mlflow.example.com/oauth2/callback"),
            ("cookie-secret", SECRET),
            ("email-domain", "*"),
            ("upstream", "http://127.0.0.1:5000/"),
        ]
    }

    fn errors(pairs: &[(&'static str, &str)]) -> Vec<SettingError> {
        ProxySettings::resolve(&flags(pairs)).unwrap_err()
    }

    #[test]
    fn socket_upstreams_serve_at_the_root_or_under_their_prefix() {
        let mut pairs = minimal();
        pairs.retain(|(name, _)| *name != "upstream");
        pairs.push(("upstream", "unix:///run/mlflow/mlflow.sock"));
        pairs.push(("upstream", "/api/=unix:///run/api.sock"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(s.upstreams[0].prefix, "/");
        assert_eq!(s.upstreams[0].url.path(), "/run/mlflow/mlflow.sock");
        assert!(!s.upstreams[0].strip_prefix);
        assert_eq!(s.upstreams[1].prefix, "/api/");
        assert!(s.upstreams[1].strip_prefix);

        for bad in ["unix://run/app.sock", "unix:///run/", "unix:"] {
            let mut pairs = minimal();
            pairs.retain(|(name, _)| *name != "upstream");
            pairs.push(("upstream", bad));
            assert!(
                errors(&pairs)
                    .iter()
                    .any(|e| e.option == "upstream" && e.code == "invalid_url"),
                "{bad}"
            );
        }
    }

    #[test]
    fn identity_assertions_are_on_with_an_audience_and_default_to_the_callback_origin() {
        let s = ProxySettings::resolve(&flags(&minimal())).unwrap();
        assert_eq!(s.identity_assertion, None);

        let mut pairs = minimal();
        pairs.push(("identity-assertion-audience", "mlflow"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(
            s.identity_assertion,
            Some(IdentityAssertionSettings {
                audience: "mlflow".into(),
                issuer: "https://mlflow.example.com".into(),
                key_file: None,
                lifetime: Duration::from_secs(60),
            })
        );

        pairs.push((
            "identity-assertion-issuer",
            "https://apps.example.com/oauth2",
        ));
        pairs.push(("identity-assertion-key-file", "/etc/oidc/assertion.pem"));
        pairs.push(("identity-assertion-lifetime", "2m"));
        let assertion = ProxySettings::resolve(&flags(&pairs))
            .unwrap()
            .identity_assertion
            .unwrap();
        assert_eq!(assertion.issuer, "https://apps.example.com/oauth2");
        assert_eq!(
            assertion.key_file,
            Some(PathBuf::from("/etc/oidc/assertion.pem"))
        );
        assert_eq!(assertion.lifetime, Duration::from_secs(120));
    }

    #[test]
    fn identity_assertion_settings_without_an_audience_or_too_short_are_errors() {
        let mut pairs = minimal();
        pairs.push(("identity-assertion-key-file", "/etc/oidc/assertion.pem"));
        assert!(
            errors(&pairs)
                .iter()
                .any(|e| e.option == "identity-assertion-key-file"
                    && e.code == "needs_identity_assertion_audience")
        );

        let mut pairs = minimal();
        pairs.push(("identity-assertion-audience", "mlflow"));
        pairs.push(("identity-assertion-lifetime", "1s"));
        assert!(
            errors(&pairs)
                .iter()
                .any(|e| e.option == "identity-assertion-lifetime" && e.code == "invalid_duration")
        );
    }

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

    #[test]
    fn no_allow_rule_means_no_one_would_get_in() {
        let pairs: Vec<_> = minimal()
            .into_iter()
            .filter(|(n, _)| *n != "email-domain")
            .collect();
        let errs = errors(&pairs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].option, "email-domain");
    }

    #[test]
    fn roles_and_claim_names_reach_the_rules() {
        let pairs: Vec<_> = minimal()
            .into_iter()
            .filter(|(n, _)| *n != "email-domain")
            .chain([
                ("allowed-role", "editor"),
                ("allowed-role", "admin"),
                ("oidc-role-client", "mlflow"),
                ("oidc-email-claim", "upn"),
                ("user-id-claim", "oid"),
            ])
            .collect();
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        let rules = s.authorization_rules();
        assert_eq!(rules.allowed_roles, ["editor", "admin"]);
        assert_eq!(
            rules.identity_claims,
            IdentityClaims::new()
                .with_email_claim("upn")
                .with_user_id_claim("oid")
                .with_role_client("mlflow")
        );
        assert!(
            s.summary()
                .iter()
                .any(|l| l.contains("roles editor, admin"))
        );
        assert!(
            s.summary().iter().any(
                |l| l == "e-mail from `upn`, user id from `oid`, roles also of client `mlflow`"
            )
        );
        let mut spelled = minimal();
        spelled.push(("allowed-role", "mlflow:editor"));
        spelled.push(("user-id-claim", "bad claim"));
        let codes: Vec<&str> = errors(&spelled).iter().map(|e| e.code).collect();
        assert_eq!(codes, ["client_role_spelling", "invalid_claim_name"]);
    }

    #[test]
    fn upstream_paths_are_route_prefixes_and_explicit_prefixes_are_stripped() {
        let mut pairs = minimal();
        pairs.push(("upstream", "http://127.0.0.1:8080/airflow/"));
        pairs.push(("upstream", "/api/=http://127.0.0.1:9000/v1/"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        let routes: Vec<_> = s
            .upstreams
            .iter()
            .map(|u| (u.prefix.as_str(), u.url.as_str(), u.strip_prefix))
            .collect();
        assert_eq!(
            routes,
            [
                ("/", "http://127.0.0.1:5000/", false),
                ("/airflow/", "http://127.0.0.1:8080/airflow/", false),
                ("/api/", "http://127.0.0.1:9000/v1/", true)
            ]
        );
        pairs.push(("upstream", "http://other:1/airflow/"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].code, "duplicate_upstream_prefix");
    }

    #[test]
    fn extra_issuers_split_at_the_last_equals_sign() {
        let mut pairs = minimal();
        pairs.push(("extra-jwt-issuers", "https://ci.example.com=mlflow-api"));
        assert_eq!(errors(&pairs)[0].code, "needs_bearer_tokens");
        pairs.push(("skip-jwt-bearer-tokens", "true"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(s.extra_issuers[0].issuer.as_str(), "https://ci.example.com");
        assert_eq!(s.extra_issuers[0].audience, "mlflow-api");
        pairs.push(("extra-jwt-issuers", "https://ci.example.com"));
        assert_eq!(errors(&pairs)[0].code, "invalid_extra_issuer");
    }

    #[test]
    fn https_upstreams_take_a_ca_file_a_client_certificate_and_the_old_skip_verify_name() {
        let mut pairs = minimal();
        pairs.push(("upstream", "/api/=https://api.internal:8443/"));
        pairs.push(("upstream-ca-file", "/etc/ssl/internal-ca.pem"));
        pairs.push(("upstream-client-cert", "/etc/oidc/client.pem"));
        pairs.push(("upstream-client-key", "/etc/oidc/client-key.pem"));
        pairs.push(("upstream-body-idle-timeout", "30s"));
        pairs.push(("client-write-stall-timeout", "45s"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(s.upstreams[1].url.scheme(), "https");
        assert_eq!(
            s.upstream_tls.ca_files,
            [PathBuf::from("/etc/ssl/internal-ca.pem")]
        );
        assert!(s.upstream_tls.client_certificate.is_some());
        assert!(!s.upstream_tls.insecure_skip_verify);
        assert_eq!(s.upstream_body_idle_timeout, Duration::from_secs(30));
        assert_eq!(s.client_write_stall_timeout, Duration::from_secs(45));

        let mut pairs = minimal();
        pairs.push(("ssl-upstream-insecure-skip-verify", "true"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert!(s.upstream_tls.insecure_skip_verify && s.upstream_tls.skip_verify_by_old_name);

        let mut pairs = minimal();
        pairs.push(("upstream-client-cert", "/etc/oidc/client.pem"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].option, "upstream-client-key");
        assert_eq!(errs[0].code, "incomplete_client_certificate");
    }

    #[test]
    fn redis_sentinel_and_cluster_take_oauth2_proxy_flags() {
        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-sentinel", "true"));
        pairs.push(("redis-sentinel-master-name", "mymaster"));
        pairs.push(("redis-sentinel-connection-urls", "redis://10.0.0.1:26379"));
        pairs.push(("redis-sentinel-connection-urls", "redis://10.0.0.2:26379"));
        pairs.push(("redis-password", "hunter2"));
        pairs.push(("redis-username", "oidc"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        let SessionStoreChoice::Redis(redis) = &s.session_store else {
            panic!("redis expected");
        };
        assert!(
            matches!(&redis.target, RedisTarget::Sentinel { master_name, urls } if master_name == "mymaster" && urls.len() == 2)
        );
        assert_eq!(redis.username.as_deref(), Some("oidc"));
        assert!(!format!("{:?}", redis.store_config()).contains("hunter2"));

        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-cluster", "true"));
        pairs.push(("redis-cluster-connection-urls", "rediss://10.0.0.1:6379"));
        pairs.push(("redis-ca-path", "/etc/redis/ca.pem"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert!(matches!(
            &s.session_store,
            SessionStoreChoice::Redis(RedisSettings {
                target: RedisTarget::Cluster { .. },
                ca_path: Some(_),
                ..
            })
        ));

        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-sentinel", "true"));
        let errs = errors(&pairs);
        for option in [
            "redis-sentinel-master-name",
            "redis-sentinel-connection-urls",
        ] {
            assert!(errs.iter().any(|e| e.option == option), "{errs:?}");
        }
        pairs.push(("redis-use-cluster", "true"));
        assert_eq!(errors(&pairs)[0].code, "conflicting_redis_modes");
        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-cluster", "true"));
        pairs.push(("redis-cluster-connection-urls", "http://secret@x"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].code, "invalid_redis_url");
        assert!(!errs[0].to_string().contains("secret@"));
    }

    #[test]
    fn redis_needs_a_url_and_its_value_is_never_shown() {
        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        assert_eq!(errors(&pairs)[0].option, "redis-connection-url");
        pairs.push(("redis-connection-url", "http://user:pw@host"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].code, "invalid_redis_url");
        assert!(!errs[0].to_string().contains("pw@"));
        pairs.pop();
        pairs.push(("redis-connection-url", "redis://127.0.0.1:6379/0"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert!(matches!(s.session_store, SessionStoreChoice::Redis(_)));
    }

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

    #[test]
    fn go_durations_and_booleans_parse() {
        assert_eq!(parse_duration("168h"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h30m15s"), Some(Duration::from_secs(5415)));
        assert_eq!(
            parse_duration("168h0m0s"),
            Some(Duration::from_secs(604_800))
        );
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        for bad in [
            "",
            "h",
            "1x",
            "1h30",
            "-1s",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    proptest::proptest! {
        #[test]
        fn duration_parsing_never_panics(text in ".{0,24}") {
            let _ = parse_duration(&text);
        }
    }
}
