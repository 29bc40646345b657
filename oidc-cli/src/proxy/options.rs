//! The options of `oidc proxy`, as one table: flag name, kind, oauth2-proxy's file key, help.
//!
//! The same table gives the command-line flags (`--client-id`), the environment variables
//! (`OIDC_PROXY_CLIENT_ID`) and the TOML keys (`client_id`), so the three can never disagree.
//! oauth2-proxy options that this proxy does not offer are listed in [`REFUSED`] with the reason,
//! and named in the error when someone passes them.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command, parser::ValueSource};

use super::sources::{Layer, Source, Sourced, env_var_name};

/// How an option takes values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One value; given twice, the last wins.
    Text,
    /// One value that is never printed.
    Secret,
    /// `--flag` (true), `--flag=true|false`.
    Bool,
    /// Repeatable; a TOML array; a comma-separated environment variable.
    List,
    /// Repeatable secrets (the first seals, all open).
    SecretList,
    /// Only on the command line (`--config`, `--check-config`).
    CommandOnly,
}

impl Kind {
    pub(crate) fn is_list(self) -> bool {
        matches!(self, Kind::List | Kind::SecretList)
    }

    pub(crate) fn is_secret(self) -> bool {
        matches!(self, Kind::Secret | Kind::SecretList)
    }

    pub(crate) fn toml_expectation(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean",
            Kind::List | Kind::SecretList => "a string or an array of strings",
            _ => "a string",
        }
    }
}

/// One option of `oidc proxy`.
#[derive(Debug)]
pub(crate) struct OptionSpec {
    /// The flag name without `--`; the TOML key is this with `_` for `-`.
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// oauth2-proxy's configuration-file key when it differs (its plural list keys).
    pub(crate) alias: Option<&'static str>,
    pub(crate) help: &'static str,
}

const fn opt(name: &'static str, kind: Kind, help: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        alias: None,
        help,
    }
}

const fn list(name: &'static str, alias: &'static str, help: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        kind: Kind::List,
        alias: Some(alias),
        help,
    }
}

/// Every option, in the order `--help` shows them.
pub(crate) const OPTIONS: &[OptionSpec] = &[
    opt(
        "config",
        Kind::CommandOnly,
        "Read settings from this TOML file (flags and OIDC_PROXY_* variables override it)",
    ),
    opt(
        "check-config",
        Kind::CommandOnly,
        "Check every setting and reach the provider (and Redis), then exit: 0 good, 1 a check failed, 2 unusable settings",
    ),
    opt(
        "http-address",
        Kind::Text,
        "Address to listen on [default: 127.0.0.1:4180]",
    ),
    list(
        "upstream",
        "upstreams",
        "Upstream URL; its path is the route prefix (`http://127.0.0.1:8080/airflow/` serves /airflow/); or PREFIX=URL to strip the prefix. Repeatable",
    ),
    list(
        "upstream-ca-file",
        "upstream_ca_files",
        "Also trust the CA certificates in this PEM file for https upstreams (the system store is always trusted). Repeatable",
    ),
    opt(
        "upstream-client-cert",
        Kind::Text,
        "Offer this PEM certificate chain to https upstreams that ask for one (mTLS); needs --upstream-client-key",
    ),
    opt(
        "upstream-client-key",
        Kind::Text,
        "The PEM private key of --upstream-client-cert",
    ),
    opt(
        "upstream-insecure-skip-verify",
        Kind::Bool,
        "DANGEROUS: accept any certificate from https upstreams, so anyone on the path can read identities and tokens [default: false]",
    ),
    opt(
        "ssl-upstream-insecure-skip-verify",
        Kind::Bool,
        "oauth2-proxy's name for --upstream-insecure-skip-verify (accepted with a warning)",
    ),
    opt(
        "upstream-body-idle-timeout",
        Kind::Text,
        "Cut off a request or response body that moves no byte for this long [default: 5m]",
    ),
    opt(
        "client-write-stall-timeout",
        Kind::Text,
        "Close a client connection that takes no response byte for this long [default: 5m]",
    ),
    opt(
        "oidc-issuer-url",
        Kind::Text,
        "The OpenID Provider's issuer URL (exactly as it states it)",
    ),
    list(
        "oidc-extra-audience",
        "oidc_extra_audiences",
        "Further accepted audiences besides the client id. Repeatable",
    ),
    opt(
        "client-id",
        Kind::Text,
        "The client id registered at the provider",
    ),
    opt(
        "client-secret",
        Kind::Secret,
        "The client secret (prefer --client-secret-file or the environment)",
    ),
    opt(
        "client-secret-file",
        Kind::Text,
        "Read the client secret from this file",
    ),
    opt(
        "redirect-url",
        Kind::Text,
        "The callback URL registered at the provider (…/oauth2/callback)",
    ),
    opt(
        "scope",
        Kind::Text,
        "Scopes asked for, space separated [default: openid email profile]",
    ),
    opt(
        "code-challenge-method",
        Kind::Text,
        "PKCE method; only S256 is supported [default: S256]",
    ),
    opt(
        "cookie-name",
        Kind::Text,
        "Session cookie name [default: oidc_session]",
    ),
    OptionSpec {
        name: "cookie-secret",
        kind: Kind::SecretList,
        alias: Some("cookie_secrets"),
        help: "Secret sealing the cookies, at least 32 characters (`openssl rand -base64 32`). Repeatable: the first seals, all open (rotation)",
    },
    opt(
        "cookie-secret-file",
        Kind::Text,
        "Read the cookie secret(s) from this file, one per line",
    ),
    opt(
        "cookie-secure",
        Kind::Bool,
        "Set the Secure cookie attribute [default: true]",
    ),
    list(
        "cookie-domain",
        "cookie_domains",
        "Cookie Domain attribute (one domain)",
    ),
    opt(
        "cookie-path",
        Kind::Text,
        "Cookie Path attribute [default: /]",
    ),
    opt(
        "cookie-expire",
        Kind::Text,
        "Session lifetime, e.g. 168h or 12h30m [default: 168h]",
    ),
    opt(
        "cookie-refresh",
        Kind::Text,
        "Refresh the tokens this long before the access token expires (0 = at expiry) [default: 1m]",
    ),
    list(
        "email-domain",
        "email_domains",
        "Admit emails of this domain (`*` = any authenticated user). Repeatable",
    ),
    list(
        "allowed-email",
        "allowed_emails",
        "Admit this email address. Repeatable",
    ),
    opt(
        "authenticated-emails-file",
        Kind::Text,
        "Admit the email addresses listed in this file, one per line",
    ),
    list(
        "allowed-group",
        "allowed_groups",
        "Require membership in one of these groups. Repeatable",
    ),
    opt(
        "oidc-groups-claim",
        Kind::Text,
        "Claim holding the groups [default: groups]",
    ),
    list(
        "allowed-role",
        "allowed_roles",
        "Require one of these roles (`roles`, `realm_access.roles`, the --oidc-role-client's `resource_access` roles); with --allowed-group, either admits. Repeatable",
    ),
    opt(
        "oidc-role-client",
        Kind::Text,
        "Client whose `resource_access.<client>.roles` count as roles (Keycloak client roles) [default: none]",
    ),
    opt(
        "oidc-email-claim",
        Kind::Text,
        "Claim holding the email; `email_verified` only speaks for `email` [default: email]",
    ),
    opt(
        "user-id-claim",
        Kind::Text,
        "Claim holding the user id sent upstream as X-Forwarded-User [default: sub]",
    ),
    opt(
        "insecure-oidc-allow-unverified-email",
        Kind::Bool,
        "Admit emails the provider marks unverified [default: false]",
    ),
    opt(
        "skip-jwt-bearer-tokens",
        Kind::Bool,
        "Accept `Authorization: Bearer` JWTs from API clients [default: false]",
    ),
    list(
        "extra-jwt-issuers",
        "extra_jwt_issuers",
        "Also accept bearer tokens of ISSUER=AUDIENCE (the --oidc-issuer-url itself adds an audience). Repeatable",
    ),
    list(
        "allowed-client-id",
        "allowed_client_ids",
        "Admit tokens issued to this client (a CI job's client_credentials token) past the email and group rules; the client id is the user. Repeatable",
    ),
    list(
        "trusted-client-id",
        "trusted_client_ids",
        "Accept opaque tokens issued to this client (a CLI's public client) as meant for this service; the allow rules still apply. Repeatable",
    ),
    opt(
        "session-store-type",
        Kind::Text,
        "Where sessions live: cookie or redis [default: cookie]",
    ),
    opt(
        "redis-connection-url",
        Kind::Secret,
        "Redis URL for --session-store-type=redis (redis:// or rediss://), unless Sentinel or Cluster is used",
    ),
    opt(
        "redis-username",
        Kind::Text,
        "ACL user for Redis (instead of one in the URL)",
    ),
    opt(
        "redis-password",
        Kind::Secret,
        "Password for Redis (instead of one in the URL)",
    ),
    opt(
        "redis-ca-path",
        Kind::Text,
        "Trust only the CA certificates in this PEM file for rediss:// (instead of the system store)",
    ),
    opt(
        "redis-use-sentinel",
        Kind::Bool,
        "Find the Redis primary through Redis Sentinel [default: false]",
    ),
    opt(
        "redis-sentinel-master-name",
        Kind::Text,
        "The Sentinel group name of the primary (with --redis-use-sentinel)",
    ),
    OptionSpec {
        name: "redis-sentinel-connection-urls",
        kind: Kind::SecretList,
        alias: None,
        help: "Sentinel URLs (redis:// or rediss://) for --redis-use-sentinel. Repeatable",
    },
    opt(
        "redis-sentinel-password",
        Kind::Secret,
        "Password of the sentinels themselves",
    ),
    opt(
        "redis-use-cluster",
        Kind::Bool,
        "Keep sessions in a Redis Cluster [default: false]",
    ),
    OptionSpec {
        name: "redis-cluster-connection-urls",
        kind: Kind::SecretList,
        alias: None,
        help: "Cluster node URLs (redis:// or rediss://) for --redis-use-cluster. Repeatable",
    },
    list(
        "skip-auth-route",
        "skip_auth_routes",
        "Pass requests matching [METHOD=]PATH_REGEX without authentication. Repeatable",
    ),
    opt(
        "skip-auth-preflight",
        Kind::Bool,
        "Pass CORS preflight (OPTIONS) requests without authentication [default: false]",
    ),
    list(
        "api-route",
        "api_routes",
        "Paths (regex) answered 401 instead of a redirect to sign-in. Repeatable",
    ),
    list(
        "whitelist-domain",
        "whitelist_domains",
        "Domains that sign-in may return to (`.example.com` includes subdomains; `host:port`). Repeatable",
    ),
    opt(
        "post-logout-redirect-url",
        Kind::Text,
        "Where the provider returns the browser after sign-out, registered there as a post-logout redirect URI: `{proxy-prefix}/signed_out` (e.g. https://host/oauth2/signed_out) goes on to sign_out's checked `rd`",
    ),
    opt(
        "pass-user-headers",
        Kind::Bool,
        "Send X-Forwarded-User/-Email/-Groups/-Preferred-Username upstream [default: true]",
    ),
    opt(
        "set-xauthrequest",
        Kind::Bool,
        "Answer forward-auth (/oauth2/auth) with X-Auth-Request-* identity headers [default: false]",
    ),
    opt(
        "pass-access-token",
        Kind::Bool,
        "Send the access token upstream in X-Forwarded-Access-Token [default: false]",
    ),
    opt(
        "pass-authorization-header",
        Kind::Bool,
        "Send `Authorization: Bearer <access token>` upstream [default: false]",
    ),
    opt(
        "identity-assertion-audience",
        Kind::Text,
        "Vouch for every allowed request with a signed JWT (ES256) in X-Identity-Assertion whose `aud` is this name (e.g. mlflow); its public keys are served at {proxy-prefix}/jwks",
    ),
    opt(
        "identity-assertion-issuer",
        Kind::Text,
        "The assertions' `iss` [default: the origin of --redirect-url]",
    ),
    opt(
        "identity-assertion-key-file",
        Kind::Text,
        "PEM file with the unencrypted PKCS#8 P-256 key signing the assertions; replicas share one [default: a new key at each start]",
    ),
    opt(
        "identity-assertion-lifetime",
        Kind::Text,
        "How long each assertion is valid [default: 1m]",
    ),
    opt(
        "forward-auth",
        Kind::Bool,
        "Serve the forward-auth endpoint {prefix}/auth for Caddy/nginx/Traefik [default: true]",
    ),
    opt(
        "proxy-prefix",
        Kind::Text,
        "Path prefix of the sign-in endpoints [default: /oauth2]",
    ),
    opt(
        "reverse-proxy",
        Kind::Bool,
        "Believe X-Forwarded-* headers from trusted proxies [default: false]",
    ),
    list(
        "trusted-proxy-ip",
        "trusted_proxy_ips",
        "IP or CIDR of a trusted reverse proxy [default: loopback]. Repeatable",
    ),
    opt(
        "metrics-address",
        Kind::Text,
        "Serve /metrics on this separate address",
    ),
];

/// oauth2-proxy options refused, with the reason given to whoever passes them.
pub(crate) const REFUSED: &[(&str, &str)] = &[
    (
        "provider",
        "this proxy speaks OpenID Connect only: use --oidc-issuer-url (provider-specific modes are not offered)",
    ),
    (
        "skip-oidc-discovery",
        "the provider's metadata always comes from discovery, so that keys and endpoints stay right",
    ),
    (
        "oidc-jwks-url",
        "the key set URL always comes from discovery",
    ),
    ("login-url", "endpoints always come from discovery"),
    ("redeem-url", "endpoints always come from discovery"),
    ("profile-url", "endpoints always come from discovery"),
    ("validate-url", "endpoints always come from discovery"),
    (
        "insecure-oidc-skip-issuer-verification",
        "the issuer is always checked (multi-tenant providers: configure the tenant's issuer)",
    ),
    (
        "ssl-insecure-skip-verify",
        "TLS certificates are always verified; trust a private CA through the system store",
    ),
    (
        "htpasswd-file",
        "basic-auth users are not offered; every user signs in at the provider",
    ),
    (
        "pass-basic-auth",
        "upstreams receive identity headers, not basic-auth credentials",
    ),
    (
        "https-address",
        "TLS is terminated by the reverse proxy in front (e.g. Caddy)",
    ),
    (
        "tls-cert-file",
        "TLS is terminated by the reverse proxy in front (e.g. Caddy)",
    ),
    (
        "tls-key-file",
        "TLS is terminated by the reverse proxy in front (e.g. Caddy)",
    ),
    (
        "custom-templates-dir",
        "there is no sign-in page to customise: browsers go straight to the provider",
    ),
    (
        "skip-provider-button",
        "not needed: there is no sign-in page, browsers go straight to the provider",
    ),
    (
        "trusted-ip",
        "bypassing authentication by client IP is not offered; use --skip-auth-route",
    ),
    ("cookie-samesite", "cookies are always SameSite=Lax"),
    ("cookie-httponly", "cookies are always HttpOnly"),
];

/// What `oidc proxy` was given on the command line.
#[derive(Debug, Default)]
pub(crate) struct ProxyArgs {
    pub(crate) config: Option<PathBuf>,
    pub(crate) check_config: bool,
    pub(crate) json: bool,
    pub(crate) flags: Layer,
    /// A refused oauth2-proxy option that was passed, and why it is refused.
    pub(crate) refused: Option<(&'static str, &'static str)>,
}

impl clap::FromArgMatches for ProxyArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ProxyArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for spec in OPTIONS {
            if matches.value_source(spec.name) != Some(ValueSource::CommandLine) {
                continue;
            }
            match spec.name {
                "config" => {
                    self.config = matches.get_one::<String>(spec.name).map(PathBuf::from);
                }
                "check-config" => self.check_config = matches.get_flag(spec.name),
                "json" => self.json = matches.get_flag(spec.name),
                name => {
                    let values = matches
                        .get_many::<String>(name)
                        .into_iter()
                        .flatten()
                        .map(|value| Sourced {
                            value: value.clone(),
                            source: Source::Flag { name: spec.name },
                        })
                        .collect();
                    self.flags.set(spec.name, values);
                }
            }
        }
        self.refused = REFUSED
            .iter()
            .filter(|(name, _)| matches.value_source(name) == Some(ValueSource::CommandLine))
            // `--provider=oidc` is what this proxy is.
            .find(|(name, _)| {
                *name != "provider"
                    || matches
                        .get_many::<String>(name)
                        .into_iter()
                        .flatten()
                        .any(|v| v != "oidc")
            })
            .copied();
        Ok(())
    }
}

impl clap::Args for ProxyArgs {
    fn augment_args(mut cmd: Command) -> Command {
        for spec in OPTIONS {
            let arg = Arg::new(spec.name).long(spec.name);
            let arg = match spec.kind {
                Kind::CommandOnly if matches!(spec.name, "check-config" | "json") => {
                    arg.action(ArgAction::SetTrue).help(spec.help)
                }
                Kind::CommandOnly => arg.value_name("FILE").help(spec.help),
                Kind::Bool => arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL")
                    .help(with_env(spec)),
                Kind::List | Kind::SecretList => arg
                    .action(ArgAction::Append)
                    .value_name(value_name(spec))
                    .help(with_env(spec)),
                Kind::Text | Kind::Secret => arg.value_name(value_name(spec)).help(with_env(spec)),
            };
            cmd = cmd.arg(arg);
        }
        for (name, _) in REFUSED {
            cmd = cmd.arg(
                Arg::new(*name)
                    .long(*name)
                    .hide(true)
                    .num_args(0..=1)
                    .action(ArgAction::Append),
            );
        }
        cmd.args_override_self(true)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

fn with_env(spec: &OptionSpec) -> String {
    format!("{} [env: {}]", spec.help, env_var_name(spec.name))
}

fn value_name(spec: &OptionSpec) -> &'static str {
    match spec.name {
        "http-address" | "metrics-address" => "HOST:PORT",
        "upstream" => "URL",
        "oidc-issuer-url" | "redirect-url" | "redis-connection-url" => "URL",
        "redis-sentinel-connection-urls" | "redis-cluster-connection-urls" => "URL",
        "redis-sentinel-master-name" => "NAME",
        "redis-username" => "USER",
        "client-secret-file" | "cookie-secret-file" | "authenticated-emails-file" => "FILE",
        "upstream-ca-file" | "upstream-client-cert" | "upstream-client-key" => "FILE",
        "identity-assertion-key-file" => "FILE",
        "redis-ca-path" => "FILE",
        "cookie-expire"
        | "cookie-refresh"
        | "upstream-body-idle-timeout"
        | "client-write-stall-timeout"
        | "identity-assertion-lifetime" => "DURATION",
        "extra-jwt-issuers" => "ISSUER=AUDIENCE",
        "skip-auth-route" => "[METHOD=]REGEX",
        "api-route" => "REGEX",
        "trusted-proxy-ip" => "IP|CIDR",
        _ if spec.kind.is_secret() => "SECRET",
        _ => "VALUE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args as _, FromArgMatches as _};

    fn parse(args: &[&str]) -> Result<ProxyArgs, clap::Error> {
        let cmd = ProxyArgs::augment_args(Command::new("proxy").no_binary_name(true));
        let matches = cmd.try_get_matches_from(args)?;
        ProxyArgs::from_arg_matches(&matches)
    }

    fn flag<'a>(args: &'a ProxyArgs, name: &str) -> Vec<&'a str> {
        args.flags
            .get(name)
            .map(|v| v.iter().map(|s| s.value.as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_table_has_unique_names_and_aliases() {
        let mut names: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        names.extend(OPTIONS.iter().filter_map(|o| o.alias).map(|a| a.trim()));
        names.extend(REFUSED.iter().map(|(n, _)| *n));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn oauth2_proxy_spellings_parse() {
        let args = parse(&[
            "--http-address=127.0.0.1:4180",
            "--upstream=http://127.0.0.1:5000/",
            "--upstream",
            "http://127.0.0.1:8080/airflow/",
            "--cookie-secure=false",
            "--skip-jwt-bearer-tokens",
            "--client-id=a",
            "--client-id=b",
            "--extra-jwt-issuers=https://ci.example=mlflow",
        ])
        .unwrap();
        assert_eq!(
            flag(&args, "upstream"),
            ["http://127.0.0.1:5000/", "http://127.0.0.1:8080/airflow/"]
        );
        assert_eq!(flag(&args, "cookie-secure"), ["false"]);
        assert_eq!(flag(&args, "skip-jwt-bearer-tokens"), ["true"]);
        assert_eq!(flag(&args, "client-id"), ["b"], "the last value wins");
        assert_eq!(
            flag(&args, "extra-jwt-issuers"),
            ["https://ci.example=mlflow"]
        );
        assert!(flag(&args, "scope").is_empty());
        assert!(!args.check_config);
        assert!(args.refused.is_none());
    }

    #[test]
    fn refused_options_are_reported_with_their_reason() {
        assert!(parse(&["--provider=oidc"]).unwrap().refused.is_none());
        let args = parse(&["--provider=github"]).unwrap();
        assert_eq!(args.refused.map(|(name, _)| name), Some("provider"));
        let args = parse(&["--ssl-insecure-skip-verify"]).unwrap();
        assert_eq!(
            args.refused.map(|(name, _)| name),
            Some("ssl-insecure-skip-verify")
        );
    }

    #[test]
    fn config_and_check_config_are_command_line_only() {
        let args = parse(&["--config", "/etc/oidc/proxy.toml", "--check-config"]).unwrap();
        assert_eq!(args.config, Some(PathBuf::from("/etc/oidc/proxy.toml")));
        assert!(args.check_config);
        assert!(args.flags.get("config").is_none());
    }
}
