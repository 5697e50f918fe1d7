//! UTC time arithmetic on microseconds since the Unix epoch, the unit Arrow
//! and Parquet timestamps use in this job.

use jiff::Timestamp;

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The timezone Arrow timestamps carry in this job's outputs.
pub const UTC: &str = "UTC";

/// Days since 1970-01-01 of the UTC date holding `us` (Arrow's Date32).
pub fn day_number(us: i64) -> i32 {
    // Timestamps we accept span years -9999..=9999, so the day fits an i32.
    us.div_euclid(MICROS_PER_DAY) as i32
}

/// `YYYY-MM-DD` for a day number, as used in `date=` partition names.
pub fn date_label(day: i32) -> String {
    match Timestamp::from_second(i64::from(day) * 86_400) {
        Ok(ts) => ts.strftime("%Y-%m-%d").to_string(),
        // Unreachable for days derived from parsed timestamps; keep it total.
        Err(_) => format!("day{day}"),
    }
}

/// Parses an RFC 3339 timestamp with an explicit offset (`Z` or `±hh:mm`)
/// and returns µs since the epoch, or `None` when the text is not one.
///
/// Text without an offset is rejected rather than guessed to be UTC: a
/// sensor that drops the offset is misconfigured, and guessing would shift
/// its readings silently.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    // jiff parses the wider Temporal grammar (`2024-03-01T12Z`, `+0100`,
    // basic format, bracketed zones); only RFC 3339's shape gets through to it.
    if !has_rfc3339_shape(text.as_bytes()) {
        return None;
    }
    let ts: Timestamp = text.parse().ok()?;
    Some(ts.as_microsecond())
}

/// RFC 3339 `date-time`: `YYYY-MM-DD`, `T` (or `t`, or a space as the RFC's
/// note allows), `hh:mm:ss`, optional `.fraction`, then `Z`, `z` or `±hh:mm`.
/// Ranges (month 13, February 30) are left to jiff.
fn has_rfc3339_shape(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let fraction = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if fraction == 0 {
            return false;
        }
        i += 1 + fraction;
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_buckets() {
        let us = parse_rfc3339("2024-03-01T23:59:59Z").unwrap();
        assert_eq!(date_label(day_number(us)), "2024-03-01");
        assert_eq!(date_label(day_number(us + MICROS_PER_SECOND)), "2024-03-02");
        // Before the epoch, days still round down, not toward zero.
        let early = parse_rfc3339("1969-12-31T23:30:00Z").unwrap();
        assert_eq!(date_label(day_number(early)), "1969-12-31");
    }

    #[test]
    fn accepts_offsets_and_fractions() {
        let base = parse_rfc3339("2024-03-01T12:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2024-03-01T13:00:00+01:00"), Some(base));
        assert_eq!(parse_rfc3339("2024-03-01T12:00:00.000Z"), Some(base));
        assert_eq!(
            parse_rfc3339("2024-03-01T12:00:00.25Z"),
            Some(base + 250_000)
        );
        assert_eq!(parse_rfc3339("2024-03-01t12:00:00z"), Some(base));
        assert_eq!(parse_rfc3339("2024-03-01 10:30:00-01:30"), Some(base));
    }

    #[test]
    fn rejects_text_that_is_not_rfc3339() {
        for bad in [
            "",
            "N/A",
            "2024-03-01",
            "2024-03-01T12:00:00", // no offset
            "2024-03-01T12:61:00Z",
            "2024-02-30T00:00:00Z",
            "2024-13-01T00:00:00Z",
            " 2024-03-01T12:00:00Z",
            "2024-03-01T1a:00:00Z",
            // Temporal forms jiff accepts but RFC 3339 does not.
            "2024-03-01T12Z",
            "2024-03-01T12:00Z",
            "20240301T120000Z",
            "2024-03-01T12:00:00+01",
            "2024-03-01T12:00:00+0100",
            "2024-03-01T12:00:00Z[Europe/Paris]",
            "+002024-03-01T12:00:00Z",
            "2024-03-01T12:00:00.Z",
            "2024-03-01T12:00:00Z ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
