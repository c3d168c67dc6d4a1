//! Time as plain numbers: the decision code is handed `now`, it never reads a clock.

use std::fmt;

/// Seconds since the Unix epoch, UTC. Seconds are fine-grained enough for windows of a minute or
/// more, and an integer keeps window arithmetic exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The time as whole seconds since the epoch.
    pub fn secs(self) -> i64 {
        self.0
    }

    /// This time moved by `secs` (negative moves back).
    #[must_use]
    pub fn plus_secs(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// The latest multiple of `interval_secs` at or before this time (windows are aligned to
    /// their interval from the epoch, so every deployment cuts the same windows).
    #[must_use]
    pub fn align_down(self, interval_secs: i64) -> UnixTime {
        debug_assert!(interval_secs > 0);
        UnixTime(self.0.div_euclid(interval_secs) * interval_secs)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC only: job definitions must not depend on a time zone).
    pub fn parse_rfc3339_utc(text: &str) -> Option<UnixTime> {
        let b = text.as_bytes();
        if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        if b[19] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(r)?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
            return None;
        }
        Some(UnixTime(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s))
    }
}

impl fmt::Display for UnixTime {
    /// Formats as `YYYY-MM-DDTHH:MM:SSZ`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A half-open interval `[lo, hi)` of the source's watermark column: the unit of extraction,
/// of exactly-once publishing and of commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First instant inside the window.
    pub lo: UnixTime,
    /// First instant after the window.
    pub hi: UnixTime,
}

impl Window {
    /// Length of the window in seconds.
    pub fn len_secs(&self) -> i64 {
        self.hi.0 - self.lo.0
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.lo, self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_display() {
        for text in ["1970-01-01T00:00:00Z", "2026-11-22T07:35:38Z", "2024-02-29T23:59:59Z", "2100-03-01T00:00:00Z"] {
            let t = UnixTime::parse_rfc3339_utc(text).expect(text);
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(UnixTime::parse_rfc3339_utc("2026-11-22T00:00:00Z"), Some(UnixTime(1_795_305_600)));
    }

    #[test]
    fn rfc3339_rejects_offsets_and_impossible_dates() {
        for text in [
            "2026-11-22T00:00:00+01:00",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-22 00:00:00Z",
            "yesterday",
        ] {
            assert_eq!(UnixTime::parse_rfc3339_utc(text), None, "{text}");
        }
    }

    #[test]
    fn align_down_is_floor_to_the_interval() {
        assert_eq!(UnixTime(601).align_down(300), UnixTime(600));
        assert_eq!(UnixTime(600).align_down(300), UnixTime(600));
        assert_eq!(UnixTime(-1).align_down(300), UnixTime(-300));
    }
}
