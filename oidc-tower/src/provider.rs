//! One shared handle per OpenID Provider: metadata discovered at start, keys kept fresh in the
//! background, tokens validated against them, and a set of providers picked by `iss`.
//!
//! A [`Provider`] is cheap to clone and fits in axum `State`. Starting it spawns one tokio task
//! that drives the core's [`Refresh`] schedule: it discovers the provider (retrying with
//! exponential backoff while it is down), fetches its keys and refreshes them before they go
//! stale, and discovers the provider again every [`ProviderConfig::rediscovery_interval`] (24 h
//! by default) so that moved endpoints and a new `jwks_uri` are followed; a failed re-discovery
//! keeps the last good metadata and is retried with backoff. The schedule decides all of these
//! timings; the task sleeps until something is due, does the fetch asked for and reports how it
//! went. The task ends when the last handle is dropped.
//! Keys live in an [`ArcSwap`], so any number of requests read them without waiting on each
//! other; while the provider is unreachable, requests keep validating with the last good keys.
//!
//! A token signed with a key the set does not hold (an unknown `kid`, e.g. right after a
//! rotation) triggers a refetch, limited by the same schedule and single-flight:
//! concurrent requests with the same unknown `kid` cause one fetch, and the others use its
//! result. Tokens validated elsewhere (ID tokens at login, logout tokens) take the same path
//! through [`Provider::refresh_keys_for_unknown_kid`]. Validated tokens are cached, keyed by a
//! per-process fingerprint of the whole token, until their `exp` or the cache's maximum age,
//! whichever comes first.
//!
//! Tokens are judged, and fetched keys dated, at the time of day of the provider's
//! [`Clock`] ([`ProviderConfig::clock`], the system's by default); the schedule runs on tokio's
//! monotonic clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use oidc_core::ErrorKind;
use oidc_core::Issuer;
use oidc_core::UnixTime;
use oidc_core::danger::decode_unverified;
use oidc_core::discovery::{DiscoveryError, DiscoveryOptions, ProviderMetadata, parse_discovery};
use oidc_core::jwks::{FreshnessPolicy, JwksError, KeySet, jwks_request};
use oidc_core::jws::JwsError;
use oidc_core::refresh::{Action, Refresh, RefreshTimings};
use oidc_core::validation::{Policy, ValidatedToken, ValidationError, validate};
use tokio::sync::{Mutex, watch};

use crate::clock::{Clock, MonotonicClock, SystemClock};
use crate::fingerprint::{Fingerprint, Fingerprints};
use crate::http_client::{HttpClient, HttpError};

/// Why a provider could not be used or a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// Discovery or the first key fetch has not succeeded yet.
    #[error("the provider {issuer} is not ready: its metadata or keys have not been fetched yet")]
    NotReady {
        /// The provider's issuer.
        issuer: String,
    },
    /// A provider call failed in transport.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The discovery answer was rejected.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The key set answer was rejected.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// The token was rejected.
    #[error(transparent)]
    Rejected(#[from] ValidationError),
    /// The token could not be read to find its issuer.
    #[error("the token is not a JWT: {0}")]
    Malformed(#[from] JwsError),
    /// No configured provider has the token's issuer.
    #[error("no provider is configured for the issuer {iss:?}")]
    UnknownIssuer {
        /// The token's unverified `iss` (`None` when it has none).
        iss: Option<String>,
    },
}

impl ProviderError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::NotReady { .. } => ErrorKind::ProviderNotReady,
            ProviderError::Http(e) => e.kind(),
            ProviderError::Discovery(e) => e.kind(),
            ProviderError::Jwks(e) => e.kind(),
            ProviderError::Rejected(e) => e.kind(),
            ProviderError::Malformed(e) => e.kind(),
            ProviderError::UnknownIssuer { .. } => ErrorKind::UnknownIssuer,
        }
    }

    /// A stable snake_case code: the inner error's code, or this error's own.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Whether the token itself was judged and refused (as opposed to the provider being
    /// unavailable): a 401 rather than a 503.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ProviderError::Rejected(_)
                | ProviderError::Malformed(_)
                | ProviderError::UnknownIssuer { .. }
        )
    }
}

pub use oidc_core::refresh::{DEFAULT_REDISCOVERY_INTERVAL, MIN_REDISCOVERY_INTERVAL};

/// How a [`Provider`] is run: issuer, validation policy, the timings of its I/O and its clock.
#[derive(Clone, Debug)]
#[must_use]
pub struct ProviderConfig {
    issuer: Issuer,
    policy: Policy,
    discovery: DiscoveryOptions,
    freshness: FreshnessPolicy,
    timings: RefreshTimings,
    cache_capacity: u64,
    cache_max_age: Duration,
    clock: Arc<dyn Clock>,
}

impl ProviderConfig {
    /// A provider for `issuer` whose tokens are checked with `policy`. Defaults: keys fresh for
    /// the core's [`FreshnessPolicy`], refreshed 30 s before they go stale, at most one
    /// unknown-`kid` refetch every 10 s, discovery again every 24 h, retries from 1 s up to
    /// 60 s, up to 10 000 cached tokens for at most 5 minutes each, and the system's time of
    /// day.
    pub fn new(issuer: Issuer, policy: Policy) -> Self {
        ProviderConfig {
            issuer,
            policy,
            discovery: DiscoveryOptions::new(),
            freshness: FreshnessPolicy::default(),
            timings: RefreshTimings::default(),
            cache_capacity: 10_000,
            cache_max_age: Duration::from_secs(300),
            clock: crate::clock::system(),
        }
    }

    /// The clock [`Provider::validate`] judges tokens (and serves cached ones) at, and fetched
    /// keys are dated by (default: the system's,
    /// [`SystemClock`]). The background schedule does not read it: it runs on
    /// tokio's monotonic clock. An [`AuthConfig`](crate::auth::AuthConfig) judges the tokens
    /// it validates at its own clock
    /// ([`AuthConfig::clock`](crate::auth::AuthConfig::clock)).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Discovery options (e.g. an Entra ID issuer template).
    pub fn discovery(mut self, options: DiscoveryOptions) -> Self {
        self.discovery = options;
        self
    }

    /// How long fetched keys stay fresh.
    pub fn freshness(mut self, freshness: FreshnessPolicy) -> Self {
        self.freshness = freshness;
        self
    }

    /// The shortest time between two refetches caused by unknown `kid`s.
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.timings = self.timings.refetch_interval(interval);
        self
    }

    /// How long before the keys go stale the background refresh runs.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.timings = self.timings.refresh_margin(margin);
        self
    }

    /// How often the provider's metadata is discovered again (at least every
    /// [`MIN_REDISCOVERY_INTERVAL`]; shorter intervals are raised to it).
    pub fn rediscovery_interval(mut self, interval: Duration) -> Self {
        self.timings = self.timings.rediscovery_interval(interval);
        self
    }

    /// The first and the longest wait between retries while the provider is unreachable (at
    /// least [`MIN_RETRY_WAIT`](oidc_core::refresh::MIN_RETRY_WAIT) each).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.timings = self.timings.retry_backoff(initial, max);
        self
    }

    /// How many validated tokens are cached (0 turns the cache off) and for how long at most.
    pub fn token_cache(mut self, capacity: u64, max_age: Duration) -> Self {
        self.cache_capacity = capacity;
        self.cache_max_age = max_age;
        self
    }
}

/// A shared, cheaply cloned handle on one provider. See the [module docs](self).
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProviderConfig,
    client: Arc<dyn HttpClient>,
    metadata: ArcSwapOption<ProviderMetadata>,
    keys: ArcSwapOption<KeySet>,
    ready: watch::Sender<bool>,
    /// When to discover and fetch keys, and whether an unknown `kid` may cause a fetch.
    schedule: std::sync::Mutex<Refresh>,
    /// The schedule's clock.
    clock: MonotonicClock,
    /// Held while an unknown-`kid` refetch runs: the single flight.
    refetch: Mutex<()>,
    cache: moka::sync::Cache<Fingerprint, CachedToken>,
    fingerprints: Fingerprints,
    key_fetches: AtomicU64,
    discoveries: AtomicU64,
    last_error: ArcSwap<Option<ProviderError>>,
    /// Dropped with the last handle, which tells the background task to stop.
    _shutdown: watch::Sender<()>,
}

/// A validated token: served while the provider's clock reads before `until`; the cache drops
/// it after `ttl` (the same span, on the cache's own clock) to free the memory.
#[derive(Clone)]
struct CachedToken {
    token: Arc<ValidatedToken>,
    until: UnixTime,
    ttl: Duration,
}

struct CacheExpiry;

impl moka::Expiry<Fingerprint, CachedToken> for CacheExpiry {
    fn expire_after_create(
        &self,
        _key: &Fingerprint,
        value: &CachedToken,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &Fingerprint,
        value: &CachedToken,
        _updated_at: std::time::Instant,
        _until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.inner.config.issuer.as_str())
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Creates the handle and spawns its background task (discovery, key fetch, refresh).
    ///
    /// Must be called inside a tokio runtime. The handle is usable at once; until the first
    /// keys arrive, [`Provider::validate`] answers [`ProviderError::NotReady`]. Await
    /// [`Provider::wait_ready`] to start serving only once the provider is reachable.
    pub fn start(config: ProviderConfig, client: Arc<dyn HttpClient>) -> Provider {
        let (ready, _) = watch::channel(false);
        let (shutdown, shutdown_rx) = watch::channel(());
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_capacity)
            .expire_after(CacheExpiry)
            .build();
        let inner = Arc::new(Inner {
            schedule: std::sync::Mutex::new(Refresh::new(config.timings)),
            clock: MonotonicClock::start(),
            refetch: Mutex::new(()),
            config,
            client,
            metadata: ArcSwapOption::empty(),
            keys: ArcSwapOption::empty(),
            ready,
            cache,
            fingerprints: Fingerprints::new(),
            key_fetches: AtomicU64::new(0),
            discoveries: AtomicU64::new(0),
            last_error: ArcSwap::from_pointee(None),
            _shutdown: shutdown,
        });
        tokio::spawn(background(Arc::downgrade(&inner), shutdown_rx));
        Provider { inner }
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.config.issuer
    }

    /// The validation policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.config.policy
    }

    /// Whether a token's `iss` (and `tid`, for a tenant template) names this provider: its
    /// issuer exactly, or its discovery issuer template for that tenant.
    pub fn is_issuer_of(&self, iss: &str, tenant_id: Option<&str>) -> bool {
        self.issuer().matches(iss)
            || match (self.inner.config.discovery.template(), tenant_id) {
                (Some(template), Some(tid)) => template.matches(iss, tid),
                _ => false,
            }
    }

    /// Whether metadata and keys have been fetched.
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// Waits until metadata and keys have been fetched (retries go on in the background). This
    /// waits as long as the provider cannot be reached; [`Provider::ready_within`] gives up
    /// after a while with the reason.
    pub async fn wait_ready(&self) {
        let mut ready = self.inner.ready.subscribe();
        // The sender lives in `self.inner`, so the channel cannot close while we wait.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// Waits at most `limit` for metadata and keys; on time-out, the error of the latest
    /// failed provider call (a mistyped issuer shows up here as its discovery error), or
    /// [`ProviderError::NotReady`] when no call has failed yet.
    pub async fn ready_within(&self, limit: Duration) -> Result<(), ProviderError> {
        match tokio::time::timeout(limit, self.wait_ready()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.last_error().unwrap_or_else(|| self.not_ready())),
        }
    }

    /// The discovered metadata, once fetched.
    pub fn metadata(&self) -> Option<Arc<ProviderMetadata>> {
        self.inner.metadata.load_full()
    }

    /// The current keys, once fetched.
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.inner.keys.load_full()
    }

    /// Whether the current keys hold `kid`: a token verified with a key that a refresh has
    /// since withdrawn stops being vouched for, even from a cache.
    pub(crate) fn holds_kid(&self, kid: &str) -> bool {
        self.inner
            .keys
            .load()
            .as_ref()
            .is_some_and(|keys| keys.contains_kid(kid))
    }

    /// How many key set fetches were made so far (scheduled and unknown-`kid` ones).
    pub fn key_fetches(&self) -> u64 {
        self.inner.key_fetches.load(Ordering::Relaxed)
    }

    /// How many discovery requests were made so far (the first ones and the periodic ones).
    pub fn discoveries(&self) -> u64 {
        self.inner.discoveries.load(Ordering::Relaxed)
    }

    /// The error of the latest failed provider call, cleared by the next success.
    pub fn last_error(&self) -> Option<ProviderError> {
        self.inner.last_error.load().as_ref().clone()
    }

    /// Validates `token` with the current keys and the policy at the time of day of the
    /// provider's clock, refetching the keys once (rate-limited, single-flight) when the token
    /// names a key the set does not hold.
    pub async fn validate(&self, token: &str) -> Result<Arc<ValidatedToken>, ProviderError> {
        let cache_key = self.inner.fingerprints.of(token.as_bytes());
        let now = self.inner.config.clock.now();
        if let Some(key) = cache_key
            && let Some(hit) = self.inner.cache.get(&key)
        {
            match hit.token.header.kid.as_deref() {
                Some(kid) if !self.holds_kid(kid) => self.inner.cache.invalidate(&key),
                // Past its end on the clock: validated again (and refused if expired), whether
                // or not the cache has dropped it yet.
                _ if now >= hit.until => self.inner.cache.invalidate(&key),
                _ => return Ok(hit.token),
            }
        }
        let validated = Arc::new(
            self.validate_uncached_with(token, &self.inner.config.policy, now)
                .await?,
        );
        if let (Some(ttl), Some(cache_key)) = (self.token_cache_ttl(&validated, now), cache_key) {
            self.inner.cache.insert(
                cache_key,
                CachedToken {
                    token: validated.clone(),
                    until: now.saturating_add(ttl),
                    ttl,
                },
            );
        }
        Ok(validated)
    }

    /// [`Provider::validate`] at `now`, without its cache and under `policy` instead of the
    /// provider's own (the same issuer's policy with more audiences, say): for callers that
    /// cache what they make of the token themselves (one cache entry per token, not two) and
    /// read the time of day from their own clock.
    pub(crate) async fn validate_uncached_with(
        &self,
        token: &str,
        policy: &Policy,
        now: UnixTime,
    ) -> Result<ValidatedToken, ProviderError> {
        let keys = self.keys().ok_or_else(|| self.not_ready())?;
        let validated = match validate(token, &keys, policy, now) {
            Err(ValidationError::UnknownKid { kid }) => {
                match self.refresh_keys_for_unknown_kid(Some(&kid)).await {
                    Ok(fresh) => validate(token, &fresh, policy, now)?,
                    // The token is judged on the keys there are: an outage during the refetch
                    // does not turn a token nobody can verify into a 503.
                    Err(_) => return Err(ValidationError::UnknownKid { kid }.into()),
                }
            }
            other => other?,
        };
        Ok(validated)
    }

    /// The keys to check a token naming `kid` against, fetched again when the current set does
    /// not hold it: for ID tokens, logout tokens and anything else validated outside
    /// [`Provider::validate`].
    ///
    /// Returns the current keys without fetching when they hold `kid`, when another caller
    /// fetched the keys while this one waited (single flight: one fetch for any number of
    /// concurrent callers), or when the schedule allows no refetch yet (so a flood of
    /// tokens with invented `kid`s costs at most one fetch per refetch interval). With `kid`
    /// `None` (a token without one), a fetch is made under the same rules. Fails with
    /// [`ProviderError::NotReady`] before the first keys, and with the fetch's error when the
    /// provider cannot be reached (the current keys stay in use).
    pub async fn refresh_keys_for_unknown_kid(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<KeySet>, ProviderError> {
        let seen = self.keys().ok_or_else(|| self.not_ready())?;
        if kid.is_some_and(|kid| seen.contains_kid(kid)) {
            return Ok(seen);
        }
        let _single_flight = self.inner.refetch.lock().await;
        let current = self.keys().ok_or_else(|| self.not_ready())?;
        if !Arc::ptr_eq(&current, &seen) || !self.inner.may_refetch_for_unknown_kid() {
            return Ok(current);
        }
        let metadata = self.metadata().ok_or_else(|| self.not_ready())?;
        tracing::debug!(issuer = %self.issuer(), "fetching the keys again for an unknown kid");
        fetch_keys(&self.inner, &metadata).await
    }

    /// How long from `now` a validated token may be served from the cache: until its `exp`, at
    /// most the configured maximum age; not at all without `exp`.
    pub(crate) fn token_cache_ttl(
        &self,
        token: &ValidatedToken,
        now: UnixTime,
    ) -> Option<Duration> {
        let exp = token.claims.exp?;
        let left = exp.duration_since(now);
        let ttl = left.min(self.inner.config.cache_max_age);
        (!ttl.is_zero() && self.inner.config.cache_capacity > 0).then_some(ttl)
    }

    /// How many validated tokens the cache holds at most (0: no cache).
    pub(crate) fn token_cache_capacity(&self) -> u64 {
        self.inner.config.cache_capacity
    }

    fn not_ready(&self) -> ProviderError {
        self.inner.not_ready()
    }
}

/// Several providers at once, each with its own policy; a token goes to the provider its
/// (unverified) `iss` names, and is then fully validated by that provider.
#[derive(Clone, Debug, Default)]
pub struct Providers {
    providers: Vec<Provider>,
}

impl Providers {
    /// A set of providers.
    pub fn new(providers: impl IntoIterator<Item = Provider>) -> Self {
        Providers {
            providers: providers.into_iter().collect(),
        }
    }

    /// The providers, in the order given.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider for an `iss` value: the one whose issuer equals it exactly, or whose
    /// discovery issuer template matches it for the token's `tid`.
    pub fn for_issuer(&self, iss: &str, tenant_id: Option<&str>) -> Option<&Provider> {
        self.providers
            .iter()
            .find(|p| p.is_issuer_of(iss, tenant_id))
    }

    /// Waits until every provider is ready.
    pub async fn wait_ready(&self) {
        for provider in &self.providers {
            provider.wait_ready().await;
        }
    }

    /// Picks the provider by the token's unverified `iss` and validates the token with it.
    pub async fn validate(&self, token: &str) -> Result<Arc<ValidatedToken>, ProviderError> {
        let unverified = decode_unverified(token)?;
        let iss = unverified.claims.get("iss").and_then(|v| v.as_str());
        let tid = unverified.claims.get("tid").and_then(|v| v.as_str());
        let provider = iss
            .and_then(|iss| self.for_issuer(iss, tid))
            .ok_or_else(|| ProviderError::UnknownIssuer {
                iss: iss.map(str::to_owned),
            })?;
        provider.validate(token).await
    }
}

/// The SHA-256 of `bytes`: the key of the login and refresh bookkeeping, so that it holds no
/// state or refresh token itself.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn record<T>(inner: &Inner, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    match &result {
        Ok(_) => inner.last_error.store(Arc::new(None)),
        Err(error) => {
            tracing::warn!(issuer = %inner.config.issuer, code = error.code(), %error, "provider call failed");
            inner.last_error.store(Arc::new(Some(error.clone())));
        }
    }
    result
}

async fn discover(inner: &Inner) -> Result<ProviderMetadata, ProviderError> {
    inner.discoveries.fetch_add(1, Ordering::Relaxed);
    let result = fetch_metadata(
        inner.client.as_ref(),
        &inner.config.issuer,
        &inner.config.discovery,
    )
    .await
    .map_err(ProviderError::from);
    record(inner, result)
}

async fn fetch_keys(
    inner: &Inner,
    metadata: &ProviderMetadata,
) -> Result<Arc<KeySet>, ProviderError> {
    inner.key_fetches.fetch_add(1, Ordering::Relaxed);
    let result = fetch_key_set_on(
        inner.client.as_ref(),
        &metadata.jwks_uri,
        &inner.config.freshness,
        inner.config.clock.as_ref(),
    )
    .await
    .map_err(ProviderError::from);
    let keys = Arc::new(record(inner, result)?);
    inner.keys.store(Some(keys.clone()));
    inner.ready.send_replace(true);
    Ok(keys)
}

/// Why fetching a provider's metadata or keys once failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed in transport.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The discovery answer was rejected.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The key set answer was rejected.
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

impl FetchError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FetchError::Http(e) => e.kind(),
            FetchError::Discovery(e) => e.kind(),
            FetchError::Jwks(e) => e.kind(),
        }
    }

    /// A stable snake_case code: the inner error's code.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl From<FetchError> for ProviderError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Http(e) => ProviderError::Http(e),
            FetchError::Discovery(e) => ProviderError::Discovery(e),
            FetchError::Jwks(e) => ProviderError::Jwks(e),
        }
    }
}

/// Fetches `issuer`'s discovery document once and checks it under `options`: the core's
/// [`discovery_request`](oidc_core::discovery::discovery_request) sent through `client`, its
/// answer read by [`parse_discovery`]. The [`Provider`] task does this on its schedule; a
/// command-line tool or a check calls it directly.
pub async fn fetch_metadata(
    client: &dyn HttpClient,
    issuer: &Issuer,
    options: &DiscoveryOptions,
) -> Result<ProviderMetadata, FetchError> {
    let response = client
        .execute(oidc_core::discovery::discovery_request(issuer))
        .await?;
    Ok(parse_discovery(issuer, options, &response)?)
}

/// Fetches the key set at `jwks_uri` once, its freshness judged under `freshness` from the time
/// of day ([`now`](crate::clock::now)) when the answer arrived.
pub async fn fetch_key_set(
    client: &dyn HttpClient,
    jwks_uri: &url::Url,
    freshness: &FreshnessPolicy,
) -> Result<KeySet, FetchError> {
    fetch_key_set_on(client, jwks_uri, freshness, &SystemClock).await
}

/// [`fetch_key_set`], dated by `clock` instead of the time of day: a key set judged as of
/// another time (`oidc verify --now`) or a simulated one.
pub async fn fetch_key_set_on(
    client: &dyn HttpClient,
    jwks_uri: &url::Url,
    freshness: &FreshnessPolicy,
    clock: &dyn Clock,
) -> Result<KeySet, FetchError> {
    let response = client.execute(jwks_request(jwks_uri)).await?;
    Ok(KeySet::from_response(&response, clock.now(), freshness)?)
}

/// Fetches `issuer`'s metadata and then the key set it names, once each, with the default
/// discovery options and key freshness. Use [`fetch_metadata`] and [`fetch_key_set`] to report
/// on each step, or to fetch the keys only when they are needed.
pub async fn fetch_metadata_and_keys(
    client: &dyn HttpClient,
    issuer: &Issuer,
) -> Result<(ProviderMetadata, KeySet), FetchError> {
    let metadata = fetch_metadata(client, issuer, &DiscoveryOptions::new()).await?;
    let keys = fetch_key_set(client, &metadata.jwks_uri, &FreshnessPolicy::default()).await?;
    Ok((metadata, keys))
}

impl Inner {
    fn schedule(&self) -> MutexGuard<'_, Refresh> {
        // The schedule holds plain values that each of its methods leaves consistent.
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn may_refetch_for_unknown_kid(&self) -> bool {
        let at = self.clock.now();
        self.schedule().may_refetch_for_unknown_kid(at)
    }

    /// Does whatever the schedule says is due (a discovery, a key fetch, or both in turn) and
    /// answers when something is due again.
    async fn run_due(&self) -> tokio::time::Instant {
        loop {
            let Some(action) = self.schedule().poll(self.clock.now()) else {
                break;
            };
            match action {
                Action::Discover => {
                    let result = discover(self).await;
                    let moved = self
                        .schedule()
                        .on_discovery(self.clock.now(), result.as_ref());
                    if let Ok(metadata) = result {
                        if moved {
                            tracing::info!(issuer = %self.config.issuer, jwks_uri = %metadata.jwks_uri, "the key set moved");
                        }
                        self.metadata.store(Some(Arc::new(metadata)));
                    }
                }
                Action::FetchKeys => {
                    let result = match self.metadata.load_full() {
                        Some(metadata) => fetch_keys(self, &metadata).await,
                        None => Err(self.not_ready()),
                    };
                    let fresh_for = result
                        .map(|keys| keys.refresh_at().duration_since(self.config.clock.now()));
                    self.schedule().on_keys(self.clock.now(), fresh_for);
                }
            }
        }
        let due = self.schedule().next_due();
        self.clock.instant(due)
    }

    fn not_ready(&self) -> ProviderError {
        ProviderError::NotReady {
            issuer: self.config.issuer.to_string(),
        }
    }
}

/// Drives the schedule until `shutdown` closes (the last handle was dropped).
async fn background(inner: std::sync::Weak<Inner>, mut shutdown: watch::Receiver<()>) {
    loop {
        let due = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            inner.run_due().await
        };
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[test]
    fn handles_are_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Provider>();
        check::<Providers>();
    }

    #[test]
    fn the_configured_timings_are_the_schedules() {
        let issuer = Issuer::new("https://op.example").unwrap();
        let policy = Policy::builder()
            .issuer(issuer.clone())
            .audience("api")
            .build()
            .unwrap();
        let config = ProviderConfig::new(issuer, policy);
        assert_eq!(config.timings, RefreshTimings::default());
        let config = config
            .rediscovery_interval(Duration::ZERO)
            .retry_backoff(Duration::from_secs(1), Duration::from_secs(5))
            .refresh_margin(Duration::from_secs(7))
            .refetch_interval(Duration::from_secs(3));
        let expected = RefreshTimings::default()
            .rediscovery_interval(MIN_REDISCOVERY_INTERVAL)
            .retry_backoff(Duration::from_secs(1), Duration::from_secs(5))
            .refresh_margin(Duration::from_secs(7))
            .refetch_interval(Duration::from_secs(3));
        assert_eq!(config.timings, expected);
    }

    /// A provider answered from memory, so that a test runtime with paused time drives the
    /// background task exactly: no answer ever waits on the network.
    struct InMemoryOp {
        issuer: Issuer,
        jwks: String,
        discovery_down: AtomicBool,
        keys_down: AtomicBool,
    }

    impl InMemoryOp {
        fn new() -> Arc<InMemoryOp> {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
            use base64::Engine as _;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
            // An uncompressed point: 0x04, then x and y.
            let point = pair.public_key().as_ref();
            let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let jwks = serde_json::json!({ "keys": [{
                "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
                "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            }]});
            Arc::new(InMemoryOp {
                issuer: Issuer::new("https://op.example").unwrap(),
                jwks: jwks.to_string(),
                discovery_down: AtomicBool::new(false),
                keys_down: AtomicBool::new(false),
            })
        }

        fn config(&self) -> ProviderConfig {
            let policy = Policy::builder()
                .issuer(self.issuer.clone())
                .audience("api")
                .build()
                .unwrap();
            ProviderConfig::new(self.issuer.clone(), policy)
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for InMemoryOp {
        async fn execute(
            &self,
            request: http::Request<Vec<u8>>,
        ) -> Result<http::Response<bytes::Bytes>, HttpError> {
            let (down, body) = match request.uri().path() {
                "/.well-known/openid-configuration" => (
                    &self.discovery_down,
                    serde_json::json!({
                        "issuer": "https://op.example",
                        "authorization_endpoint": "https://op.example/authorize",
                        "token_endpoint": "https://op.example/token",
                        "jwks_uri": "https://op.example/jwks",
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["ES256"],
                    })
                    .to_string(),
                ),
                _ => (&self.keys_down, self.jwks.clone()),
            };
            let status = if down.load(Ordering::SeqCst) {
                503
            } else {
                200
            };
            Ok(http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(bytes::Bytes::from(body))
                .unwrap())
        }
    }

    async fn started(op: &Arc<InMemoryOp>, config: ProviderConfig) -> Provider {
        let provider = Provider::start(config, op.clone());
        provider.wait_ready().await;
        provider
    }

    /// Lets `by` pass on the paused clock: every timer due meanwhile fires, in order.
    async fn let_pass(by: Duration) {
        tokio::time::sleep(by).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_discovers_again_each_interval() {
        let op = InMemoryOp::new();
        let config = op.config().rediscovery_interval(Duration::from_millis(300));
        let provider = started(&op, config).await;
        let first = provider.metadata().unwrap();
        let_pass(Duration::from_millis(1000)).await;
        assert_eq!(provider.discoveries(), 4, "at 0, 300, 600 and 900 ms");
        assert!(!Arc::ptr_eq(&first, &provider.metadata().unwrap()));
        assert_eq!(provider.key_fetches(), 1, "the key set did not move");
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_interval_discovers_once_a_day() {
        let op = InMemoryOp::new();
        let provider = started(&op, op.config()).await;
        let_pass(DEFAULT_REDISCOVERY_INTERVAL - Duration::from_secs(1)).await;
        assert_eq!(provider.discoveries(), 1);
        let_pass(Duration::from_secs(2)).await;
        assert_eq!(provider.discoveries(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_rediscovery_is_retried_and_keeps_the_metadata() {
        let op = InMemoryOp::new();
        let config = op
            .config()
            .rediscovery_interval(Duration::from_millis(300))
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(100));
        let provider = started(&op, config).await;
        let good = provider.metadata().unwrap();
        op.discovery_down.store(true, Ordering::SeqCst);
        // Due at 300 ms, then retried after 50 ms and every 100 ms: 300, 350, 450, ..., 950.
        let_pass(Duration::from_millis(1000)).await;
        assert_eq!(provider.discoveries(), 1 + 8);
        assert!(Arc::ptr_eq(&good, &provider.metadata().unwrap()), "kept");
        assert_eq!(
            provider.last_error().map(|e| e.code()),
            Some("provider_unexpected_status")
        );
        op.discovery_down.store(false, Ordering::SeqCst);
        let_pass(Duration::from_millis(100)).await;
        assert!(!Arc::ptr_eq(&good, &provider.metadata().unwrap()));
        assert_eq!(provider.last_error(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_refreshed_before_they_go_stale_and_retried_while_down() {
        let op = InMemoryOp::new();
        let config = op
            .config()
            .freshness(FreshnessPolicy::new(
                Duration::from_secs(60),
                Duration::from_secs(60),
                Duration::from_secs(60),
            ))
            .refresh_margin(Duration::from_secs(10))
            .retry_backoff(Duration::from_secs(1), Duration::from_secs(4));
        let provider = started(&op, config).await;
        assert_eq!(provider.key_fetches(), 1);
        // Fresh for 60 s (a second less when the wall clock ticks over meanwhile), refreshed
        // 10 s before.
        let_pass(Duration::from_secs(51)).await;
        assert_eq!(provider.key_fetches(), 2);
        op.keys_down.store(true, Ordering::SeqCst);
        // Due again at about 100 s, then retried after 1, 2 and 4 s.
        let_pass(Duration::from_secs(58)).await;
        assert_eq!(provider.key_fetches(), 2 + 4);
        assert!(
            provider.keys().unwrap().contains_kid("k1"),
            "the last good keys"
        );
        op.keys_down.store(false, Ordering::SeqCst);
        let_pass(Duration::from_secs(4)).await;
        assert_eq!(provider.last_error(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn start_retries_with_backoff_until_the_provider_is_up() {
        let op = InMemoryOp::new();
        op.discovery_down.store(true, Ordering::SeqCst);
        let config = op
            .config()
            .retry_backoff(Duration::from_secs(1), Duration::from_secs(8));
        let provider = Provider::start(config, op.clone());
        // Tries at 0, 1, 3, 7, 15 and 23 s.
        let_pass(Duration::from_secs(24)).await;
        assert!(!provider.is_ready());
        assert_eq!(provider.discoveries(), 6);
        assert_eq!(provider.key_fetches(), 0, "no keys without metadata");
        op.discovery_down.store(false, Ordering::SeqCst);
        let_pass(Duration::from_secs(8)).await;
        assert!(provider.is_ready());
        assert_eq!(provider.discoveries(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_kid_refetches_wait_for_the_refetch_interval() {
        let op = InMemoryOp::new();
        let config = op.config().refetch_interval(Duration::from_secs(10));
        let provider = started(&op, config).await;
        provider
            .refresh_keys_for_unknown_kid(Some("k2"))
            .await
            .unwrap();
        assert_eq!(
            provider.key_fetches(),
            2,
            "the first unknown kid costs one fetch"
        );
        let_pass(Duration::from_millis(9_999)).await;
        provider
            .refresh_keys_for_unknown_kid(Some("k3"))
            .await
            .unwrap();
        assert_eq!(provider.key_fetches(), 2, "not within the interval");
        let_pass(Duration::from_millis(1)).await;
        provider
            .refresh_keys_for_unknown_kid(Some("k3"))
            .await
            .unwrap();
        assert_eq!(provider.key_fetches(), 3);
    }

    /// [`Provider::validate`] judges tokens, cached ones too, at its clock's time: a cached
    /// token past `exp` on that clock is validated again and refused, although the cache's own
    /// expiry (on the real clock) has not come.
    #[tokio::test]
    async fn cached_tokens_are_judged_on_the_providers_clock() {
        use crate::clock::ManualClock;
        use oidc_dev_provider::{DevClient, DevProvider, DevUser};

        let op = DevProvider::builder()
            .user(DevUser::new("alice", "alice"))
            .client(DevClient::confidential("api", "api-secret"))
            .access_token_lifetime(Duration::from_secs(60))
            .build()
            .unwrap()
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let policy = Policy::builder()
            .issuer(op.issuer().clone())
            .audience("api")
            .leeway(Duration::ZERO)
            .build()
            .unwrap();
        let clock = ManualClock::starting_now();
        let config = ProviderConfig::new(op.issuer().clone(), policy).clock(clock.clone());
        let provider = Provider::start(config, Arc::new(crate::ReqwestHttpClient::new().unwrap()));
        provider.wait_ready().await;
        let token = op.mint_access_token("alice", "api").unwrap();
        let claims = decode_unverified(&token).unwrap().claims;
        let time = |name: &str| UnixTime::from_secs(claims[name].as_u64().unwrap());
        clock.set(time("iat"));
        let first = provider.validate(&token).await.unwrap();
        clock.set(time("exp").saturating_sub(Duration::from_secs(1)));
        assert!(
            Arc::ptr_eq(&first, &provider.validate(&token).await.unwrap()),
            "cached"
        );
        clock.set(time("exp"));
        let refused = provider.validate(&token).await.unwrap_err();
        assert_eq!(refused.code(), "expired", "{refused:?}");
    }

    #[test]
    fn rejections_are_told_apart_from_outages() {
        let issuer = "https://op.example".to_owned();
        assert!(!ProviderError::NotReady { issuer }.is_rejection());
        assert!(ProviderError::Rejected(ValidationError::BadSignature).is_rejection());
        assert_eq!(
            ProviderError::UnknownIssuer { iss: None }.code(),
            "unknown_issuer"
        );
    }
}
