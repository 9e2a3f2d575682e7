//! Scalars as taps write them: the one date/time parser every step shares.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Dates and date-times as taps write them: RFC 3339 with an offset (kept in its own offset's
/// calendar day would surprise; it is converted to UTC), without an offset (taken as UTC), or a
/// plain date.
pub fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc).naive_utc());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, f) {
            return Some(dt);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
}
