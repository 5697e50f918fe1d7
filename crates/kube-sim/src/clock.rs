//! Timestamps in the two forms Kubernetes uses, and ages as `kubectl get` prints them.

use jiff::{Timestamp, Unit};

/// `metav1.Time`: RFC 3339 with whole seconds.
pub fn now() -> String {
    format_seconds(Timestamp::now())
}

pub fn format_seconds(t: Timestamp) -> String {
    t.round(Unit::Second)
        .unwrap_or(t)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `metav1.MicroTime`: RFC 3339 with microseconds, as events carry.
pub fn now_micro() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub fn parse(ts: &str) -> Option<Timestamp> {
    ts.parse().ok()
}

/// Seconds from `ts` to now (negative if `ts` is in the future).
pub fn seconds_since(ts: &str) -> Option<i64> {
    let t = parse(ts)?;
    Some(Timestamp::now().as_second() - t.as_second())
}

/// The age of `ts`, worded as apimachinery's duration.HumanDuration, or `<unknown>` without one.
pub fn age(ts: &str) -> String {
    match seconds_since(ts) {
        Some(s) => human_duration(s),
        None => "<unknown>".into(),
    }
}

/// apimachinery's HumanDuration: exact seconds under two minutes, then coarser the older it gets.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_like_kubectl() {
        let cases = [
            (0, "0s"),
            (-1, "0s"),
            (-5, "<invalid>"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (47 * 3600, "47h"),
            (49 * 3600, "2d1h"),
            (10 * 86400, "10d"),
            (3 * 365 * 86400, "3y"),
        ];
        for (s, want) in cases {
            assert_eq!(human_duration(s), want, "{s}s");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let t = now();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
        assert!(seconds_since(&t).unwrap().abs() <= 1);
        assert!(now_micro().contains('.'));
        assert_eq!(age("not a time"), "<unknown>");
    }
}
