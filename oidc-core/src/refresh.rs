//! When a provider's metadata and keys are fetched again: the first discovery and its retries,
//! periodic re-discovery, key refreshes before the keys go stale, exponential backoff after
//! failures, and how often a token naming an unknown `kid` may cause a key fetch.
//!
//! [`Refresh`] decides and never waits, in the shape of quinn-proto's `poll_timeout` /
//! `handle_timeout`. A driver loops:
//!
//! 1. [`Refresh::poll`] says what is due at `now`, an [`Action`], or nothing;
//! 2. the driver performs it and reports how it went with [`Refresh::on_discovery`] or
//!    [`Refresh::on_keys`] before it polls again;
//! 3. once nothing is due, the driver sleeps until [`Refresh::next_due`].
//!
//! Time is a [`MonotonicTime`]: a wall clock set back or forth moves no deadline, and backoffs
//! of a few milliseconds are kept exactly. Requests that meet an unknown `kid` ask
//! [`Refresh::may_refetch_for_unknown_kid`] before fetching, so that a flood of tokens with
//! invented key ids costs at most one fetch per interval.
//!
//! ```
//! use std::time::Duration;
//! use oidc_core::discovery::ProviderMetadata;
//! use oidc_core::refresh::{Action, Refresh, RefreshTimings};
//! use oidc_core::time::MonotonicTime;
//!
//! # let document = serde_json::json!({
//! #     "issuer": "https://op.example", "authorization_endpoint": "https://op.example/authorize",
//! #     "token_endpoint": "https://op.example/token", "jwks_uri": "https://op.example/jwks",
//! #     "response_types_supported": ["code"], "subject_types_supported": ["public"],
//! #     "id_token_signing_alg_values_supported": ["RS256"],
//! # });
//! # let metadata = ProviderMetadata::from_document(document.as_object().unwrap().clone()).unwrap();
//! let mut refresh = Refresh::new(RefreshTimings::default());
//! let start = MonotonicTime::ZERO;
//! assert_eq!(refresh.poll(start), Some(Action::Discover));
//! refresh.on_discovery(start, Ok::<_, ()>(&metadata));
//! assert_eq!(refresh.poll(start), Some(Action::FetchKeys));
//! // Keys fresh for ten minutes are fetched again 30 s before they go stale.
//! refresh.on_keys(start, Ok::<_, ()>(Duration::from_secs(600)));
//! assert_eq!(refresh.poll(start), None);
//! assert_eq!(refresh.next_due(), MonotonicTime::after(Duration::from_secs(570)));
//! ```

use std::time::Duration;

use url::Url;

use crate::discovery::ProviderMetadata;
use crate::time::MonotonicTime;

/// How often the metadata is discovered again unless configured otherwise.
pub const DEFAULT_REDISCOVERY_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The shortest re-discovery interval accepted.
pub const MIN_REDISCOVERY_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest wait before a retry: a zero backoff would call a failing provider in a loop.
pub const MIN_RETRY_WAIT: Duration = Duration::from_millis(10);
/// The shortest wait before a key refresh, however short-lived the keys are.
pub const MIN_KEY_REFRESH_WAIT: Duration = Duration::from_secs(1);

/// The timings a [`Refresh`] decides with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct RefreshTimings {
    rediscovery_interval: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    refresh_margin: Duration,
    refetch_interval: Duration,
}

impl Default for RefreshTimings {
    /// Discovery again every 24 h, retries from 1 s doubling up to 60 s, keys refreshed 30 s
    /// before they go stale, at most one unknown-`kid` fetch every 10 s.
    fn default() -> Self {
        RefreshTimings {
            rediscovery_interval: DEFAULT_REDISCOVERY_INTERVAL,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            refresh_margin: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(10),
        }
    }
}

impl RefreshTimings {
    /// How often the metadata is discovered again, at least [`MIN_REDISCOVERY_INTERVAL`]
    /// (shorter intervals are raised to it).
    pub fn rediscovery_interval(mut self, interval: Duration) -> Self {
        self.rediscovery_interval = interval.max(MIN_REDISCOVERY_INTERVAL);
        self
    }

    /// The first and the longest wait before a retry after a failure; the wait doubles from
    /// `initial` up to `max`. Both are at least [`MIN_RETRY_WAIT`], and `max` at least `initial`.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial.max(MIN_RETRY_WAIT);
        self.retry_max = max.max(self.retry_initial);
        self
    }

    /// How long before the keys go stale they are fetched again.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The shortest time between two key fetches caused by unknown `kid`s.
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }
}

/// What a driver is asked to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch and check the discovery document, then report with [`Refresh::on_discovery`].
    Discover,
    /// Fetch the key set named by the latest metadata, then report with [`Refresh::on_keys`].
    FetchKeys,
}

/// The schedule of one provider's discovery and key fetches. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Refresh {
    timings: RefreshTimings,
    /// The key set the latest good metadata names; `None` before the first discovery.
    jwks_uri: Option<Url>,
    discovery_due: MonotonicTime,
    keys_due: MonotonicTime,
    discovery_backoff: Backoff,
    keys_backoff: Backoff,
    last_unknown_kid_fetch: Option<MonotonicTime>,
}

impl Refresh {
    /// A schedule whose first discovery is due at once, and the key fetch right after it.
    pub fn new(timings: RefreshTimings) -> Refresh {
        Refresh {
            timings,
            jwks_uri: None,
            discovery_due: MonotonicTime::ZERO,
            keys_due: MonotonicTime::ZERO,
            discovery_backoff: Backoff::new(&timings),
            keys_backoff: Backoff::new(&timings),
            last_unknown_kid_fetch: None,
        }
    }

    /// What to do at `now`, if anything: discovery first (keys cannot be fetched without
    /// metadata), then keys. The same action stays due until its outcome is reported.
    pub fn poll(&self, now: MonotonicTime) -> Option<Action> {
        if now >= self.discovery_due {
            Some(Action::Discover)
        } else if self.jwks_uri.is_some() && now >= self.keys_due {
            Some(Action::FetchKeys)
        } else {
            None
        }
    }

    /// When something is due next. It may be in the past: [`Refresh::poll`] then has work at
    /// once.
    pub fn next_due(&self) -> MonotonicTime {
        match self.jwks_uri {
            Some(_) => self.discovery_due.min(self.keys_due),
            None => self.discovery_due,
        }
    }

    /// Reports a discovery that ended at `now`. Success schedules the next one a re-discovery
    /// interval later and resets its backoff; when the metadata names another key set than
    /// before, a key fetch is due at once, and the answer is `true`. Failure keeps whatever
    /// metadata there is and retries after the next backoff wait.
    pub fn on_discovery<E>(
        &mut self,
        now: MonotonicTime,
        result: Result<&ProviderMetadata, E>,
    ) -> bool {
        match result {
            Ok(metadata) => {
                let moved = self
                    .jwks_uri
                    .as_ref()
                    .is_some_and(|uri| *uri != metadata.jwks_uri);
                if moved {
                    self.keys_due = now;
                }
                self.jwks_uri = Some(metadata.jwks_uri.clone());
                self.discovery_due = now.saturating_add(self.timings.rediscovery_interval);
                self.discovery_backoff.reset();
                moved
            }
            Err(_) => {
                self.discovery_due = now.saturating_add(self.discovery_backoff.next());
                false
            }
        }
    }

    /// Reports a key fetch that ended at `now`: on success with how long the keys stay fresh
    /// (the keys' `refresh_at` minus the time they were fetched). They are fetched again that
    /// long later less the refresh margin, but not sooner than [`MIN_KEY_REFRESH_WAIT`]; a
    /// failure retries after the next backoff wait.
    ///
    /// A scheduled fetch does not use up the unknown-`kid` budget: a provider that rotates right
    /// after it is still followed at once.
    pub fn on_keys<E>(&mut self, now: MonotonicTime, result: Result<Duration, E>) {
        let wait = match result {
            Ok(fresh_for) => {
                self.keys_backoff.reset();
                fresh_for
                    .saturating_sub(self.timings.refresh_margin)
                    .max(MIN_KEY_REFRESH_WAIT)
            }
            Err(_) => self.keys_backoff.next(),
        };
        self.keys_due = now.saturating_add(wait);
    }

    /// Whether a token naming a key the set does not hold may cause a key fetch at `now`: at
    /// most one per refetch interval. When it may, the fetch is counted as started.
    pub fn may_refetch_for_unknown_kid(&mut self, now: MonotonicTime) -> bool {
        let allowed = self
            .last_unknown_kid_fetch
            .is_none_or(|last| now.duration_since(last) >= self.timings.refetch_interval);
        if allowed {
            self.last_unknown_kid_fetch = Some(now);
        }
        allowed
    }
}

/// Exponential backoff between the configured first and longest waits.
#[derive(Clone, Debug)]
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(timings: &RefreshTimings) -> Backoff {
        Backoff {
            initial: timings.retry_initial,
            max: timings.retry_max,
            next: timings.retry_initial,
        }
    }

    /// The wait before the next attempt; the one after it doubles, up to the maximum.
    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metadata(jwks_uri: &str) -> ProviderMetadata {
        let document = serde_json::json!({
            "issuer": "https://op.example",
            "authorization_endpoint": "https://op.example/authorize",
            "token_endpoint": "https://op.example/token",
            "jwks_uri": jwks_uri,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        ProviderMetadata::from_document(document.as_object().unwrap().clone()).unwrap()
    }

    fn at_ms(ms: u64) -> MonotonicTime {
        MonotonicTime::after(Duration::from_millis(ms))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const FAILED: Result<&ProviderMetadata, ()> = Err(());
    const KEYS_FAILED: Result<Duration, ()> = Err(());

    /// A schedule that has discovered `https://op.example/jwks` and fetched keys fresh for
    /// `fresh_for`, both at time zero.
    fn started(timings: RefreshTimings, fresh_for: Duration) -> Refresh {
        let mut refresh = Refresh::new(timings);
        assert_eq!(refresh.poll(MonotonicTime::ZERO), Some(Action::Discover));
        let moved = refresh.on_discovery(
            MonotonicTime::ZERO,
            Ok::<_, ()>(&metadata("https://op.example/jwks")),
        );
        assert!(!moved, "the first metadata moves nothing");
        assert_eq!(refresh.poll(MonotonicTime::ZERO), Some(Action::FetchKeys));
        refresh.on_keys(MonotonicTime::ZERO, Ok::<_, ()>(fresh_for));
        assert_eq!(refresh.poll(MonotonicTime::ZERO), None);
        refresh
    }

    #[test]
    fn discovers_then_fetches_keys_at_once_and_nothing_more() {
        let refresh = started(RefreshTimings::default(), secs(600));
        assert_eq!(refresh.next_due(), MonotonicTime::after(secs(570)));
    }

    #[test]
    fn no_keys_are_fetched_before_the_first_discovery_succeeds() {
        let timings = RefreshTimings::default().retry_backoff(secs(1), secs(5));
        let mut refresh = Refresh::new(timings);
        let mut now = MonotonicTime::ZERO;
        let mut waits = Vec::new();
        for _ in 0..5 {
            assert_eq!(refresh.poll(now), Some(Action::Discover));
            refresh.on_discovery(now, FAILED);
            assert_eq!(refresh.poll(now), None, "no keys without metadata");
            let due = refresh.next_due();
            waits.push(due.duration_since(now).as_secs());
            now = due;
        }
        assert_eq!(waits, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets_after_a_success() {
        let timings = RefreshTimings::default().retry_backoff(secs(1), secs(5));
        let mut refresh = started(timings, secs(3600));
        let mut now = refresh.next_due();
        let mut waits = Vec::new();
        for _ in 0..5 {
            assert_eq!(refresh.poll(now), Some(Action::FetchKeys));
            refresh.on_keys(now, KEYS_FAILED);
            let due = refresh.next_due();
            waits.push(due.duration_since(now).as_secs());
            now = due;
        }
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(refresh.poll(now), Some(Action::FetchKeys));
        refresh.on_keys(now, Ok::<_, ()>(secs(600)));
        let now = refresh.next_due();
        assert_eq!(refresh.poll(now), Some(Action::FetchKeys));
        refresh.on_keys(now, KEYS_FAILED);
        assert_eq!(refresh.next_due(), now.saturating_add(secs(1)), "reset");
    }

    #[test]
    fn keys_are_refreshed_a_margin_before_they_go_stale_but_not_in_a_loop() {
        let timings = RefreshTimings::default().refresh_margin(secs(30));
        let mut refresh = started(timings, secs(600));
        let now = MonotonicTime::after(secs(570));
        assert_eq!(
            refresh.poll(MonotonicTime::after(secs(570) - Duration::from_millis(1))),
            None
        );
        assert_eq!(refresh.poll(now), Some(Action::FetchKeys));
        // Keys fresher than the margin: at least a second passes before the next fetch.
        refresh.on_keys(now, Ok::<_, ()>(secs(10)));
        assert_eq!(refresh.next_due(), now.saturating_add(MIN_KEY_REFRESH_WAIT));
        let later = now.saturating_add(MIN_KEY_REFRESH_WAIT);
        assert_eq!(refresh.poll(later), Some(Action::FetchKeys));
        refresh.on_keys(later, Ok::<_, ()>(Duration::ZERO));
        assert_eq!(
            refresh.next_due(),
            later.saturating_add(MIN_KEY_REFRESH_WAIT)
        );
    }

    #[test]
    fn metadata_is_discovered_again_every_interval() {
        let timings = RefreshTimings::default().rediscovery_interval(Duration::from_millis(300));
        let mut refresh = started(timings, secs(3600));
        let mut discoveries = 1;
        let mut now = MonotonicTime::ZERO;
        while now < MonotonicTime::after(secs(1)) {
            now = refresh.next_due();
            if now >= MonotonicTime::after(secs(1)) {
                break;
            }
            assert_eq!(refresh.poll(now), Some(Action::Discover));
            let moved =
                refresh.on_discovery(now, Ok::<_, ()>(&metadata("https://op.example/jwks")));
            assert!(!moved);
            assert_eq!(refresh.poll(now), None, "the key set did not move");
            discoveries += 1;
        }
        assert_eq!(discoveries, 4, "at 0, 300, 600 and 900 ms");
    }

    #[test]
    fn the_default_interval_discovers_once_a_day() {
        let refresh = started(RefreshTimings::default(), secs(48 * 3600));
        let day = DEFAULT_REDISCOVERY_INTERVAL;
        assert_eq!(refresh.next_due(), MonotonicTime::after(day));
        assert_eq!(refresh.poll(MonotonicTime::after(day - secs(1))), None);
        assert_eq!(
            refresh.poll(MonotonicTime::after(day)),
            Some(Action::Discover)
        );
    }

    #[test]
    fn a_failed_rediscovery_is_retried_with_backoff_and_keys_stay_on_schedule() {
        let timings = RefreshTimings::default()
            .rediscovery_interval(Duration::from_millis(300))
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(100));
        let mut refresh = started(timings, secs(600));
        let mut now = at_ms(300);
        let mut retries = Vec::new();
        for _ in 0..4 {
            assert_eq!(refresh.poll(now), Some(Action::Discover));
            refresh.on_discovery(now, FAILED);
            let due = refresh.next_due();
            retries.push(due.duration_since(now).as_millis());
            now = due;
        }
        assert_eq!(retries, [50, 100, 100, 100]);
        assert_eq!(refresh.poll(now), Some(Action::Discover));
        refresh.on_discovery(now, Ok::<_, ()>(&metadata("https://op.example/jwks")));
        assert_eq!(
            refresh.next_due(),
            now.saturating_add(Duration::from_millis(300)),
            "back on the interval"
        );
        // The keys were never touched by the discovery failures.
        let mut keys = started(timings, secs(600));
        assert_eq!(keys.poll(at_ms(300)), Some(Action::Discover));
        keys.on_discovery(at_ms(300), FAILED);
        assert_eq!(
            keys.poll(MonotonicTime::after(secs(570))),
            Some(Action::Discover)
        );
    }

    #[test]
    fn a_moved_key_set_is_fetched_at_once() {
        let timings = RefreshTimings::default().rediscovery_interval(secs(60));
        let mut refresh = started(timings, secs(3600));
        let now = MonotonicTime::after(secs(60));
        assert_eq!(refresh.poll(now), Some(Action::Discover));
        let moved = refresh.on_discovery(now, Ok::<_, ()>(&metadata("https://op.example/keys-v2")));
        assert!(moved);
        assert_eq!(refresh.poll(now), Some(Action::FetchKeys));
    }

    #[test]
    fn unknown_kid_refetches_are_limited_to_one_per_interval() {
        let timings = RefreshTimings::default().refetch_interval(Duration::from_millis(200));
        let mut refresh = started(timings, secs(600));
        assert!(
            refresh.may_refetch_for_unknown_kid(at_ms(10)),
            "the first one"
        );
        assert!(!refresh.may_refetch_for_unknown_kid(at_ms(10)));
        assert!(!refresh.may_refetch_for_unknown_kid(at_ms(209)));
        assert!(refresh.may_refetch_for_unknown_kid(at_ms(210)));
        assert!(!refresh.may_refetch_for_unknown_kid(at_ms(300)));
        // Scheduled fetches leave the budget alone.
        assert_eq!(
            refresh.poll(MonotonicTime::after(secs(570))),
            Some(Action::FetchKeys)
        );
        refresh.on_keys(MonotonicTime::after(secs(570)), Ok::<_, ()>(secs(600)));
        assert!(refresh.may_refetch_for_unknown_kid(MonotonicTime::after(secs(570))));

        let mut unlimited = started(
            RefreshTimings::default().refetch_interval(Duration::ZERO),
            secs(600),
        );
        assert!(unlimited.may_refetch_for_unknown_kid(at_ms(1)));
        assert!(unlimited.may_refetch_for_unknown_kid(at_ms(1)));
    }

    #[test]
    fn timings_are_clamped_to_what_cannot_loop() {
        let timings = RefreshTimings::default()
            .rediscovery_interval(Duration::ZERO)
            .retry_backoff(Duration::ZERO, Duration::ZERO);
        assert_eq!(timings.rediscovery_interval, MIN_REDISCOVERY_INTERVAL);
        assert_eq!(timings.retry_initial, MIN_RETRY_WAIT);
        assert_eq!(timings.retry_max, MIN_RETRY_WAIT);
        let timings = RefreshTimings::default().retry_backoff(secs(5), secs(1));
        assert_eq!(
            (timings.retry_initial, timings.retry_max),
            (secs(5), secs(5))
        );
    }

    /// One step of a driver: time passes, then whatever is due is done with the given outcome.
    #[derive(Clone, Debug)]
    struct Step {
        advance_ms: u64,
        discovery_ok: bool,
        moved: bool,
        keys: Option<u64>,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            0u64..120_000,
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(0u64..3600),
        )
            .prop_map(|(advance_ms, discovery_ok, moved, keys)| Step {
                advance_ms,
                discovery_ok,
                moved,
                keys,
            })
    }

    proptest! {
        /// Whatever the providers answer: at one instant at most one discovery and one key fetch
        /// are asked for (never a loop), a failure is retried within the longest backoff wait,
        /// and something is always scheduled.
        #[test]
        fn waits_are_bounded_and_never_loop(
            initial_ms in 0u64..5_000,
            max_ms in 0u64..120_000,
            interval_ms in 0u64..100_000,
            margin_s in 0u64..120,
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            let timings = RefreshTimings::default()
                .retry_backoff(Duration::from_millis(initial_ms), Duration::from_millis(max_ms))
                .rediscovery_interval(Duration::from_millis(interval_ms))
                .refresh_margin(secs(margin_s));
            let max_wait = timings.retry_max;
            let mut refresh = Refresh::new(timings);
            let mut now = MonotonicTime::ZERO;
            let mut generation = 0;
            for step in steps {
                now = now.saturating_add(Duration::from_millis(step.advance_ms));
                let mut actions = Vec::new();
                while let Some(action) = refresh.poll(now) {
                    actions.push(action);
                    prop_assert!(actions.len() <= 2, "{actions:?} at one instant");
                    match action {
                        Action::Discover => {
                            if step.moved {
                                generation += 1;
                            }
                            let uri = format!("https://op.example/jwks/{generation}");
                            let metadata = metadata(&uri);
                            let result = if step.discovery_ok { Ok(&metadata) } else { Err(()) };
                            refresh.on_discovery(now, result);
                            if !step.discovery_ok {
                                let due = refresh.discovery_due;
                                prop_assert!(due > now);
                                prop_assert!(due.duration_since(now) <= max_wait);
                            }
                        }
                        Action::FetchKeys => {
                            let result = step.keys.map(secs).ok_or(());
                            refresh.on_keys(now, result);
                            let wait = refresh.keys_due.duration_since(now);
                            prop_assert!(!wait.is_zero());
                            if step.keys.is_none() {
                                prop_assert!(wait <= max_wait);
                            }
                        }
                    }
                }
                let due = refresh.next_due();
                prop_assert!(due > now, "{due:?} at {now:?}");
            }
        }
    }
}
