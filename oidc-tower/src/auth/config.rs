//! The one configuration shared by the bearer layer, the login layer and forward-auth.
//!
//! [`AuthConfig`] is a builder: start from a [`Provider`] and an [`HttpClient`], add what the
//! front-ends you use need, and [`AuthConfig::build`] checks it and gives the [`Authenticator`].
//! A bearer-only API needs nothing more (but [`AuthConfig::introspection_client`] to accept
//! opaque tokens); the login layer and forward-auth also need the client
//! credentials, the callback URL and cookie secrets ([`AuthConfig::login`]).

use std::sync::Arc;
use std::time::Duration;

use oidc_core::ErrorKind;
use oidc_core::Secret;
use oidc_core::authorization::AuthorizationRules;
use oidc_core::cookie::{CookieConfigError, CookieSettings};
use oidc_core::login::ClientCredentials;
use oidc_core::redirect::RedirectPolicy;
use oidc_core::validation::PolicyError;
use url::Url;

use super::authenticator::Authenticator;
use crate::clock::Clock;
use crate::forwarded::{Scheme, TrustedProxies};
use crate::http_client::HttpClient;
use crate::identity_assertion::IdentityAssertion;
use crate::metrics::Metrics;
use crate::provider::Provider;
use crate::routes::RouteRules;
use crate::store::SessionStore;

/// The path prefix of the login endpoints unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "/oauth2";
/// The session cookie's base name unless configured otherwise.
pub const DEFAULT_SESSION_COOKIE: &str = "oidc_session";
/// The pending-login cookies' base name unless configured otherwise.
pub const DEFAULT_PENDING_COOKIE: &str = "oidc_login";
/// How long a session lasts unless configured otherwise.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long before the access token expires a session is refreshed unless configured otherwise.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// How many logins may be pending at once in one browser unless configured otherwise.
pub const DEFAULT_MAX_PENDING_LOGINS: usize = 5;
/// How long an introspection answer is reused at most unless configured otherwise.
pub const DEFAULT_INTROSPECTION_CACHE: Duration = Duration::from_secs(60);

/// What the login layer and forward-auth need beyond token validation.
#[derive(Clone, Debug)]
#[must_use]
pub struct LoginSettings {
    pub(crate) credentials: ClientCredentials,
    pub(crate) redirect_uri: Url,
    pub(crate) cookie_secrets: Vec<Secret>,
}

impl LoginSettings {
    /// The client `credentials`, the callback URL registered with the provider (it must end in
    /// `{prefix}/callback`), and the cookie secrets (the first seals, all open; at least 32
    /// bytes each).
    pub fn new(
        credentials: ClientCredentials,
        redirect_uri: Url,
        cookie_secrets: Vec<Secret>,
    ) -> Self {
        LoginSettings {
            credentials,
            redirect_uri,
            cookie_secrets,
        }
    }
}

/// Why a configuration was refused by [`AuthConfig::build`] or a front-end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The login layer or forward-auth was asked for without [`AuthConfig::login`].
    #[error(
        "the login layer and forward-auth need client credentials, a callback URL and cookie secrets (AuthConfig::login)"
    )]
    LoginNotConfigured,
    /// The cookie settings or secrets are unusable.
    #[error(transparent)]
    Cookie(#[from] CookieConfigError),
    /// The ID token policy could not be built.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The prefix is not `/` followed by path characters, or ends with `/`.
    #[error("the endpoint prefix {prefix:?} must start with '/' and not end with '/'")]
    InvalidPrefix {
        /// The prefix as configured.
        prefix: String,
    },
    /// The callback URL is not under the prefix.
    #[error("the callback URL path {path:?} is not {expected:?}")]
    CallbackOutsidePrefix {
        /// The path of the configured callback URL.
        path: String,
        /// The path it must have.
        expected: String,
    },
}

impl AuthConfigError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthConfigError::LoginNotConfigured => ErrorKind::LoginNotConfigured,
            AuthConfigError::Cookie(e) => e.kind(),
            AuthConfigError::Policy(e) => e.kind(),
            AuthConfigError::InvalidPrefix { .. } => ErrorKind::InvalidPrefix,
            AuthConfigError::CallbackOutsidePrefix { .. } => ErrorKind::CallbackOutsidePrefix,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// How long [`AuthConfig::from_issuer`] waits for the provider's metadata and keys.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why [`AuthConfig::from_issuer`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The issuer is not an `https://` URL (or `http://` on loopback) without query or fragment.
    #[error(transparent)]
    Issuer(#[from] oidc_core::IssuerError),
    /// The token policy could not be built (an empty audience, say).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The HTTP client could not be created.
    #[error(transparent)]
    Http(#[from] crate::http_client::HttpError),
    /// The provider's metadata and keys did not arrive in time.
    #[error("the OpenID Provider {issuer} is not usable after {}s: {reason}", .waited.as_secs())]
    ProviderNotReady {
        /// The configured issuer.
        issuer: String,
        /// How long start-up waited.
        waited: Duration,
        /// Why: the latest failed provider call (a wrong issuer, an unreachable host).
        reason: crate::provider::ProviderError,
    },
}

impl StartError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StartError::Issuer(e) => e.kind(),
            StartError::Policy(e) => e.kind(),
            StartError::Http(e) => e.kind(),
            StartError::ProviderNotReady { reason, .. } => reason.kind(),
        }
    }

    /// A stable snake_case code for this error (for [`StartError::ProviderNotReady`], the code
    /// of the provider failure).
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Builder of an [`Authenticator`]: the settings of every front-end in one place.
#[derive(Clone)]
#[must_use]
pub struct AuthConfig {
    pub(crate) provider: Provider,
    pub(crate) extra_issuers: Vec<Provider>,
    pub(crate) extra_audiences: Vec<String>,
    pub(crate) accepted_clients: Vec<String>,
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) login: Option<LoginSettings>,
    pub(crate) introspection_client: Option<ClientCredentials>,
    pub(crate) scopes: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) session_cookie: CookieSettings,
    pub(crate) pending_cookie: CookieSettings,
    pub(crate) session_lifetime: Duration,
    pub(crate) refresh_margin: Duration,
    pub(crate) max_pending_logins: usize,
    pub(crate) session_store: Option<Arc<dyn SessionStore>>,
    pub(crate) skip_auth: RouteRules,
    pub(crate) api_routes: RouteRules,
    pub(crate) rules: AuthorizationRules,
    pub(crate) groups_claim: String,
    pub(crate) keep_claims: Vec<String>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) accept_bearer: bool,
    pub(crate) pass_access_token: bool,
    pub(crate) pass_authorization_bearer: bool,
    pub(crate) pass_user_headers: bool,
    pub(crate) forward_auth_identity_headers: bool,
    pub(crate) redirect_policy: RedirectPolicy,
    pub(crate) post_logout_redirect_uri: Option<Url>,
    pub(crate) provider_logout: bool,
    pub(crate) introspection_cache: Duration,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) external_scheme: Option<Scheme>,
    pub(crate) forward_auth_redirect: bool,
    pub(crate) realm: String,
    pub(crate) metrics: Metrics,
    pub(crate) identity_assertion: Option<Arc<IdentityAssertion>>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("issuer", &self.provider.issuer().as_str())
            .field("prefix", &self.prefix)
            .field("login", &self.login.is_some())
            .field("server_side_sessions", &self.session_store.is_some())
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// A configuration validating tokens with `provider` and calling it through `http`.
    ///
    /// Defaults: prefix [`DEFAULT_PREFIX`], sessions in cookies (no server-side store) lasting
    /// [`DEFAULT_SESSION_LIFETIME`], refreshed [`DEFAULT_REFRESH_MARGIN`] before the access
    /// token expires, scopes `openid profile email`, groups from the `groups` claim, no skip-auth
    /// or API routes, every authenticated user allowed, bearer tokens accepted by the login
    /// layer, no token passed to the upstream, return-to targets on the same origin only,
    /// RP-initiated logout at the provider, forward-auth answering 401 (no redirect), proxies
    /// trusted on loopback only, the system's time of day.
    pub fn new(provider: Provider, http: Arc<dyn HttpClient>) -> Self {
        AuthConfig {
            provider,
            extra_issuers: Vec::new(),
            extra_audiences: Vec::new(),
            accepted_clients: Vec::new(),
            http,
            login: None,
            introspection_client: None,
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            prefix: DEFAULT_PREFIX.to_owned(),
            session_cookie: CookieSettings::new(DEFAULT_SESSION_COOKIE),
            pending_cookie: CookieSettings::new(DEFAULT_PENDING_COOKIE),
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            max_pending_logins: DEFAULT_MAX_PENDING_LOGINS,
            session_store: None,
            skip_auth: RouteRules::empty(),
            api_routes: RouteRules::empty(),
            rules: AuthorizationRules::new(),
            groups_claim: "groups".to_owned(),
            keep_claims: Vec::new(),
            required_scopes: Vec::new(),
            accept_bearer: true,
            pass_access_token: false,
            pass_authorization_bearer: false,
            pass_user_headers: true,
            forward_auth_identity_headers: true,
            redirect_policy: RedirectPolicy::same_origin_only(),
            post_logout_redirect_uri: None,
            provider_logout: true,
            introspection_cache: DEFAULT_INTROSPECTION_CACHE,
            trusted_proxies: TrustedProxies::loopback(),
            external_scheme: None,
            forward_auth_redirect: false,
            realm: "oidc".to_owned(),
            metrics: Metrics::new(),
            identity_assertion: None,
            clock: crate::clock::system(),
        }
    }

    /// Also accepts bearer JWTs from `provider`'s issuer (a CI system's, another tenant's),
    /// validated with its keys and its policy, through every front-end alike. A token goes to
    /// the issuer its `iss` names; one naming no accepted issuer is refused as `wrong_issuer`.
    ///
    /// A provider for an issuer accepted already (the main one, or an earlier extra one) adds
    /// its policy's audiences to that issuer's; the keys of the first provider are used.
    /// Sign-in, refresh and introspection always use the main provider.
    pub fn accept_issuer(mut self, provider: Provider) -> Self {
        self.extra_issuers.push(provider);
        self
    }

    /// Also accepts these audiences in the main issuer's tokens (JWT `aud`, or the `aud` of an
    /// introspection answer), besides those of its provider's policy: an API audience next to
    /// the client id, say.
    pub fn accept_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_audiences
            .extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Clients whose opaque tokens are meant for this service even though they were issued to
    /// another client: a CLI's public client, a CI service account. An introspection answer
    /// without `aud` must name (as `client_id` or `azp`) the login client, the introspection
    /// client, a client allowed by the rules
    /// ([`AuthorizationRules::with_allowed_clients`]), or one of these; anything else is refused
    /// as `wrong_client`.
    pub fn accept_clients<I, S>(mut self, clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.accepted_clients
            .extend(clients.into_iter().map(Into::into));
        self
    }

    /// The common case in one call: tokens of `issuer` for `audience`, with the default HTTP
    /// client, once the provider's metadata and keys are loaded. Fails fast, within
    /// [`DEFAULT_START_TIMEOUT`], with the provider's own error for a mistyped issuer or an
    /// unreachable provider, instead of starting a service that refuses every request.
    ///
    /// ```no_run
    /// use axum::{Router, routing::get};
    /// use oidc_tower::auth::{AuthConfig, Authenticated, BearerAuthLayer};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let auth = AuthConfig::from_issuer("https://login.example.com/realms/main", "my-api")
    ///     .await?
    ///     .build()?;
    /// let app: Router = Router::new()
    ///     .route("/whoami", get(|caller: Authenticated| async move { caller.identity.user }))
    ///     .layer(BearerAuthLayer::new(auth));
    /// # Ok(()) }
    /// ```
    pub async fn from_issuer(
        issuer: &str,
        audience: impl Into<String>,
    ) -> Result<AuthConfig, StartError> {
        let issuer = oidc_core::Issuer::new(issuer)?;
        let policy = oidc_core::Policy::builder()
            .issuer(issuer.clone())
            .audience(audience)
            .build()?;
        let http: Arc<dyn HttpClient> = Arc::new(crate::ReqwestHttpClient::new()?);
        let provider = Provider::start(
            crate::provider::ProviderConfig::new(issuer.clone(), policy),
            http.clone(),
        );
        provider
            .ready_within(DEFAULT_START_TIMEOUT)
            .await
            .map_err(|reason| StartError::ProviderNotReady {
                issuer: issuer.to_string(),
                waited: DEFAULT_START_TIMEOUT,
                reason,
            })?;
        Ok(AuthConfig::new(provider, http))
    }

    /// Enables browser sign-in (needed by the login layer and forward-auth).
    pub fn login(mut self, settings: LoginSettings) -> Self {
        self.login = Some(settings);
        self
    }

    /// The client opaque bearer tokens are introspected as (RFC 7662), e.g. the API's own
    /// credentials at the provider. Without it, the login client ([`AuthConfig::login`]) is
    /// used; with neither, opaque tokens are refused (`opaque_token_unsupported`) and only JWTs
    /// are accepted.
    pub fn introspection_client(mut self, credentials: ClientCredentials) -> Self {
        self.introspection_client = Some(credentials);
        self
    }

    /// Scopes asked for at sign-in (`openid` is always asked for).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The path prefix of the login endpoints (`start`, `callback`, `sign_out`, `userinfo`,
    /// `backchannel_logout`, `auth`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The session cookie's name, path, domain and chunk limit (the pending-login cookies take
    /// the same path and domain).
    pub fn session_cookie(mut self, settings: CookieSettings) -> Self {
        self.pending_cookie = settings
            .clone()
            .with_name(self.pending_cookie.name())
            .with_max_chunks(1);
        self.session_cookie = settings;
        self
    }

    /// How long a session lasts after sign-in, whatever refreshes happen.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// How long before the access token expires a session is refreshed.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// How many logins may be pending in one browser; beyond, the oldest is dropped.
    pub fn max_pending_logins(mut self, max: usize) -> Self {
        self.max_pending_logins = max.max(1);
        self
    }

    /// Keeps sessions in a server-side store (Memory, Redis): the cookie carries only a handle,
    /// and sign-out and back-channel logout reach every replica sharing the store.
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.session_store = Some(store);
        self
    }

    /// Requests passed on without authentication (see [`RouteRules::skip_auth`]).
    pub fn skip_auth(mut self, rules: RouteRules) -> Self {
        self.skip_auth = rules;
        self
    }

    /// Paths answered 401 rather than redirected when unauthenticated (see [`RouteRules::api`]).
    pub fn api_routes(mut self, rules: RouteRules) -> Self {
        self.api_routes = rules;
        self
    }

    /// Who may pass once authenticated.
    pub fn authorization(mut self, rules: AuthorizationRules) -> Self {
        self.rules = rules;
        self
    }

    /// The claim groups are read from (a dotted path walks into objects).
    pub fn groups_claim(mut self, claim: impl Into<String>) -> Self {
        self.groups_claim = claim.into();
        self
    }

    /// ID token claims kept in the session for claim rules (those the rules name are kept
    /// anyway).
    pub fn keep_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keep_claims = claims.into_iter().map(Into::into).collect();
        self
    }

    /// Scopes every bearer token must carry (`scope` or `scp` claim); missing ones give 403
    /// `insufficient_scope`.
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the login layer and forward-auth also accept `Authorization: Bearer` (default
    /// true), so SDKs and browsers share one front door.
    pub fn accept_bearer(mut self, accept: bool) -> Self {
        self.accept_bearer = accept;
        self
    }

    /// Sends the access token upstream in `X-Forwarded-Access-Token` (and forward-auth's
    /// `X-Auth-Request-Access-Token`).
    pub fn pass_access_token(mut self, pass: bool) -> Self {
        self.pass_access_token = pass;
        self
    }

    /// Whether the login layer tells the upstream who the user is in `X-Forwarded-User`,
    /// `-Email`, `-Preferred-Username` and `-Groups` (default true; oauth2-proxy's
    /// `--pass-user-headers`). Client-sent spellings are removed either way.
    pub fn pass_user_headers(mut self, pass: bool) -> Self {
        self.pass_user_headers = pass;
        self
    }

    /// Whether forward-auth answers carry the `X-Auth-Request-*` identity headers (default
    /// true; oauth2-proxy's `--set-xauthrequest`, which defaults to off there).
    pub fn forward_auth_identity_headers(mut self, set: bool) -> Self {
        self.forward_auth_identity_headers = set;
        self
    }

    /// Replaces the upstream's `Authorization` with `Bearer <access token>`.
    pub fn pass_authorization_bearer(mut self, pass: bool) -> Self {
        self.pass_authorization_bearer = pass;
        self
    }

    /// Where `rd` and stored return-to targets may point (default: same origin only).
    pub fn redirect_policy(mut self, policy: RedirectPolicy) -> Self {
        self.redirect_policy = policy;
        self
    }

    /// Where the provider sends the browser after RP-initiated logout (must be registered).
    pub fn post_logout_redirect_uri(mut self, uri: Url) -> Self {
        self.post_logout_redirect_uri = Some(uri);
        self
    }

    /// Whether sign-out continues with RP-initiated logout at the provider when it offers it
    /// (default true).
    pub fn provider_logout(mut self, enabled: bool) -> Self {
        self.provider_logout = enabled;
        self
    }

    /// The longest time an introspection answer is reused (it never outlives the token).
    pub fn introspection_cache(mut self, max: Duration) -> Self {
        self.introspection_cache = max;
        self
    }

    /// Proxies whose `X-Forwarded-*` headers forward-auth believes.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The scheme forward-auth assumes for the original request when no trusted proxy states
    /// it in `X-Forwarded-Proto` (it decides where a sign-in returns to). Default: the callback
    /// URL's scheme (`https` for an `https://` callback), `http` without sign-in configured.
    pub fn external_scheme(mut self, scheme: Scheme) -> Self {
        self.external_scheme = Some(scheme);
        self
    }

    /// Forward-auth answers unauthenticated browser navigations with a 302 to sign-in that
    /// returns to the original URL, instead of 401.
    pub fn forward_auth_redirect(mut self, enabled: bool) -> Self {
        self.forward_auth_redirect = enabled;
        self
    }

    /// The realm named in `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Records decisions into these metrics (default: fresh ones, see
    /// [`Authenticator::metrics`]).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Vouches for every allowed request with a signed identity assertion (`X-Identity-Assertion`,
    /// towards the upstream and in forward-auth answers) and publishes its public key set at
    /// `{prefix}/jwks`, so that the upstream can tell a request came through here.
    pub fn identity_assertion(mut self, assertion: IdentityAssertion) -> Self {
        self.identity_assertion = Some(Arc::new(assertion.with_clock(Arc::clone(&self.clock))));
        self
    }

    /// The clock every decision of the authenticator takes the time of day from (default: the
    /// system's, [`SystemClock`](crate::clock::SystemClock)): bearer token validation and the
    /// caches of admitted tokens and introspection answers, DPoP proofs, sessions (opening,
    /// expiry, refresh, sign-out and revocation), pending logins and callbacks, back-channel
    /// logout tokens, and the signing of identity assertions. A
    /// [`ManualClock`](crate::clock::ManualClock) lets a test move past an expiry instead of
    /// waiting for it.
    ///
    /// The providers keep their own clock ([`ProviderConfig::clock`]) for
    /// [`Provider::validate`] and the freshness of their keys; tokens this authenticator
    /// validates are judged at this clock's time.
    ///
    /// [`ProviderConfig::clock`]: crate::provider::ProviderConfig::clock
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.identity_assertion = self
            .identity_assertion
            .map(|assertion| Arc::new(assertion.reclocked(Arc::clone(&clock))));
        self.clock = clock;
        self
    }

    /// Checks the configuration and builds the shared [`Authenticator`].
    pub fn build(self) -> Result<Authenticator, AuthConfigError> {
        Authenticator::from_config(self)
    }
}
