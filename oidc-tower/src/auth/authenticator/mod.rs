//! The decision shared by every front-end: who sent this request, and may they pass?
//!
//! [`Authenticator::authenticate_request`] is that one decision for every door (the bearer
//! layer, the login layer, forward-auth and the sidecar): a bearer or DPoP token when one came
//! and bearer tokens are accepted, else the session cookie. The answer is an
//! [`Authentication`] or a typed [`AuthFailure`]; the doors only differ in how they answer it.
//!
//! The authenticator is a cheaply cloned composition of parts, each owning its settings and
//! its caches, built once from the configuration:
//! - [`bearer_verifier`]: which accepted issuer a JWT belongs to, validation or introspection,
//!   DPoP proofs, scopes and rules; the caches of admitted tokens;
//! - [`sessions`]: opening the session cookie, creating, ending and revoking sessions; the
//!   cache of opened cookie sessions; it composes the refresh single flight
//!   (`sessions/refresh.rs`: once per session per process, and across replicas with a shared
//!   store's refresh lock);
//! - [`login_flow`]: the login client, how a login starts (PKCE, state, nonce, pushed
//!   requests, pending-login cookies), replayed callbacks, the session a login ends in, logout
//!   tokens; driven by the endpoints under the prefix;
//! - [`front_end`]: what the doors read per request (skip-auth and API routes, the redirect
//!   policy, trusted proxies, the prebuilt identity headers of each door, bearer challenges).
//!
//! The doors and the endpoints compose these parts; none reads the whole configuration.

mod bearer_verifier;
mod front_end;
mod login_flow;
mod sessions;
mod verdict;

use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderMap;
use oidc_core::cookie::{CookieError, RequestCookies};
use oidc_core::login::{IdTokenError, ProviderEndpoints};
use oidc_core::validation::ValidationError;
use oidc_core::{ErrorKind, KeySet, Session, UnixTime};
use serde_json::{Map, Value};

use self::bearer_verifier::{BearerVerifier, is_dpop_scheme};
pub(crate) use self::front_end::FrontEnd;
pub(crate) use self::login_flow::{CannotStart, LoginFlow, LoginStart};
use self::sessions::{LoadedSession, Sessions};
pub use self::verdict::{AuthFailure, AuthSource, Authenticated, Authentication};
use super::config::{AuthConfig, AuthConfigError};
use crate::bearer_response::{
    BearerToken, QueryTokens, extract_bearer, extract_dpop, unchecked_bearer,
};
use crate::metrics::Metrics;
use crate::provider::{Provider, ProviderError};
use crate::store::StoreError;

/// The shared, cheaply cloned authentication state of the three front-ends: what they read
/// per request, and the parts that decide (bearer verification, sessions, the login flow).
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
    /// The configuration it was built from; beyond construction only the provider, the HTTP
    /// client, the metrics, the clock and the prefix are read from it.
    config: AuthConfig,
    /// What the front-ends read per request.
    front_end: FrontEnd,
    /// Bearer and DPoP tokens.
    bearer: BearerVerifier,
    /// Sessions, when sign-in is configured.
    sessions: Option<Sessions>,
    /// The login flow, when sign-in is configured.
    login: Option<LoginFlow>,
}

impl Authenticator {
    pub(crate) fn from_config(config: AuthConfig) -> Result<Authenticator, AuthConfigError> {
        let prefix = &config.prefix;
        if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.len() < 2 {
            return Err(AuthConfigError::InvalidPrefix {
                prefix: prefix.clone(),
            });
        }
        let (login, sessions) = match &config.login {
            None => (None, None),
            Some(settings) => {
                let (login, session_codec) = LoginFlow::new(&config, settings.clone())?;
                let sessions = Sessions::new(&config, &login, session_codec);
                (Some(login), Some(sessions))
            }
        };
        let bearer = BearerVerifier::new(&config);
        let front_end = FrontEnd::new(&config);
        Ok(Authenticator {
            inner: Arc::new(Inner {
                config,
                front_end,
                bearer,
                sessions,
                login,
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

    /// The time of day, on the configured clock: every decision takes it from here.
    pub(crate) fn now(&self) -> UnixTime {
        self.inner.config.clock.now()
    }

    /// Marks the login with `state` as handled until `until` (it is `now`); `false` when its
    /// callback was already handled (a replay) or sign-in is not configured.
    pub(crate) fn complete_login_once(&self, state: &str, until: UnixTime, now: UnixTime) -> bool {
        self.login_flow()
            .is_some_and(|login| login.complete_once(state, until, now))
    }

    /// The endpoint prefix (e.g. `/oauth2`).
    pub fn prefix(&self) -> &str {
        &self.inner.config.prefix
    }

    /// Whether sign-in is configured (the login layer and forward-auth need it).
    pub fn has_login(&self) -> bool {
        self.inner.login.is_some()
    }

    /// What the front-ends read per request.
    pub(crate) fn front_end(&self) -> &FrontEnd {
        &self.inner.front_end
    }

    /// The HTTP client the provider is called through.
    pub(crate) fn http(&self) -> &dyn crate::http_client::HttpClient {
        self.inner.config.http.as_ref()
    }

    /// The login flow, when sign-in is configured.
    pub(crate) fn login_flow(&self) -> Option<&LoginFlow> {
        self.inner.login.as_ref()
    }

    /// The sessions, when sign-in is configured.
    pub(crate) fn sessions(&self) -> Option<&Sessions> {
        self.inner.sessions.as_ref()
    }

    /// What a DPoP proof must satisfy.
    pub(crate) fn dpop_policy(&self) -> &oidc_core::dpop::DpopPolicy {
        self.inner.bearer.dpop_policy()
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
        let accept_bearer = bearer_only || self.inner.front_end.accept_bearer;
        if accept_bearer
            && is_dpop_scheme(headers)
            && let Some(credentials) = extract_dpop(headers)?
        {
            let authenticated = self
                .inner
                .bearer
                .verify_dpop(credentials, method, url())
                .await?;
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
                && let Some(authenticated) = self.inner.bearer.cached(token)
            {
                return Ok(Authentication {
                    authenticated,
                    set_cookies: Vec::new(),
                });
            }
            if let Some(token) = extract_bearer(headers, query, QueryTokens::Refuse)? {
                let authenticated = self.inner.bearer.verify(token).await?;
                return Ok(Authentication {
                    authenticated,
                    set_cookies: Vec::new(),
                });
            }
        }
        match &self.inner.sessions {
            Some(sessions) if !bearer_only => sessions.authenticate(headers).await,
            _ => Err(AuthFailure::NoCredentials),
        }
    }

    /// Validates a bearer token: a JWT with the provider's keys, anything else by
    /// introspection; then the required scopes and the authorization rules.
    pub async fn authenticate_bearer(
        &self,
        token: &BearerToken,
    ) -> Result<Authenticated, AuthFailure> {
        self.inner.bearer.verify(token.clone()).await
    }

    /// Reads and checks the session the request's cookies carry. `Ok(None)`: no session cookie
    /// (or sign-in is not configured).
    pub(crate) async fn load_session(
        &self,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Option<LoadedSession>, AuthFailure> {
        match self.sessions() {
            Some(sessions) => sessions.load(cookies, now).await,
            None => Ok(None),
        }
    }

    /// Stores a brand-new session and returns the cookies that carry it.
    pub(crate) async fn create_session(
        &self,
        session: Session,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<(LoadedSession, Vec<http::HeaderValue>), CreateSessionError> {
        let sessions = self.sessions().ok_or(CreateSessionError::NotConfigured)?;
        sessions.create(session, cookies, now).await
    }

    /// Ends `loaded` everywhere this process can reach.
    pub(crate) async fn end_session(&self, loaded: &LoadedSession) -> Result<(), StoreError> {
        match self.sessions() {
            Some(sessions) => sessions.end(loaded).await,
            None => Ok(()),
        }
    }

    /// Ends every session of the provider session `sid` (or, without one, of `sub`):
    /// back-channel logout. Returns how many stored sessions were removed.
    pub(crate) async fn revoke(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        match self.sessions() {
            Some(sessions) => sessions.revoke(sub, sid).await,
            None => Ok(0),
        }
    }

    /// Runs a check that needs the provider's keys; see [`with_fresh_keys`].
    pub(crate) async fn with_fresh_keys<T>(
        &self,
        check: impl Fn(&KeySet) -> Result<T, IdTokenError>,
    ) -> Result<T, KeyedCheckError> {
        with_fresh_keys(self.provider(), self.metrics(), check).await
    }

    /// The provider's keys for a token naming `kid`; see [`refresh_keys_for_unknown_kid`].
    pub(crate) async fn refresh_keys_for_unknown_kid(
        &self,
        kid: &str,
    ) -> Result<Arc<KeySet>, ProviderError> {
        refresh_keys_for_unknown_kid(self.provider(), self.metrics(), kid).await
    }

    /// The provider endpoints a login needs, once discovery has succeeded.
    pub(crate) fn endpoints(&self) -> Option<ProviderEndpoints> {
        let metadata = self.provider().metadata()?;
        ProviderEndpoints::from_metadata_of(self.provider().issuer().clone(), &metadata).ok()
    }
}

/// Runs a check that needs the provider's keys; when it fails on an unknown `kid`, asks the
/// provider for keys holding it (rate-limited, single-flight) and runs it once more.
pub(crate) async fn with_fresh_keys<T>(
    provider: &Provider,
    metrics: &Metrics,
    check: impl Fn(&KeySet) -> Result<T, IdTokenError>,
) -> Result<T, KeyedCheckError> {
    let keys = provider.keys().ok_or(KeyedCheckError::NotReady)?;
    match check(&keys) {
        Err(IdTokenError::Invalid(ValidationError::UnknownKid { kid })) => {
            let fresh = refresh_keys_for_unknown_kid(provider, metrics, &kid)
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
    provider: &Provider,
    metrics: &Metrics,
    kid: &str,
) -> Result<Arc<KeySet>, ProviderError> {
    provider
        .refresh_keys_for_unknown_kid(Some(kid))
        .await
        .inspect_err(|error| metrics.record_provider_error(error.code()))
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
    /// Sign-in is not configured, so there are no sessions.
    NotConfigured,
    Encode,
    Store(Arc<StoreError>),
    Cookie(Arc<CookieError>),
}

impl CreateSessionError {
    /// What kind of error this is, for a program to branch on.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            CreateSessionError::NotConfigured => ErrorKind::LoginNotConfigured,
            CreateSessionError::Encode => ErrorKind::SessionEncode,
            CreateSessionError::Store(e) => e.kind(),
            CreateSessionError::Cookie(e) => e.kind(),
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// All claims of a validated token as one JSON object.
pub(crate) fn claims_map(claims: &oidc_core::Claims) -> Map<String, Value> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps stay consistent at every step, so a panic elsewhere cannot corrupt them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An authenticator on a clock the test moves, against the dev provider on 127.0.0.1.
#[cfg(test)]
pub(crate) mod test_bed {
    use std::sync::Arc;
    use std::time::Duration;

    use oidc_core::login::{ClientAuthMethod, ClientCredentials};
    use oidc_core::{Policy, Secret};
    use oidc_dev_provider::{AccessTokenFormat, DevClient, DevProvider, DevUser, RunningProvider};

    use super::Authenticator;
    use crate::auth::{AuthConfig, LoginSettings};
    use crate::clock::ManualClock;
    use crate::http_client::HttpClient;
    use crate::provider::{Provider, ProviderConfig};

    /// How long the provider's access tokens live.
    pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

    /// The provider (user `alice`; client `api` with JWT access tokens, client `opaque` with
    /// opaque ones for `api`) and an authenticator for the audience `api`, with sign-in and
    /// sessions in cookies, taking the time of day from `clock`.
    pub(crate) async fn start(clock: &ManualClock) -> (RunningProvider, Authenticator) {
        let op = DevProvider::builder()
            .user(DevUser::new("alice", "alice"))
            .client(DevClient::confidential("api", "api-secret"))
            .client(
                DevClient::confidential("opaque", "opaque-secret")
                    .access_token_format(AccessTokenFormat::Opaque)
                    .access_token_audience("api"),
            )
            .access_token_lifetime(TOKEN_LIFETIME)
            .build()
            .unwrap()
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let http: Arc<dyn HttpClient> = Arc::new(crate::ReqwestHttpClient::new().unwrap());
        let policy = Policy::builder()
            .issuer(op.issuer().clone())
            .audience("api")
            .leeway(Duration::ZERO)
            .build()
            .unwrap();
        let provider = Provider::start(
            ProviderConfig::new(op.issuer().clone(), policy),
            http.clone(),
        );
        provider.wait_ready().await;
        let credentials = ClientCredentials::new(
            "api",
            ClientAuthMethod::ClientSecretBasic(Secret::new("api-secret")),
        );
        let auth = AuthConfig::new(provider, http)
            .login(LoginSettings::new(
                credentials,
                "https://app.example/oauth2/callback".parse().unwrap(),
                vec![Secret::new(
                    "a cookie secret that is long enough for the codec",
                )],
            ))
            .clock(clock.clone())
            .build()
            .unwrap();
        (op, auth)
    }

    /// A claim of `token` that is a time (`iat`, `exp`).
    pub(crate) fn time_claim(token: &str, name: &str) -> oidc_core::UnixTime {
        let claims = oidc_core::danger::decode_unverified(token).unwrap().claims;
        oidc_core::UnixTime::from_secs(claims[name].as_u64().unwrap())
    }
}
