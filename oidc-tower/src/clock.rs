//! The clocks behind the core's time values: the time of day as [`UnixTime`] for tokens, sessions
//! and cookies, and a monotonic clock for the provider's refresh schedule.
//!
//! Every decision that takes the time of day (is this token expired, is this session over, is
//! this pending login too old) reads it from a [`Clock`]. [`SystemClock`], the system's time, is
//! the default everywhere; [`AuthConfig::clock`](crate::auth::AuthConfig::clock) and
//! [`ProviderConfig::clock`](crate::provider::ProviderConfig::clock) install another one, such
//! as a [`ManualClock`] that a test or a simulation moves by hand instead of waiting:
//!
//! ```
//! use std::time::Duration;
//! use oidc_core::UnixTime;
//! use oidc_tower::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
//! let seen_by_the_service = clock.clone();
//! clock.advance(Duration::from_secs(3600));
//! assert_eq!(seen_by_the_service.now(), UnixTime::from_secs(1_700_003_600));
//! ```
//!
//! Caches never stand in for the clock: an entry with a validity end (a validated token, an
//! introspection answer, an opened session) is served only while that end is still ahead on the
//! clock in use, whatever the cache's own expiry says.
//!
//! The refresh schedule of a [`Provider`](crate::provider::Provider) does not read the time of
//! day: it runs on tokio's monotonic clock, which a test runtime with paused time moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use oidc_core::UnixTime;
use oidc_core::time::MonotonicTime;

/// The system's time of day, as the core takes it: what [`SystemClock`] reads.
pub fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}

/// A source of the time of day.
///
/// Implementations must be cheap to read: authentication reads the clock on every request.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time of day now.
    fn now(&self) -> UnixTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

/// The system's time of day ([`now`]): the default clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        now()
    }
}

/// A clock that stands still until it is set or advanced, for tests and simulations.
///
/// Clones share one reading: install a clone (with
/// [`AuthConfig::clock`](crate::auth::AuthConfig::clock), say) and move the original; every
/// clone sees the move at once, from any thread. The reading is kept to the millisecond, so
/// that sub-second advances add up; [`Clock::now`] gives whole seconds, as [`UnixTime`] does.
#[derive(Clone, Debug)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `at`.
    pub fn new(at: UnixTime) -> ManualClock {
        ManualClock {
            millis: Arc::new(AtomicU64::new(millis_of(at))),
        }
    }

    /// A clock reading the system's time of day now (and standing still from then on).
    pub fn starting_now() -> ManualClock {
        ManualClock::new(now())
    }

    /// Sets the reading to `at` (earlier or later than it was).
    pub fn set(&self, at: UnixTime) {
        self.millis.store(millis_of(at), Ordering::SeqCst);
    }

    /// Moves the reading `by` later, saturating at the far future.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // `fetch_update` with a closure that always succeeds: the `Err` arm cannot happen.
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |millis| {
                Some(millis.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime::from_secs(self.millis.load(Ordering::SeqCst) / 1000)
    }
}

fn millis_of(at: UnixTime) -> u64 {
    at.as_secs().saturating_mul(1000)
}

/// The clock used when none is configured.
pub(crate) fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A monotonic clock whose readings count from when it was started, on tokio's clock: a test
/// runtime with paused time moves it only when told to.
#[derive(Debug)]
pub(crate) struct MonotonicClock {
    origin: tokio::time::Instant,
}

impl MonotonicClock {
    /// A clock reading zero now.
    pub(crate) fn start() -> MonotonicClock {
        MonotonicClock {
            origin: tokio::time::Instant::now(),
        }
    }

    /// The current reading.
    pub(crate) fn now(&self) -> MonotonicTime {
        MonotonicTime::after(self.origin.elapsed())
    }

    /// The instant a reading stands for, to sleep until it.
    pub(crate) fn instant(&self, at: MonotonicTime) -> tokio::time::Instant {
        // A reading too far out for the platform's clock is as good as never.
        const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
        self.origin
            .checked_add(at.elapsed())
            .unwrap_or_else(|| tokio::time::Instant::now() + FAR_FUTURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(UnixTime::from_secs(100));
        let installed: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(installed.now(), UnixTime::from_secs(100));
        clock.advance(Duration::from_millis(600));
        assert_eq!(installed.now(), UnixTime::from_secs(100));
        clock.advance(Duration::from_millis(600));
        assert_eq!(
            installed.now(),
            UnixTime::from_secs(101),
            "sub-second steps add up"
        );
        clock.set(UnixTime::from_secs(50));
        assert_eq!(
            installed.now(),
            UnixTime::from_secs(50),
            "set goes back too"
        );
        clock.advance(Duration::MAX);
        assert_eq!(installed.now(), UnixTime::from_secs(u64::MAX / 1000));
    }

    #[test]
    fn the_system_clock_reads_the_time_of_day() {
        let before = now();
        let read = SystemClock.now();
        assert!(before <= read && read <= now());
        let starting = ManualClock::starting_now();
        assert!(before <= starting.now());
    }
}
