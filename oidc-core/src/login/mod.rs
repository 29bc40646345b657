//! The authorization code flow of an OpenID Connect relying party, as values in and values out.
//!
//! Calling order, each step one function:
//!
//! 1. [`start_login`]: configuration + return-to target + `now` + random source → the
//!    authorization URL to redirect the browser to and a [`PendingLogin`] that the caller keeps
//!    (sealed into a short-lived cookie named with [`PendingLogin::cookie_suffix`], so logins
//!    started in several tabs do not clobber each other).
//!    When the provider advertises a pushed authorization endpoint (RFC 9126), [`par`] turns that
//!    URL into a pushed request and a short URL carrying only `client_id` and `request_uri`.
//! 2. [`CallbackParams::from_query`] / [`CallbackParams::from_form_post`] parse the provider's
//!    answer; [`cookie_suffix_for_state`] names the cookie holding the matching pending login.
//! 3. [`handle_callback`] consumes the [`PendingLogin`] (the caller **must** clear its cookie
//!    whatever the outcome, so that a code or state cannot be replayed), checks `state` in
//!    constant time, the RFC 9207 `iss` parameter and provider errors, and returns the token
//!    request to send plus the [`LoginExpectation`] that the answer must meet.
//! 4. [`token::parse_token_response`] reads the token endpoint's answer, and [`finish_login`]
//!    validates the ID token and gives a [`LoginOutcome`].
//! 5. Optionally [`userinfo::userinfo_request`] and [`userinfo::parse_userinfo`], which insists
//!    that the UserInfo `sub` equals the ID token's.
//! 6. Later, [`token::refresh_request`] and [`finish_refresh`] renew the tokens.
//!
//! What comes from the `openidconnect` crate: its PKCE types (the S256 challenge is computed by
//! `PkceCodeChallenge::from_code_verifier_sha256`); no type of it appears in this API. Signature
//! and claim checks of ID tokens do **not** go through `openidconnect`: they go through
//! [`crate::validation::validate`], the project's single aws-lc-rs path shared with bearer
//! tokens and logout tokens, so that one set of rules (algorithm allow-list, `iss`, `aud`,
//! `azp`, `exp`, `iat`, leeway) holds everywhere. What is specific to a login (the `nonce`,
//! `at_hash`, and `auth_time` against `max_age`) is checked here.

pub mod client_auth;
pub mod device;
mod id_token;
pub mod par;
pub mod token;
pub mod userinfo;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::{PkceCodeChallenge, PkceCodeVerifier};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::ErrorKind;

pub use client_auth::{
    AssertionAlgorithm, ClientAuthError, ClientAuthMethod, ClientCredentials, ClientSigningKey,
};
pub use id_token::{
    IdTokenError, LoginOutcome, access_token_hash, finish_login, finish_refresh, id_token_policy,
};

use crate::random::random_url_safe;

/// A `prompt` value of the authorization request (OpenID Connect Core 1.0 §3.1.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prompt {
    /// `none`: no page at all; the provider answers `login_required` or
    /// `interaction_required` instead of asking.
    None,
    /// `login`: ask for the credentials again even when the provider has a session.
    Login,
    /// `consent`: ask the user to consent again.
    Consent,
    /// `select_account`: let the user pick one of their accounts.
    SelectAccount,
    /// `create`: offer to create an account (Initiating User Registration 1.0).
    Create,
    /// Any other value a provider defines.
    Extension(String),
}

impl AsRef<str> for Prompt {
    fn as_ref(&self) -> &str {
        match self {
            Prompt::None => "none",
            Prompt::Login => "login",
            Prompt::Consent => "consent",
            Prompt::SelectAccount => "select_account",
            Prompt::Create => "create",
            Prompt::Extension(value) => value,
        }
    }
}

impl From<&str> for Prompt {
    fn from(value: &str) -> Self {
        match value {
            "none" => Prompt::None,
            "login" => Prompt::Login,
            "consent" => Prompt::Consent,
            "select_account" => Prompt::SelectAccount,
            "create" => Prompt::Create,
            other => Prompt::Extension(other.to_owned()),
        }
    }
}
use crate::secret::constant_time_eq;
use crate::{Issuer, RandomSource, Secret, UnixTime};

/// How long a login may take from redirect to callback unless configured otherwise.
pub const DEFAULT_PENDING_LOGIN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Random bytes in `state`, `nonce` and the PKCE verifier (256 bits each).
const RANDOM_VALUE_BYTES: usize = 32;

/// Parameters that the flow sets itself and that extra parameters may not override.
const RESERVED_PARAMETERS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "max_age",
    "acr_values",
    "login_hint",
    "request",
    "request_uri",
];

/// The provider endpoints a login needs; build it from discovered metadata or by hand.
#[derive(Clone, Debug)]
pub struct ProviderEndpoints {
    /// The issuer, exactly as the provider states it.
    pub issuer: Issuer,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: Url,
    /// The UserInfo endpoint, if any.
    pub userinfo_endpoint: Option<Url>,
    /// The RP-initiated logout endpoint, if any.
    pub end_session_endpoint: Option<Url>,
    /// The RFC 7662 introspection endpoint, if any.
    pub introspection_endpoint: Option<Url>,
    /// Whether the provider always sends `iss` in authorization responses (RFC 9207); when
    /// true, a callback without it is rejected.
    pub authorization_response_iss_parameter_supported: bool,
    /// The RFC 9126 pushed authorization request endpoint, if advertised.
    pub pushed_authorization_request_endpoint: Option<Url>,
    /// Whether the provider accepts authorization requests only when pushed (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
}

/// Why discovered metadata cannot drive a login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointsError {
    /// The metadata names no token endpoint (an implicit-only provider).
    #[error("the provider metadata has no token_endpoint")]
    NoTokenEndpoint,
    /// The stated issuer is not a usable issuer identifier.
    #[error(transparent)]
    Issuer(#[from] crate::IssuerError),
}

impl EndpointsError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EndpointsError::NoTokenEndpoint => ErrorKind::NoTokenEndpoint,
            EndpointsError::Issuer(e) => e.kind(),
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl ProviderEndpoints {
    /// The endpoints of checked discovery metadata, including its RFC 9207
    /// `authorization_response_iss_parameter_supported` flag and its RFC 9126 members.
    pub fn from_metadata(
        metadata: &crate::discovery::ProviderMetadata,
    ) -> Result<Self, EndpointsError> {
        Self::from_metadata_of(Issuer::new(metadata.issuer.clone())?, metadata)
    }

    /// [`Self::from_metadata`] for `issuer` as configured, which stays the issuer a login is
    /// checked against even when the metadata's own spelling differs (a multi-tenant template).
    pub fn from_metadata_of(
        issuer: Issuer,
        metadata: &crate::discovery::ProviderMetadata,
    ) -> Result<Self, EndpointsError> {
        let token_endpoint = metadata
            .token_endpoint
            .clone()
            .ok_or(EndpointsError::NoTokenEndpoint)?;
        let mut endpoints = ProviderEndpoints::new(
            issuer,
            metadata.authorization_endpoint.clone(),
            token_endpoint,
        );
        endpoints.userinfo_endpoint = metadata.userinfo_endpoint.clone();
        endpoints.end_session_endpoint = metadata.end_session_endpoint.clone();
        endpoints.introspection_endpoint = metadata.introspection_endpoint.clone();
        endpoints.authorization_response_iss_parameter_supported = metadata
            .other
            .get("authorization_response_iss_parameter_supported")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        endpoints.read_pushed_authorization(metadata);
        Ok(endpoints)
    }

    /// Takes the RFC 9126 members of `metadata`: `pushed_authorization_request_endpoint` (kept
    /// only when it is an `https` URL, or `http` on a loopback host, like every other endpoint)
    /// and `require_pushed_authorization_requests`.
    pub fn read_pushed_authorization(&mut self, metadata: &crate::discovery::ProviderMetadata) {
        self.pushed_authorization_request_endpoint = metadata
            .other
            .get("pushed_authorization_request_endpoint")
            .and_then(serde_json::Value::as_str)
            .and_then(|text| Url::parse(text).ok())
            .filter(|url| {
                url.scheme() == "https"
                    || (url.scheme() == "http" && crate::issuer::is_loopback_host(url))
            });
        self.require_pushed_authorization_requests = metadata
            .other
            .get("require_pushed_authorization_requests")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
    }

    /// Endpoints with only the two every login needs; set the optional ones as fields.
    pub fn new(issuer: Issuer, authorization_endpoint: Url, token_endpoint: Url) -> Self {
        ProviderEndpoints {
            issuer,
            authorization_endpoint,
            token_endpoint,
            userinfo_endpoint: None,
            end_session_endpoint: None,
            introspection_endpoint: None,
            authorization_response_iss_parameter_supported: false,
            pushed_authorization_request_endpoint: None,
            require_pushed_authorization_requests: false,
        }
    }
}

/// How the provider returns the authorization response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResponseMode {
    /// In the redirect URL's query (the default for `response_type=code`; no parameter sent).
    #[default]
    Query,
    /// In a form `POST` to the redirect URI (`response_mode=form_post`).
    FormPost,
}

/// A relying party's login settings: who it is and what it asks for.
#[derive(Clone, Debug)]
pub struct LoginConfig {
    credentials: ClientCredentials,
    redirect_uri: Url,
    scopes: Vec<String>,
    prompt: Vec<Prompt>,
    max_age: Option<Duration>,
    acr_values: Vec<String>,
    extra_params: Vec<(String, String)>,
    resources: Vec<String>,
    response_mode: ResponseMode,
    pending_login_lifetime: Duration,
    pushed_authorization: par::PushedAuthorization,
}

impl LoginConfig {
    /// Settings for the client `credentials` whose callback is `redirect_uri`, asking for the
    /// `openid` scope only.
    pub fn new(credentials: ClientCredentials, redirect_uri: Url) -> Self {
        LoginConfig {
            credentials,
            redirect_uri,
            scopes: vec!["openid".to_owned()],
            prompt: Vec::new(),
            max_age: None,
            acr_values: Vec::new(),
            extra_params: Vec::new(),
            resources: Vec::new(),
            response_mode: ResponseMode::Query,
            pending_login_lifetime: DEFAULT_PENDING_LOGIN_LIFETIME,
            pushed_authorization: par::PushedAuthorization::default(),
        }
    }

    /// Adds scopes (e.g. `profile`, `email`, `offline_access`); `openid` is always requested.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for scope in scopes {
            let scope = scope.into();
            if !self.scopes.contains(&scope) {
                self.scopes.push(scope);
            }
        }
        self
    }

    /// The `prompt` values sent with every login.
    #[must_use]
    pub fn prompt(mut self, prompt: Vec<Prompt>) -> Self {
        self.prompt = prompt;
        self
    }

    /// Asks for an authentication no older than `max_age`; the ID token's `auth_time` is then
    /// required and checked.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Requested Authentication Context Class References.
    #[must_use]
    pub fn acr_values<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// An extra authorization parameter (e.g. `audience`, `resource`, `hd`). Parameters the flow
    /// sets itself are refused by [`start_login`].
    #[must_use]
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_params.push((name.into(), value.into()));
        self
    }

    /// A resource the access token is for (RFC 8707 resource indicator, an absolute URI such
    /// as the API's URL): sent as `resource` in the authorization request and again in the
    /// token request, so that providers issue an access token whose audience is that
    /// resource. Repeatable.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The resources asked for ([`Self::resource`]), for the token requests that follow.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// How the authorization response comes back.
    #[must_use]
    pub fn response_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = mode;
        self
    }

    /// How long a started login stays usable (default [`DEFAULT_PENDING_LOGIN_LIFETIME`]).
    #[must_use]
    pub fn pending_login_lifetime(mut self, lifetime: Duration) -> Self {
        self.pending_login_lifetime = lifetime;
        self
    }

    /// When to push authorization requests (RFC 9126; default: when the provider advertises
    /// the endpoint). See [`par::pushed_authorization_endpoint`].
    #[must_use]
    pub fn pushed_authorization(mut self, mode: par::PushedAuthorization) -> Self {
        self.pushed_authorization = mode;
        self
    }

    /// The configured pushed authorization mode.
    pub fn pushed_authorization_mode(&self) -> par::PushedAuthorization {
        self.pushed_authorization
    }

    /// The client's credentials.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The callback URL registered with the provider.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// The configured `max_age`, if any.
    pub fn configured_max_age(&self) -> Option<Duration> {
        self.max_age
    }
}

/// What one particular login asks for, beyond the configuration.
#[derive(Clone, Debug, Default)]
pub struct LoginRequest {
    return_to: String,
    login_hint: Option<String>,
    prompt: Option<Vec<Prompt>>,
}

impl LoginRequest {
    /// A login that returns the browser to `return_to` (already checked by the caller against
    /// its allowed targets) once signed in.
    pub fn new(return_to: impl Into<String>) -> Self {
        LoginRequest {
            return_to: return_to.into(),
            login_hint: None,
            prompt: None,
        }
    }

    /// A `login_hint` (e.g. the user's email) for the provider.
    #[must_use]
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }

    /// `prompt` values for this login only, replacing the configured ones (e.g. `none` for a
    /// silent re-authentication).
    #[must_use]
    pub fn prompt(mut self, prompt: Vec<Prompt>) -> Self {
        self.prompt = Some(prompt);
        self
    }
}

/// The browser redirect that starts a login, and the state to keep until the callback.
#[derive(Debug)]
pub struct AuthorizationRedirect {
    /// The provider URL to send the browser to (HTTP 302/303 `Location`).
    pub url: Url,
    /// What the callback will need; seal it into a cookie named with
    /// [`PendingLogin::cookie_suffix`].
    pub pending: PendingLogin,
}

/// A login between redirect and callback: the secrets the callback must match.
///
/// Small and serializable (short field names) so that the session codec can seal it into a
/// cookie. It expires [`LoginConfig::pending_login_lifetime`] after it was created.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "n")]
    nonce: String,
    #[serde(rename = "v")]
    pkce_verifier: String,
    #[serde(rename = "r")]
    return_to: String,
    #[serde(rename = "c")]
    created_at: u64,
    #[serde(rename = "e")]
    expires_at: u64,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    max_age: Option<u64>,
}

impl PendingLogin {
    /// The `state` value sent to the provider.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// Where to send the browser after the login.
    pub fn return_to(&self) -> &str {
        &self.return_to
    }

    /// When the login was started.
    pub fn created_at(&self) -> UnixTime {
        UnixTime::from_secs(self.created_at)
    }

    /// When the login stops being usable.
    pub fn expires_at(&self) -> UnixTime {
        UnixTime::from_secs(self.expires_at)
    }

    /// Whether the login is still usable at `now`.
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires_at()
    }

    /// A short cookie-name suffix unique to this login, derived from its state: name the
    /// cookie `<prefix>_<suffix>` so concurrent logins in several tabs each keep their own.
    pub fn cookie_suffix(&self) -> String {
        cookie_suffix_for_state(&self.state)
    }
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &self.state)
            .field("nonce", &"***")
            .field("pkce_verifier", &"***")
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// The cookie-name suffix for the login whose callback carries `state`: 16 base64url
/// characters of its SHA-256, so that the suffix is always a valid cookie-name token whatever
/// an attacker puts in `state`.
pub fn cookie_suffix_for_state(state: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, state.as_bytes());
    let mut encoded = URL_SAFE_NO_PAD.encode(digest.as_ref());
    encoded.truncate(16);
    encoded
}

/// Why a login could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An extra parameter would override one the flow sets itself.
    #[error("the extra authorization parameter {name:?} is set by the login flow itself")]
    ReservedParameter {
        /// The parameter's name.
        name: String,
    },
}

impl StartError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StartError::ReservedParameter { .. } => ErrorKind::LoginReservedParameter,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Starts a login: the authorization URL (`response_type=code`, fresh `state` and `nonce`,
/// PKCE S256, scopes and the optional parameters) and the [`PendingLogin`] to keep.
pub fn start_login(
    endpoints: &ProviderEndpoints,
    config: &LoginConfig,
    request: &LoginRequest,
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<AuthorizationRedirect, StartError> {
    if let Some((name, _)) = config
        .extra_params
        .iter()
        .find(|(name, _)| RESERVED_PARAMETERS.contains(&name.as_str()))
    {
        return Err(StartError::ReservedParameter { name: name.clone() });
    }
    let state = random_url_safe(random, RANDOM_VALUE_BYTES);
    let nonce = random_url_safe(random, RANDOM_VALUE_BYTES);
    let verifier = PkceCodeVerifier::new(random_url_safe(random, RANDOM_VALUE_BYTES));
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);

    let mut url = endpoints.authorization_endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", config.credentials.client_id())
            .append_pair("redirect_uri", config.redirect_uri.as_str())
            .append_pair("scope", &config.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        if config.response_mode == ResponseMode::FormPost {
            query.append_pair("response_mode", "form_post");
        }
        let prompt = request.prompt.as_ref().unwrap_or(&config.prompt);
        if !prompt.is_empty() {
            let values: Vec<&str> = prompt.iter().map(AsRef::as_ref).collect();
            query.append_pair("prompt", &values.join(" "));
        }
        if let Some(max_age) = config.max_age {
            query.append_pair("max_age", &max_age.as_secs().to_string());
        }
        if !config.acr_values.is_empty() {
            query.append_pair("acr_values", &config.acr_values.join(" "));
        }
        if let Some(hint) = &request.login_hint {
            query.append_pair("login_hint", hint);
        }
        for (name, value) in &config.extra_params {
            query.append_pair(name, value);
        }
        for resource in &config.resources {
            query.append_pair("resource", resource);
        }
    }
    let pending = PendingLogin {
        state,
        nonce,
        pkce_verifier: verifier.secret().clone(),
        return_to: request.return_to.clone(),
        created_at: now.as_secs(),
        expires_at: now.saturating_add(config.pending_login_lifetime).as_secs(),
        max_age: config.max_age.map(|d| d.as_secs()),
    };
    Ok(AuthorizationRedirect { url, pending })
}

/// The parameters of an authorization response, from the redirect's query or a `form_post`
/// body. Unknown parameters are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<Secret>,
    /// The state echoed back.
    pub state: Option<String>,
    /// The issuer identifier (RFC 9207).
    pub iss: Option<String>,
    /// An error code, when the provider refused.
    pub error: Option<String>,
    /// A human-readable error description.
    pub error_description: Option<String>,
    /// A page describing the error.
    pub error_uri: Option<String>,
}

impl CallbackParams {
    /// Parses the query string of the callback URL (without the leading `?`).
    pub fn from_query(query: &str) -> Result<Self, CallbackError> {
        Self::from_form_post(query.as_bytes())
    }

    /// Parses an `application/x-www-form-urlencoded` body (`response_mode=form_post`).
    ///
    /// A parameter present twice is rejected (RFC 6749 §3.1).
    pub fn from_form_post(body: &[u8]) -> Result<Self, CallbackError> {
        let mut params = CallbackParams::default();
        for (name, value) in url::form_urlencoded::parse(body) {
            let value = value.into_owned();
            let slot_is_taken = match name.as_ref() {
                "code" => params.code.replace(Secret::new(value)).is_some(),
                "state" => params.state.replace(value).is_some(),
                "iss" => params.iss.replace(value).is_some(),
                "error" => params.error.replace(value).is_some(),
                "error_description" => params.error_description.replace(value).is_some(),
                "error_uri" => params.error_uri.replace(value).is_some(),
                _ => false,
            };
            if slot_is_taken {
                return Err(CallbackError::DuplicateParameter {
                    name: name.into_owned(),
                });
            }
        }
        Ok(params)
    }
}

/// An error code an authorization endpoint may return (RFC 6749 §4.1.2.1, OpenID Connect Core
/// §3.1.2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizationErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `access_denied`: the user or the provider refused.
    AccessDenied,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `invalid_scope`
    InvalidScope,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `interaction_required` (after `prompt=none`)
    InteractionRequired,
    /// `login_required` (after `prompt=none`)
    LoginRequired,
    /// `account_selection_required`
    AccountSelectionRequired,
    /// `consent_required`
    ConsentRequired,
    /// Any other code, kept verbatim.
    Other(String),
}

impl AuthorizationErrorCode {
    /// Reads a code as the provider sent it.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "unauthorized_client" => Self::UnauthorizedClient,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "invalid_scope" => Self::InvalidScope,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "interaction_required" => Self::InteractionRequired,
            "login_required" => Self::LoginRequired,
            "account_selection_required" => Self::AccountSelectionRequired,
            "consent_required" => Self::ConsentRequired,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as the protocol spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InteractionRequired => "interaction_required",
            Self::LoginRequired => "login_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::ConsentRequired => "consent_required",
            Self::Other(code) => code,
        }
    }
}

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// A parameter appeared more than once.
    #[error("the authorization response has the parameter {name:?} more than once")]
    DuplicateParameter {
        /// The parameter's name.
        name: String,
    },
    /// The pending login is too old.
    #[error("the login started at {created_at} expired at {expires_at} (now {now})")]
    PendingLoginExpired {
        /// When it started.
        created_at: UnixTime,
        /// When it expired.
        expires_at: UnixTime,
        /// The time of the callback.
        now: UnixTime,
    },
    /// The response carries no `state`.
    #[error("the authorization response has no state")]
    StateMissing,
    /// The `state` is not the one of this pending login.
    #[error("the authorization response's state does not match the pending login")]
    StateMismatch,
    /// The provider answered with an error.
    #[error("the provider refused the login: {}{}", .error.as_str(), describe(.description))]
    Provider {
        /// The error code.
        error: AuthorizationErrorCode,
        /// `error_description`, if sent.
        description: Option<String>,
        /// `error_uri`, if sent.
        uri: Option<String>,
    },
    /// The `iss` parameter names another issuer (a mix-up attack, RFC 9207).
    #[error("the authorization response comes from issuer {received:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The `iss` received.
        received: String,
    },
    /// The provider promises `iss` in responses, and it is absent.
    #[error("the authorization response has no iss although the provider always sends it")]
    IssuerMissing,
    /// Neither a code nor an error.
    #[error("the authorization response has no code")]
    CodeMissing,
    /// The token request could not be authenticated.
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
}

impl CallbackError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CallbackError::DuplicateParameter { .. } => ErrorKind::CallbackDuplicateParameter,
            CallbackError::PendingLoginExpired { .. } => ErrorKind::LoginExpired,
            CallbackError::StateMissing => ErrorKind::StateMissing,
            CallbackError::StateMismatch => ErrorKind::StateMismatch,
            CallbackError::Provider { .. } => ErrorKind::AuthorizationError,
            CallbackError::IssuerMismatch { .. } => ErrorKind::CallbackIssuerMismatch,
            CallbackError::IssuerMissing => ErrorKind::CallbackIssuerMissing,
            CallbackError::CodeMissing => ErrorKind::CodeMissing,
            CallbackError::ClientAuth(e) => e.kind(),
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

fn describe(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" ({})", crate::provider_response::excerpt(d.as_bytes())))
        .unwrap_or_default()
}

/// What the ID token of a login must match; produced by [`handle_callback`] from the consumed
/// [`PendingLogin`].
#[derive(Clone, Debug)]
pub struct LoginExpectation {
    nonce: Secret,
    max_age: Option<Duration>,
    return_to: String,
    started_at: UnixTime,
}

impl LoginExpectation {
    /// Where to send the browser after the login.
    pub fn return_to(&self) -> &str {
        &self.return_to
    }

    /// When the login started.
    pub fn started_at(&self) -> UnixTime {
        self.started_at
    }

    /// The `nonce` the ID token must carry.
    pub fn nonce(&self) -> &Secret {
        &self.nonce
    }

    /// The `max_age` the login asked for; the ID token's `auth_time` must honour it.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }
}

/// The code exchange to perform: send `request` to the token endpoint, then hand the answer to
/// [`token::parse_token_response`] and [`finish_login`] with `expectation`.
#[derive(Debug)]
pub struct CodeExchange {
    /// The token request (`grant_type=authorization_code`, code, redirect URI, PKCE verifier,
    /// client authentication).
    pub request: http::Request<Vec<u8>>,
    /// What the resulting ID token must match.
    pub expectation: LoginExpectation,
}

/// Checks an authorization response against the login it answers and builds the token request.
///
/// `pending` is consumed: whatever the result, the caller must delete the cookie that held it,
/// so that the same state and code cannot be presented twice. The order of checks is: expiry,
/// `state` (constant time), provider error, `iss` (RFC 9207), code.
pub fn handle_callback(
    endpoints: &ProviderEndpoints,
    config: &LoginConfig,
    pending: PendingLogin,
    params: &CallbackParams,
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<CodeExchange, CallbackError> {
    if pending.is_expired(now) {
        return Err(CallbackError::PendingLoginExpired {
            created_at: pending.created_at(),
            expires_at: pending.expires_at(),
            now,
        });
    }
    let state = params.state.as_deref().ok_or(CallbackError::StateMissing)?;
    if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
        return Err(CallbackError::StateMismatch);
    }
    if let Some(error) = &params.error {
        return Err(CallbackError::Provider {
            error: AuthorizationErrorCode::parse(error),
            description: params.error_description.clone(),
            uri: params.error_uri.clone(),
        });
    }
    match &params.iss {
        Some(iss) if !endpoints.issuer.matches(iss) => {
            return Err(CallbackError::IssuerMismatch {
                expected: endpoints.issuer.as_str().to_owned(),
                received: iss.clone(),
            });
        }
        None if endpoints.authorization_response_iss_parameter_supported => {
            return Err(CallbackError::IssuerMissing);
        }
        _ => {}
    }
    let code = params
        .code
        .as_ref()
        .filter(|code| !code.expose().is_empty())
        .ok_or(CallbackError::CodeMissing)?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("code_verifier", &pending.pkce_verifier),
    ];
    form.extend(config.resources.iter().map(|r| ("resource", r.as_str())));
    let request = client_auth::authenticated_form_post(
        &endpoints.token_endpoint,
        &config.credentials,
        &form,
        now,
        random,
    )?;
    Ok(CodeExchange {
        request,
        expectation: LoginExpectation {
            nonce: Secret::new(pending.nonce),
            max_age: pending.max_age.map(Duration::from_secs),
            return_to: pending.return_to,
            started_at: UnixTime::from_secs(pending.created_at),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danger::InsecureSeededRandom;

    #[test]
    fn prompt_values_read_and_write_as_the_spec_spells_them() {
        for value in [
            "none",
            "login",
            "consent",
            "select_account",
            "create",
            "x-custom",
        ] {
            assert_eq!(Prompt::from(value).as_ref(), value);
        }
        assert_eq!(Prompt::from("select_account"), Prompt::SelectAccount);
        assert_eq!(
            Prompt::from("x-custom"),
            Prompt::Extension("x-custom".to_owned())
        );
    }

    fn endpoints() -> ProviderEndpoints {
        ProviderEndpoints::new(
            Issuer::new("https://op.example").unwrap(),
            Url::parse("https://op.example/authorize?tenant=x").unwrap(),
            Url::parse("https://op.example/token").unwrap(),
        )
    }

    fn config() -> LoginConfig {
        LoginConfig::new(
            ClientCredentials::new("rp", ClientAuthMethod::ClientSecretBasic("pw".into())),
            Url::parse("https://rp.example/callback").unwrap(),
        )
    }

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn authorization_url_has_every_required_parameter() {
        let config = config()
            .scopes(["email", "openid", "profile"])
            .prompt(vec![Prompt::Login, Prompt::Consent])
            .max_age(Duration::from_secs(300))
            .acr_values(["urn:mace:incommon:iap:silver"])
            .extra_param("audience", "api")
            .response_mode(ResponseMode::FormPost);
        let redirect = start_login(
            &endpoints(),
            &config,
            &LoginRequest::new("/after").login_hint("a@b.example"),
            UnixTime::from_secs(1000),
            &mut InsecureSeededRandom::new(1),
        )
        .unwrap();
        let pairs = query(&redirect.url);
        assert_eq!(param(&pairs, "tenant"), Some("x"));
        assert_eq!(param(&pairs, "response_type"), Some("code"));
        assert_eq!(param(&pairs, "client_id"), Some("rp"));
        assert_eq!(
            param(&pairs, "redirect_uri"),
            Some("https://rp.example/callback")
        );
        assert_eq!(param(&pairs, "scope"), Some("openid email profile"));
        assert_eq!(param(&pairs, "state"), Some(redirect.pending.state()));
        assert_eq!(
            param(&pairs, "nonce"),
            Some(redirect.pending.nonce.as_str())
        );
        assert_eq!(param(&pairs, "code_challenge_method"), Some("S256"));
        assert_eq!(param(&pairs, "response_mode"), Some("form_post"));
        assert_eq!(param(&pairs, "prompt"), Some("login consent"));
        assert_eq!(param(&pairs, "max_age"), Some("300"));
        assert_eq!(
            param(&pairs, "acr_values"),
            Some("urn:mace:incommon:iap:silver")
        );
        assert_eq!(param(&pairs, "login_hint"), Some("a@b.example"));
        assert_eq!(param(&pairs, "audience"), Some("api"));
        // S256 of the verifier, as RFC 7636 appendix B computes it.
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            redirect.pending.pkce_verifier.as_bytes(),
        );
        assert_eq!(
            param(&pairs, "code_challenge"),
            Some(URL_SAFE_NO_PAD.encode(digest.as_ref()).as_str())
        );
        assert_eq!(redirect.pending.state().len(), 43);
        assert_eq!(redirect.pending.created_at(), UnixTime::from_secs(1000));
        assert_eq!(redirect.pending.expires_at(), UnixTime::from_secs(1600));
    }

    #[test]
    fn resource_indicators_go_in_the_authorization_and_the_token_request() {
        let config = config()
            .resource("https://api.example/")
            .resource("https://other.example/");
        let redirect = start_login(
            &endpoints(),
            &config,
            &LoginRequest::new("/back"),
            UnixTime::from_secs(100),
            &mut InsecureSeededRandom::new(3),
        )
        .unwrap();
        let resources: Vec<String> = query(&redirect.url)
            .into_iter()
            .filter(|(name, _)| name == "resource")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(resources, config.resources());
        let params = CallbackParams::from_query(&format!(
            "state={}&code=abc&iss=https%3A%2F%2Fop.example",
            redirect.pending.state()
        ))
        .unwrap();
        let exchange = handle_callback(
            &endpoints(),
            &config,
            redirect.pending,
            &params,
            UnixTime::from_secs(200),
            &mut InsecureSeededRandom::new(5),
        )
        .unwrap();
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(exchange.request.body()).unwrap();
        let sent: Vec<&str> = form
            .iter()
            .filter(|(name, _)| name == "resource")
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(sent, ["https://api.example/", "https://other.example/"]);
    }

    #[test]
    fn endpoints_come_from_discovered_metadata() {
        let document = serde_json::json!({
            "issuer": "https://op.example",
            "authorization_endpoint": "https://op.example/authorize",
            "token_endpoint": "https://op.example/token",
            "userinfo_endpoint": "https://op.example/userinfo",
            "end_session_endpoint": "https://op.example/logout",
            "jwks_uri": "https://op.example/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "authorization_response_iss_parameter_supported": true,
        });
        let serde_json::Value::Object(map) = document else {
            unreachable!()
        };
        let metadata = crate::discovery::ProviderMetadata::from_document(map).unwrap();
        let endpoints = ProviderEndpoints::from_metadata(&metadata).unwrap();
        assert_eq!(endpoints.issuer.as_str(), "https://op.example");
        assert_eq!(
            endpoints.token_endpoint.as_str(),
            "https://op.example/token"
        );
        assert_eq!(
            endpoints.end_session_endpoint.as_ref().map(Url::as_str),
            Some("https://op.example/logout")
        );
        assert!(endpoints.authorization_response_iss_parameter_supported);
        assert_eq!(endpoints.introspection_endpoint, None);
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        let verifier =
            PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(
            PkceCodeChallenge::from_code_verifier_sha256(&verifier).as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn reserved_extra_parameters_are_refused() {
        let err = start_login(
            &endpoints(),
            &config().extra_param("state", "fixed"),
            &LoginRequest::new("/"),
            UnixTime::from_secs(1),
            &mut InsecureSeededRandom::new(1),
        )
        .unwrap_err();
        assert_eq!(
            err,
            StartError::ReservedParameter {
                name: "state".into()
            }
        );
        assert_eq!(err.code(), "login_reserved_parameter");
    }

    #[test]
    fn concurrent_logins_get_distinct_states_and_cookie_suffixes() {
        let mut random = InsecureSeededRandom::new(9);
        let a = start_login(
            &endpoints(),
            &config(),
            &LoginRequest::new("/a"),
            UnixTime::from_secs(1),
            &mut random,
        )
        .unwrap();
        let b = start_login(
            &endpoints(),
            &config(),
            &LoginRequest::new("/b"),
            UnixTime::from_secs(1),
            &mut random,
        )
        .unwrap();
        assert_ne!(a.pending.state(), b.pending.state());
        assert_ne!(a.pending.cookie_suffix(), b.pending.cookie_suffix());
        assert_eq!(
            a.pending.cookie_suffix(),
            cookie_suffix_for_state(a.pending.state())
        );
        assert_eq!(a.pending.cookie_suffix().len(), 16);
        assert!(
            a.pending
                .cookie_suffix()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn pending_login_round_trips_through_json_and_hides_secrets_in_debug() {
        let redirect = start_login(
            &endpoints(),
            &config().max_age(Duration::from_secs(60)),
            &LoginRequest::new("/x?y=1"),
            UnixTime::from_secs(5),
            &mut InsecureSeededRandom::new(2),
        )
        .unwrap();
        let json = serde_json::to_string(&redirect.pending).unwrap();
        assert!(json.len() < 250, "{json}");
        let back: PendingLogin = serde_json::from_str(&json).unwrap();
        assert_eq!(back, redirect.pending);
        let debug = format!("{:?}", redirect.pending);
        assert!(!debug.contains(&redirect.pending.nonce));
        assert!(!debug.contains(&redirect.pending.pkce_verifier));
    }

    fn started() -> PendingLogin {
        start_login(
            &endpoints(),
            &config(),
            &LoginRequest::new("/back"),
            UnixTime::from_secs(100),
            &mut InsecureSeededRandom::new(4),
        )
        .unwrap()
        .pending
    }

    fn callback(pending: &PendingLogin, extra: &str) -> CallbackParams {
        CallbackParams::from_query(&format!("state={}{extra}", pending.state())).unwrap()
    }

    fn run(
        endpoints: &ProviderEndpoints,
        pending: PendingLogin,
        params: &CallbackParams,
        now: u64,
    ) -> Result<CodeExchange, CallbackError> {
        handle_callback(
            endpoints,
            &config(),
            pending,
            params,
            UnixTime::from_secs(now),
            &mut InsecureSeededRandom::new(5),
        )
    }

    #[test]
    fn callback_builds_the_code_exchange() {
        let pending = started();
        let verifier = pending.pkce_verifier.clone();
        let params = callback(&pending, "&code=abc&iss=https%3A%2F%2Fop.example");
        let exchange = run(&endpoints(), pending, &params, 200).unwrap();
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(exchange.request.body()).unwrap();
        assert_eq!(
            form,
            vec![
                ("grant_type".to_owned(), "authorization_code".to_owned()),
                ("code".to_owned(), "abc".to_owned()),
                (
                    "redirect_uri".to_owned(),
                    "https://rp.example/callback".to_owned()
                ),
                ("code_verifier".to_owned(), verifier),
            ]
        );
        assert_eq!(exchange.request.uri(), "https://op.example/token");
        assert!(
            exchange
                .request
                .headers()
                .contains_key(http::header::AUTHORIZATION)
        );
        assert_eq!(exchange.expectation.return_to(), "/back");
        assert_eq!(exchange.expectation.started_at(), UnixTime::from_secs(100));
    }

    #[test]
    fn callback_rejections_are_typed() {
        let pending = started();
        let cases: Vec<(CallbackParams, u64, &str)> = vec![
            (callback(&pending, "&code=a"), 100 + 600, "login_expired"),
            (
                CallbackParams::from_query("code=a").unwrap(),
                200,
                "state_missing",
            ),
            (
                CallbackParams::from_query("code=a&state=other").unwrap(),
                200,
                "state_mismatch",
            ),
            (callback(&pending, ""), 200, "code_missing"),
            (callback(&pending, "&code="), 200, "code_missing"),
            (
                callback(&pending, "&code=a&iss=https%3A%2F%2Fevil.example"),
                200,
                "callback_issuer_mismatch",
            ),
        ];
        for (params, now, code) in cases {
            let err = run(&endpoints(), pending.clone(), &params, now).unwrap_err();
            assert_eq!(err.code(), code, "{params:?}");
        }
        let mut strict = endpoints();
        strict.authorization_response_iss_parameter_supported = true;
        let err = run(
            &strict,
            pending.clone(),
            &callback(&pending, "&code=a"),
            200,
        )
        .unwrap_err();
        assert_eq!(err, CallbackError::IssuerMissing);
    }

    #[test]
    fn provider_errors_are_typed_after_the_state_check() {
        let pending = started();
        let params = callback(
            &pending,
            "&error=login_required&error_description=no+session&error_uri=https%3A%2F%2Fop.example%2Fe",
        );
        let err = run(&endpoints(), pending.clone(), &params, 200).unwrap_err();
        assert_eq!(
            err,
            CallbackError::Provider {
                error: AuthorizationErrorCode::LoginRequired,
                description: Some("no session".into()),
                uri: Some("https://op.example/e".into()),
            }
        );
        assert_eq!(err.code(), "authorization_error");
        assert!(err.to_string().contains("login_required (no session)"));
        let forged = CallbackParams::from_query("error=access_denied&state=forged").unwrap();
        assert_eq!(
            run(&endpoints(), pending, &forged, 200).unwrap_err(),
            CallbackError::StateMismatch
        );
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        let err = CallbackParams::from_query("code=a&code=b&state=s").unwrap_err();
        assert_eq!(
            err,
            CallbackError::DuplicateParameter {
                name: "code".into()
            }
        );
    }

    #[test]
    fn form_post_body_parses_like_a_query() {
        let params =
            CallbackParams::from_form_post(b"code=c%2B1&state=s&session_state=ignored").unwrap();
        assert_eq!(params.code.as_ref().map(Secret::expose), Some("c+1"));
        assert_eq!(params.state.as_deref(), Some("s"));
    }

    proptest::proptest! {
        #[test]
        fn callback_parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = CallbackParams::from_form_post(&body);
        }

        #[test]
        fn callback_parameters_round_trip_through_a_query(
            code in ".{1,40}", state in ".{0,40}", iss in proptest::option::of(".{0,40}"),
        ) {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("code", &code).append_pair("state", &state);
            if let Some(iss) = &iss {
                query.append_pair("iss", iss);
            }
            let params = CallbackParams::from_query(&query.finish()).unwrap();
            proptest::prop_assert_eq!(params.code.as_ref().map(Secret::expose), Some(code.as_str()));
            proptest::prop_assert_eq!(params.state.as_deref(), Some(state.as_str()));
            proptest::prop_assert_eq!(params.iss, iss);
        }

        #[test]
        fn pending_login_round_trips(seed in proptest::num::u64::ANY, now in proptest::num::u64::ANY, return_to in ".{0,60}") {
            let redirect = start_login(
                &endpoints(),
                &config(),
                &LoginRequest::new(return_to),
                UnixTime::from_secs(now),
                &mut InsecureSeededRandom::new(seed),
            )
            .unwrap();
            let json = serde_json::to_vec(&redirect.pending).unwrap();
            let back: PendingLogin = serde_json::from_slice(&json).unwrap();
            proptest::prop_assert_eq!(back, redirect.pending);
        }

        #[test]
        fn pending_login_parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = serde_json::from_slice::<PendingLogin>(&body);
        }

        #[test]
        fn cookie_suffix_is_always_a_cookie_token(state in ".*") {
            let suffix = cookie_suffix_for_state(&state);
            proptest::prop_assert_eq!(suffix.len(), 16);
            proptest::prop_assert!(suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }
}
