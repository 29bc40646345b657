//! Time as a value: the core never reads the clock, callers pass `now` in: [`UnixTime`] for
//! what a token or a session says, [`MonotonicTime`] for schedules.

use std::time::{Duration, SystemTime};

/// A point in time as whole seconds since the Unix epoch, the resolution JWT claims use.
///
/// The core takes it as a parameter wherever a decision depends on the time; the caller reads
/// the clock (`UnixTime::from(SystemTime::now())`) or, in tests, picks any fixed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// This time moved `by` later, saturating at the far future instead of overflowing.
    #[must_use]
    pub fn saturating_add(self, by: Duration) -> Self {
        UnixTime(self.0.saturating_add(by.as_secs()))
    }

    /// This time moved `by` earlier, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, by: Duration) -> Self {
        UnixTime(self.0.saturating_sub(by.as_secs()))
    }

    /// How long after `earlier` this time is, or zero when it is not later.
    pub fn duration_since(self, earlier: UnixTime) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }
}

impl From<SystemTime> for UnixTime {
    /// Converts a wall-clock reading; times before the epoch become the epoch.
    fn from(time: SystemTime) -> Self {
        UnixTime(
            time.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
}

impl From<UnixTime> for SystemTime {
    fn from(time: UnixTime) -> Self {
        SystemTime::UNIX_EPOCH + Duration::from_secs(time.0)
    }
}

impl std::fmt::Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A reading of a monotonic clock: the time elapsed since an origin the caller picks (when a
/// task started, say), at full [`Duration`] precision.
///
/// Schedules count in it rather than in [`UnixTime`]: a wall clock set back or forth moves none
/// of their deadlines, and waits of a few milliseconds are kept exactly. Only readings of the
/// same origin compare meaningfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonotonicTime(Duration);

impl MonotonicTime {
    /// The origin.
    pub const ZERO: MonotonicTime = MonotonicTime(Duration::ZERO);

    /// The reading `elapsed` after the origin.
    pub const fn after(elapsed: Duration) -> Self {
        MonotonicTime(elapsed)
    }

    /// How long after the origin this reading is.
    pub const fn elapsed(self) -> Duration {
        self.0
    }

    /// This reading moved `by` later, saturating at the far future instead of overflowing.
    #[must_use]
    pub fn saturating_add(self, by: Duration) -> Self {
        MonotonicTime(self.0.saturating_add(by))
    }

    /// How long after `earlier` this reading is, or zero when it is not later.
    pub fn duration_since(self, earlier: MonotonicTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = UnixTime::from_secs(10);
        assert_eq!(t.saturating_sub(Duration::from_secs(20)), UnixTime::EPOCH);
        assert_eq!(
            UnixTime::from_secs(u64::MAX).saturating_add(Duration::from_secs(1)),
            UnixTime::from_secs(u64::MAX)
        );
        assert_eq!(
            UnixTime::from_secs(5).duration_since(t),
            Duration::ZERO,
            "an earlier time is zero seconds after a later one"
        );
    }

    #[test]
    fn converts_from_system_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(UnixTime::from(t).as_secs(), 1_700_000_000);
        assert_eq!(
            UnixTime::from(SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
            UnixTime::EPOCH
        );
    }

    #[test]
    fn monotonic_readings_keep_milliseconds_and_saturate() {
        let t = MonotonicTime::after(Duration::from_millis(1_500));
        assert_eq!(
            t.saturating_add(Duration::from_millis(1)).duration_since(t),
            Duration::from_millis(1)
        );
        assert_eq!(MonotonicTime::ZERO.duration_since(t), Duration::ZERO);
        assert_eq!(
            MonotonicTime::after(Duration::MAX).saturating_add(Duration::from_secs(1)),
            MonotonicTime::after(Duration::MAX)
        );
    }
}
