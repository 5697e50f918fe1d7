//! Kubernetes quantities (`2Gi`, `500m`) as numbers, for the conversions Spark needs. Parsing is
//! kube_quantity's.

use kube_quantity::ParsedQuantity;

/// The value of a quantity in its base unit (bytes, cores), or None if it is not a quantity.
pub fn parse(q: &str) -> Option<f64> {
    let v = ParsedQuantity::try_from(q.trim()).ok()?.to_bytes_f64()?;
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
