//! The command line, as a contract: these subcommands and flags are what scripts call.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// OpenID Connect from the terminal: inspect and verify tokens, check a provider, sign in, and
/// run the sign-in proxy in front of services that lack it.
#[derive(Debug, Parser)]
#[command(name = "oidc", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok / valid, 1 token rejected or check failed, \
                        2 usage, file or network error."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show a token's header and claims WITHOUT verifying anything.
    Decode(DecodeArgs),
    /// Verify a token's signature and claims against an issuer's keys.
    Verify(VerifyArgs),
    /// Check a DPoP proof (RFC 9449) for a request, as a resource server would.
    Dpop(DpopArgs),
    /// Fetch and check an issuer's discovery document.
    Discover(DiscoverArgs),
    /// List the signing keys of an issuer or a JWKS URL.
    Jwks(JwksArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Sign in from the terminal (browser + loopback redirect, or --device) and cache the tokens.
    Login(LoginArgs),
    /// Print a valid access token, refreshing or signing in as needed:
    /// `export MLFLOW_TRACKING_TOKEN=$(oidc token --issuer ... --client-id ...)`.
    Token(TokenArgs),
    /// Run a development OpenID Provider on loopback (test users; NOT for production).
    DevProvider(DevProviderArgs),
    /// Run the demo: dev provider, an upstream showing identity headers, and the proxy.
    Demo(DemoArgs),
    /// Run the OpenID Connect proxy in front of upstream services (oauth2-proxy compatible flags).
    Proxy(crate::proxy::ProxyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The token, a file holding it, or `-` for stdin (the default).
    #[arg(value_name = "TOKEN|-")]
    pub(crate) token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DpopArgs {
    /// The proof (the `DPoP` header's value), a file holding it, or `-` for stdin.
    #[arg(value_name = "PROOF|-")]
    pub(crate) proof: Option<String>,
    /// The request's method, e.g. GET.
    #[arg(long, value_name = "METHOD")]
    pub(crate) method: String,
    /// The request's absolute URL as the client addressed it.
    #[arg(long, value_name = "URL")]
    pub(crate) url: String,
    /// The access token sent with the proof (checks `ath`).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) access_token: Option<String>,
    /// The thumbprint the access token is bound to (its `cnf.jkt`).
    #[arg(long, value_name = "JKT")]
    pub(crate) jkt: Option<String>,
    /// Check as of this unix time instead of now.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) now: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The token, a file holding it, or `-` for stdin (the default).
    #[arg(value_name = "TOKEN|-")]
    pub(crate) token: Option<String>,
    /// The issuer the token must come from (exact match).
    #[arg(long, value_name = "URL")]
    pub(crate) issuer: String,
    /// An accepted audience (repeatable); required unless --insecure-skip-audience.
    #[arg(long = "audience", value_name = "AUD")]
    pub(crate) audiences: Vec<String>,
    /// Skip the audience check. Any token of the issuer then passes, whoever it was meant for.
    #[arg(long, conflicts_with = "audiences")]
    pub(crate) insecure_skip_audience: bool,
    /// Keys from a JWKS file or URL instead of the issuer's discovery document.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub(crate) jwks: Option<String>,
    /// An accepted algorithm (repeatable); by default the asymmetric ones.
    #[arg(long = "alg", value_name = "ALG")]
    pub(crate) algorithms: Vec<String>,
    /// Clock skew tolerated for exp, nbf and iat, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = oidc_core::validation::DEFAULT_LEEWAY.as_secs())]
    pub(crate) leeway: u64,
    /// Check as if it were this time (seconds since the epoch) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) now: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DiscoverArgs {
    /// The issuer, e.g. https://accounts.example.com
    pub(crate) issuer: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JwksArgs {
    /// An issuer (keys found through discovery), a JWKS URL, or a JWKS file.
    #[arg(value_name = "ISSUER_OR_URL")]
    pub(crate) source: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The provider's issuer URL (exactly as it states it).
    #[arg(long, value_name = "URL")]
    pub(crate) issuer: String,
    /// The client id registered for command-line use (a public client, usually).
    #[arg(long, value_name = "ID")]
    pub(crate) client_id: String,
    /// The client secret, for a confidential client.
    #[arg(
        long,
        value_name = "SECRET",
        env = "OIDC_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub(crate) client_secret: Option<String>,
    /// Scopes to ask for (repeatable or space separated) [default: openid profile email
    /// offline_access, as supported].
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,
    /// The API the access token is for, as an RFC 8707 resource indicator (an absolute URI such
    /// as the proxy's URL); providers that support it issue a JWT access token with that
    /// audience. Repeatable.
    #[arg(long = "resource", value_name = "URI")]
    pub(crate) resources: Vec<String>,
    /// The audience to ask for with the non-standard `audience` authorization parameter
    /// (Auth0 and others that use it instead of `--resource`).
    #[arg(long, value_name = "AUDIENCE")]
    pub(crate) audience: Option<String>,
    /// Use the device authorization grant (RFC 8628): sign in on another device.
    #[arg(long)]
    pub(crate) device: bool,
    /// Do not try to open a browser; only print the URL.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Port of the loopback redirect listener (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub(crate) redirect_port: u16,
    /// Seconds to wait for the sign-in to complete.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) timeout: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    pub(crate) login: LoginArgs,
    /// Seconds the printed token must stay valid at least; a cached token closer to expiry
    /// is refreshed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) min_valid: u64,
    /// Fail instead of signing in when no cached or refreshable token exists.
    #[arg(long)]
    pub(crate) no_login: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DevProviderArgs {
    /// Address to listen on (loopback only unless --insecure-allow-non-loopback).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    pub(crate) listen: std::net::SocketAddr,
    /// The issuer URL to state [default: http://<listen address>].
    #[arg(long, value_name = "URL")]
    pub(crate) issuer: Option<String>,
    /// Users and clients from a TOML or JSON file ([[users]] username, password, email,
    /// groups, claims; [[clients]] client_id, client_secret, redirect_uris, ...).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Signing algorithm of the keys.
    #[arg(long, value_name = "ALG", default_value = "RS256", value_parser = ["RS256", "ES256"])]
    pub(crate) signing_alg: String,
    /// Access token lifetime in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) access_token_lifetime: u64,
    /// Rotate the signing key every this many seconds (SIGHUP rotates at once).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) rotate_every: Option<u64>,
    /// The port of the proxy the built-in clients redirect to (without --config).
    #[arg(long, value_name = "PORT", default_value_t = 4180)]
    pub(crate) proxy_port: u16,
    /// Listen on a non-loopback address. The provider has test users and no real security.
    #[arg(long)]
    pub(crate) insecure_allow_non_loopback: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Move all three ports: proxy BASE, provider BASE+1, upstream BASE+2 (BASE from 1 to 65533).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..=65533))]
    pub(crate) port_base: Option<u16>,
    /// Proxy port.
    #[arg(long, value_name = "PORT", default_value_t = 4180, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) proxy_port: u16,
    /// Provider port.
    #[arg(long, value_name = "PORT", default_value_t = 9090, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) provider_port: u16,
    /// Upstream port.
    #[arg(long, value_name = "PORT", default_value_t = 8081, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) upstream_port: u16,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to generate completions for.
    pub(crate) shell: clap_complete::Shell,
}

/// A path argument that names a file rather than a token or URL: it has a path separator, is
/// an existing file, or reads as a bare file name (`token.jwt`, `keys.json`), which no token
/// does: a JWT has two or four dots, not one followed by a short extension.
pub(crate) fn looks_like_path(value: &str) -> bool {
    value.contains('/')
        || value.contains('\\')
        || PathBuf::from(value).is_file()
        || looks_like_file_name(value)
}

fn looks_like_file_name(value: &str) -> bool {
    match value.split_once('.') {
        Some((stem, extension)) => {
            !stem.is_empty()
                && (1..=5).contains(&extension.len())
                && extension.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn verify_takes_repeated_audiences_and_algorithms() {
        let cli = Cli::try_parse_from([
            "oidc",
            "verify",
            "t",
            "--issuer",
            "https://op.example",
            "--audience",
            "a",
            "--audience",
            "b",
            "--alg",
            "RS256",
            "--alg",
            "ES256",
            "--leeway",
            "5",
            "--now",
            "7",
        ])
        .unwrap();
        let Command::Verify(args) = cli.command else {
            panic!("verify expected")
        };
        assert_eq!(args.audiences, ["a", "b"]);
        assert_eq!(args.algorithms, ["RS256", "ES256"]);
        assert_eq!((args.leeway, args.now), (5, Some(7)));
        assert_eq!(args.token.as_deref(), Some("t"));
    }

    #[test]
    fn skipping_the_audience_excludes_giving_one() {
        let err = Cli::try_parse_from([
            "oidc",
            "verify",
            "--issuer",
            "https://op.example",
            "--audience",
            "a",
            "--insecure-skip-audience",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn bare_file_names_are_paths_and_tokens_are_not() {
        for name in ["token.jwt", "keys.json", "t.txt", "access.token"] {
            assert!(looks_like_file_name(name), "{name}");
        }
        for value in [
            "hello",
            "a.b.c",
            "....",
            ".jwt",
            "eyJhbGciOiJub25lIn0",
            "x.toolong",
        ] {
            assert!(!looks_like_file_name(value), "{value}");
        }
    }

    proptest::proptest! {
        #[test]
        fn compact_tokens_are_never_taken_for_file_names(
            token in "[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{0,40}",
        ) {
            proptest::prop_assert!(!looks_like_file_name(&token));
        }
    }
}
