//! The public face of the provider: building it, serving it on a loopback port, and the knobs
//! tests turn while it runs (key rotation, scripted logins, injected failures, stop/restart).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use oidc_core::{Issuer, UnixTime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{DevClient, DevUser, demo_clients, demo_users};
use crate::keys::{KeyError, KeyRing, SigningAlgorithm};
use crate::store::{Grant, Store, Subject};

/// The provider could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two users share a username.
    #[error("user {username:?} is configured twice")]
    DuplicateUser {
        /// The username.
        username: String,
    },
    /// Two clients share a client id.
    #[error("client {client_id:?} is configured twice")]
    DuplicateClient {
        /// The client id.
        client_id: String,
    },
    /// A registered URI is not an absolute URL.
    #[error("client {client_id:?}: {uri:?} is not an absolute URL")]
    InvalidUri {
        /// The client id.
        client_id: String,
        /// The URI.
        uri: String,
    },
    /// The configured issuer is not a valid issuer identifier.
    #[error(transparent)]
    Issuer(#[from] oidc_core::IssuerError),
    /// The signing key could not be generated.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl BuildError {
    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            BuildError::DuplicateUser { .. } => "duplicate_user",
            BuildError::DuplicateClient { .. } => "duplicate_client",
            BuildError::InvalidUri { .. } => "invalid_uri",
            BuildError::Issuer(e) => e.code(),
            BuildError::Key(e) => e.code(),
        }
    }
}

/// The provider could not start serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address is not a loopback address and
    /// [`DevProviderBuilder::insecure_allow_non_loopback`] was not set.
    #[error(
        "refusing to listen on {addr}: not a loopback address (this provider is for development only)"
    )]
    NonLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding the socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The issuer derived from the bound address is not a valid issuer.
    #[error(transparent)]
    Issuer(#[from] oidc_core::IssuerError),
}

impl ServeError {
    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ServeError::NonLoopback { .. } => "non_loopback_address",
            ServeError::Bind { .. } => "bind_failed",
            ServeError::Issuer(e) => e.code(),
        }
    }
}

/// A token could not be minted directly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// No such user.
    #[error("no user {username:?}")]
    UnknownUser {
        /// The username asked for.
        username: String,
    },
    /// No such client.
    #[error("no client {client_id:?}")]
    UnknownClient {
        /// The client id asked for.
        client_id: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl MintError {
    /// Explains a failure to issue for a grant of `client_id` just created under the lock:
    /// only signing can really fail, the other cases name what went missing.
    fn from_issue(error: crate::endpoints::IssueError, client_id: &str) -> Self {
        use crate::endpoints::IssueError;
        match error {
            IssueError::Key(e) => MintError::Key(e),
            IssueError::UnknownUser(username) => MintError::UnknownUser { username },
            IssueError::UnknownGrant => MintError::UnknownClient {
                client_id: client_id.to_owned(),
            },
        }
    }
}

impl MintError {
    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            MintError::UnknownUser { .. } => "unknown_user",
            MintError::UnknownClient { .. } => "unknown_client",
            MintError::Key(e) => e.code(),
        }
    }
}

/// An endpoint of the provider, for injected failures and request counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/.well-known/openid-configuration`
    Discovery,
    /// `/jwks`
    Jwks,
    /// `/authorize`
    Authorize,
    /// `/token`
    Token,
    /// `/userinfo`
    Userinfo,
    /// `/introspect`
    Introspection,
    /// `/end_session`
    EndSession,
    /// `/par` (pushed authorization requests, RFC 9126)
    PushedAuthorization,
}

/// A failure to serve instead of the real answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a short text body.
    Status(u16),
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Delay(Duration),
}

#[derive(Clone, Debug)]
pub(crate) struct FaultPlan {
    pub(crate) fault: Fault,
    /// `None`: until cleared.
    pub(crate) remaining: Option<u32>,
}

/// The outcome of one back-channel logout POST.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackchannelDelivery {
    /// The client notified.
    pub client_id: String,
    /// Where the logout token was posted.
    pub uri: String,
    /// The HTTP status the client answered, or why no answer came.
    pub outcome: Result<u16, String>,
}

/// Lifetimes and other settings fixed at build time.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) access_token_lifetime: Duration,
    pub(crate) id_token_lifetime: Duration,
    pub(crate) refresh_token_lifetime: Duration,
    pub(crate) code_lifetime: Duration,
    pub(crate) jwks_max_age: Duration,
    pub(crate) algorithm: SigningAlgorithm,
    pub(crate) allow_non_loopback: bool,
    pub(crate) issuer: Option<String>,
    pub(crate) pushed_authorization: PushedAuthorizationSupport,
    pub(crate) sign_in_note: Option<String>,
}

/// Whether the provider offers pushed authorization requests (RFC 9126) and insists on them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushedAuthorizationSupport {
    pub(crate) offered: bool,
    pub(crate) required: bool,
}

/// State shared by the HTTP handlers and the [`RunningProvider`] handle.
pub(crate) struct Shared {
    pub(crate) users: HashMap<String, DevUser>,
    pub(crate) clients: HashMap<String, DevClient>,
    pub(crate) settings: Settings,
    pub(crate) keys: Mutex<KeyRing>,
    pub(crate) store: Mutex<Store>,
    pub(crate) faults: Mutex<HashMap<Endpoint, FaultPlan>>,
    pub(crate) counts: Mutex<HashMap<Endpoint, u64>>,
    pub(crate) deliveries: Mutex<Vec<BackchannelDelivery>>,
    pub(crate) http: reqwest::Client,
    clock_offset_secs: AtomicU64,
}

impl Shared {
    /// The provider's clock: the system clock plus any [`RunningProvider::advance_clock`].
    pub(crate) fn now(&self) -> UnixTime {
        UnixTime::from(SystemTime::now()).saturating_add(Duration::from_secs(
            self.clock_offset_secs.load(Ordering::Relaxed),
        ))
    }
}

/// Locks a mutex; a panic in another holder cannot leave these maps half-updated in a way that
/// matters for a test provider, so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A development OpenID Provider, configured but not yet listening. **Not for production.**
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use oidc_dev_provider::{DevClient, DevProvider, DevUser};
/// let provider = DevProvider::builder()
///     .user(DevUser::new("alice", "alice-password").email("alice@example.com").groups(["admins"]))
///     .client(
///         DevClient::confidential("mlflow", "mlflow-secret")
///             .redirect_uri("http://127.0.0.1:4180/oauth2/callback"),
///     )
///     .build()?;
/// let running = provider.serve("127.0.0.1:0".parse()?).await?;
/// let token = running.mint_access_token("alice", "mlflow")?;
/// println!("{} {token}", running.issuer());
/// # Ok(()) }
/// ```
pub struct DevProvider {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for DevProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevProvider")
            .field("users", &self.shared.users.len())
            .field("clients", &self.shared.clients.len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`DevProvider`].
#[derive(Debug, Default)]
#[must_use]
pub struct DevProviderBuilder {
    users: Vec<DevUser>,
    clients: Vec<DevClient>,
    access_token_lifetime: Option<Duration>,
    id_token_lifetime: Option<Duration>,
    refresh_token_lifetime: Option<Duration>,
    code_lifetime: Option<Duration>,
    jwks_max_age: Option<Duration>,
    algorithm: SigningAlgorithm,
    allow_non_loopback: bool,
    issuer: Option<String>,
    pushed_authorization: PushedAuthorizationSupport,
    sign_in_note: Option<String>,
}

impl DevProviderBuilder {
    /// Offers pushed authorization requests (RFC 9126): advertises
    /// `pushed_authorization_request_endpoint` and serves `/par`. Off by default.
    pub fn pushed_authorization_requests(mut self, offered: bool) -> Self {
        self.pushed_authorization.offered = offered;
        self
    }

    /// Accepts authorization requests only by reference to a pushed one, and advertises
    /// `require_pushed_authorization_requests` (also offers the endpoint).
    pub fn require_pushed_authorization_requests(mut self, required: bool) -> Self {
        self.pushed_authorization.required = required;
        if required {
            self.pushed_authorization.offered = true;
        }
        self
    }

    /// Adds a test user. Without any, the demo users of [`crate::demo_users`] are used.
    pub fn user(mut self, user: DevUser) -> Self {
        self.users.push(user);
        self
    }

    /// Adds a client. Without any, the demo clients of [`crate::demo_clients`] are used.
    pub fn client(mut self, client: DevClient) -> Self {
        self.clients.push(client);
        self
    }

    /// Adds the users and clients of a configuration file (the demo set for a part it leaves
    /// empty).
    pub fn config(mut self, config: &crate::ProviderConfig) -> Self {
        self.users.extend(config.dev_users());
        self.clients.extend(config.dev_clients());
        self
    }

    /// Access token lifetime (default 5 minutes).
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = Some(lifetime);
        self
    }

    /// ID token lifetime (default 5 minutes).
    pub fn id_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.id_token_lifetime = Some(lifetime);
        self
    }

    /// Refresh token lifetime (default 1 day).
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = Some(lifetime);
        self
    }

    /// Authorization code lifetime (default 60 seconds).
    pub fn code_lifetime(mut self, lifetime: Duration) -> Self {
        self.code_lifetime = Some(lifetime);
        self
    }

    /// The `Cache-Control: max-age` of the JWKS (default 60 seconds).
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = Some(max_age);
        self
    }

    /// The algorithm of the first signing key and of rotations (default RS256).
    pub fn signing_algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The issuer identifier, instead of `http://<bound address>`. Its path, if any, prefixes
    /// every endpoint; its host must reach the bound address (e.g. `http://localhost:PORT`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Allows [`DevProvider::serve`] on a non-loopback address.
    ///
    /// # Security warning
    /// Anyone who can reach the port can sign in as any test user with the published passwords
    /// and obtain validly signed tokens. Only for isolated networks such as a CI container.
    pub fn insecure_allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// A line the sign-in page shows above the form, such as the demo user to sign in as.
    pub fn sign_in_note(mut self, note: impl Into<String>) -> Self {
        self.sign_in_note = Some(note.into());
        self
    }

    /// Checks the configuration and generates the first signing key.
    pub fn build(self) -> Result<DevProvider, BuildError> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            // Both or neither jsonwebtoken crypto features are on somewhere in the build; pick
            // aws-lc explicitly. Losing the race to another installer is fine.
            let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        }
        if let Some(issuer) = &self.issuer {
            Issuer::new(issuer.trim_end_matches('/'))?;
        }
        let users = if self.users.is_empty() {
            demo_users()
        } else {
            self.users
        };
        let clients = if self.clients.is_empty() {
            demo_clients()
        } else {
            self.clients
        };
        let mut user_map = HashMap::new();
        for user in users {
            let username = user.username.clone();
            if user_map.insert(username.clone(), user).is_some() {
                return Err(BuildError::DuplicateUser { username });
            }
        }
        let mut client_map = HashMap::new();
        for client in clients {
            let uris = client
                .redirect_uris
                .iter()
                .chain(&client.post_logout_redirect_uris)
                .chain(&client.backchannel_logout_uri);
            for uri in uris {
                if url::Url::parse(uri).is_err() {
                    return Err(BuildError::InvalidUri {
                        client_id: client.client_id.clone(),
                        uri: uri.clone(),
                    });
                }
            }
            let client_id = client.client_id.clone();
            if client_map.insert(client_id.clone(), client).is_some() {
                return Err(BuildError::DuplicateClient { client_id });
            }
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let shared = Shared {
            users: user_map,
            clients: client_map,
            settings: Settings {
                access_token_lifetime: self
                    .access_token_lifetime
                    .unwrap_or(Duration::from_secs(300)),
                id_token_lifetime: self.id_token_lifetime.unwrap_or(Duration::from_secs(300)),
                refresh_token_lifetime: self
                    .refresh_token_lifetime
                    .unwrap_or(Duration::from_secs(86_400)),
                code_lifetime: self.code_lifetime.unwrap_or(Duration::from_secs(60)),
                jwks_max_age: self.jwks_max_age.unwrap_or(Duration::from_secs(60)),
                algorithm: self.algorithm,
                allow_non_loopback: self.allow_non_loopback,
                issuer: self.issuer.map(|i| i.trim_end_matches('/').to_owned()),
                pushed_authorization: self.pushed_authorization,
                sign_in_note: self.sign_in_note,
            },
            keys: Mutex::new(KeyRing::generate(self.algorithm)?),
            store: Mutex::new(Store::default()),
            faults: Mutex::new(HashMap::new()),
            counts: Mutex::new(HashMap::new()),
            deliveries: Mutex::new(Vec::new()),
            http,
            clock_offset_secs: AtomicU64::new(0),
        };
        Ok(DevProvider {
            shared: Arc::new(shared),
        })
    }
}

impl DevProvider {
    /// A builder with no users, no clients (the demo set unless some are added), RS256 keys.
    pub fn builder() -> DevProviderBuilder {
        DevProviderBuilder::default()
    }

    /// Listens on `addr` (loopback only unless allowed) and serves until the returned handle
    /// is shut down or dropped. Port 0 picks a free port; the issuer is
    /// `http://<bound address>` unless configured.
    pub async fn serve(self, addr: SocketAddr) -> Result<RunningProvider, ServeError> {
        if !addr.ip().is_loopback() && !self.shared.settings.allow_non_loopback {
            return Err(ServeError::NonLoopback { addr });
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let issuer = match &self.shared.settings.issuer {
            Some(issuer) => Issuer::new(issuer.clone())?,
            None => Issuer::new(format!("http://{bound}"))?,
        };
        tracing::warn!(
            issuer = %issuer,
            "development OpenID Provider listening: NOT FOR PRODUCTION (test users, test keys)"
        );
        let mut running = RunningProvider {
            shared: self.shared,
            issuer,
            addr: bound,
            server: None,
        };
        running.spawn(listener);
        Ok(running)
    }
}

struct ServerHandle {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// A provider listening on a port. Dropping it stops the server.
///
/// Getters: [`issuer`](Self::issuer), [`addr`](Self::addr). Keys: [`rotate_keys`](Self::rotate_keys),
/// [`retire_old_keys`](Self::retire_old_keys). Scripted users: [`auto_approve`](Self::auto_approve),
/// [`mint_access_token`](Self::mint_access_token), [`logout_user`](Self::logout_user).
/// Hostility: [`fail`](Self::fail), [`fail_next`](Self::fail_next), [`stop`](Self::stop),
/// [`start`](Self::start), [`advance_clock`](Self::advance_clock).
pub struct RunningProvider {
    shared: Arc<Shared>,
    issuer: Issuer,
    addr: SocketAddr,
    server: Option<ServerHandle>,
}

impl std::fmt::Debug for RunningProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningProvider")
            .field("issuer", &self.issuer.as_str())
            .field("addr", &self.addr)
            .field("serving", &self.server.is_some())
            .finish()
    }
}

impl RunningProvider {
    fn spawn(&mut self, listener: tokio::net::TcpListener) {
        let router = crate::endpoints::router(self.shared.clone(), self.issuer.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "development provider server failed");
            }
        });
        self.server = Some(ServerHandle { shutdown: tx, task });
    }

    /// The issuer identifier (no trailing slash unless configured with one).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The issuer as a URL.
    pub fn issuer_url(&self) -> url::Url {
        self.issuer.url().clone()
    }

    /// The address the provider listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of an endpoint path such as `/token`, under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer.as_str().trim_end_matches('/'), path)
    }

    /// Adds a fresh key of the configured algorithm and makes it the signing key; the old keys
    /// stay in the JWKS until [`RunningProvider::retire_old_keys`]. Returns the new `kid`.
    pub fn rotate_keys(&self) -> Result<String, KeyError> {
        self.rotate_keys_to(self.shared.settings.algorithm)
    }

    /// Like [`RunningProvider::rotate_keys`], with a fresh key of `algorithm`.
    pub fn rotate_keys_to(&self, algorithm: SigningAlgorithm) -> Result<String, KeyError> {
        lock(&self.shared.keys).rotate(algorithm)
    }

    /// Removes every key but the signing key from the JWKS; returns how many were removed.
    pub fn retire_old_keys(&self) -> usize {
        lock(&self.shared.keys).retire_old()
    }

    /// The `kid` of the signing key.
    pub fn signing_kid(&self) -> String {
        lock(&self.shared.keys)
            .signing_kid()
            .unwrap_or_default()
            .to_owned()
    }

    /// The `kid`s in the JWKS, oldest first.
    pub fn published_kids(&self) -> Vec<String> {
        lock(&self.shared.keys).published_kids()
    }

    /// Scripted mode: while set, `/authorize` without a session signs `username` in at once
    /// (no form) and device authorizations are approved as this user; `None` turns it off.
    pub fn auto_approve(&self, username: Option<&str>) {
        lock(&self.shared.store).auto_approve = username.map(str::to_owned);
    }

    /// An access token for `username` and `client_id` with scope `openid profile email`, as
    /// if issued by the token endpoint (format and audience from the client), without a
    /// browser. It is active for introspection and userinfo.
    pub fn mint_access_token(&self, username: &str, client_id: &str) -> Result<String, MintError> {
        let shared = &self.shared;
        let user = shared
            .users
            .get(username)
            .ok_or_else(|| MintError::UnknownUser {
                username: username.to_owned(),
            })?;
        let client = shared
            .clients
            .get(client_id)
            .ok_or_else(|| MintError::UnknownClient {
                client_id: client_id.to_owned(),
            })?;
        let now = shared.now();
        let mut store = lock(&shared.store);
        let grant_id = store.add_grant(Grant {
            client_id: client.client_id.clone(),
            subject: Subject::User {
                username: user.username.clone(),
                sid: None,
                auth_time: now,
            },
            scope: "openid profile email".into(),
            revoked: false,
        });
        crate::endpoints::issue_access_token(shared, &self.issuer, &mut store, grant_id, now)
            .map_err(|e| MintError::from_issue(e, client_id))
    }

    /// `claims` signed as an access token (`typ: at+jwt`) with the current signing key,
    /// whatever they say: for tests of tokens the provider would never issue (expired, for
    /// another audience, with odd claims). The token is not recorded, so introspection calls it
    /// inactive.
    pub fn sign_access_token(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, MintError> {
        Ok(lock(&self.shared.keys).sign("at+jwt", claims)?)
    }

    /// The token response the token endpoint would give `client_id` after `username` signed
    /// in with `scope` (ID token with `sid` and `auth_time`, access token, refresh token), as
    /// JSON, without a browser. The user gets a fresh provider session, so
    /// [`RunningProvider::logout_user`] notifies `client_id` over the back channel.
    pub fn mint_tokens(
        &self,
        username: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<serde_json::Value, MintError> {
        let shared = &self.shared;
        let user = shared
            .users
            .get(username)
            .ok_or_else(|| MintError::UnknownUser {
                username: username.to_owned(),
            })?;
        let client = shared
            .clients
            .get(client_id)
            .ok_or_else(|| MintError::UnknownClient {
                client_id: client_id.to_owned(),
            })?;
        let now = shared.now();
        let mut store = lock(&shared.store);
        let cookie = store.open_session(&user.username, now);
        let sid = store.sessions.get_mut(&cookie).map(|session| {
            session.clients.insert(client.client_id.clone());
            session.sid.clone()
        });
        let grant_id = store.add_grant(Grant {
            client_id: client.client_id.clone(),
            subject: Subject::User {
                username: user.username.clone(),
                sid,
                auth_time: now,
            },
            scope: scope.to_owned(),
            revoked: false,
        });
        crate::endpoints::issue_token_response(
            shared,
            &self.issuer,
            &mut store,
            grant_id,
            None,
            true,
            now,
        )
        .map_err(|e| MintError::from_issue(e, client_id))
    }

    /// Ends every browser session of `username` (as an RP-initiated logout would) and sends
    /// back-channel logout tokens to the clients of those sessions; returns the deliveries.
    pub async fn logout_user(&self, username: &str) -> Vec<BackchannelDelivery> {
        let ended = lock(&self.shared.store).end_sessions(|s| s.username == username);
        crate::endpoints::send_backchannel_logouts(&self.shared, &self.issuer, &ended).await
    }

    /// Every back-channel logout delivery so far, oldest first.
    pub fn backchannel_deliveries(&self) -> Vec<BackchannelDelivery> {
        lock(&self.shared.deliveries).clone()
    }

    /// Answers every request to `endpoint` with `fault` until [`RunningProvider::clear_faults`].
    pub fn fail(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.shared.faults).insert(
            endpoint,
            FaultPlan {
                fault,
                remaining: None,
            },
        );
    }

    /// Answers the next `times` requests to `endpoint` with `fault`, then normally again.
    pub fn fail_next(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        lock(&self.shared.faults).insert(
            endpoint,
            FaultPlan {
                fault,
                remaining: Some(times),
            },
        );
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// How many requests `endpoint` has received (faulted ones included).
    pub fn request_count(&self, endpoint: Endpoint) -> u64 {
        lock(&self.shared.counts)
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Moves the provider's clock forward: codes, tokens and sessions age by `by`, and new
    /// tokens carry the shifted `iat`/`exp`.
    pub fn advance_clock(&self, by: Duration) {
        self.shared
            .clock_offset_secs
            .fetch_add(by.as_secs(), Ordering::Relaxed);
    }

    /// Stops listening (the port is released; state and keys are kept). Requests fail with a
    /// connection error until [`RunningProvider::start`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            let mut task = server.task;
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Listens again on the same address after [`RunningProvider::stop`]; does nothing when
    /// already serving.
    pub async fn start(&mut self) -> Result<(), ServeError> {
        if self.server.is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: self.addr,
                source,
            })?;
        self.spawn(listener);
        Ok(())
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }
}

impl Drop for RunningProvider {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
        }
    }
}
