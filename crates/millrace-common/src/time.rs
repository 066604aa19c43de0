//! Wall-clock time in the one unit millrace stores (milliseconds since the Unix epoch, UTC) and
//! its printed forms. Calendar arithmetic is chrono's (already built for Arrow), not ours.

use chrono::{DateTime, Utc};

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `ms` as a UTC date-time, or `None` outside chrono's range (about ±262,000 years).
pub fn utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// `ms` as RFC 3339 UTC with milliseconds (`2026-11-26T01:02:03.456Z`); empty outside
/// chrono's range.
pub fn rfc3339(ms: i64) -> String {
    utc(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// `ms` as `YYYY-MM-DD HH:MM` UTC for tables people read; `-` for no time (zero or negative).
pub fn utc_minutes(ms: i64) -> String {
    match utc(ms).filter(|_| ms > 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_points() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_079_200_123), "2025-11-25T14:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn minutes_for_tables() {
        assert_eq!(utc_minutes(0), "-");
        assert_eq!(utc_minutes(1_764_079_259_999), "2025-11-25 14:00");
    }

    #[test]
    fn now_is_after_this_code_was_written() {
        assert!(now_ms() > 1_764_000_000_000);
    }
}
