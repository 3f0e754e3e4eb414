//! Instants as plain numbers: the domain never reads a clock.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;
/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 3_600_000;
/// The earliest instant a complaint may carry: 2000-01-01T00:00:00Z.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// How far ahead of the receiving clock an instant may be (clock skew allowance).
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Wraps milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// The instant a `SystemTime` names (the caller reads the clock; before
    /// the epoch is the epoch, beyond the range the latest instant).
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved by `ms` (saturating).
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Start of the fixed window of `window_ms` that contains this instant.
    pub fn window_start(self, window_ms: i64) -> Self {
        let window_ms = window_ms.max(1);
        Self(self.0.saturating_sub(self.0.rem_euclid(window_ms)))
    }

    /// The UTC calendar day, as days since 1970-01-01.
    pub const fn epoch_day(self) -> i64 {
        self.0.div_euclid(DAY_MS)
    }

    /// The UTC calendar day, as `YYYY-MM-DD`.
    pub fn day(self) -> String {
        let (y, m, d) = civil_from_days(self.epoch_day());
        format!("{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`, expressed for i64.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_calendar_dates_in_utc() {
        assert_eq!(Timestamp::from_millis(0).day(), "1970-01-01");
        assert_eq!(Timestamp::from_millis(EARLIEST_MS).day(), "2000-01-01");
        assert_eq!(
            Timestamp::from_millis(1_709_164_800_000).day(),
            "2024-02-29"
        );
        assert_eq!(Timestamp::from_millis(-1).day(), "1969-12-31");
    }

    #[test]
    fn window_start_rounds_down_to_the_window() {
        let t = Timestamp::from_millis(DAY_MS * 3 + 5);
        assert_eq!(t.window_start(DAY_MS), Timestamp::from_millis(DAY_MS * 3));
        assert_eq!(
            Timestamp::from_millis(-5).window_start(DAY_MS),
            Timestamp::from_millis(-DAY_MS)
        );
    }
}
