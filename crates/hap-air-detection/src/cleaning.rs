//! Cleaning rules: which readings are dropped, and under which reason.
//!
//! A row is checked against the rules in the order of [`DropReason`] and
//! counted under the first rule it breaks, so every dropped row has exactly
//! one reason. Duplicates are found last, among rows that passed every other
//! rule: on a repeated (`sensor_id`, `ts`) one row is kept — the one with the
//! lowest `pm25`, then the lowest `pm10` — so the choice does not depend on
//! file order or parallelism.

use datafusion::common::Result;
use datafusion::logical_expr::{Expr, lit, when};
use serde::Serialize;

/// Readings above these are sensor faults, not air (µg/m³).
pub const PM25_MAX_UG_M3: f64 = 1000.0;
pub const PM10_MAX_UG_M3: f64 = 2000.0;

/// The code a kept row carries in the reason column.
pub const KEPT: u8 = 0;

/// Why a row was dropped. The declaration order is the order the rules run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// `sensor_id` is absent, empty or only whitespace.
    MissingSensorId,
    /// `ts` is absent or not an RFC 3339 timestamp with an offset.
    MissingOrInvalidTs,
    /// `pm25` is absent, not a number, or not finite.
    MissingOrInvalidPm25,
    /// `pm10` is absent, not a number, or not finite.
    MissingOrInvalidPm10,
    /// `pm25` or `pm10` is below zero.
    NegativeConcentration,
    /// `pm25` is above [`PM25_MAX_UG_M3`].
    Pm25Above1000,
    /// `pm10` is above [`PM10_MAX_UG_M3`].
    Pm10Above2000,
    /// Another kept row has the same `sensor_id` and `ts`.
    Duplicate,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::MissingSensorId,
        DropReason::MissingOrInvalidTs,
        DropReason::MissingOrInvalidPm25,
        DropReason::MissingOrInvalidPm10,
        DropReason::NegativeConcentration,
        DropReason::Pm25Above1000,
        DropReason::Pm10Above2000,
        DropReason::Duplicate,
    ];

    /// The name used in `_summary.json` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MissingSensorId => "missing_sensor_id",
            DropReason::MissingOrInvalidTs => "missing_or_invalid_ts",
            DropReason::MissingOrInvalidPm25 => "missing_or_invalid_pm25",
            DropReason::MissingOrInvalidPm10 => "missing_or_invalid_pm10",
            DropReason::NegativeConcentration => "negative_concentration",
            DropReason::Pm25Above1000 => "pm25_above_1000",
            DropReason::Pm10Above2000 => "pm10_above_2000",
            DropReason::Duplicate => "duplicate",
        }
    }

    /// The non-zero code of the row-level reasons (duplicates have none:
    /// they are found by grouping, not by looking at one row).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(code: u8) -> Option<DropReason> {
        DropReason::ALL
            .into_iter()
            .find(|reason| reason.code() == code)
    }
}

impl Serialize for DropReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Drop counts, one per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    pub fn add(&mut self, reason: DropReason, rows: u64) {
        self.0[reason as usize] += rows;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// (reason, count) in rule order, including zero counts.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|reason| (reason, self.get(reason)))
    }
}

/// The reason code of a row, as an expression over its *parsed* columns:
/// `ts`, `pm25` and `pm10` are null when missing or unparsable (see
/// [`crate::parsing`]); `sensor_id` is the trimmed text.
pub fn row_reason_code(sensor_id: Expr, ts: Expr, pm25: Expr, pm10: Expr) -> Result<Expr> {
    let code = |reason: DropReason| lit(reason.code());
    let blank_sensor = sensor_id.clone().is_null().or(sensor_id.eq(lit("")));
    when(blank_sensor, code(DropReason::MissingSensorId))
        .when(ts.is_null(), code(DropReason::MissingOrInvalidTs))
        .when(
            pm25.clone().is_null(),
            code(DropReason::MissingOrInvalidPm25),
        )
        .when(
            pm10.clone().is_null(),
            code(DropReason::MissingOrInvalidPm10),
        )
        .when(
            pm25.clone().lt(lit(0.0)).or(pm10.clone().lt(lit(0.0))),
            code(DropReason::NegativeConcentration),
        )
        .when(
            pm25.gt(lit(PM25_MAX_UG_M3)),
            code(DropReason::Pm25Above1000),
        )
        .when(
            pm10.gt(lit(PM10_MAX_UG_M3)),
            code(DropReason::Pm10Above2000),
        )
        .otherwise(lit(KEPT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_skip_kept() {
        for reason in DropReason::ALL {
            assert_ne!(reason.code(), KEPT);
            assert_eq!(DropReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(DropReason::from_code(KEPT), None);
    }

    #[test]
    fn names_are_unique_snake_case() {
        let names: std::collections::BTreeSet<_> =
            DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
        for reason in DropReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }
}
