//! Reading Kubernetes quantities (`2Gi`, `500m`), for the conversions Spark needs.

/// The value of a quantity in its base unit (bytes, cores), or None if it is not a quantity.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    let v = n * factor;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A memory quantity in whole mebibytes, rounded up, as Spark's `2048m` wants it.
pub fn mebibytes(q: &str) -> Option<u64> {
    parse(q).map(|bytes| (bytes / (1024.0 * 1024.0)).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_to_mebibytes() {
        assert_eq!(mebibytes("2Gi"), Some(2048));
        assert_eq!(mebibytes("1G"), Some(954));
        assert_eq!(mebibytes("512Mi"), Some(512));
        assert_eq!(mebibytes("lots"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("500m"), Some(0.5));
    }
}
