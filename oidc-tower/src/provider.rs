//! One shared handle per OpenID Provider: metadata discovered at start, keys kept fresh in the
//! background, tokens validated against them, and a set of providers picked by `iss`.
//!
//! A [`Provider`] is cheap to clone and fits in axum `State`. Starting it spawns one tokio task
//! that discovers the provider (retrying with exponential backoff while it is down), fetches its
//! keys and refreshes them before they go stale, and discovers the provider again every
//! [`ProviderConfig::rediscovery_interval`] (24 h by default) so that moved endpoints and a new
//! `jwks_uri` are followed; a failed re-discovery keeps the last good metadata and is retried
//! with backoff. The task ends when the last handle is dropped.
//! Keys live in an [`ArcSwap`], so any number of requests read them without waiting on each
//! other; while the provider is unreachable, requests keep validating with the last good keys.
//!
//! A token signed with a key the set does not hold (an unknown `kid`, e.g. right after a
//! rotation) triggers a refetch, limited by the core's [`RefetchLimiter`] and single-flight:
//! concurrent requests with the same unknown `kid` cause one fetch, and the others use its
//! result. Tokens validated elsewhere (ID tokens at login, logout tokens) take the same path
//! through [`Provider::refresh_keys_for_unknown_kid`]. Validated tokens are cached, keyed by a
//! per-process fingerprint of the whole token, until their `exp` or the cache's maximum age,
//! whichever comes first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use oidc_core::ErrorKind;
use oidc_core::danger::decode_unverified;
use oidc_core::discovery::{DiscoveryError, DiscoveryOptions, ProviderMetadata, parse_discovery};
use oidc_core::jwks::{FreshnessPolicy, JwksError, KeySet, RefetchLimiter, jwks_request};
use oidc_core::jws::JwsError;
use oidc_core::validation::{Policy, ValidatedToken, ValidationError, validate};
use oidc_core::{Issuer, UnixTime};
use tokio::sync::{Mutex, watch};

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

/// How often the metadata is discovered again unless configured otherwise.
pub const DEFAULT_REDISCOVERY_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The shortest re-discovery interval accepted.
pub const MIN_REDISCOVERY_INTERVAL: Duration = Duration::from_millis(100);

/// How a [`Provider`] is run: issuer, validation policy, and the timings of its I/O.
#[derive(Clone, Debug)]
#[must_use]
pub struct ProviderConfig {
    issuer: Issuer,
    policy: Policy,
    discovery: DiscoveryOptions,
    freshness: FreshnessPolicy,
    refetch_interval: Duration,
    refresh_margin: Duration,
    rediscovery_interval: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    cache_capacity: u64,
    cache_max_age: Duration,
}

impl ProviderConfig {
    /// A provider for `issuer` whose tokens are checked with `policy`. Defaults: keys fresh for
    /// the core's [`FreshnessPolicy`], refreshed 30 s before they go stale, at most one
    /// unknown-`kid` refetch every 10 s, discovery again every 24 h, retries from 1 s up to
    /// 60 s, and up to 10 000 cached tokens for at most 5 minutes each.
    pub fn new(issuer: Issuer, policy: Policy) -> Self {
        ProviderConfig {
            issuer,
            policy,
            discovery: DiscoveryOptions::new(),
            freshness: FreshnessPolicy::default(),
            refetch_interval: Duration::from_secs(10),
            refresh_margin: Duration::from_secs(30),
            rediscovery_interval: DEFAULT_REDISCOVERY_INTERVAL,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            cache_capacity: 10_000,
            cache_max_age: Duration::from_secs(300),
        }
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
        self.refetch_interval = interval;
        self
    }

    /// How long before the keys go stale the background refresh runs.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// How often the provider's metadata is discovered again (at least every
    /// [`MIN_REDISCOVERY_INTERVAL`]; shorter intervals are raised to it).
    pub fn rediscovery_interval(mut self, interval: Duration) -> Self {
        self.rediscovery_interval = interval.max(MIN_REDISCOVERY_INTERVAL);
        self
    }

    /// The first and the longest wait between retries while the provider is unreachable.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max.max(initial);
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
    /// Held while an unknown-`kid` refetch runs: the single flight.
    refetch: Mutex<RefetchLimiter>,
    cache: moka::sync::Cache<Fingerprint, CachedToken>,
    fingerprints: Fingerprints,
    key_fetches: AtomicU64,
    discoveries: AtomicU64,
    last_error: ArcSwap<Option<ProviderError>>,
    /// Dropped with the last handle, which tells the background task to stop.
    _shutdown: watch::Sender<()>,
}

#[derive(Clone)]
struct CachedToken {
    token: Arc<ValidatedToken>,
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
            refetch: Mutex::new(RefetchLimiter::new(config.refetch_interval)),
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

    /// Validates `token` with the current keys and the policy, refetching the keys once
    /// (rate-limited, single-flight) when the token names a key the set does not hold.
    pub async fn validate(&self, token: &str) -> Result<Arc<ValidatedToken>, ProviderError> {
        let cache_key = self.inner.fingerprints.of(token.as_bytes());
        if let Some(key) = cache_key
            && let Some(hit) = self.inner.cache.get(&key)
        {
            match hit.token.header.kid.as_deref() {
                Some(kid) if !self.holds_kid(kid) => self.inner.cache.invalidate(&key),
                _ => return Ok(hit.token),
            }
        }
        let validated = Arc::new(self.validate_uncached(token).await?);
        if let (Some(ttl), Some(cache_key)) = (self.token_cache_ttl(&validated), cache_key) {
            self.inner.cache.insert(
                cache_key,
                CachedToken {
                    token: validated.clone(),
                    ttl,
                },
            );
        }
        Ok(validated)
    }

    /// [`Provider::validate`] without its cache, for callers that cache what they make of the
    /// token themselves (one cache entry per token, not two).
    pub(crate) async fn validate_uncached(
        &self,
        token: &str,
    ) -> Result<ValidatedToken, ProviderError> {
        self.validate_uncached_with(token, &self.inner.config.policy)
            .await
    }

    /// [`Provider::validate_uncached`] under `policy` instead of the provider's own (the same
    /// issuer's policy with more audiences, say).
    pub(crate) async fn validate_uncached_with(
        &self,
        token: &str,
        policy: &Policy,
    ) -> Result<ValidatedToken, ProviderError> {
        let keys = self.keys().ok_or_else(|| self.not_ready())?;
        let validated = match validate(token, &keys, policy, now()) {
            Err(ValidationError::UnknownKid { kid }) => {
                match self.refresh_keys_for_unknown_kid(Some(&kid)).await {
                    Ok(fresh) => validate(token, &fresh, policy, now())?,
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
    /// concurrent callers), or when the [`RefetchLimiter`] allows no fetch yet (so a flood of
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
        let mut limiter = self.inner.refetch.lock().await;
        let current = self.keys().ok_or_else(|| self.not_ready())?;
        if !Arc::ptr_eq(&current, &seen) || !limiter.try_acquire(now()) {
            return Ok(current);
        }
        let metadata = self.metadata().ok_or_else(|| self.not_ready())?;
        tracing::debug!(issuer = %self.issuer(), "fetching the keys again for an unknown kid");
        let fetched = fetch_keys(&self.inner, &metadata).await;
        drop(limiter);
        fetched
    }

    /// How long a validated token may be served from the cache: until its `exp`, at most the
    /// configured maximum age; not at all without `exp`.
    pub(crate) fn token_cache_ttl(&self, token: &ValidatedToken) -> Option<Duration> {
        let exp = token.claims.exp?;
        let left = exp.duration_since(now());
        let ttl = left.min(self.inner.config.cache_max_age);
        (!ttl.is_zero() && self.inner.config.cache_capacity > 0).then_some(ttl)
    }

    /// How many validated tokens the cache holds at most (0: no cache).
    pub(crate) fn token_cache_capacity(&self) -> u64 {
        self.inner.config.cache_capacity
    }

    fn not_ready(&self) -> ProviderError {
        ProviderError::NotReady {
            issuer: self.issuer().to_string(),
        }
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

/// The clock of this crate's decisions.
pub(crate) fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
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
    let issuer = &inner.config.issuer;
    inner.discoveries.fetch_add(1, Ordering::Relaxed);
    let result = async {
        let response = inner
            .client
            .execute(oidc_core::discovery::discovery_request(issuer))
            .await?;
        Ok(parse_discovery(issuer, &inner.config.discovery, &response)?)
    }
    .await;
    record(inner, result)
}

async fn fetch_keys(
    inner: &Inner,
    metadata: &ProviderMetadata,
) -> Result<Arc<KeySet>, ProviderError> {
    inner.key_fetches.fetch_add(1, Ordering::Relaxed);
    let result = async {
        let response = inner
            .client
            .execute(jwks_request(&metadata.jwks_uri))
            .await?;
        Ok(KeySet::from_response(
            &response,
            now(),
            &inner.config.freshness,
        )?)
    }
    .await;
    let keys = Arc::new(record(inner, result)?);
    inner.keys.store(Some(keys.clone()));
    inner.ready.send_replace(true);
    Ok(keys)
}

/// Discovery with retries, key refreshes before the keys go stale and periodic re-discovery,
/// until `shutdown` closes (the last handle was dropped).
async fn background(inner: std::sync::Weak<Inner>, mut shutdown: watch::Receiver<()>) {
    let Some(mut schedule) = inner.upgrade().map(|i| Schedule::new(&i.config)) else {
        return;
    };
    loop {
        let wait = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            schedule.run(&inner).await
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// When the background task next discovers and fetches keys, and how long it backs off after
/// failures of each.
struct Schedule {
    keys_due: Instant,
    discovery_due: Instant,
    keys_backoff: Backoff,
    discovery_backoff: Backoff,
}

impl Schedule {
    fn new(config: &ProviderConfig) -> Schedule {
        let now = Instant::now();
        Schedule {
            keys_due: now,
            discovery_due: now,
            keys_backoff: Backoff::new(config),
            discovery_backoff: Backoff::new(config),
        }
    }

    /// One round of background work: discover when there is no metadata yet or re-discovery is
    /// due, then fetch keys when due. Returns how long to wait before the next round.
    async fn run(&mut self, inner: &Inner) -> Duration {
        let interval = inner.config.rediscovery_interval;
        let metadata = match inner.metadata.load_full() {
            None => match discover(inner).await {
                Ok(metadata) => {
                    let metadata = Arc::new(metadata);
                    inner.metadata.store(Some(metadata.clone()));
                    self.discovery_due = Instant::now() + interval;
                    self.discovery_backoff.reset();
                    metadata
                }
                // Nothing to fetch keys for yet: the keys' backoff paces the first discovery.
                Err(_) => return self.keys_backoff.next(),
            },
            Some(current) if Instant::now() >= self.discovery_due => {
                match discover(inner).await {
                    Ok(fresh) => {
                        let fresh = Arc::new(fresh);
                        if fresh.jwks_uri != current.jwks_uri {
                            tracing::info!(issuer = %inner.config.issuer, jwks_uri = %fresh.jwks_uri, "the key set moved");
                            self.keys_due = Instant::now();
                        }
                        inner.metadata.store(Some(fresh.clone()));
                        self.discovery_due = Instant::now() + interval;
                        self.discovery_backoff.reset();
                        fresh
                    }
                    Err(_) => {
                        // Keep serving with the last good metadata; try again soon.
                        self.discovery_due = Instant::now() + self.discovery_backoff.next();
                        current
                    }
                }
            }
            Some(current) => current,
        };
        if Instant::now() >= self.keys_due {
            // A scheduled fetch does not use up the unknown-kid budget: a provider that rotates
            // right after it must still be followed at once. Floods stay bounded, since only
            // unknown-kid fetches are limited and scheduled ones keep their own pace.
            self.keys_due = match fetch_keys(inner, &metadata).await {
                Ok(keys) => {
                    self.keys_backoff.reset();
                    let refresh_in = keys
                        .refresh_at()
                        .duration_since(now())
                        .saturating_sub(inner.config.refresh_margin);
                    Instant::now() + refresh_in.max(Duration::from_secs(1))
                }
                Err(_) => Instant::now() + self.keys_backoff.next(),
            };
        }
        self.keys_due
            .min(self.discovery_due)
            .saturating_duration_since(Instant::now())
    }
}

/// Exponential backoff between the configured first and longest waits.
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(config: &ProviderConfig) -> Backoff {
        Backoff {
            initial: config.retry_initial,
            max: config.retry_max,
            next: config.retry_initial,
        }
    }

    /// The wait before the next attempt; the one after it doubles, up to the maximum.
    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Provider>();
        check::<Providers>();
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let policy = Policy::builder()
            .issuer(Issuer::new("https://op.example").unwrap())
            .audience("api")
            .build()
            .unwrap();
        let config = ProviderConfig::new(Issuer::new("https://op.example").unwrap(), policy)
            .retry_backoff(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(config.rediscovery_interval, DEFAULT_REDISCOVERY_INTERVAL);
        let mut backoff = Backoff::new(&config);
        let waits: Vec<u64> = (0..5).map(|_| backoff.next().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_secs(1));
        let config = config.rediscovery_interval(Duration::ZERO);
        assert_eq!(config.rediscovery_interval, MIN_REDISCOVERY_INTERVAL);
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
