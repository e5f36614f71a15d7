//! `--start-at TIME`: the instant at which the agents of one distributed run
//! all start their workloads. Parsing is pure (the clock is a parameter);
//! waiting for the instant is the runner's job.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::units::parse_duration;

/// An absolute instant, from an RFC 3339 time or `+DURATION` from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt(pub SystemTime);

impl StartAt {
    /// Parses `2026-12-02T10:00:00Z`, `2026-12-02T11:00:00.250+01:00` (a
    /// space for the `T` too), or `+10s` / `+1m 30s` counted from `now`.
    /// A time without a zone is refused: agents on machines in different
    /// zones would read it differently.
    pub fn parse(text: &str, now: SystemTime) -> Result<Self, String> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix('+') {
            let d =
                parse_duration(rest).map_err(|e| format!("--start-at {text}: after `+`, {e}"))?;
            return Ok(StartAt(now + d));
        }
        parse_rfc3339(t)
            .map(StartAt)
            .map_err(|why| format!("--start-at {text}: {why}"))
    }

    /// How far `actual` is past this instant, in milliseconds (negative if
    /// it came first).
    pub fn skew_ms(self, actual: SystemTime) -> f64 {
        signed_ms(self.0, actual)
    }
}

impl FromStr for StartAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StartAt::parse(s, SystemTime::now())
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

/// `b − a` in milliseconds, negative when `b` is earlier.
pub fn signed_ms(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// RFC 3339 with its zone: `Z` or `±HH:MM`.
fn parse_rfc3339(t: &str) -> Result<SystemTime, String> {
    const FORM: &str = "give an RFC 3339 time with its zone (2026-12-02T10:00:00Z, \
                        2026-12-02T11:00:00+01:00) or +DURATION from now (+10s)";
    let (local, east_of_utc) = split_zone(t).ok_or_else(|| format!("no zone; {FORM}"))?;
    let local = humantime::parse_rfc3339_weak(local).map_err(|e| format!("{e}; {FORM}"))?;
    let utc = if east_of_utc >= 0 {
        local.checked_sub(Duration::from_secs(east_of_utc.unsigned_abs()))
    } else {
        local.checked_add(Duration::from_secs(east_of_utc.unsigned_abs()))
    };
    utc.ok_or_else(|| format!("out of range; {FORM}"))
}

/// Splits `…Z` or `…±HH:MM` into the local time and the zone's offset in
/// seconds (east of UTC positive); `None` without a zone.
fn split_zone(t: &str) -> Option<(&str, i64)> {
    if let Some(local) = t.strip_suffix(['Z', 'z']) {
        return Some((local, 0));
    }
    let cut = t.len().checked_sub(6)?;
    let (local, zone) = (t.get(..cut)?, t.get(cut..)?);
    let b = zone.as_bytes();
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if b[3] != b':' || !local.contains(['T', 't', ' ']) {
        return None;
    }
    let hours: i64 = zone.get(1..3)?.parse().ok()?;
    let minutes: i64 = zone.get(4..6)?.parse().ok()?;
    if hours > 23 || minutes > 59 || !zone[1..3].bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((local, sign * (hours * 3600 + minutes * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    // 2026-12-02T10:00:00Z
    const T0: u64 = 1_796_205_600;

    #[test]
    fn utc_times_with_and_without_fractions() {
        let now = at(0, 0);
        assert_eq!(
            StartAt::parse("2026-12-02T10:00:00Z", now).unwrap().0,
            at(T0, 0)
        );
        assert_eq!(
            StartAt::parse("2026-12-02T10:00:00.250Z", now).unwrap().0,
            at(T0, 250)
        );
        assert_eq!(
            StartAt::parse("2026-12-02 10:00:00z", now).unwrap().0,
            at(T0, 0)
        );
        assert_eq!(
            StartAt::parse("2026-12-02T10:00:00+00:00", now).unwrap().0,
            at(T0, 0)
        );
    }

    #[test]
    fn zone_offsets_are_turned_into_utc() {
        let now = at(0, 0);
        assert_eq!(
            StartAt::parse("2026-12-02T11:30:00.5+01:30", now)
                .unwrap()
                .0,
            at(T0, 500)
        );
        assert_eq!(
            StartAt::parse("2026-12-02T05:00:00-05:00", now).unwrap().0,
            at(T0, 0)
        );
    }

    #[test]
    fn relative_times_count_from_now() {
        let now = at(T0, 0);
        assert_eq!(StartAt::parse("+10s", now).unwrap().0, at(T0 + 10, 0));
        assert_eq!(StartAt::parse("+1m 30s", now).unwrap().0, at(T0 + 90, 0));
        assert_eq!(StartAt::parse("+250ms", now).unwrap().0, at(T0, 250));
        assert_eq!(StartAt::parse("+0", now).unwrap().0, now);
    }

    #[test]
    fn refusals_name_the_flag_and_the_forms() {
        let now = at(0, 0);
        for bad in [
            "2026-12-02T10:00:00",
            "2026-12-02 10:00",
            "10s",
            "+ten seconds",
            "+-5s",
            "2026-12-02T10:00:00+1:00",
            "2026-12-02T10:00:00+25:00",
            "2026-13-02T10:00:00Z",
            "",
            "tomorrow",
        ] {
            let e = StartAt::parse(bad, now).unwrap_err();
            assert!(e.starts_with("--start-at "), "{bad}: {e}");
            assert!(e.contains("+10s") || e.contains("duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn skew_is_signed_milliseconds() {
        let s = StartAt(at(T0, 0));
        assert_eq!(s.skew_ms(at(T0, 12)), 12.0);
        assert_eq!(s.skew_ms(at(T0 - 1, 0)), -1000.0);
        assert_eq!(s.to_string(), "2026-12-02T10:00:00.000Z");
    }
}
