//! Everything that can stop a command, with the exit code, stable code and hint each one gets.

use std::path::PathBuf;

use oidc_core::IssuerError;
use oidc_core::discovery::DiscoveryError;
use oidc_core::jwks::JwksError;
use oidc_core::jws::JwsError;
use oidc_core::login::device::DeviceError;
use oidc_core::login::token::TokenError;
use oidc_core::login::{
    AuthorizationErrorCode, CallbackError, ClientAuthError, EndpointsError, IdTokenError,
    StartError,
};
use oidc_core::validation::{PolicyError, ValidationError};
use oidc_tower::HttpError;
use oidc_tower::device::DeviceGrantError;
use oidc_tower::provider::FetchError;

/// Exit code 1: the token was rejected or a check failed.
pub(crate) const EXIT_REJECTED: u8 = 1;
/// Exit code 2: usage error, unreadable input, network failure.
pub(crate) const EXIT_USAGE_OR_IO: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<&'static str>,
    },
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key set file (`--jwks`, `oidc jwks FILE`) that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the token from stdin: {0}")]
    ReadStdin(std::io::Error),
    #[error("no token given")]
    NoToken,
    #[error("{0}")]
    Issuer(#[from] IssuerError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("keys: {0}")]
    Jwks(#[from] JwksError),
    #[error("not a JWT: {0}")]
    Malformed(#[from] JwsError),
    #[error("token rejected: {}", rejection_message(error, expected_issuer))]
    Rejected {
        error: ValidationError,
        /// The issuer the token had to come from, for the message of a `wrong_issuer`.
        expected_issuer: String,
    },
    #[error("DPoP proof rejected: {0}")]
    DpopRejected(#[from] oidc_core::dpop::DpopError),
    /// The keys needed to verify a token could not be obtained: whatever the cause, the token
    /// was not judged, so this is an I/O failure (exit 2), not a rejection.
    #[error("cannot get the keys to verify with: {0}")]
    KeysUnavailable(Box<CliError>),
    #[error("the provider's metadata lacks what a login needs: {0}")]
    Endpoints(#[from] EndpointsError),
    #[error("cannot start the login: {0}")]
    Start(#[from] StartError),
    #[error("client authentication: {0}")]
    ClientAuth(#[from] ClientAuthError),
    #[error("sign-in failed: {0}")]
    Callback(#[from] CallbackError),
    #[error("the token endpoint refused: {0}")]
    Token(#[from] TokenError),
    #[error("the ID token was refused: {0}")]
    IdToken(#[from] IdTokenError),
    #[error("no sign-in within {seconds}s")]
    LoginTimedOut { seconds: u64 },
    #[error("the provider offers no device authorization endpoint")]
    DeviceGrantUnsupported,
    #[error("device sign-in failed: {0}")]
    Device(DeviceError),
    #[error("{0}")]
    Cache(#[from] crate::token_cache::CacheError),
}

impl From<FetchError> for CliError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Http(e) => CliError::Http(e),
            FetchError::Discovery(e) => CliError::Discovery(e),
            FetchError::Jwks(e) => CliError::Jwks(e),
            other => CliError::Usage {
                message: other.to_string(),
                hint: None,
            },
        }
    }
}

impl From<DeviceError> for CliError {
    fn from(error: DeviceError) -> Self {
        match error {
            DeviceError::Unsupported => CliError::DeviceGrantUnsupported,
            DeviceError::Token(e) => CliError::Token(e),
            DeviceError::ClientAuth(e) => CliError::ClientAuth(e),
            other => CliError::Device(other),
        }
    }
}

impl From<DeviceGrantError> for CliError {
    fn from(error: DeviceGrantError) -> Self {
        match error {
            DeviceGrantError::Http(e) => CliError::Http(e),
            DeviceGrantError::Device(e) => e.into(),
            other => CliError::Usage {
                message: other.to_string(),
                hint: None,
            },
        }
    }
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>, hint: &'static str) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: Some(hint),
        }
    }

    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Discovery(DiscoveryError::Response(_)) => EXIT_USAGE_OR_IO,
            CliError::Jwks(JwksError::Response(_)) => EXIT_USAGE_OR_IO,
            CliError::Token(TokenError::Response(_)) => EXIT_USAGE_OR_IO,
            CliError::Device(DeviceError::Response(_)) => EXIT_USAGE_OR_IO,
            CliError::Discovery(_)
            | CliError::Jwks(_)
            | CliError::Malformed(_)
            | CliError::Rejected { .. }
            | CliError::DpopRejected(_)
            | CliError::Endpoints(_)
            | CliError::Callback(_)
            | CliError::Token(_)
            | CliError::IdToken(_)
            | CliError::DeviceGrantUnsupported
            | CliError::Device(_) => EXIT_REJECTED,
            CliError::Start(_)
            | CliError::ClientAuth(_)
            | CliError::LoginTimedOut { .. }
            | CliError::Cache(_) => EXIT_USAGE_OR_IO,
            CliError::Usage { .. }
            | CliError::ReadFile { .. }
            | CliError::ReadKeyFile { .. }
            | CliError::ReadStdin(_)
            | CliError::NoToken
            | CliError::Issuer(_)
            | CliError::Policy(_)
            | CliError::Http(_)
            | CliError::KeysUnavailable(_) => EXIT_USAGE_OR_IO,
        }
    }

    /// A stable snake_case code, as printed in `--json` output.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            CliError::Usage { .. } => "usage",
            CliError::ReadFile { .. } | CliError::ReadKeyFile { .. } => "read_file",
            CliError::ReadStdin(_) => "read_stdin",
            CliError::NoToken => "no_token",
            CliError::Issuer(e) => e.code(),
            CliError::Policy(e) => e.code(),
            CliError::Http(e) => e.code(),
            CliError::Discovery(e) => e.code(),
            CliError::Jwks(e) => e.code(),
            CliError::Malformed(e) => e.code(),
            CliError::Rejected { error, .. } => error.code(),
            CliError::DpopRejected(e) => e.code(),
            CliError::KeysUnavailable(inner) => inner.code(),
            CliError::Endpoints(e) => e.code(),
            CliError::Start(e) => e.code(),
            CliError::ClientAuth(e) => e.code(),
            CliError::Callback(e) => e.code(),
            CliError::Token(e) => e.code(),
            CliError::IdToken(e) => e.code(),
            CliError::LoginTimedOut { .. } => "login_timed_out",
            CliError::DeviceGrantUnsupported => "device_grant_unsupported",
            CliError::Device(e) => e.code(),
            CliError::Cache(e) => e.code(),
        }
    }

    /// What to try next, when there is something useful to say.
    pub(crate) fn hint(&self) -> Option<String> {
        let text: &str = match self {
            CliError::Usage { hint, .. } => return hint.map(str::to_owned),
            CliError::ReadFile { .. } => "check the path; pass the token itself or `-` for stdin",
            CliError::ReadStdin(_) | CliError::NoToken => {
                "pass the token as an argument, a file name, or pipe it: `echo $TOKEN | oidc decode`"
            }
            CliError::Issuer(_) => "the issuer is a URL such as https://accounts.example.com",
            CliError::Policy(_) => "see `oidc verify --help`",
            CliError::Http(HttpError::Connect { url, .. }) => {
                if is_loopback_url(url) {
                    "is the provider up and the URL right?"
                } else {
                    "is the provider up and the URL right? Proxies are taken from HTTPS_PROXY"
                }
            }
            CliError::Http(HttpError::Timeout { .. }) => "the provider is slow or unreachable",
            CliError::Http(_) => "check the URL",
            CliError::Discovery(DiscoveryError::IssuerMismatch { found, .. }) => {
                if found.contains("{tenantid}") {
                    "this is a multi-tenant provider: use your tenant's own issuer URL"
                } else {
                    "use exactly the issuer the provider states, trailing slash included"
                }
            }
            CliError::Discovery(DiscoveryError::Response(_)) => {
                "is this the issuer URL? Its discovery document lives under /.well-known/openid-configuration"
            }
            CliError::Discovery(_) => {
                "the provider's metadata is not usable as OpenID Connect metadata"
            }
            CliError::Jwks(_) => {
                "the key set must be a JSON object with a \"keys\" array (RFC 7517)"
            }
            CliError::Malformed(_) => {
                "a JWT is three base64url parts separated by dots; was it copied whole?"
            }
            CliError::Rejected { error, .. } => return rejection_hint(error),
            CliError::DpopRejected(_) => {
                "the proof must be signed for this method and URL (without query), within a minute, by the key the token is bound to"
            }
            CliError::ReadKeyFile { .. } => {
                "check the path; a key set is a JWKS file or an http(s) URL"
            }
            CliError::KeysUnavailable(inner) => return inner.hint(),
            CliError::Endpoints(_) => {
                "the provider must publish an authorization and a token endpoint"
            }
            CliError::Start(_) | CliError::ClientAuth(_) => "check --client-id and --client-secret",
            CliError::Callback(CallbackError::Provider {
                error: AuthorizationErrorCode::AccessDenied,
                ..
            }) => {
                "the sign-in was refused at the provider; sign in with an account allowed to use this client, or ask its administrator"
            }
            CliError::Callback(CallbackError::Provider { .. }) => {
                "the provider sent the browser back with this error; its description says why"
            }
            CliError::Callback(_) => {
                "the browser's return does not fit this login (state, issuer or code); start the login again"
            }
            CliError::Token(_) => {
                "check --client-id/--client-secret and that http://127.0.0.1/callback (any port) is a registered redirect URI"
            }
            CliError::IdToken(_) => "the provider's ID token failed validation; see the code",
            CliError::LoginTimedOut { .. } => {
                "open the printed URL and finish signing in, or raise --timeout"
            }
            CliError::DeviceGrantUnsupported => {
                "sign in through the browser instead (without --device)"
            }
            CliError::Device(DeviceError::AccessDenied) => {
                "the sign-in was denied on the provider's page; run `oidc login --device` again"
            }
            CliError::Device(_) => {
                "the provider's device_authorization_endpoint does not follow RFC 8628"
            }
            CliError::Cache(_) => "set OIDC_CACHE_DIR to a writable directory",
        };
        Some(text.to_owned())
    }
}

/// What was wrong with a rejected token, with times as dates and the expected issuer named.
fn rejection_message(error: &ValidationError, expected_issuer: &str) -> String {
    use crate::time_format::utc_date;
    match error {
        ValidationError::WrongIssuer { found } => {
            format!("the issuer {found:?} is not the expected {expected_issuer:?}")
        }
        ValidationError::Expired { exp, now, leeway } => format!(
            "the token expired at {} (now {}, leeway {}s)",
            utc_date(exp.as_secs()),
            utc_date(now.as_secs()),
            leeway.as_secs()
        ),
        ValidationError::NotYetValid { nbf, now, leeway } => format!(
            "the token is not valid before {} (now {}, leeway {}s)",
            utc_date(nbf.as_secs()),
            utc_date(now.as_secs()),
            leeway.as_secs()
        ),
        ValidationError::IssuedInFuture { iat, now, leeway } => format!(
            "the token is issued at {}, in the future (now {}, leeway {}s)",
            utc_date(iat.as_secs()),
            utc_date(now.as_secs()),
            leeway.as_secs()
        ),
        other => other.to_string(),
    }
}

/// Whether `url` names a loopback host, where no HTTP proxy is involved.
fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn rejection_hint(error: &ValidationError) -> Option<String> {
    let text = match error.code() {
        "expired" => "the token is past its exp; get a fresh one, or check with --now",
        "not_yet_valid" | "issued_in_future" => "check the clocks, or allow skew with --leeway",
        "wrong_issuer" => "--issuer must equal the token's iss exactly (see `oidc decode`)",
        "wrong_audience" => "--audience must be one of the token's aud (see `oidc decode`)",
        "unknown_kid" | "no_matching_key" => {
            "the key is not in the key set: wrong issuer or --jwks, or keys rotated"
        }
        "alg_not_allowed" => "allow the token's algorithm with --alg if it is expected",
        "bad_signature" => "the token was altered or signed by another key",
        _ => return None,
    };
    Some(text.to_owned())
}
