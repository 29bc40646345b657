//! The clocks behind the core's time values: the time of day as [`UnixTime`] for tokens, sessions
//! and cookies, and a monotonic clock for the provider's refresh schedule.

use std::time::{Duration, SystemTime};

use oidc_core::UnixTime;
use oidc_core::time::MonotonicTime;

/// The time of day, as the core takes it.
pub fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
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
