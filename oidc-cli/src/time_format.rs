//! How token times are shown: as UTC dates, and relative to now ("expires in 4m", "expired 3h
//! ago").

/// `secs` since the epoch as `YYYY-MM-DD hh:mm:ss UTC`.
pub(crate) fn utc_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// How `claim` at `at` relates to `now`, in words: `expires in 4m`, `expired 3h ago`,
/// `issued 2d ago`, `valid from 5m ago` (the wording follows the claim).
pub(crate) fn relative(claim: &str, at: u64, now: u64) -> String {
    let future = at > now;
    let span = human_span(at.abs_diff(now));
    match (claim, future) {
        ("exp", true) => format!("expires in {span}"),
        ("exp", false) => format!("expired {span} ago"),
        ("nbf", true) => format!("not valid for another {span}"),
        ("nbf", false) => format!("valid since {span} ago"),
        ("iat", true) => format!("issued {span} in the future"),
        ("iat", false) => format!("issued {span} ago"),
        (_, true) => format!("in {span}"),
        (_, false) => format!("{span} ago"),
    }
}

/// A duration in its largest unit and the next: `45s`, `4m`, `3h 12m`, `2d 5h`, `75y 3d`.
pub(crate) fn human_span(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (365 * 86_400, "y"),
        (86_400, "d"),
        (3600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    if secs == 0 {
        return "0s".to_owned();
    }
    let Some(first) = UNITS.iter().position(|(size, _)| secs >= *size) else {
        return "0s".to_owned();
    };
    // The largest unit that fits, then the next one unless it is zero; smaller ones are
    // dropped ("1h 0m 30s" is "1h").
    let mut parts = Vec::new();
    let mut left = secs;
    for (i, (size, name)) in UNITS.iter().skip(first).take(2).enumerate() {
        let count = left / size;
        if i == 0 || count > 0 {
            parts.push(format!("{count}{name}"));
        }
        left %= size;
    }
    parts.join(" ")
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(1_735_689_599), "2024-12-31 23:59:59 UTC");
        assert_eq!(utc_date(4_102_444_800), "2100-01-01 00:00:00 UTC");
    }

    #[test]
    fn huge_times_do_not_overflow() {
        assert!(utc_date(u64::MAX).ends_with(" UTC"));
        assert!(!relative("exp", u64::MAX, 0).is_empty());
    }

    #[test]
    fn relative_wording_follows_the_claim() {
        assert_eq!(relative("exp", 1240, 1000), "expires in 4m");
        assert_eq!(relative("exp", 1000, 1000 + 3 * 3600), "expired 3h ago");
        assert_eq!(relative("iat", 1000, 1045), "issued 45s ago");
        assert_eq!(
            relative("nbf", 1000 + 90, 1000),
            "not valid for another 1m 30s"
        );
    }

    #[test]
    fn spans_show_two_adjacent_units() {
        assert_eq!(human_span(0), "0s");
        assert_eq!(human_span(3600 + 30), "1h");
        assert_eq!(human_span(3 * 3600 + 12 * 60 + 5), "3h 12m");
        assert_eq!(human_span(2 * 86_400 + 5 * 3600), "2d 5h");
    }
}
