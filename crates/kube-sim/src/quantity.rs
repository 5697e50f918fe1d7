//! Resource quantities (`500m`, `2Gi`, `1e3`), read as numbers for comparisons and scheduling.

/// The value of a quantity, or None if it is not one.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    if q.is_empty() {
        return None;
    }
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * factor)
}

/// Why the apiserver refuses a quantity it cannot parse.
pub const SYNTAX_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

const BINARY: &[&str] = &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL: &[(i32, &str)] = &[
    (-9, "n"),
    (-6, "u"),
    (-3, "m"),
    (0, ""),
    (3, "k"),
    (6, "M"),
    (9, "G"),
    (12, "T"),
    (15, "P"),
    (18, "E"),
];

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// A quantity in the canonical form the apiserver stores it in (`1000m` is `1`, `1024Mi` is `1Gi`,
/// `0.5` is `500m`), following apimachinery's Quantity: the suffix family is kept, values round up
/// to whole nanos, and binary values that are not whole or under 1024 are written in decimal.
/// Values too large to compute exactly are returned as given.
pub fn canonical(q: &str) -> Result<String, &'static str> {
    let (negative, rest) = match q.as_bytes().first() {
        Some(b'-') => (true, &q[1..]),
        Some(b'+') => (false, &q[1..]),
        _ => (false, q),
    };
    let split = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(SYNTAX_ERROR);
    }
    let (format, exp10, binary) = match suffix {
        "" => (Format::DecimalSI, 0, 0),
        s if BINARY[1..].contains(&s) => (
            Format::BinarySI,
            0,
            BINARY.iter().position(|b| *b == s).unwrap_or(0) as u32,
        ),
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().map_err(|_| SYNTAX_ERROR)?;
            (Format::DecimalExponent, e, 0)
        }
        s => match DECIMAL.iter().find(|(_, sfx)| *sfx == s) {
            Some((e, _)) => (Format::DecimalSI, *e, 0),
            None => return Err(SYNTAX_ERROR),
        },
    };
    let digits = format!("{whole}{fraction}");
    let Ok(mut m) = digits.parse::<i128>() else {
        return Ok(q.to_string());
    };
    let mut e = exp10 - fraction.len() as i32;
    if binary > 0 {
        let Some(factor) = 1024i128.checked_pow(binary).and_then(|f| m.checked_mul(f)) else {
            return Ok(q.to_string());
        };
        m = factor;
    }
    if m == 0 {
        return Ok("0".into());
    }
    // Round up to whole nanos.
    if e < -9 {
        let Some(d) = pow10((-9 - e) as u32) else {
            return Ok(q.to_string());
        };
        m = (m + d - 1) / d;
        e = -9;
    }
    let sign = if negative { "-" } else { "" };
    let integral = e >= 0 || pow10((-e) as u32).is_some_and(|d| m % d == 0);
    if let Format::BinarySI = format {
        let value = if e >= 0 {
            pow10(e as u32).and_then(|d| m.checked_mul(d))
        } else {
            pow10((-e) as u32).map(|d| m / d)
        };
        match value {
            Some(v) if integral && v >= 1024 => {
                let (mut amount, mut exp) = (v, 0usize);
                while amount % 1024 == 0 && exp + 1 < BINARY.len() {
                    amount /= 1024;
                    exp += 1;
                }
                return Ok(format!("{sign}{amount}{}", BINARY[exp]));
            }
            None if integral => return Ok(q.to_string()),
            _ => {}
        }
    }
    // Decimal: trailing zeros move into the exponent, which then steps down to a multiple of 3.
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    match e.rem_euclid(3) {
        1 => {
            m *= 10;
            e -= 1;
        }
        2 => {
            m *= 100;
            e -= 2;
        }
        _ => {}
    }
    let suffix = match format {
        Format::DecimalExponent if e == 0 => String::new(),
        Format::DecimalExponent => format!("e{e}"),
        _ => match DECIMAL.iter().find(|(x, _)| *x == e) {
            Some((_, s)) => s.to_string(),
            None => format!("e{e}"),
        },
    };
    Ok(format!("{sign}{m}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_match_apimachinery() {
        let cases = [
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("2000", "2k"),
            ("100", "100"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1.5Ki", "1536"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("12e2", "1200"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-1000m", "-1"),
            ("0.0000000001", "1n"),
            ("1G", "1G"),
            ("1000M", "1G"),
            ("100Mi", "100Mi"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input).unwrap(), want, "{input}");
        }
        for bad in ["ten", "1Zi", "", "1..2", "Gi"] {
            assert_eq!(canonical(bad), Err(SYNTAX_ERROR), "{bad}");
        }
    }

    #[test]
    fn suffixes() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("1Gi"), Some(1073741824.0));
        assert_eq!(parse("1G"), Some(1e9));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("1.5Ki"), Some(1536.0));
        assert_eq!(parse("ten"), None);
        assert_eq!(parse("1Zi"), None);
    }
}
