//! The device authorization grant (RFC 8628): sign-in on a device without a browser, or from a
//! terminal, while the user approves on another device.
//!
//! Calling order, each step one function:
//!
//! 1. [`device_authorization_endpoint`]: the endpoint from the provider's metadata, or
//!    [`DeviceError::Unsupported`].
//! 2. [`device_authorization_request`]: the authenticated form `POST` with the scopes (and the
//!    RFC 8707 `resource`s and extra parameters such as `audience`) of a [`DeviceGrant`].
//! 3. [`parse_device_authorization`]: the provider's answer as a checked
//!    [`DeviceAuthorization`]: the code to show the user, where to enter it, how long it is
//!    valid and how often the token endpoint may be asked.
//! 4. [`DevicePolling::new`] starts the schedule; [`DevicePolling::next_poll`] says, for a
//!    reading of a monotonic clock, whether to wait, to poll or to give up because the code
//!    has expired.
//! 5. [`device_token_request`] is the poll itself; [`DevicePolling::on_response`] (or the pure
//!    [`classify_device_poll`]) says what the token endpoint's answer means as a [`DevicePoll`]:
//!    tokens, still pending, slow down (five seconds more between polls, §3.5), expired, denied,
//!    or failed.
//!
//! The tokens are a [`TokenResponse`]; an ID token among them is validated by the caller
//! ([`crate::validation::validate`] under [`super::id_token_policy`]), since no `nonce` binds it.

use std::time::Duration;

use http::{Request, StatusCode};
use serde::Deserialize;
use url::Url;

use super::client_auth::{self, ClientAuthError, ClientCredentials};
use super::token::{TokenError, TokenResponse, parse_token_response};
use crate::discovery::ProviderMetadata;
use crate::provider_response::{
    MAX_PROVIDER_RESPONSE_BYTES, ResponseError, checked_json_body, excerpt, parse_json,
};
use crate::time::MonotonicTime;
use crate::{ErrorKind, RandomSource, Secret, UnixTime};

/// The `grant_type` of a device code token request (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The wait between polls when the provider states no `interval` (RFC 8628 §3.2).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest wait between polls, whatever the provider states.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How much longer every following wait gets after a `slow_down` answer (RFC 8628 §3.5).
pub const SLOW_DOWN_INCREMENT: Duration = Duration::from_secs(5);

/// The longest `device_code` accepted from a provider.
pub const MAX_DEVICE_CODE_BYTES: usize = 4096;

/// The longest `user_code` accepted from a provider; it is shown to the user.
pub const MAX_USER_CODE_BYTES: usize = 256;

/// The longest `verification_uri` (or `verification_uri_complete`) accepted from a provider.
pub const MAX_VERIFICATION_URI_BYTES: usize = 2048;

/// Why a device authorization grant failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The provider advertises no `device_authorization_endpoint`.
    #[error("the provider offers no device authorization endpoint")]
    Unsupported,
    /// The device authorization endpoint refused with an RFC 6749 §5.2 error.
    #[error("the device authorization endpoint refused: {error}{}", super::describe(.description))]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The `error` code.
        error: String,
        /// `error_description`, if sent.
        description: Option<String>,
    },
    /// The device authorization answer failed the status, media type, size or shape checks.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The device authorization answer is JSON of the right shape, with an unusable value.
    #[error("the device authorization answer is not usable: {reason}")]
    InvalidAuthorization {
        /// What is wrong with it.
        reason: String,
    },
    /// The device code expired (`expired_token`, or its `expires_in` passed) before the user
    /// approved.
    #[error("the device code expired before the sign-in was approved")]
    Expired,
    /// The user (or the provider) denied the authorization (`access_denied`).
    #[error("the sign-in on the device was denied")]
    AccessDenied,
    /// The token endpoint refused or sent an unusable answer.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A request could not be authenticated (e.g. a `private_key_jwt` signing failure).
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
}

impl DeviceError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeviceError::Unsupported => ErrorKind::DeviceGrantUnsupported,
            DeviceError::Refused { .. } => ErrorKind::DeviceAuthorizationRefused,
            DeviceError::Response(e) => e.kind(),
            DeviceError::InvalidAuthorization { .. } => ErrorKind::DeviceAuthorizationInvalid,
            DeviceError::Expired => ErrorKind::DeviceCodeExpired,
            DeviceError::AccessDenied => ErrorKind::DeviceAccessDenied,
            DeviceError::Token(e) => e.kind(),
            DeviceError::ClientAuth(e) => e.kind(),
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// What a device sign-in asks for: the client, the scopes, and what the access token is for.
#[derive(Clone, Debug)]
pub struct DeviceGrant {
    credentials: ClientCredentials,
    scopes: Vec<String>,
    resources: Vec<String>,
    extra_params: Vec<(String, String)>,
}

impl DeviceGrant {
    /// A grant for `credentials` asking for the `openid` scope only.
    pub fn new(credentials: ClientCredentials) -> Self {
        DeviceGrant {
            credentials,
            scopes: vec!["openid".to_owned()],
            resources: Vec::new(),
            extra_params: Vec::new(),
        }
    }

    /// The scopes to ask for, sent as one space-separated `scope`.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an RFC 8707 `resource` the access token is for; sent with the device authorization
    /// request and with every poll.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Adds a parameter of the device authorization request that the provider understands
    /// (e.g. `audience`).
    #[must_use]
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_params.push((name.into(), value.into()));
        self
    }

    /// The client.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }
}

/// The provider's device authorization endpoint, or [`DeviceError::Unsupported`].
pub fn device_authorization_endpoint(metadata: &ProviderMetadata) -> Result<&Url, DeviceError> {
    metadata
        .device_authorization_endpoint
        .as_ref()
        .ok_or(DeviceError::Unsupported)
}

/// The device authorization request (RFC 8628 §3.1): an authenticated form `POST` to
/// `endpoint` with `scope`, each `resource` and the extra parameters.
pub fn device_authorization_request(
    endpoint: &Url,
    grant: &DeviceGrant,
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<Request<Vec<u8>>, DeviceError> {
    let scope = grant.scopes.join(" ");
    let mut form = vec![("scope", scope.as_str())];
    form.extend(grant.resources.iter().map(|r| ("resource", r.as_str())));
    form.extend(
        grant
            .extra_params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    Ok(client_auth::authenticated_form_post(
        endpoint,
        &grant.credentials,
        &form,
        now,
        random,
    )?)
}

/// The provider's answer to a device authorization request (RFC 8628 §3.2), checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The code the token endpoint is polled with; never shown to the user.
    pub device_code: Secret,
    /// The code the user enters at [`DeviceAuthorization::verification_uri`]: printable
    /// characters only.
    pub user_code: String,
    /// Where the user enters the code (an `http` or `https` URL).
    pub verification_uri: Url,
    /// A URL that carries the code already, when the provider offers one.
    pub verification_uri_complete: Option<Url>,
    /// How long the codes are valid after the answer arrived.
    pub expires_in: Duration,
    /// The wait between polls: the provider's `interval`, [`DEFAULT_POLL_INTERVAL`] without
    /// one, and never under [`MIN_POLL_INTERVAL`].
    pub interval: Duration,
}

#[derive(Deserialize)]
struct RawDeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct RawErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Reads the answer to a device authorization request: `200` with the codes, or a typed
/// refusal ([`DeviceError::Refused`]) from an RFC 6749 §5.2 error body.
pub fn parse_device_authorization<B: AsRef<[u8]>>(
    response: &http::Response<B>,
) -> Result<DeviceAuthorization, DeviceError> {
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && let Some(refusal) = error_body(response)
    {
        return Err(refusal);
    }
    let body = checked_json_body(response, StatusCode::OK, &[], MAX_PROVIDER_RESPONSE_BYTES)?;
    let raw: RawDeviceAuthorization = parse_json(body)?;
    let invalid = |reason: &str| DeviceError::InvalidAuthorization {
        reason: reason.to_owned(),
    };
    if raw.device_code.is_empty() || raw.device_code.len() > MAX_DEVICE_CODE_BYTES {
        return Err(invalid("device_code is empty or over 4096 bytes"));
    }
    if raw.device_code.chars().any(char::is_control) {
        return Err(invalid("device_code holds control characters"));
    }
    if raw.user_code.trim().is_empty() || raw.user_code.len() > MAX_USER_CODE_BYTES {
        return Err(invalid("user_code is empty or over 256 bytes"));
    }
    if raw.user_code.chars().any(char::is_control) {
        return Err(invalid("user_code holds control characters"));
    }
    let verification_uri = verification_url(&raw.verification_uri)
        .map_err(|reason| invalid(&format!("verification_uri {reason}")))?;
    let verification_uri_complete = match &raw.verification_uri_complete {
        None => None,
        Some(text) => Some(
            verification_url(text)
                .map_err(|reason| invalid(&format!("verification_uri_complete {reason}")))?,
        ),
    };
    if raw.expires_in == 0 {
        return Err(invalid("expires_in is 0: the codes expire at once"));
    }
    let interval = raw
        .interval
        .map_or(DEFAULT_POLL_INTERVAL, Duration::from_secs)
        .max(MIN_POLL_INTERVAL);
    Ok(DeviceAuthorization {
        device_code: Secret::new(raw.device_code),
        user_code: raw.user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: Duration::from_secs(raw.expires_in),
        interval,
    })
}

/// An absolute `http(s)` URL of bounded length, or why not.
fn verification_url(text: &str) -> Result<Url, &'static str> {
    if text.len() > MAX_VERIFICATION_URI_BYTES {
        return Err("is over 2048 bytes");
    }
    let url = Url::parse(text).map_err(|_| "is not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("is not an http(s) URL");
    }
    Ok(url)
}

fn error_body<B: AsRef<[u8]>>(response: &http::Response<B>) -> Option<DeviceError> {
    let body = response.body().as_ref();
    if body.len() > MAX_PROVIDER_RESPONSE_BYTES {
        return None;
    }
    let raw: RawErrorResponse = serde_json::from_slice(body).ok()?;
    Some(DeviceError::Refused {
        status: response.status(),
        error: excerpt(raw.error.as_bytes()),
        description: raw
            .error_description
            .map(|description| excerpt(description.as_bytes())),
    })
}

/// The device code token request (RFC 8628 §3.4): an authenticated form `POST` to the token
/// endpoint with the grant type, the device code and each `resource` of the grant.
pub fn device_token_request(
    token_endpoint: &Url,
    grant: &DeviceGrant,
    authorization: &DeviceAuthorization,
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<Request<Vec<u8>>, DeviceError> {
    let mut form = vec![
        ("grant_type", DEVICE_CODE_GRANT_TYPE),
        ("device_code", authorization.device_code.expose()),
    ];
    form.extend(grant.resources.iter().map(|r| ("resource", r.as_str())));
    Ok(client_auth::authenticated_form_post(
        token_endpoint,
        &grant.credentials,
        &form,
        now,
        random,
    )?)
}

/// What one answer of the token endpoint to a device code poll means (RFC 8628 §3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevicePoll {
    /// The user approved: the tokens.
    Tokens(Box<TokenResponse>),
    /// `authorization_pending`: poll again after the interval.
    Pending,
    /// `slow_down`: poll again, waiting `new_interval` from now on.
    SlowDown {
        /// The wait between this and every following poll.
        new_interval: Duration,
    },
    /// `expired_token`: the device code expired; the sign-in must start again.
    Expired,
    /// `access_denied`: the user denied the authorization.
    Denied,
    /// Any other refusal, or an unusable answer.
    Failed(DeviceError),
}

impl DevicePoll {
    /// The outcome as a result: the tokens, `None` to poll again, or the error that ends the
    /// grant.
    pub fn into_result(self) -> Result<Option<TokenResponse>, DeviceError> {
        match self {
            DevicePoll::Tokens(tokens) => Ok(Some(*tokens)),
            DevicePoll::Pending | DevicePoll::SlowDown { .. } => Ok(None),
            DevicePoll::Expired => Err(DeviceError::Expired),
            DevicePoll::Denied => Err(DeviceError::AccessDenied),
            DevicePoll::Failed(error) => Err(error),
        }
    }
}

/// What the token endpoint's `response` to a poll means, with `current_interval` the wait
/// between polls so far (a `slow_down` adds [`SLOW_DOWN_INCREMENT`] to it).
pub fn classify_device_poll<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    current_interval: Duration,
) -> DevicePoll {
    match parse_token_response(response) {
        Ok(tokens) => DevicePoll::Tokens(Box::new(tokens)),
        Err(TokenError::Provider { ref error, .. })
            if error.as_str() == "authorization_pending" =>
        {
            DevicePoll::Pending
        }
        Err(TokenError::Provider { ref error, .. }) if error.as_str() == "slow_down" => {
            DevicePoll::SlowDown {
                new_interval: current_interval.saturating_add(SLOW_DOWN_INCREMENT),
            }
        }
        Err(TokenError::Provider { ref error, .. }) if error.as_str() == "expired_token" => {
            DevicePoll::Expired
        }
        Err(TokenError::Provider { ref error, .. }) if error.as_str() == "access_denied" => {
            DevicePoll::Denied
        }
        Err(error) => DevicePoll::Failed(DeviceError::Token(error)),
    }
}

/// What a poller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NextPoll {
    /// Wait this long, then ask again.
    Wait(Duration),
    /// Send [`device_token_request`] now.
    PollNow,
    /// The device code has expired: give up with [`DeviceError::Expired`].
    GiveUp,
}

/// When to poll the token endpoint and when to give up, on a monotonic clock whose origin is
/// any instant at or before the device authorization answer arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePolling {
    interval: Duration,
    next_at: MonotonicTime,
    expires_at: MonotonicTime,
}

impl DevicePolling {
    /// The schedule for `authorization`, whose answer arrived at `received_at`: the first poll
    /// one interval later, none at or after `expires_in`.
    pub fn new(authorization: &DeviceAuthorization, received_at: MonotonicTime) -> Self {
        DevicePolling {
            interval: authorization.interval.max(MIN_POLL_INTERVAL),
            next_at: received_at.saturating_add(authorization.interval.max(MIN_POLL_INTERVAL)),
            expires_at: received_at.saturating_add(authorization.expires_in),
        }
    }

    /// The current wait between polls.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the device code expires.
    pub fn expires_at(&self) -> MonotonicTime {
        self.expires_at
    }

    /// What to do at `now`: give up once the code has expired, else poll when due, else wait.
    pub fn next_poll(&self, now: MonotonicTime) -> NextPoll {
        if now >= self.expires_at {
            NextPoll::GiveUp
        } else if now >= self.next_at {
            NextPoll::PollNow
        } else {
            NextPoll::Wait(self.next_at.duration_since(now))
        }
    }

    /// Records the token endpoint's `response` to a poll sent at about `now`, and says what
    /// it means: after `Pending` or `SlowDown` the next poll is one (possibly longer) interval
    /// after `now`.
    pub fn on_response<B: AsRef<[u8]>>(
        &mut self,
        response: &http::Response<B>,
        now: MonotonicTime,
    ) -> DevicePoll {
        let poll = classify_device_poll(response, self.interval);
        self.on_poll(&poll, now);
        poll
    }

    /// Records an already classified answer (see [`DevicePolling::on_response`]).
    pub fn on_poll(&mut self, poll: &DevicePoll, now: MonotonicTime) {
        if let DevicePoll::SlowDown { new_interval } = poll {
            self.interval = (*new_interval).max(MIN_POLL_INTERVAL);
        }
        self.next_at = now.saturating_add(self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::ClientAuthMethod;

    struct Counter(u8);

    impl RandomSource for Counter {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for byte in dest {
                self.0 = self.0.wrapping_add(1);
                *byte = self.0;
            }
        }
    }

    fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap_or_default()
    }

    fn grant() -> DeviceGrant {
        DeviceGrant::new(ClientCredentials::new("cli", ClientAuthMethod::None))
            .scopes(["openid", "profile"])
            .resource("https://api.example.com/")
            .extra_param("audience", "api")
    }

    const ANSWER: &str = r#"{"device_code":"dc-1","user_code":"BCDF-GHJK",
        "verification_uri":"https://op.example.com/device",
        "verification_uri_complete":"https://op.example.com/device?user_code=BCDF-GHJK",
        "expires_in":600,"interval":2}"#;

    fn authorization() -> DeviceAuthorization {
        parse_device_authorization(&json(200, ANSWER)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn form(request: &Request<Vec<u8>>) -> Vec<(String, String)> {
        url::form_urlencoded::parse(request.body())
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn the_authorization_request_carries_scope_resources_and_extras() {
        let endpoint = Url::parse("https://op.example.com/device_authorization").unwrap();
        let request = device_authorization_request(
            &endpoint,
            &grant(),
            UnixTime::from_secs(1),
            &mut Counter(0),
        )
        .unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "https://op.example.com/device_authorization");
        let form = form(&request);
        let has = |n: &str, v: &str| form.iter().any(|(a, b)| a == n && b == v);
        assert!(has("scope", "openid profile"), "{form:?}");
        assert!(has("resource", "https://api.example.com/"), "{form:?}");
        assert!(has("audience", "api"), "{form:?}");
        assert!(has("client_id", "cli"), "{form:?}");
    }

    #[test]
    fn the_answer_is_parsed_and_checked() {
        let parsed = authorization();
        assert_eq!(parsed.device_code.expose(), "dc-1");
        assert_eq!(parsed.user_code, "BCDF-GHJK");
        assert_eq!(
            parsed.verification_uri.as_str(),
            "https://op.example.com/device"
        );
        assert!(parsed.verification_uri_complete.is_some());
        assert_eq!(parsed.expires_in, Duration::from_secs(600));
        assert_eq!(parsed.interval, Duration::from_secs(2));

        let without_interval = r#"{"device_code":"d","user_code":"u",
            "verification_uri":"http://127.0.0.1:8080/device","expires_in":5}"#;
        let parsed = parse_device_authorization(&json(200, without_interval)).unwrap();
        assert_eq!(parsed.interval, DEFAULT_POLL_INTERVAL);
        let zero = r#"{"device_code":"d","user_code":"u",
            "verification_uri":"https://op/device","expires_in":5,"interval":0}"#;
        let parsed = parse_device_authorization(&json(200, zero)).unwrap();
        assert_eq!(parsed.interval, MIN_POLL_INTERVAL);
    }

    #[test]
    fn unusable_answers_are_typed_errors() {
        let bad = [
            r#"{"device_code":"d","user_code":"u","verification_uri":"/device","expires_in":5}"#,
            r#"{"device_code":"d","user_code":"u","verification_uri":"javascript:alert(1)","expires_in":5}"#,
            r#"{"device_code":"d","user_code":"u","verification_uri":"https://op/d","expires_in":0}"#,
            r#"{"device_code":"","user_code":"u","verification_uri":"https://op/d","expires_in":5}"#,
            r#"{"device_code":"d","user_code":"u\u001b[2J","verification_uri":"https://op/d","expires_in":5}"#,
            r#"{"device_code":"d","user_code":"u","verification_uri":"https://op/d",
                "verification_uri_complete":"ftp://op/d","expires_in":5}"#,
        ];
        for body in bad {
            let error = parse_device_authorization(&json(200, body)).unwrap_err();
            assert_eq!(
                error.kind(),
                ErrorKind::DeviceAuthorizationInvalid,
                "{body}"
            );
        }
        let missing = r#"{"device_code":"d","user_code":"u","expires_in":5}"#;
        assert_eq!(
            parse_device_authorization(&json(200, missing))
                .unwrap_err()
                .code(),
            "provider_response_malformed"
        );
        let refused = parse_device_authorization(&json(
            400,
            r#"{"error":"invalid_client","error_description":"who?"}"#,
        ))
        .unwrap_err();
        assert_eq!(refused.code(), "device_authorization_refused");
        assert!(refused.to_string().contains("invalid_client"), "{refused}");
        let down = parse_device_authorization(&json(503, "<html>")).unwrap_err();
        assert_eq!(down.code(), "provider_unexpected_status");
    }

    #[test]
    fn the_token_request_carries_the_device_code() {
        let endpoint = Url::parse("https://op.example.com/token").unwrap();
        let request = device_token_request(
            &endpoint,
            &grant(),
            &authorization(),
            UnixTime::from_secs(1),
            &mut Counter(0),
        )
        .unwrap();
        let form = form(&request);
        let has = |n: &str, v: &str| form.iter().any(|(a, b)| a == n && b == v);
        assert!(has("grant_type", DEVICE_CODE_GRANT_TYPE), "{form:?}");
        assert!(has("device_code", "dc-1"), "{form:?}");
        assert!(has("resource", "https://api.example.com/"), "{form:?}");
        assert!(!form.iter().any(|(n, _)| n == "audience"), "{form:?}");
    }

    #[test]
    fn poll_answers_are_classified() {
        let error = |code: &str| json(400, &format!(r#"{{"error":"{code}"}}"#));
        let interval = Duration::from_secs(2);
        assert_eq!(
            classify_device_poll(&error("authorization_pending"), interval),
            DevicePoll::Pending
        );
        assert_eq!(
            classify_device_poll(&error("slow_down"), interval),
            DevicePoll::SlowDown {
                new_interval: Duration::from_secs(7)
            }
        );
        assert_eq!(
            classify_device_poll(&error("expired_token"), interval),
            DevicePoll::Expired
        );
        assert_eq!(
            classify_device_poll(&error("access_denied"), interval),
            DevicePoll::Denied
        );
        let failed = classify_device_poll(&error("invalid_grant"), interval);
        assert!(
            matches!(&failed, DevicePoll::Failed(e) if e.code() == "token_endpoint_error"),
            "{failed:?}"
        );
        let tokens = classify_device_poll(
            &json(
                200,
                r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#,
            ),
            interval,
        );
        assert!(matches!(&tokens, DevicePoll::Tokens(t) if t.access_token.expose() == "at"));
        assert_eq!(DevicePoll::Expired.into_result(), Err(DeviceError::Expired));
        assert_eq!(
            DevicePoll::Denied.into_result().unwrap_err().code(),
            "device_access_denied"
        );
        assert_eq!(DevicePoll::Pending.into_result(), Ok(None));
    }

    #[test]
    fn the_schedule_waits_slows_down_and_gives_up() {
        let at = |secs: u64| MonotonicTime::after(Duration::from_secs(secs));
        let mut authorization = authorization();
        authorization.expires_in = Duration::from_secs(20);
        let mut polling = DevicePolling::new(&authorization, at(100));
        assert_eq!(
            polling.next_poll(at(100)),
            NextPoll::Wait(Duration::from_secs(2))
        );
        assert_eq!(polling.next_poll(at(102)), NextPoll::PollNow);
        let pending = json(400, r#"{"error":"authorization_pending"}"#);
        assert_eq!(polling.on_response(&pending, at(102)), DevicePoll::Pending);
        assert_eq!(
            polling.next_poll(at(103)),
            NextPoll::Wait(Duration::from_secs(1))
        );
        let slow = json(400, r#"{"error":"slow_down"}"#);
        assert!(matches!(
            polling.on_response(&slow, at(104)),
            DevicePoll::SlowDown { .. }
        ));
        assert_eq!(polling.interval(), Duration::from_secs(7));
        assert_eq!(
            polling.next_poll(at(104)),
            NextPoll::Wait(Duration::from_secs(7))
        );
        assert_eq!(polling.next_poll(at(111)), NextPoll::PollNow);
        assert_eq!(polling.expires_at(), at(120));
        assert_eq!(polling.next_poll(at(120)), NextPoll::GiveUp);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_answers_never_panic(
            status in proptest::sample::select(vec![200u16, 201, 400, 401, 429, 500]),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            secs in 0u64..u64::MAX,
        ) {
            let response = json(status, "");
            let response = response.map(|_| body.clone());
            let _ = parse_device_authorization(&response);
            let poll = classify_device_poll(&response, Duration::from_secs(secs));
            let _ = poll.into_result();
        }

        #[test]
        fn arbitrary_json_answers_never_panic(
            device_code in ".{0,8}",
            user_code in ".{0,8}",
            uri in ".{0,24}",
            expires_in in proptest::num::u64::ANY,
            interval in proptest::num::u64::ANY,
        ) {
            let body = serde_json::json!({
                "device_code": device_code, "user_code": user_code,
                "verification_uri": uri, "verification_uri_complete": uri,
                "expires_in": expires_in, "interval": interval,
            });
            let response = json(200, &body.to_string());
            if let Ok(authorization) = parse_device_authorization(&response) {
                let mut polling = DevicePolling::new(&authorization, MonotonicTime::after(Duration::MAX));
                let _ = polling.next_poll(MonotonicTime::after(Duration::MAX));
                polling.on_poll(&DevicePoll::SlowDown { new_interval: Duration::MAX }, MonotonicTime::ZERO);
                let _ = polling.next_poll(MonotonicTime::ZERO);
            }
        }
    }
}
