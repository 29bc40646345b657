//! The decision shared by every front-end: who sent this request, and may they pass?
//!
//! [`Authenticator::authenticate`] reads a bearer token (JWT validated by the [`Provider`],
//! opaque tokens by RFC 7662 introspection with a cache) or the session cookie (sealed session,
//! or a handle into the server-side store), refreshes a session whose access token is about to
//! expire (one refresh per session at a time), and applies the authorization rules. The answer
//! is an [`Authentication`] or a typed [`AuthFailure`]; the bearer layer, the login layer and
//! forward-auth only differ in how they answer it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use oidc_core::ErrorKind;
use oidc_core::authorization::{Denied, groups_from_claims};
use oidc_core::cookie::{CookieCodec, CookieError, CookieKeys, RequestCookies};
use oidc_core::danger::decode_unverified;
use oidc_core::dpop::{DpopError, DpopPolicy, DpopRequest, bound_key_thumbprint, verify_proof};
use oidc_core::introspection::{
    IntrospectionError, IntrospectionPolicy, TokenTypeHint, introspection_request,
    parse_introspection,
};
use oidc_core::login::token::{TokenError, parse_token_response, refresh_request};
use oidc_core::login::{
    ClientCredentials, IdTokenError, LoginConfig, ProviderEndpoints, finish_refresh,
    id_token_policy,
};
use oidc_core::logout::{LogoutTokenValidator, SeenJtis};
use oidc_core::random::random_url_safe;
use oidc_core::validation::{Policy, ValidationError};
use oidc_core::{KeySet, Secret, Session, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::config::{AuthConfig, AuthConfigError, LoginSettings};
use crate::bearer_response::{
    BearerExtractError, BearerToken, DpopCredentials, DpopExtractError, QueryTokens,
    extract_bearer, extract_dpop, unchecked_bearer,
};
pub(crate) use crate::clock::now;
use crate::fingerprint::{Fingerprint, Fingerprints};
use crate::http_client::HttpError;
use crate::identity_headers::{CookiePrefixes, Identity};
use crate::metrics::Metrics;
pub(crate) use crate::provider::sha256;
use crate::provider::{Provider, ProviderError};
use crate::random::SystemRandom;
use crate::store::{
    HandleError, SessionHandle, SessionStore, SessionTags, SessionVault, StoreError, StoreKey,
};

/// How long a replica may hold a session's refresh lock (about the provider call's timeout).
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(10);
/// How often a replica waiting for another's refresh looks at the stored session.
const REFRESH_LOCK_POLL: Duration = Duration::from_millis(50);

/// Whether two readings of a session carry the same tokens (no refresh happened in between).
fn same_tokens(a: &Session, b: &Session) -> bool {
    a.access_token == b.access_token && a.refresh_token == b.refresh_token
}

/// How long a finished refresh is remembered, so that requests still carrying the old cookie
/// get the refreshed session instead of refreshing again with a rotated-away refresh token.
const REFRESH_MEMORY: Duration = Duration::from_secs(120);
/// How many revocations the cookie store remembers in this process.
const MAX_LOCAL_REVOCATIONS: usize = 100_000;
/// How many introspection answers are cached.
const INTROSPECTION_CACHE_CAPACITY: u64 = 10_000;
/// How many opened cookie sessions are kept, and for how long at most.
const SESSION_CACHE_CAPACITY: u64 = 10_000;
/// How many completed logins are remembered to refuse replayed callbacks locally.
const COMPLETED_LOGIN_CAPACITY: u64 = 100_000;
const SESSION_CACHE_MAX_AGE: Duration = Duration::from_secs(60);

/// Who a request comes from, once authenticated.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Authenticated {
    /// The identity the upstream is told about.
    pub identity: Identity,
    /// Where the identity came from.
    pub source: AuthSource,
    /// The claims behind the identity: the bearer token's claims, or the session's
    /// (`sub`, `iss`, `email`, `email_verified`, `name`, `preferred_username`, `groups` and the
    /// kept claims).
    pub claims: Arc<Map<String, Value>>,
    /// The token's scopes (empty for sessions).
    pub scopes: Vec<String>,
}

impl Authenticated {
    /// The claims as your own type (`#[derive(Deserialize)]`, with the claims you need), e.g.
    /// a `tenant` or `roles` claim the identity does not carry.
    pub fn claims_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&Value::Object(Map::clone(&self.claims)))
    }
}

/// How a request was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthSource {
    /// A browser session cookie.
    Session,
    /// A JWT access token validated with the provider's keys.
    BearerJwt,
    /// An opaque access token validated by introspection.
    BearerIntrospected,
}

impl AuthSource {
    /// Every source, for tables that must cover them all.
    pub const ALL: [AuthSource; 3] = [
        AuthSource::Session,
        AuthSource::BearerJwt,
        AuthSource::BearerIntrospected,
    ];

    /// A stable snake_case label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthSource::Session => "session",
            AuthSource::BearerJwt => "bearer_jwt",
            AuthSource::BearerIntrospected => "bearer_introspected",
        }
    }
}

/// A successful authentication, and the cookies the response must set (a refreshed session).
#[derive(Debug)]
#[non_exhaustive]
pub struct Authentication {
    /// Who the request comes from.
    pub authenticated: Authenticated,
    /// `Set-Cookie` values to add to the response (non-empty after a refresh).
    pub set_cookies: Vec<HeaderValue>,
}

/// Why a request is not let through.
///
/// [`kind`](AuthFailure::kind) tells a program which of the stable codes it is; the answer's
/// status for each kind is [`answer_status`](crate::error_status::answer_status), and
/// `docs/error-codes.md` in the repository lists every code with its status and meaning.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// Neither a bearer token nor a session cookie.
    #[error("the request carries no credentials")]
    NoCredentials,
    /// The bearer credentials are malformed (400).
    #[error(transparent)]
    BadBearer(#[from] BearerExtractError),
    /// The JWT was judged and refused.
    #[error("the bearer token was rejected: {0}")]
    TokenRejected(#[source] ProviderError),
    /// The opaque token was refused by introspection.
    #[error("the bearer token was rejected by introspection: {0}")]
    IntrospectionRejected(#[source] IntrospectionError),
    /// The token is not a JWT and the provider offers no introspection (or no client is set).
    #[error("the bearer token is not a JWT and cannot be introspected")]
    OpaqueTokenUnsupported,
    /// `Authorization: DPoP` without exactly one well-formed `DPoP` proof header (400).
    #[error(transparent)]
    BadDpop(#[from] DpopExtractError),
    /// The DPoP proof failed a check of RFC 9449 (signature, method, URL, time, replay, key).
    #[error("the DPoP proof was rejected: {0}")]
    DpopRejected(#[source] DpopError),
    /// A token bound to a key (`cnf.jkt`) came as a plain bearer token, without its proof.
    #[error("a DPoP-bound token was sent as a bearer token")]
    DpopBoundTokenAsBearer,
    /// A token sent with the `DPoP` scheme is bound to no key.
    #[error("a token sent with a DPoP proof is not bound to a key")]
    DpopTokenNotBound,
    /// The URL the DPoP proof must name could not be told (malformed forwarded headers).
    #[error("the request's URL is unknown, so its DPoP proof cannot be checked")]
    DpopRequestUnknown,
    /// The token lacks required scopes (403 `insufficient_scope`).
    #[error("the bearer token lacks the scopes {missing:?}")]
    InsufficientScope {
        /// The required scopes it lacks.
        missing: Vec<String>,
        /// Every required scope, for the challenge.
        required: Vec<String>,
    },
    /// The provider could not be reached or is not ready (503).
    #[error("the OpenID Provider is unavailable ({kind})")]
    ProviderUnavailable {
        /// The underlying failure.
        kind: ErrorKind,
    },
    /// The session cookie does not open (tampered, sealed with a retired key, truncated).
    #[error("the session cookie is invalid: {0}")]
    SessionInvalid(#[source] Arc<CookieError>),
    /// The session cookie holds no usable handle.
    #[error("the session handle is invalid: {0}")]
    SessionHandleInvalid(#[source] HandleError),
    /// The session's lifetime is over.
    #[error("the session expired at {expired_at} (now {now})")]
    SessionExpired {
        /// When it ended.
        expired_at: UnixTime,
        /// The time of the check.
        now: UnixTime,
    },
    /// The session was ended by sign-out or back-channel logout.
    #[error("the session was revoked")]
    SessionRevoked,
    /// The provider refused to refresh the session's tokens (refresh token revoked or expired).
    #[error("the provider refused to refresh the session ({kind})")]
    RefreshRejected {
        /// Why it refused.
        kind: ErrorKind,
    },
    /// The server-side store holds a session this version cannot read (the cookie is cleared).
    #[error("the stored session cannot be read")]
    StoredSessionUnreadable,
    /// The session store could not answer (503; the session is kept).
    #[error("the session store is unavailable: {0}")]
    StoreUnavailable(#[source] Arc<StoreError>),
    /// Authenticated, but the authorization rules refuse (403).
    #[error("access denied: {0}")]
    Forbidden(#[source] Denied),
}

impl AuthFailure {
    /// Why a layer refused a request, read from its answer: the bearer layer, the login layer and
    /// forward-auth put the failure in the extensions of every refusal they send, so a middleware
    /// above them (logging, a custom error page) can branch on [`AuthFailure::kind`] instead of
    /// parsing the body. `None` for an answer that is not a refusal of one of the layers.
    ///
    /// ```
    /// # fn log_refusal<B>(response: &http::Response<B>) {
    /// use oidc_tower::auth::AuthFailure;
    /// if let Some(failure) = AuthFailure::from_response(response) {
    ///     eprintln!("refused: {} ({failure})", failure.code());
    /// }
    /// # }
    /// ```
    pub fn from_response<B>(response: &http::Response<B>) -> Option<&AuthFailure> {
        response.extensions().get::<AuthFailure>()
    }

    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthFailure::NoCredentials => ErrorKind::NoCredentials,
            AuthFailure::BadBearer(e) => e.kind(),
            AuthFailure::TokenRejected(e) => e.kind(),
            AuthFailure::IntrospectionRejected(e) => e.kind(),
            AuthFailure::OpaqueTokenUnsupported => ErrorKind::OpaqueTokenUnsupported,
            AuthFailure::BadDpop(e) => e.kind(),
            AuthFailure::DpopRejected(e) => e.kind(),
            AuthFailure::DpopBoundTokenAsBearer => ErrorKind::DpopBoundTokenSentAsBearer,
            AuthFailure::DpopTokenNotBound => ErrorKind::DpopTokenNotBound,
            AuthFailure::DpopRequestUnknown => ErrorKind::DpopRequestUrlUnknown,
            AuthFailure::InsufficientScope { .. } => ErrorKind::InsufficientScope,
            AuthFailure::ProviderUnavailable { kind } => *kind,
            AuthFailure::SessionInvalid(e) => e.kind(),
            AuthFailure::SessionHandleInvalid(e) => e.kind(),
            AuthFailure::SessionExpired { .. } => ErrorKind::SessionExpired,
            AuthFailure::SessionRevoked => ErrorKind::SessionRevoked,
            AuthFailure::RefreshRejected { .. } => ErrorKind::RefreshRejected,
            AuthFailure::StoredSessionUnreadable => ErrorKind::StoredSessionUnreadable,
            AuthFailure::StoreUnavailable(e) => e.kind(),
            AuthFailure::Forbidden(e) => e.kind(),
        }
    }

    /// A stable snake_case code for this failure.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Whether the session cookie the request carried is dead and should be cleared.
    pub fn session_is_gone(&self) -> bool {
        matches!(
            self,
            AuthFailure::SessionInvalid(_)
                | AuthFailure::SessionHandleInvalid(_)
                | AuthFailure::SessionExpired { .. }
                | AuthFailure::SessionRevoked
                | AuthFailure::RefreshRejected { .. }
                | AuthFailure::StoredSessionUnreadable
        )
    }

    /// Whether the failure is about a bearer token (answered with an RFC 6750 challenge).
    pub fn is_bearer_failure(&self) -> bool {
        matches!(
            self,
            AuthFailure::BadBearer(_)
                | AuthFailure::TokenRejected(_)
                | AuthFailure::IntrospectionRejected(_)
                | AuthFailure::OpaqueTokenUnsupported
                | AuthFailure::InsufficientScope { .. }
        ) || self.is_dpop_failure()
    }

    /// Whether the failure is about DPoP credentials (answered with a `DPoP` challenge).
    pub fn is_dpop_failure(&self) -> bool {
        matches!(
            self,
            AuthFailure::BadDpop(_)
                | AuthFailure::DpopRejected(_)
                | AuthFailure::DpopBoundTokenAsBearer
                | AuthFailure::DpopTokenNotBound
                | AuthFailure::DpopRequestUnknown
        )
    }

    /// Whether the request had no usable identity at all (a sign-in helps), as opposed to a
    /// refusal (403) or an outage (503).
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, AuthFailure::NoCredentials) || self.session_is_gone()
    }
}

/// The shared, cheaply cloned authentication state of the three front-ends: configuration,
/// provider handle, session storage, refresh single-flight, introspection cache, revocations.
///
/// Build it with [`AuthConfig::build`]; it fits in axum `State`.
#[derive(Clone)]
pub struct Authenticator {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: AuthConfig,
    /// The issuers whose bearer JWTs are accepted; the main one first.
    issuers: Vec<TrustedIssuer>,
    /// What an introspection answer must agree with: the main issuer, its audiences, and the
    /// clients whose tokens are meant for this service.
    introspection_policy: IntrospectionPolicy,
    pub(crate) login: Option<LoginParts>,
    pub(crate) vault: Option<SessionVault<Arc<dyn SessionStore>>>,
    refreshes: Mutex<HashMap<[u8; 32], RefreshSlot>>,
    introspections: moka::sync::Cache<Fingerprint, CachedPrincipal>,
    /// Validated JWTs by the token's fingerprint, each until its `exp` or the provider's
    /// cache age (whichever comes first): a hit skips validation and the claims conversion.
    jwt_principals: moka::sync::Cache<Fingerprint, CachedPrincipal>,
    /// Opened cookie sessions by the fingerprint of the request's `Cookie` headers, so that a
    /// browser's next requests skip the AEAD and JSON; revocation, expiry and refresh are still
    /// checked on every request.
    cookie_sessions: moka::sync::Cache<Fingerprint, CachedSession>,
    /// The key of the caches above.
    fingerprints: Fingerprints,
    /// The SHA-256 of each callback `state` already handled, until its pending login would have
    /// expired: a replayed callback is refused without sending its code to the provider again.
    /// Per process; across replicas the provider's refusal of a used code is the guard.
    completed_logins: moka::sync::Cache<[u8; 32], Duration>,
    revocations: Mutex<Revocations>,
    pub(crate) seen_jtis: Mutex<SeenJtis>,
    /// What a DPoP proof must satisfy, and the proofs' `jti`s seen within their window.
    pub(crate) dpop_policy: DpopPolicy,
    dpop_jtis: Mutex<SeenJtis>,
}

/// An issuer whose bearer JWTs are accepted: the provider holding its keys, and the policy the
/// tokens are judged by (the provider's, with every audience configured for that issuer).
struct TrustedIssuer {
    provider: Provider,
    policy: Policy,
}

/// The main issuer with the extra audiences, then each extra issuer; a second entry for an
/// issuer adds its audiences to the first.
fn trusted_issuers(config: &AuthConfig) -> Vec<TrustedIssuer> {
    let main = &config.provider;
    let mut issuers = vec![TrustedIssuer {
        provider: main.clone(),
        policy: main
            .policy()
            .with_audiences(config.extra_audiences.iter().cloned()),
    }];
    for extra in &config.extra_issuers {
        let audiences = extra.policy().audiences().iter().cloned();
        match issuers
            .iter_mut()
            .find(|trusted| trusted.provider.issuer() == extra.issuer())
        {
            Some(trusted) => trusted.policy = trusted.policy.with_audiences(audiences),
            None => issuers.push(TrustedIssuer {
                provider: extra.clone(),
                policy: extra.policy().clone(),
            }),
        }
    }
    issuers
}

/// Every client whose opaque tokens without `aud` are meant for this service: the login
/// client, the introspection client, the clients the rules admit and the accepted ones.
fn introspection_policy(config: &AuthConfig, main: &TrustedIssuer) -> IntrospectionPolicy {
    let mut policy = IntrospectionPolicy::new()
        .issuer(main.provider.issuer().as_str())
        .max_cache(config.introspection_cache);
    if main.policy.skips_audience() {
        return policy.insecure_skip_binding();
    }
    for audience in main.policy.audiences() {
        policy = policy.audience(audience.clone());
    }
    let own = [
        config
            .login
            .as_ref()
            .map(|login| login.credentials.client_id()),
        config
            .introspection_client
            .as_ref()
            .map(ClientCredentials::client_id),
    ];
    let clients = own
        .into_iter()
        .flatten()
        .chain(config.rules.allowed_clients.iter().map(String::as_str))
        .chain(config.accepted_clients.iter().map(String::as_str));
    for client in clients {
        policy = policy.client(client);
    }
    policy
}

/// The parts of the configuration only sign-in needs, checked at build time.
pub(crate) struct LoginParts {
    pub(crate) settings: LoginSettings,
    pub(crate) login_config: LoginConfig,
    pub(crate) id_policy: Policy,
    pub(crate) logout_validator: LogoutTokenValidator,
    pub(crate) keys: CookieKeys,
    pub(crate) session_codec: CookieCodec,
    /// The pending-login cookie name prefix as browsers see it, ending in `_`.
    pub(crate) pending_prefix: String,
    pub(crate) own_cookies: CookiePrefixes,
}

type RefreshOutcome = Result<Arc<Session>, RefreshFailure>;

struct RefreshSlot {
    started: Instant,
    cell: Arc<OnceCell<RefreshOutcome>>,
}

#[derive(Clone, Copy, Debug)]
enum RefreshFailure {
    /// The provider refused: the session is over.
    Rejected(ErrorKind),
    /// The provider could not be asked: keep the session as it is.
    Unavailable(ErrorKind),
}

#[derive(Clone)]
struct CachedPrincipal {
    principal: Arc<BearerPrincipal>,
    ttl: Duration,
}

struct PrincipalExpiry;

impl moka::Expiry<Fingerprint, CachedPrincipal> for PrincipalExpiry {
    fn expire_after_create(
        &self,
        _key: &Fingerprint,
        value: &CachedPrincipal,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

struct CompletedLoginExpiry;

impl moka::Expiry<[u8; 32], Duration> for CompletedLoginExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        remaining: &Duration,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(*remaining)
    }
}

/// A cookie session that opened and passed the rules, with what the request is told.
#[derive(Clone)]
struct CachedSession {
    opened: Arc<OpenedSession>,
    ttl: Duration,
}

struct OpenedSession {
    id: String,
    session: Session,
    authenticated: Authenticated,
}

struct SessionExpiry;

impl moka::Expiry<Fingerprint, CachedSession> for SessionExpiry {
    fn expire_after_create(
        &self,
        _key: &Fingerprint,
        value: &CachedSession,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// What a request carrying `token` is told, from the token's admitted principal.
fn authenticated_by(
    principal: &BearerPrincipal,
    identity: Identity,
    token: Secret,
) -> Authenticated {
    Authenticated {
        identity: identity.with_access_token(token),
        source: principal.source,
        claims: Arc::clone(&principal.claims),
        scopes: principal.scopes.clone(),
    }
}

/// Whether the request's `Authorization` names the `DPoP` scheme (RFC 9449 §7.1).
fn is_dpop_scheme(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().get(..5))
        .is_some_and(|start| start.eq_ignore_ascii_case(b"dpop "))
}

/// Whether a token has the shape of a compact JWS (three parts, so exactly two dots); anything
/// else is an opaque token for introspection.
fn is_compact_jws(token: &str) -> bool {
    memchr::memchr_iter(b'.', token.as_bytes()).take(3).count() == 2
}

/// What a validated bearer token says, shared by every request carrying the same token while
/// it is cached.
struct BearerPrincipal {
    claims: Arc<Map<String, Value>>,
    scopes: Vec<String>,
    source: AuthSource,
    /// For a JWT: the accepted issuer (index) and the `kid` of the key that verified it, so
    /// that a key the provider withdraws stops vouching for cached tokens at once.
    signed_by: Option<(usize, String)>,
    /// The key thumbprint the token is bound to (`cnf.jkt`, RFC 9449): such a token is
    /// accepted only with a DPoP proof by that key.
    bound_jkt: Option<String>,
    /// The identity (without the access token) once the scopes and rules let the token in:
    /// the configuration is fixed, so the first positive answer holds for the cached lifetime.
    admitted: OnceLock<Identity>,
}

impl BearerPrincipal {
    fn new(claims: Map<String, Value>, source: AuthSource) -> BearerPrincipal {
        let scopes = scopes_of(&claims);
        let bound_jkt = bound_key_thumbprint(&claims).map(str::to_owned);
        BearerPrincipal {
            claims: Arc::new(claims),
            scopes,
            source,
            signed_by: None,
            bound_jkt,
            admitted: OnceLock::new(),
        }
    }
}

/// The sealed content of a session cookie when sessions live in cookies: a random id (for
/// sign-out of this very session) and the session.
#[derive(Serialize, Deserialize)]
pub(crate) struct CookieSession {
    #[serde(rename = "i")]
    pub(crate) id: String,
    #[serde(rename = "s")]
    pub(crate) session: Session,
}

/// A session read from a request, and where it lives.
pub(crate) struct LoadedSession {
    pub(crate) session: Session,
    pub(crate) origin: SessionOrigin,
}

pub(crate) enum SessionOrigin {
    Cookie { id: String },
    Server { handle: SessionHandle },
}

impl Authenticator {
    pub(crate) fn from_config(config: AuthConfig) -> Result<Authenticator, AuthConfigError> {
        let prefix = &config.prefix;
        if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.len() < 2 {
            return Err(AuthConfigError::InvalidPrefix {
                prefix: prefix.clone(),
            });
        }
        let login = match &config.login {
            None => None,
            Some(settings) => Some(LoginParts::new(&config, settings.clone())?),
        };
        let vault = config.session_store.clone().map(SessionVault::new);
        let introspections = moka::sync::Cache::builder()
            .max_capacity(INTROSPECTION_CACHE_CAPACITY)
            .expire_after(PrincipalExpiry)
            .build();
        let cookie_sessions = moka::sync::Cache::builder()
            .max_capacity(SESSION_CACHE_CAPACITY)
            .expire_after(SessionExpiry)
            .build();
        let jwt_principals = moka::sync::Cache::builder()
            .max_capacity(config.provider.token_cache_capacity())
            .expire_after(PrincipalExpiry)
            .build();
        let completed_logins = moka::sync::Cache::builder()
            .max_capacity(COMPLETED_LOGIN_CAPACITY)
            .expire_after(CompletedLoginExpiry)
            .build();
        let issuers = trusted_issuers(&config);
        let introspection_policy = introspection_policy(&config, &issuers[0]);
        Ok(Authenticator {
            inner: Arc::new(Inner {
                issuers,
                introspection_policy,
                config,
                login,
                vault,
                refreshes: Mutex::new(HashMap::new()),
                introspections,
                jwt_principals,
                cookie_sessions,
                fingerprints: Fingerprints::new(),
                completed_logins,
                revocations: Mutex::new(Revocations::default()),
                seen_jtis: Mutex::new(SeenJtis::default()),
                dpop_policy: DpopPolicy::new(),
                dpop_jtis: Mutex::new(SeenJtis::default()),
            }),
        })
    }

    /// The provider handle.
    pub fn provider(&self) -> &Provider {
        &self.inner.config.provider
    }

    /// The metrics decisions are recorded into.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.config.metrics
    }

    /// Marks the login with `state` as handled until `remaining` has passed; `false` when its
    /// callback was already handled (a replay).
    pub(crate) fn complete_login_once(&self, state: &str, remaining: Duration) -> bool {
        let entry = self
            .inner
            .completed_logins
            .entry(sha256(state.as_bytes()))
            .or_insert(remaining);
        entry.is_fresh()
    }

    /// The endpoint prefix (e.g. `/oauth2`).
    pub fn prefix(&self) -> &str {
        &self.inner.config.prefix
    }

    /// Whether sign-in is configured (the login layer and forward-auth need it).
    pub fn has_login(&self) -> bool {
        self.inner.login.is_some()
    }

    pub(crate) fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    pub(crate) fn login_parts(&self) -> Option<&LoginParts> {
        self.inner.login.as_ref()
    }

    /// Authenticates a request from its headers: a bearer token when present (always for
    /// `bearer_only`, otherwise when bearer tokens are accepted), else the session cookie.
    /// `query` is the raw query string, checked for `access_token` (refused) in bearer mode.
    ///
    /// Without the request's method and URL, a DPoP-bound token (RFC 9449) cannot be checked:
    /// [`Self::authenticate_request`] takes them, and the layers use it.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        bearer_only: bool,
    ) -> Result<Authentication, AuthFailure> {
        self.authenticate_request(&http::Method::GET, || None, headers, query, bearer_only)
            .await
    }

    /// [`Self::authenticate`] that also takes `Authorization: DPoP` tokens with their proof,
    /// which must name `method` and the URL the client addressed (`url`, asked for only when
    /// a DPoP proof came).
    pub async fn authenticate_request(
        &self,
        method: &http::Method,
        url: impl FnOnce() -> Option<url::Url>,
        headers: &HeaderMap,
        query: Option<&str>,
        bearer_only: bool,
    ) -> Result<Authentication, AuthFailure> {
        let accept_bearer = bearer_only || self.inner.config.accept_bearer;
        if accept_bearer
            && is_dpop_scheme(headers)
            && let Some(credentials) = extract_dpop(headers)?
        {
            let authenticated = self.authenticate_dpop(credentials, method, url()).await?;
            return Ok(Authentication {
                authenticated,
                set_cookies: Vec::new(),
            });
        }
        if accept_bearer {
            let query = if bearer_only { query } else { None };
            // A token validated and admitted before skips extraction's alphabet check and copy:
            // its fingerprint names the very bytes that passed them.
            if query.is_none()
                && let Some(token) = unchecked_bearer(headers)
                && let Some(authenticated) = self.cached_bearer(token)
            {
                return Ok(Authentication {
                    authenticated,
                    set_cookies: Vec::new(),
                });
            }
            if let Some(token) = extract_bearer(headers, query, QueryTokens::Refuse)? {
                let authenticated = self.authenticate_owned_bearer(token).await?;
                return Ok(Authentication {
                    authenticated,
                    set_cookies: Vec::new(),
                });
            }
        }
        if bearer_only || self.inner.login.is_none() {
            return Err(AuthFailure::NoCredentials);
        }
        self.authenticate_session(headers).await
    }

    /// Validates a bearer token: a JWT with the provider's keys, anything else by
    /// introspection; then the required scopes and the authorization rules.
    pub async fn authenticate_bearer(
        &self,
        token: &BearerToken,
    ) -> Result<Authenticated, AuthFailure> {
        self.authenticate_owned_bearer(token.clone()).await
    }

    /// [`Self::authenticate_bearer`] keeping the token itself in the identity, uncopied.
    async fn authenticate_owned_bearer(
        &self,
        token: BearerToken,
    ) -> Result<Authenticated, AuthFailure> {
        let principal = self.principal_of(&token).await?;
        if principal.bound_jkt.is_some() {
            return Err(AuthFailure::DpopBoundTokenAsBearer);
        }
        let identity = self.admitted_identity(&principal)?;
        Ok(authenticated_by(&principal, identity, token.into_secret()))
    }

    /// A JWT validated with the keys of its issuer, anything else by introspection.
    async fn principal_of(&self, token: &BearerToken) -> Result<Arc<BearerPrincipal>, AuthFailure> {
        if is_compact_jws(token.expose()) {
            self.validate_jwt(token.expose()).await
        } else {
            self.introspect(token).await
        }
    }

    /// The identity of an admitted principal: decided once per cached principal.
    fn admitted_identity(&self, principal: &BearerPrincipal) -> Result<Identity, AuthFailure> {
        match principal.admitted.get() {
            Some(identity) => Ok(identity.clone()),
            None => {
                let identity = self.admit(principal)?;
                Ok(principal.admitted.get_or_init(|| identity).clone())
            }
        }
    }

    /// A DPoP-bound token (RFC 9449): validated as any bearer token, then its proof checked
    /// against the request and the key the token is bound to.
    async fn authenticate_dpop(
        &self,
        credentials: DpopCredentials,
        method: &http::Method,
        url: Option<url::Url>,
    ) -> Result<Authenticated, AuthFailure> {
        let DpopCredentials { token, proof } = credentials;
        let principal = self.principal_of(&token).await?;
        let bound = principal
            .bound_jkt
            .as_deref()
            .ok_or(AuthFailure::DpopTokenNotBound)?;
        let url = url.ok_or(AuthFailure::DpopRequestUnknown)?;
        let request = DpopRequest {
            method: method.as_str(),
            uri: &url,
            access_token: Some(token.expose()),
            bound_jkt: Some(bound),
        };
        verify_proof(
            &proof,
            &request,
            &self.inner.dpop_policy,
            &mut lock(&self.inner.dpop_jtis),
            now(),
        )
        .map_err(AuthFailure::DpopRejected)?;
        let identity = self.admitted_identity(&principal)?;
        Ok(authenticated_by(&principal, identity, token.into_secret()))
    }

    /// The request's identity when `token` is a JWT in the cache that was admitted before (and
    /// is not bound to a key, which needs its proof).
    fn cached_bearer(&self, token: &str) -> Option<Authenticated> {
        let fingerprint = self.inner.fingerprints.of(token.as_bytes())?;
        let principal = self.cached_jwt(&fingerprint)?;
        if principal.bound_jkt.is_some() {
            return None;
        }
        let identity = principal.admitted.get()?.clone();
        Some(authenticated_by(&principal, identity, Secret::new(token)))
    }

    /// A cached JWT principal whose key its issuer still publishes; an entry whose key was
    /// withdrawn is dropped.
    fn cached_jwt(&self, fingerprint: &Fingerprint) -> Option<Arc<BearerPrincipal>> {
        let principal = self.inner.jwt_principals.get(fingerprint)?.principal;
        if let Some((issuer, kid)) = &principal.signed_by
            && !self
                .inner
                .issuers
                .get(*issuer)
                .is_some_and(|trusted| trusted.provider.holds_kid(kid))
        {
            self.inner.jwt_principals.invalidate(fingerprint);
            return None;
        }
        Some(principal)
    }

    /// The required scopes and the authorization rules, then the identity the claims name
    /// (without the access token).
    fn admit(&self, principal: &BearerPrincipal) -> Result<Identity, AuthFailure> {
        let required = &self.inner.config.required_scopes;
        let missing: Vec<String> = required
            .iter()
            .filter(|scope| !principal.scopes.contains(scope))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(AuthFailure::InsufficientScope {
                missing,
                required: required.clone(),
            });
        }
        let claims = &principal.claims;
        let groups_claim = &self.inner.config.groups_claim;
        let rules = &self.inner.config.rules;
        let names = &rules.identity_claims;
        let view = oidc_core::Identity::from_claims_named(claims, groups_claim, names);
        rules.evaluate(&view).map_err(AuthFailure::Forbidden)?;
        // A machine identity (a listed client's token) is named by its client, as is a token
        // that names no user.
        let user = match (view.client_id, names.user_id(claims)) {
            (Some(client), _) if rules.admits_client(&view) => client.to_owned(),
            (_, Some(user)) => user,
            (Some(client), None) => client.to_owned(),
            (None, None) => String::new(),
        };
        let groups = groups_from_claims(claims, groups_claim);
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let mut identity = Identity::new(user).with_groups(groups);
        if let Some(email) = names.email(claims) {
            identity = identity.with_email(email);
        }
        if let Some(name) = text("preferred_username").or_else(|| text("username")) {
            identity = identity.with_preferred_username(name);
        }
        Ok(identity)
    }

    async fn validate_jwt(&self, token: &str) -> Result<Arc<BearerPrincipal>, AuthFailure> {
        let fingerprint = self.inner.fingerprints.of(token.as_bytes());
        if let Some(hit) = fingerprint.and_then(|key| self.cached_jwt(&key)) {
            return Ok(hit);
        }
        let (issuer, trusted) = self.issuer_of(token);
        let validated = trusted
            .provider
            .validate_uncached_with(token, &trusted.policy)
            .await
            .map_err(|error| {
                if error.is_rejection() {
                    AuthFailure::TokenRejected(error)
                } else {
                    self.inner
                        .config
                        .metrics
                        .record_provider_error(error.code());
                    AuthFailure::ProviderUnavailable { kind: error.kind() }
                }
            })?;
        let mut principal =
            BearerPrincipal::new(claims_map(&validated.claims), AuthSource::BearerJwt);
        principal.signed_by = validated.header.kid.clone().map(|kid| (issuer, kid));
        let principal = Arc::new(principal);
        if let (Some(ttl), Some(fingerprint)) =
            (trusted.provider.token_cache_ttl(&validated), fingerprint)
        {
            self.inner.jwt_principals.insert(
                fingerprint,
                CachedPrincipal {
                    principal: Arc::clone(&principal),
                    ttl,
                },
            );
        }
        Ok(principal)
    }

    /// The accepted issuer (and its index) a JWT's (unverified) `iss` names; the main one when
    /// there is only one, or when it names none (validation then refuses it as `wrong_issuer`).
    fn issuer_of(&self, token: &str) -> (usize, &TrustedIssuer) {
        let issuers = &self.inner.issuers;
        if issuers.len() > 1
            && let Ok(unverified) = decode_unverified(token)
            && let Some(iss) = unverified.claims.get("iss").and_then(Value::as_str)
        {
            let tid = unverified.claims.get("tid").and_then(Value::as_str);
            if let Some(found) = issuers
                .iter()
                .enumerate()
                .find(|(_, trusted)| trusted.provider.is_issuer_of(iss, tid))
            {
                return found;
            }
        }
        (0, &issuers[0])
    }

    async fn introspect(&self, token: &BearerToken) -> Result<Arc<BearerPrincipal>, AuthFailure> {
        let fingerprint = self.inner.fingerprints.of(token.expose().as_bytes());
        let metrics = &self.inner.config.metrics;
        if let Some(hit) = fingerprint.and_then(|key| self.inner.introspections.get(&key)) {
            metrics.record_token_cache_hit();
            return Ok(hit.principal);
        }
        metrics.record_token_cache_miss();
        let credentials = self
            .introspection_credentials()
            .ok_or(AuthFailure::OpaqueTokenUnsupported)?;
        let metadata = self
            .provider()
            .metadata()
            .ok_or(AuthFailure::ProviderUnavailable {
                kind: ErrorKind::ProviderNotReady,
            })?;
        let endpoint = metadata
            .introspection_endpoint
            .as_ref()
            .ok_or(AuthFailure::OpaqueTokenUnsupported)?;
        let now = now();
        let request = introspection_request(
            endpoint,
            credentials,
            &Secret::new(token.expose()),
            Some(TokenTypeHint::AccessToken),
            now,
            &mut SystemRandom,
        )
        .map_err(AuthFailure::IntrospectionRejected)?;
        let response = self
            .inner
            .config
            .http
            .execute(request)
            .await
            .map_err(|e| self.provider_unavailable(&e))?;
        let policy = &self.inner.introspection_policy;
        let introspected = match parse_introspection(&response, policy, now) {
            Ok(introspected) => introspected,
            Err(IntrospectionError::Response(error)) => {
                tracing::warn!(code = error.code(), "introspection answer unusable");
                self.inner
                    .config
                    .metrics
                    .record_provider_error(error.code());
                return Err(AuthFailure::ProviderUnavailable {
                    kind: ErrorKind::IntrospectionUnavailable,
                });
            }
            Err(error) => return Err(AuthFailure::IntrospectionRejected(error)),
        };
        let claims = introspected.claims;
        let mut map = claims.extra.clone();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(name.to_owned(), value);
            }
        };
        put("sub", claims.sub.clone().map(Value::String));
        put("iss", claims.iss.clone().map(Value::String));
        put("scope", claims.scope.clone().map(Value::String));
        put("client_id", claims.client_id.clone().map(Value::String));
        put("username", claims.username.clone().map(Value::String));
        put("exp", claims.exp.map(|t| Value::from(t.as_secs())));
        if !claims.aud.is_empty() {
            put("aud", Some(Value::from(claims.aud.clone())));
        }
        let principal = Arc::new(BearerPrincipal::new(map, AuthSource::BearerIntrospected));
        let ttl = introspected.cache_until.duration_since(now);
        if let (false, Some(fingerprint)) = (ttl.is_zero(), fingerprint) {
            self.inner.introspections.insert(
                fingerprint,
                CachedPrincipal {
                    principal: principal.clone(),
                    ttl,
                },
            );
        }
        Ok(principal)
    }

    /// The client opaque tokens are introspected as: the configured introspection client, else
    /// the login client.
    fn introspection_credentials(&self) -> Option<&ClientCredentials> {
        let config = &self.inner.config;
        config
            .introspection_client
            .as_ref()
            .or_else(|| config.login.as_ref().map(|login| &login.credentials))
    }

    /// Authenticates by the session cookie, refreshing the session when it is due.
    async fn authenticate_session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Authentication, AuthFailure> {
        let now = now();
        let margin = self.inner.config.refresh_margin;
        let digest = if self.inner.vault.is_none() {
            self.inner
                .fingerprints
                .of_header_values(headers.get_all(http::header::COOKIE))
        } else {
            None
        };
        if let Some(hit) = digest.and_then(|digest| self.inner.cookie_sessions.get(&digest)) {
            let opened = &hit.opened;
            if !opened.session.is_expired(now) && !opened.session.refresh_due(now, margin) {
                if self.locally_revoked(&opened.id, &opened.session) {
                    return Err(AuthFailure::SessionRevoked);
                }
                return Ok(Authentication {
                    authenticated: opened.authenticated.clone(),
                    set_cookies: Vec::new(),
                });
            }
        }
        let cookies = RequestCookies::from_headers(headers);
        let loaded = self
            .load_session(&cookies, now)
            .await?
            .ok_or(AuthFailure::NoCredentials)?;
        let cookie_id = match (&digest, &loaded.origin) {
            (Some(_), SessionOrigin::Cookie { id }) => Some(id.clone()),
            _ => None,
        };
        let mut refreshed_session: Option<Arc<Session>> = None;
        let mut set_cookies = Vec::new();
        if loaded
            .session
            .refresh_due(now, self.inner.config.refresh_margin)
        {
            match self.refresh_once(&loaded).await {
                Ok(refreshed) => {
                    let refreshed_loaded = LoadedSession {
                        session: (*refreshed).clone(),
                        origin: loaded.origin,
                    };
                    refreshed_session = Some(refreshed);
                    set_cookies = self
                        .session_cookies(&refreshed_loaded, &cookies, now)
                        .unwrap_or_else(|error| {
                            tracing::warn!(
                                code = error.code(),
                                "refreshed session could not be sealed"
                            );
                            Vec::new()
                        });
                }
                Err(RefreshFailure::Rejected(kind)) => {
                    tracing::info!(
                        code = kind.code(),
                        "session refresh refused by the provider: signing out"
                    );
                    return Err(AuthFailure::RefreshRejected { kind });
                }
                Err(RefreshFailure::Unavailable(kind)) => {
                    tracing::warn!(
                        code = kind.code(),
                        "session refresh failed: keeping the current tokens"
                    );
                }
            }
        }
        let session: &Session = refreshed_session.as_deref().unwrap_or(&loaded.session);
        self.inner
            .config
            .rules
            .evaluate(&session.identity())
            .map_err(AuthFailure::Forbidden)?;
        let authenticated = session_authenticated(session);
        if let (None, Some(digest), Some(id)) = (&refreshed_session, digest, cookie_id) {
            let ttl = loaded
                .session
                .expires_at
                .duration_since(now)
                .min(SESSION_CACHE_MAX_AGE);
            if !ttl.is_zero() {
                let opened = OpenedSession {
                    id,
                    session: loaded.session,
                    authenticated: authenticated.clone(),
                };
                self.inner.cookie_sessions.insert(
                    digest,
                    CachedSession {
                        opened: Arc::new(opened),
                        ttl,
                    },
                );
            }
        }
        Ok(Authentication {
            authenticated,
            set_cookies,
        })
    }

    /// Reads and checks the session the request's cookies carry. `Ok(None)`: no session cookie.
    pub(crate) async fn load_session(
        &self,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Option<LoadedSession>, AuthFailure> {
        let Some(login) = &self.inner.login else {
            return Ok(None);
        };
        let codec = &login.session_codec;
        let loaded = match &self.inner.vault {
            None => {
                let Some(sealed) = codec
                    .decode::<CookieSession>(cookies, now)
                    .map_err(|e| AuthFailure::SessionInvalid(Arc::new(e)))?
                else {
                    return Ok(None);
                };
                if self.locally_revoked(&sealed.id, &sealed.session) {
                    return Err(AuthFailure::SessionRevoked);
                }
                LoadedSession {
                    session: sealed.session,
                    origin: SessionOrigin::Cookie { id: sealed.id },
                }
            }
            Some(vault) => {
                let Some(value) = codec
                    .decode::<String>(cookies, now)
                    .map_err(|e| AuthFailure::SessionInvalid(Arc::new(e)))?
                else {
                    return Ok(None);
                };
                let handle = SessionHandle::from_cookie_value(&value)
                    .map_err(AuthFailure::SessionHandleInvalid)?;
                let stored = match vault.load(&handle).await {
                    Ok(Some(stored)) => stored,
                    Ok(None) => return Err(AuthFailure::SessionRevoked),
                    Err(error) if error.is_unavailable() => {
                        return Err(AuthFailure::StoreUnavailable(Arc::new(error)));
                    }
                    Err(error) => {
                        tracing::warn!(code = error.code(), "stored session unusable");
                        return Err(AuthFailure::SessionRevoked);
                    }
                };
                let session: Session = serde_json::from_slice(&stored).map_err(|_| {
                    tracing::warn!(
                        code = "stored_session_unreadable",
                        "stored session unusable"
                    );
                    AuthFailure::StoredSessionUnreadable
                })?;
                LoadedSession {
                    session,
                    origin: SessionOrigin::Server { handle },
                }
            }
        };
        if loaded.session.is_expired(now) {
            return Err(AuthFailure::SessionExpired {
                expired_at: loaded.session.expires_at,
                now,
            });
        }
        Ok(Some(loaded))
    }

    /// The `Set-Cookie` values that carry `loaded` (sealed session, or its handle after saving
    /// it in the store is the caller's business), clearing stale chunks.
    pub(crate) fn session_cookies(
        &self,
        loaded: &LoadedSession,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Vec<HeaderValue>, CookieError> {
        let Some(login) = &self.inner.login else {
            return Ok(Vec::new());
        };
        let expires_at = loaded.session.expires_at;
        match &loaded.origin {
            SessionOrigin::Cookie { id } => {
                #[derive(Serialize)]
                struct Borrowed<'a> {
                    i: &'a str,
                    s: &'a Session,
                }
                login.session_codec.encode(
                    &Borrowed {
                        i: id,
                        s: &loaded.session,
                    },
                    expires_at,
                    now,
                    &mut SystemRandom,
                    cookies,
                )
            }
            SessionOrigin::Server { handle } => login.session_codec.encode(
                &handle.to_cookie_value(),
                expires_at,
                now,
                &mut SystemRandom,
                cookies,
            ),
        }
    }

    /// Stores a brand-new session (a fresh id or handle, never one from the request) and
    /// returns it with the cookies that carry it.
    pub(crate) async fn create_session(
        &self,
        session: Session,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<(LoadedSession, Vec<HeaderValue>), CreateSessionError> {
        let origin = match &self.inner.vault {
            None => SessionOrigin::Cookie {
                id: random_url_safe(&mut SystemRandom, 16),
            },
            Some(vault) => {
                let json = serde_json::to_vec(&session).map_err(|_| CreateSessionError::Encode)?;
                let ttl = session.expires_at.duration_since(now);
                let handle = vault
                    .create(&mut SystemRandom, &json, &session_tags(&session), ttl)
                    .await
                    .map_err(|e| CreateSessionError::Store(Arc::new(e)))?;
                SessionOrigin::Server { handle }
            }
        };
        let loaded = LoadedSession { session, origin };
        let set_cookies = self
            .session_cookies(&loaded, cookies, now)
            .map_err(|e| CreateSessionError::Cookie(Arc::new(e)))?;
        Ok((loaded, set_cookies))
    }

    /// Ends `loaded` everywhere this process can reach: in the shared store, or (cookie
    /// sessions) in this process's revocation list.
    pub(crate) async fn end_session(&self, loaded: &LoadedSession) -> Result<(), StoreError> {
        match (&loaded.origin, &self.inner.vault) {
            (SessionOrigin::Server { handle }, Some(vault)) => vault.delete(handle).await,
            (SessionOrigin::Cookie { id }, _) => {
                let forget_at = loaded.session.expires_at;
                self.revoke_locally(StoreKey::for_session_id(id.as_bytes()), now(), forget_at);
                Ok(())
            }
            (SessionOrigin::Server { .. }, None) => Ok(()),
        }
    }

    /// Ends every session of the provider session `sid` (or, without one, of `sub`) at our
    /// issuer: back-channel logout. Returns how many stored sessions were removed (cookie
    /// sessions are revoked in this process and counted as zero).
    pub(crate) async fn revoke(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let issuer = self.provider().issuer().as_str().to_owned();
        let now = now();
        let forget_at = now.saturating_add(self.inner.config.session_lifetime);
        match &self.inner.vault {
            Some(vault) => match (sid, sub) {
                (Some(sid), _) => vault.revoke_provider_session(&issuer, sid).await,
                (None, Some(sub)) => vault.revoke_subject(&issuer, sub).await,
                (None, None) => Ok(0),
            },
            None => {
                if let Some(sid) = sid {
                    self.revoke_locally(
                        StoreKey::for_provider_session(&issuer, sid),
                        now,
                        forget_at,
                    );
                } else if let Some(sub) = sub {
                    self.revoke_locally(StoreKey::for_subject(&issuer, sub), now, forget_at);
                }
                Ok(0)
            }
        }
    }

    fn revoke_locally(&self, key: StoreKey, now: UnixTime, forget_at: UnixTime) {
        lock(&self.inner.revocations).revoke(key, now, forget_at);
    }

    fn locally_revoked(&self, id: &str, session: &Session) -> bool {
        let revocations = lock(&self.inner.revocations);
        if revocations.is_empty() {
            return false;
        }
        let mut keys = vec![
            StoreKey::for_session_id(id.as_bytes()),
            StoreKey::for_subject(&session.issuer, &session.subject),
        ];
        if let Some(sid) = &session.sid {
            keys.push(StoreKey::for_provider_session(&session.issuer, sid));
        }
        keys.iter()
            .any(|key| revocations.revoked_since(key, session.created_at))
    }

    /// Refreshes `loaded` once for every request that carries it at the same time: the first
    /// caller asks the provider, the others wait for its answer.
    async fn refresh_once(&self, loaded: &LoadedSession) -> RefreshOutcome {
        let Some(refresh_token) = &loaded.session.refresh_token else {
            return Err(RefreshFailure::Rejected(ErrorKind::NoRefreshToken));
        };
        let key = sha256(refresh_token.expose().as_bytes());
        let cell = {
            let mut slots = lock(&self.inner.refreshes);
            slots.retain(|_, slot| slot.started.elapsed() < REFRESH_MEMORY);
            slots
                .entry(key)
                .or_insert_with(|| RefreshSlot {
                    started: Instant::now(),
                    cell: Arc::new(OnceCell::new()),
                })
                .cell
                .clone()
        };
        cell.get_or_init(|| self.refresh(loaded)).await.clone()
    }

    /// Refreshes a session once: per process (the caller's single flight) and, for sessions in
    /// a shared store, across replicas: the replica holding the store's refresh lock asks the
    /// provider; the others wait for the session it saves. A holder that dies frees the lock
    /// after [`REFRESH_LOCK_TTL`].
    async fn refresh(&self, loaded: &LoadedSession) -> RefreshOutcome {
        let (SessionOrigin::Server { handle }, Some(vault)) = (&loaded.origin, &self.inner.vault)
        else {
            return self.refresh_at_provider(loaded).await;
        };
        let deadline = Instant::now() + REFRESH_LOCK_TTL + REFRESH_LOCK_POLL;
        loop {
            let locked = vault
                .try_lock_refresh(&mut SystemRandom, handle, REFRESH_LOCK_TTL)
                .await
                .map_err(|e| RefreshFailure::Unavailable(e.kind()))?;
            if let Some(token) = locked {
                // Another replica may have refreshed it between our read and the lock.
                let outcome = match self.refreshed_elsewhere(handle, loaded).await {
                    Ok(Some(stored)) => Ok(stored),
                    Ok(None) => self.refresh_at_provider(loaded).await,
                    Err(failure) => Err(failure),
                };
                if let Err(error) = vault.unlock_refresh(handle, &token).await {
                    tracing::warn!(code = error.code(), "refresh lock not released; it expires");
                }
                return outcome;
            }
            tokio::time::sleep(REFRESH_LOCK_POLL).await;
            if let Some(stored) = self.refreshed_elsewhere(handle, loaded).await? {
                return Ok(stored);
            }
            if Instant::now() >= deadline {
                return Err(RefreshFailure::Unavailable(ErrorKind::RefreshLockTimeout));
            }
        }
    }

    /// The stored session when another replica has refreshed it since `loaded` was read; `None`
    /// while it still holds the tokens `loaded` has; refused when it was removed (signed out).
    async fn refreshed_elsewhere(
        &self,
        handle: &SessionHandle,
        loaded: &LoadedSession,
    ) -> Result<Option<Arc<Session>>, RefreshFailure> {
        match self.stored_session(handle).await? {
            Some(stored) if !same_tokens(&stored, &loaded.session) => Ok(Some(Arc::new(stored))),
            Some(_) => Ok(None),
            None => Err(RefreshFailure::Rejected(ErrorKind::SessionRevoked)),
        }
    }

    /// The session as the shared store holds it now.
    async fn stored_session(
        &self,
        handle: &SessionHandle,
    ) -> Result<Option<Session>, RefreshFailure> {
        let Some(vault) = &self.inner.vault else {
            return Ok(None);
        };
        let stored = vault
            .load(handle)
            .await
            .map_err(|e| RefreshFailure::Unavailable(e.kind()))?;
        stored
            .map(|json| serde_json::from_slice::<Session>(&json))
            .transpose()
            .map_err(|_| RefreshFailure::Unavailable(ErrorKind::StoredSessionUnreadable))
    }

    /// Asks the provider for fresh tokens and, for a stored session, saves the result.
    async fn refresh_at_provider(&self, loaded: &LoadedSession) -> RefreshOutcome {
        let login = self
            .inner
            .login
            .as_ref()
            .ok_or(RefreshFailure::Rejected(ErrorKind::LoginNotConfigured))?;
        let session = &loaded.session;
        let refresh_token = session
            .refresh_token
            .as_ref()
            .ok_or(RefreshFailure::Rejected(ErrorKind::NoRefreshToken))?;
        let metadata = self
            .provider()
            .metadata()
            .ok_or(RefreshFailure::Unavailable(ErrorKind::ProviderNotReady))?;
        let token_endpoint = metadata
            .token_endpoint
            .as_ref()
            .ok_or(RefreshFailure::Unavailable(ErrorKind::NoTokenEndpoint))?;
        let now = now();
        let request = refresh_request(
            token_endpoint,
            &login.settings.credentials,
            refresh_token,
            None,
            login.login_config.resources(),
            now,
            &mut SystemRandom,
        )
        .map_err(|e| RefreshFailure::Rejected(e.kind()))?;
        tracing::debug!("refreshing a session's tokens");
        let response = self.inner.config.http.execute(request).await.map_err(|e| {
            self.inner.config.metrics.record_provider_error(e.code());
            RefreshFailure::Unavailable(e.kind())
        })?;
        let tokens = parse_token_response(&response).map_err(|e| match e {
            TokenError::Provider { .. } => RefreshFailure::Rejected(e.kind()),
            other => {
                self.inner
                    .config
                    .metrics
                    .record_provider_error(other.code());
                RefreshFailure::Unavailable(other.kind())
            }
        })?;
        let refreshed = self
            .with_fresh_keys(|keys| {
                finish_refresh(session, tokens.clone(), keys, &login.id_policy, now)
            })
            .await
            .map_err(|e| {
                if e.is_outage() {
                    RefreshFailure::Unavailable(e.kind())
                } else {
                    RefreshFailure::Rejected(e.kind())
                }
            })?;
        let mut updated = session.clone();
        updated.apply_refresh(refreshed);
        if let (SessionOrigin::Server { handle }, Some(vault)) = (&loaded.origin, &self.inner.vault)
        {
            let json = serde_json::to_vec(&updated)
                .map_err(|_| RefreshFailure::Unavailable(ErrorKind::SessionEncode))?;
            let ttl = updated.expires_at.duration_since(now);
            vault
                .save(
                    &mut SystemRandom,
                    handle,
                    &json,
                    &session_tags(&updated),
                    ttl,
                )
                .await
                .map_err(|e| RefreshFailure::Unavailable(e.kind()))?;
        }
        Ok(Arc::new(updated))
    }

    /// Runs a check that needs the provider's keys; when it fails on an unknown `kid`, asks the
    /// provider for keys holding it (rate-limited, single-flight) and runs it once more.
    pub(crate) async fn with_fresh_keys<T>(
        &self,
        check: impl Fn(&KeySet) -> Result<T, IdTokenError>,
    ) -> Result<T, KeyedCheckError> {
        let keys = self.provider().keys().ok_or(KeyedCheckError::NotReady)?;
        match check(&keys) {
            Err(IdTokenError::Invalid(ValidationError::UnknownKid { kid })) => {
                let fresh = self
                    .refresh_keys_for_unknown_kid(&kid)
                    .await
                    .map_err(KeyedCheckError::Unavailable)?;
                check(&fresh).map_err(KeyedCheckError::Rejected)
            }
            other => other.map_err(KeyedCheckError::Rejected),
        }
    }

    /// The provider's keys for a token naming `kid`, fetched again if the provider allows it
    /// now; a failed fetch is recorded as a provider error.
    pub(crate) async fn refresh_keys_for_unknown_kid(
        &self,
        kid: &str,
    ) -> Result<Arc<KeySet>, ProviderError> {
        self.provider()
            .refresh_keys_for_unknown_kid(Some(kid))
            .await
            .inspect_err(|error| {
                self.inner
                    .config
                    .metrics
                    .record_provider_error(error.code())
            })
    }

    /// The provider endpoints a login needs, once discovery has succeeded.
    pub(crate) fn endpoints(&self) -> Option<ProviderEndpoints> {
        let metadata = self.provider().metadata()?;
        let token_endpoint = metadata.token_endpoint.clone()?;
        let mut endpoints = ProviderEndpoints::new(
            self.provider().issuer().clone(),
            metadata.authorization_endpoint.clone(),
            token_endpoint,
        );
        endpoints.userinfo_endpoint = metadata.userinfo_endpoint.clone();
        endpoints.end_session_endpoint = metadata.end_session_endpoint.clone();
        endpoints.introspection_endpoint = metadata.introspection_endpoint.clone();
        endpoints.authorization_response_iss_parameter_supported = metadata
            .other
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Some(endpoints)
    }

    fn provider_unavailable(&self, error: &HttpError) -> AuthFailure {
        self.inner
            .config
            .metrics
            .record_provider_error(error.code());
        AuthFailure::ProviderUnavailable { kind: error.kind() }
    }
}

/// Why a check with the provider's keys failed.
#[derive(Debug)]
pub(crate) enum KeyedCheckError {
    /// No keys yet.
    NotReady,
    /// The token names a key that could not be fetched.
    Unavailable(ProviderError),
    /// The token was judged and refused.
    Rejected(IdTokenError),
}

impl KeyedCheckError {
    /// What kind of error this is, for a program to branch on.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            KeyedCheckError::NotReady => ErrorKind::ProviderNotReady,
            KeyedCheckError::Unavailable(e) => e.kind(),
            KeyedCheckError::Rejected(e) => e.kind(),
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Whether the provider, not the token, is at fault (a 503 rather than a refusal).
    pub(crate) fn is_outage(&self) -> bool {
        !matches!(self, KeyedCheckError::Rejected(_))
    }
}

/// Why a new session could not be created.
#[derive(Debug, Clone)]
pub(crate) enum CreateSessionError {
    Encode,
    Store(Arc<StoreError>),
    Cookie(Arc<CookieError>),
}

impl CreateSessionError {
    /// What kind of error this is, for a program to branch on.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            CreateSessionError::Encode => ErrorKind::SessionEncode,
            CreateSessionError::Store(e) => e.kind(),
            CreateSessionError::Cookie(e) => e.kind(),
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl LoginParts {
    fn new(config: &AuthConfig, settings: LoginSettings) -> Result<LoginParts, AuthConfigError> {
        let expected = format!("{}/callback", config.prefix);
        if settings.redirect_uri.path() != expected {
            return Err(AuthConfigError::CallbackOutsidePrefix {
                path: settings.redirect_uri.path().to_owned(),
                expected,
            });
        }
        let keys = CookieKeys::from_secrets(&settings.cookie_secrets)?;
        let session_codec = CookieCodec::new(keys.clone(), config.session_cookie.clone())?;
        let probe = pending_settings(config, "x");
        let probe_codec = CookieCodec::new(keys.clone(), probe)?;
        let pending_prefix = probe_codec
            .name()
            .strip_suffix('x')
            .unwrap_or(probe_codec.name())
            .to_owned();
        let own_cookies = CookiePrefixes::new([session_codec.name(), pending_prefix.as_str()]);
        let client_id = settings.credentials.client_id().to_owned();
        let issuer = config.provider.issuer().clone();
        let id_policy = id_token_policy(issuer.clone(), &client_id)?;
        let logout_validator = LogoutTokenValidator::new(issuer, client_id)?;
        let login_config =
            LoginConfig::new(settings.credentials.clone(), settings.redirect_uri.clone())
                .scopes(config.scopes.clone());
        Ok(LoginParts {
            settings,
            login_config,
            id_policy,
            logout_validator,
            keys,
            session_codec,
            pending_prefix,
            own_cookies,
        })
    }

    /// The codec of the pending-login cookie with this suffix.
    pub(crate) fn pending_codec(
        &self,
        config: &AuthConfig,
        suffix: &str,
    ) -> Result<CookieCodec, oidc_core::cookie::CookieConfigError> {
        CookieCodec::new(self.keys.clone(), pending_settings(config, suffix))
    }
}

fn pending_settings(config: &AuthConfig, suffix: &str) -> oidc_core::cookie::CookieSettings {
    let name = format!("{}_{suffix}", config.pending_cookie.name());
    config
        .pending_cookie
        .clone()
        .with_name(name)
        .with_max_chunks(1)
}

/// The identity and claims of a session.
pub(crate) fn session_authenticated(session: &Session) -> Authenticated {
    let mut identity =
        Identity::new(session.user_id().to_owned()).with_groups(session.groups.clone());
    if let Some(email) = &session.email {
        identity = identity.with_email(email.clone());
    }
    if let Some(name) = &session.preferred_username {
        identity = identity.with_preferred_username(name.clone());
    }
    if let Some(token) = &session.access_token {
        identity = identity.with_access_token(token.clone());
    }
    let mut claims = session.extra_claims.clone();
    claims.insert("sub".into(), Value::String(session.subject.clone()));
    claims.insert("iss".into(), Value::String(session.issuer.clone()));
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            claims.insert(name.to_owned(), value);
        }
    };
    put("email", session.email.clone().map(Value::String));
    put("email_verified", session.email_verified.map(Value::Bool));
    put("name", session.name.clone().map(Value::String));
    put(
        "preferred_username",
        session.preferred_username.clone().map(Value::String),
    );
    if !session.groups.is_empty() {
        put("groups", Some(Value::from(session.groups.clone())));
    }
    Authenticated {
        identity,
        source: AuthSource::Session,
        claims: Arc::new(claims),
        scopes: Vec::new(),
    }
}

/// All claims of a validated token as one JSON object.
pub(crate) fn claims_map(claims: &oidc_core::Claims) -> Map<String, Value> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The scopes of a token: the space-separated `scope` claim, or the `scp` claim (a string or an
/// array, as Entra ID and Okta send it).
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let from = |value: &Value| -> Vec<String> {
        match value {
            Value::String(text) => text
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut scopes = claims.get("scope").map(from).unwrap_or_default();
    if let Some(scp) = claims.get("scp") {
        for scope in from(scp) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    scopes
}

fn session_tags(session: &Session) -> SessionTags {
    let mut tags = SessionTags::new(session.issuer.clone()).subject(&session.subject);
    if let Some(sid) = &session.sid {
        tags = tags.provider_session(sid);
    }
    tags
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps stay consistent at every step, so a panic elsewhere cannot corrupt them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Revocations of cookie sessions, kept in this process: a key (session id, subject, provider
/// session) and the time from which sessions created at or before it are dead.
#[derive(Default)]
struct Revocations {
    revoked: HashMap<StoreKey, (UnixTime, UnixTime)>,
}

impl Revocations {
    fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    fn revoke(&mut self, key: StoreKey, at: UnixTime, forget_at: UnixTime) {
        if self.revoked.len() >= MAX_LOCAL_REVOCATIONS {
            self.revoked.retain(|_, (_, forget)| *forget > at);
        }
        if self.revoked.len() >= MAX_LOCAL_REVOCATIONS
            && let Some(oldest) = self
                .revoked
                .iter()
                .min_by_key(|(_, (_, forget))| *forget)
                .map(|(key, _)| *key)
        {
            self.revoked.remove(&oldest);
        }
        self.revoked.insert(key, (at, forget_at));
    }

    fn revoked_since(&self, key: &StoreKey, created_at: UnixTime) -> bool {
        self.revoked
            .get(key)
            .is_some_and(|(at, _)| created_at <= *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_read_as_a_type_and_the_identity_serializes_without_the_token() {
        #[derive(serde::Deserialize)]
        struct Mine {
            sub: String,
            tenant: Option<String>,
        }
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("alice"));
        claims.insert("tenant".into(), Value::from("acme"));
        let caller = Authenticated {
            identity: Identity::new("alice").with_access_token(Secret::new("t0ken")),
            source: AuthSource::BearerJwt,
            claims: Arc::new(claims),
            scopes: Vec::new(),
        };
        let mine: Mine = caller.claims_as().unwrap();
        assert_eq!(
            (mine.sub.as_str(), mine.tenant.as_deref()),
            ("alice", Some("acme"))
        );
        assert!(caller.claims_as::<Vec<u8>>().is_err());
        let json = serde_json::to_string(&caller.identity).unwrap();
        assert!(json.contains(r#""user":"alice""#), "{json}");
        assert!(!json.contains("t0ken"), "{json}");
    }

    #[test]
    fn compact_jws_shape_is_exactly_two_dots() {
        assert!(is_compact_jws("a.b.c"));
        assert!(is_compact_jws(".."));
        assert!(!is_compact_jws("a.b"));
        assert!(!is_compact_jws("a.b.c.d"));
        assert!(!is_compact_jws("opaque-token"));
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"scope":"openid  read","scp":["write","read"]}"#).unwrap();
        assert_eq!(scopes_of(&claims), ["openid", "read", "write"]);
        let none: Map<String, Value> = serde_json::from_str(r#"{"scope":7}"#).unwrap();
        assert!(scopes_of(&none).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn scope_reading_never_panics(json in "\\PC{0,80}", words in "[a-z :,]{0,40}") {
            if let Ok(Value::Object(claims)) = serde_json::from_str::<Value>(&json) {
                let _ = scopes_of(&claims);
            }
            let mut claims = Map::new();
            claims.insert("scope".into(), Value::String(words.clone()));
            let scopes = scopes_of(&claims);
            proptest::prop_assert!(scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')));
            proptest::prop_assert_eq!(scopes.len(), words.split(' ').filter(|w| !w.is_empty()).count());
        }
    }

    #[test]
    fn revocations_kill_sessions_created_before() {
        let mut revocations = Revocations::default();
        let key = StoreKey::for_subject("iss", "alice");
        revocations.revoke(key, UnixTime::from_secs(100), UnixTime::from_secs(1000));
        assert!(revocations.revoked_since(&key, UnixTime::from_secs(99)));
        assert!(revocations.revoked_since(&key, UnixTime::from_secs(100)));
        assert!(!revocations.revoked_since(&key, UnixTime::from_secs(101)));
        assert!(
            !revocations
                .revoked_since(&StoreKey::for_subject("iss", "bob"), UnixTime::from_secs(1))
        );
    }

    #[test]
    fn failures_have_codes_and_kinds() {
        assert_eq!(AuthFailure::NoCredentials.code(), "no_credentials");
        assert!(AuthFailure::NoCredentials.needs_sign_in());
        assert!(AuthFailure::SessionRevoked.session_is_gone());
        assert!(AuthFailure::StoredSessionUnreadable.session_is_gone());
        assert_eq!(
            AuthFailure::StoredSessionUnreadable.code(),
            "stored_session_unreadable"
        );
        let denied = AuthFailure::Forbidden(Denied::MissingEmail);
        assert_eq!(denied.code(), "missing_email");
        assert!(!denied.needs_sign_in());
        let scope = AuthFailure::InsufficientScope {
            missing: vec!["write".into()],
            required: vec!["write".into()],
        };
        assert!(scope.is_bearer_failure());
    }

    #[test]
    fn session_claims_carry_the_identity() {
        let mut session = Session::new(
            "u1",
            "https://op",
            UnixTime::from_secs(1),
            UnixTime::from_secs(9),
        );
        session.email = Some("a@example.com".into());
        session.groups = vec!["ml".into()];
        let authenticated = session_authenticated(&session);
        assert_eq!(authenticated.identity.user, "u1");
        assert_eq!(
            authenticated.identity.email.as_deref(),
            Some("a@example.com")
        );
        assert_eq!(authenticated.claims["groups"], serde_json::json!(["ml"]));
        assert_eq!(authenticated.source, AuthSource::Session);
    }
}
