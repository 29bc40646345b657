//! Pushed authorization requests (RFC 9126): whether a login pushes its parameters to the
//! provider before redirecting the browser, the push itself, the provider's answer, and the short
//! authorization URL that then carries only `client_id` and `request_uri`.
//!
//! Calling order, after [`super::start_login`] has built the full authorization URL:
//!
//! 1. [`pushed_authorization_endpoint`]: the endpoint to push to, `None` for a plain redirect,
//!    or a refusal when the provider requires pushing (`require_pushed_authorization_requests`)
//!    and no endpoint can be used.
//! 2. [`pushed_authorization_request`]: the authenticated form `POST` carrying the parameters
//!    of the authorization URL.
//! 3. [`parse_pushed_authorization_response`]: `request_uri` and `expires_in`, or a typed
//!    provider refusal.
//! 4. [`pushed_authorization_url`]: where to send the browser instead.
//!
//! Pushing keeps the parameters (PKCE challenge, nonce, scopes) off the browser's URL bar and out
//! of logs, and lets the provider authenticate the client before the user sees a login page.

use http::{Request, StatusCode};
use serde::Deserialize;
use url::Url;

use super::client_auth::{self, ClientAuthError, ClientAuthMethod};
use super::{AuthorizationRedirect, LoginConfig, ProviderEndpoints};
use crate::ErrorKind;
use crate::provider_response::{
    MAX_PROVIDER_RESPONSE_BYTES, ResponseError, checked_json_body, excerpt, parse_json,
};
use crate::{RandomSource, UnixTime};

/// The longest `request_uri` accepted from a provider (RFC 9126 suggests short URNs).
pub const MAX_REQUEST_URI_BYTES: usize = 2048;

/// When a login pushes its authorization request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PushedAuthorization {
    /// Never push; a provider that requires it is refused at sign-in with
    /// [`ParError::RequiredByProvider`].
    Off,
    /// Push when the provider advertises `pushed_authorization_request_endpoint` (the default).
    #[default]
    WhenAdvertised,
    /// Always push; a provider without the endpoint is refused with
    /// [`ParError::EndpointMissing`].
    Always,
}

/// Why a login could not use (or skip) a pushed authorization request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParError {
    /// Pushing is required (by the provider or by configuration) but the provider advertises no
    /// `pushed_authorization_request_endpoint`.
    #[error(
        "pushed authorization requests are required but the provider advertises no pushed_authorization_request_endpoint"
    )]
    EndpointMissing,
    /// The provider requires pushed authorization requests and pushing is configured off.
    #[error(
        "the provider requires pushed authorization requests (require_pushed_authorization_requests) but they are turned off"
    )]
    RequiredByProvider,
    /// The provider refused the pushed request (RFC 9126 §2.3, RFC 6749 §5.2 error body).
    #[error("the provider refused the pushed authorization request: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Provider {
        /// The HTTP status.
        status: StatusCode,
        /// The `error` code.
        error: String,
        /// `error_description`, if sent.
        description: Option<String>,
    },
    /// The answer failed the status, media type, size or shape checks.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The `request_uri` is empty, too long or holds control characters.
    #[error("the provider's request_uri is unusable: {reason}")]
    InvalidRequestUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `expires_in` is zero.
    #[error("the provider's request_uri expires at once (expires_in 0)")]
    AlreadyExpired,
    /// The push could not be authenticated (e.g. a `private_key_jwt` signing failure).
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
}

impl ParError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ParError::EndpointMissing => ErrorKind::ParEndpointMissing,
            ParError::RequiredByProvider => ErrorKind::ParRequiredByProvider,
            ParError::Provider { .. } => ErrorKind::ParRefused,
            ParError::Response(e) => e.kind(),
            ParError::InvalidRequestUri { .. } => ErrorKind::ParInvalidRequestUri,
            ParError::AlreadyExpired => ErrorKind::ParAlreadyExpired,
            ParError::ClientAuth(e) => e.kind(),
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The provider's answer to a pushed authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushedAuthorizationResponse {
    /// The reference the authorization URL carries instead of the parameters.
    pub request_uri: String,
    /// Seconds until `request_uri` expires.
    pub expires_in: u64,
}

/// The endpoint to push to under `mode`, `None` when the login redirects with every parameter
/// in the URL, or an error when the provider's `require_pushed_authorization_requests` (or
/// [`PushedAuthorization::Always`]) cannot be met.
pub fn pushed_authorization_endpoint(
    endpoints: &ProviderEndpoints,
    mode: PushedAuthorization,
) -> Result<Option<&Url>, ParError> {
    let endpoint = endpoints.pushed_authorization_request_endpoint.as_ref();
    let required = endpoints.require_pushed_authorization_requests;
    match (mode, endpoint) {
        (PushedAuthorization::Off, _) if required => Err(ParError::RequiredByProvider),
        (PushedAuthorization::Off, _) => Ok(None),
        (_, Some(endpoint)) => Ok(Some(endpoint)),
        (PushedAuthorization::Always, None) => Err(ParError::EndpointMissing),
        (_, None) if required => Err(ParError::EndpointMissing),
        (_, None) => Ok(None),
    }
}

/// The pushed authorization request (RFC 9126 §2.1): a form `POST` to `endpoint` with every
/// parameter of the started login's authorization URL, authenticated as the token request is.
pub fn pushed_authorization_request(
    endpoint: &Url,
    config: &LoginConfig,
    started: &AuthorizationRedirect,
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<Request<Vec<u8>>, ParError> {
    let credentials = config.credentials();
    let pairs: Vec<(String, String)> = started
        .url
        .query_pairs()
        .filter(|(name, _)| name != "client_id")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(pairs.len() + 1);
    if matches!(credentials.method(), ClientAuthMethod::ClientSecretBasic(_)) {
        // The other methods put `client_id` in the form themselves.
        params.push(("client_id", credentials.client_id()));
    }
    params.extend(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    Ok(client_auth::authenticated_form_post(
        endpoint,
        credentials,
        &params,
        now,
        random,
    )?)
}

/// Reads the answer to a pushed authorization request: `201 Created` (or `200`) with
/// `request_uri` and `expires_in`, or a typed refusal from an RFC 6749 §5.2 error body.
pub fn parse_pushed_authorization_response<B: AsRef<[u8]>>(
    response: &http::Response<B>,
) -> Result<PushedAuthorizationResponse, ParError> {
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && let Some(refusal) = error_body(response)
    {
        return Err(refusal);
    }
    let expected = if status == StatusCode::OK {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = checked_json_body(response, expected, &[], MAX_PROVIDER_RESPONSE_BYTES)?;
    let raw: RawPushedResponse = parse_json(body)?;
    if raw.request_uri.is_empty() {
        return Err(ParError::InvalidRequestUri { reason: "empty" });
    }
    if raw.request_uri.len() > MAX_REQUEST_URI_BYTES {
        return Err(ParError::InvalidRequestUri {
            reason: "over 2048 bytes",
        });
    }
    if raw.request_uri.chars().any(char::is_control) {
        return Err(ParError::InvalidRequestUri {
            reason: "holds control characters",
        });
    }
    if raw.expires_in == 0 {
        return Err(ParError::AlreadyExpired);
    }
    Ok(PushedAuthorizationResponse {
        request_uri: raw.request_uri,
        expires_in: raw.expires_in,
    })
}

/// The authorization URL after a push (RFC 9126 §4): the authorization endpoint with only
/// `client_id` and `request_uri`.
pub fn pushed_authorization_url(
    endpoints: &ProviderEndpoints,
    client_id: &str,
    pushed: &PushedAuthorizationResponse,
) -> Url {
    let mut url = endpoints.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", &pushed.request_uri);
    url
}

#[derive(Deserialize)]
struct RawPushedResponse {
    request_uri: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct RawErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

fn error_body<B: AsRef<[u8]>>(response: &http::Response<B>) -> Option<ParError> {
    let body = response.body().as_ref();
    if body.len() > MAX_PROVIDER_RESPONSE_BYTES {
        return None;
    }
    let raw: RawErrorResponse = serde_json::from_slice(body).ok()?;
    Some(ParError::Provider {
        status: response.status(),
        error: excerpt(raw.error.as_bytes()),
        description: raw
            .error_description
            .map(|description| excerpt(description.as_bytes())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Issuer;

    fn endpoints(par: Option<&str>, required: bool) -> ProviderEndpoints {
        let mut endpoints = ProviderEndpoints::new(
            Issuer::new("https://op.example").unwrap(),
            Url::parse("https://op.example/authorize?tenant=a").unwrap(),
            Url::parse("https://op.example/token").unwrap(),
        );
        endpoints.pushed_authorization_request_endpoint = par.map(|u| Url::parse(u).unwrap());
        endpoints.require_pushed_authorization_requests = required;
        endpoints
    }

    fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn the_mode_and_the_metadata_decide_whether_to_push() {
        use PushedAuthorization::*;
        let par = "https://op.example/par";
        let decide = |mode, endpoints: &ProviderEndpoints| {
            pushed_authorization_endpoint(endpoints, mode)
                .map(|e| e.map(Url::to_string))
                .map_err(|e| e.code())
        };
        let advertised = endpoints(Some(par), false);
        let required = endpoints(Some(par), true);
        let absent = endpoints(None, false);
        let required_absent = endpoints(None, true);
        assert_eq!(decide(WhenAdvertised, &advertised), Ok(Some(par.into())));
        assert_eq!(decide(WhenAdvertised, &absent), Ok(None));
        assert_eq!(
            decide(WhenAdvertised, &required_absent),
            Err("par_endpoint_missing")
        );
        assert_eq!(decide(Always, &advertised), Ok(Some(par.into())));
        assert_eq!(decide(Always, &absent), Err("par_endpoint_missing"));
        assert_eq!(decide(Off, &advertised), Ok(None));
        assert_eq!(decide(Off, &required), Err("par_required_by_provider"));
        assert_eq!(decide(Off, &absent), Ok(None));
    }

    #[test]
    fn answers_are_read_or_refused_with_a_code() {
        let ok = parse_pushed_authorization_response(&answer(
            201,
            r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#,
        ))
        .unwrap();
        assert_eq!(ok.request_uri, "urn:ietf:params:oauth:request_uri:abc");
        assert_eq!(ok.expires_in, 60);
        assert!(
            parse_pushed_authorization_response(&answer(
                200,
                r#"{"request_uri":"urn:x","expires_in":5}"#
            ))
            .is_ok()
        );
        let refused = parse_pushed_authorization_response(&answer(
            400,
            r#"{"error":"invalid_request","error_description":"bad redirect_uri"}"#,
        ))
        .unwrap_err();
        assert_eq!(
            refused,
            ParError::Provider {
                status: StatusCode::BAD_REQUEST,
                error: "invalid_request".into(),
                description: Some("bad redirect_uri".into())
            }
        );
        let cases = [
            (
                answer(201, r#"{"request_uri":"","expires_in":5}"#),
                "par_invalid_request_uri",
            ),
            (
                answer(201, r#"{"request_uri":"a\nb","expires_in":5}"#),
                "par_invalid_request_uri",
            ),
            (
                answer(201, r#"{"request_uri":"u","expires_in":0}"#),
                "par_already_expired",
            ),
            (
                answer(201, r#"{"request_uri":"u"}"#),
                "provider_response_malformed",
            ),
            (
                answer(201, r#"{"request_uri":"u","expires_in":-1}"#),
                "provider_response_malformed",
            ),
            (
                answer(202, r#"{"request_uri":"u","expires_in":5}"#),
                "provider_unexpected_status",
            ),
            (answer(500, "oops"), "provider_unexpected_status"),
        ];
        for (response, code) in cases {
            let err = parse_pushed_authorization_response(&response).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        }
        let long = format!(
            r#"{{"request_uri":"{}","expires_in":5}}"#,
            "u".repeat(MAX_REQUEST_URI_BYTES + 1)
        );
        assert_eq!(
            parse_pushed_authorization_response(&answer(201, &long))
                .unwrap_err()
                .code(),
            "par_invalid_request_uri"
        );
    }

    #[test]
    fn the_browser_url_carries_only_client_id_and_request_uri() {
        let pushed = PushedAuthorizationResponse {
            request_uri: "urn:ietf:params:oauth:request_uri:a&b".into(),
            expires_in: 60,
        };
        let url = pushed_authorization_url(&endpoints(None, false), "mlflow", &pushed);
        assert_eq!(
            url.as_str(),
            "https://op.example/authorize?tenant=a&client_id=mlflow&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aa%26b"
        );
    }
}
