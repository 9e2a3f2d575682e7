//! Scalars as taps write them, read from a value's raw JSON text: the one date/time parser
//! every step shares (a key's partition, a Parquet timestamp and a cursor read one value the
//! same way), exact numbers and booleans.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};

/// Dates and date-times as taps write them: RFC 3339 with an offset (converted to UTC: keeping
/// the offset's own calendar day would surprise), also `+hh:mm`/`+hhmm`/`+hh` offsets after a
/// space; without an offset (taken as UTC), to the minute, second or fraction; or a plain date
/// (midnight). A leap second (`23:59:60`) is clamped to the last microsecond of its minute, so
/// it never becomes the next minute (or the next year).
pub fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let clamp = |t: NaiveDateTime| match t.nanosecond() {
        n if n >= 1_000_000_000 => t.with_nanosecond(999_999_000),
        _ => Some(t),
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return clamp(dt.with_timezone(&Utc).naive_utc());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, f) {
            return clamp(dt);
        }
    }
    // PostgreSQL writes an old date's local mean time offset with seconds
    // (`0001-01-01 05:53:28+05:53:28` in Asia/Kolkata), which no chrono format reads.
    if let Some(t) = with_seconds_offset(text) {
        return clamp(t);
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(text, f) {
            return clamp(dt.with_timezone(&Utc).naive_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// A date-time ending in a `±hh:mm:ss` offset, in UTC.
fn with_seconds_offset(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    let n = b.len();
    if n < 19 || !matches!(b[n - 9], b'+' | b'-') || b[n - 6] != b':' || b[n - 3] != b':' {
        return None;
    }
    let part = |i: usize| text.get(i..i + 2)?.parse::<i64>().ok();
    let seconds = part(n - 8)? * 3600 + part(n - 5)? * 60 + part(n - 2)?;
    let local = parse_date_time(&text[..n - 9])?;
    let sign = if b[n - 9] == b'-' { -1 } else { 1 };
    local.checked_sub_signed(chrono::TimeDelta::seconds(sign * seconds))
}

/// The text a string value stands for (borrowed unless it has escapes); a non-string value's
/// JSON text.
pub fn text(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    if b.first() == Some(&b'"') {
        if !raw.contains('\\') {
            return Cow::Borrowed(&raw[1..raw.len() - 1]);
        }
        if let Ok(s) = serde_json::from_str::<String>(raw) {
            return Cow::Owned(s);
        }
    }
    Cow::Borrowed(raw)
}

/// A number's text: the JSON number itself, or the contents of a string holding one.
fn number_text(raw: &str) -> &str {
    raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw).trim()
}

pub fn int(raw: &str) -> Option<i64> {
    let t = number_text(raw);
    t.parse::<i64>().ok().or_else(|| {
        // `1.0`, `1e16` and `12345678901234567e0` are integers too, read exactly; anything
        // with a fraction is not.
        i64::try_from(decimal(t, 0)?).ok()
    })
}

pub fn float(raw: &str) -> Option<f64> {
    let t = number_text(raw);
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A number as a 64-bit float, and whether the float holds the number the tap wrote (false:
/// the column rounds it, and the value is counted as lossy). Up to 15 significant digits always
/// survive; longer numbers are compared with the float's shortest form.
pub fn float_exact(raw: &str) -> Option<(f64, bool)> {
    let t = number_text(raw);
    let value = t.parse::<f64>().ok().filter(|f| f.is_finite())?;
    let mantissa = t.split(['e', 'E']).next().unwrap_or(t);
    let significant = mantissa.trim_start_matches(['-', '+', '0', '.']).bytes().filter(u8::is_ascii_digit).count();
    let ordinary = value == 0.0 || (1e-300..1e300).contains(&value.abs());
    Some((value, (significant <= 15 && ordinary) || super::exact::survives_f64(t, value)))
}

/// A number's exact text (a JSON number, or a string holding one), for [`Type::Numeric`].
pub fn numeric(raw: &str) -> Option<&str> {
    let t = number_text(raw);
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    (i == b.len()).then_some(t)
}

pub fn boolean(raw: &str) -> Option<bool> {
    match raw {
        "true" | "\"true\"" => Some(true),
        "false" | "\"false\"" => Some(false),
        _ => None,
    }
}

/// The number as an integer count of 10^-scale, exactly: a value with more places than the
/// scale, or beyond 38 digits, does not fit (no silent rounding).
pub fn decimal(raw: &str, scale: u8) -> Option<i128> {
    let t = number_text(raw);
    let (negative, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut digits: i128 = 0;
    let mut places: i32 = 0;
    for (i, c) in whole.bytes().chain(fraction.bytes()).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        if i >= whole.len() {
            places += 1;
        }
        digits = digits.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
    }
    // value = digits * 10^(exponent - places); want value * 10^scale.
    let shift = exponent - places + i32::from(scale);
    let mut value = digits;
    if shift >= 0 {
        value = value.checked_mul(10i128.checked_pow(shift as u32)?)?;
    } else {
        let divisor = 10i128.checked_pow((-shift) as u32)?;
        if value % divisor != 0 {
            return None;
        }
        value /= divisor;
    }
    if value.unsigned_abs() >= 10u128.pow(38) {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// MySQL's "zero" dates (`0000-00-00`, `2024-00-00 12:00:00`, `2024-02-00`): no instant, so a
/// typed column holds them as null (counted), whatever `unparseable_values` says.
pub fn zero_date(raw: &str) -> bool {
    let b = raw.strip_prefix('"').unwrap_or(raw).as_bytes();
    b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b[..10].iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (&b[..4] == b"0000" || &b[5..7] == b"00" || &b[8..10] == b"00")
}

/// Microseconds since the epoch (UTC) of a JSON string, by [`parse_date_time`].
pub fn timestamp(raw: &str) -> Option<i64> {
    let s = raw.strip_prefix('"')?.strip_suffix('"')?;
    parse_date_time(s).map(|t| t.and_utc().timestamp_micros())
}

/// Days since the epoch; a date-time's UTC date is accepted too.
pub fn date(raw: &str) -> Option<i32> {
    let s = raw.strip_prefix('"')?.strip_suffix('"')?;
    let day = match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => d,
        Err(_) => DateTime::from_timestamp_micros(timestamp(raw)?)?.date_naive(),
    };
    Some((day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parser_for_every_date_time_taps_send() {
        let utc = |s: &str| parse_date_time(s).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
        assert_eq!(utc("2026-11-21T23:30:00-02:00").as_deref(), Some("2026-11-22T01:30:00.000000"));
        assert_eq!(utc("2026-11-21 23:30:00+0200").as_deref(), Some("2026-11-21T21:30:00.000000"));
        assert_eq!(utc("2026-11-21 23:30:00.5+02").as_deref(), Some("2026-11-21T21:30:00.500000"));
        assert_eq!(utc("2026-11-21T23:30").as_deref(), Some("2026-11-21T23:30:00.000000"));
        assert_eq!(utc("2026-11-21").as_deref(), Some("2026-11-21T00:00:00.000000"));
        assert_eq!(utc("garbage"), None);
        assert_eq!(utc("0001-01-01T05:53:28.000000+05:53:28").as_deref(), Some("0001-01-01T00:00:00.000000"));
        assert!(zero_date("\"0000-00-00\"") && zero_date("\"2024-00-00 12:00:00\"") && zero_date("\"2024-02-00\""));
        assert!(!zero_date("\"2024-02-01\"") && !zero_date("\"soon\""));
        // A leap second stays in its minute (and its year).
        assert_eq!(utc("2016-12-31T23:59:60Z").as_deref(), Some("2016-12-31T23:59:59.999999"));
        assert_eq!(timestamp("\"2016-12-31T23:59:60Z\""), Some(1_483_228_799_999_999));
    }
}
