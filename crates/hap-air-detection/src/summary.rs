//! `_summary.json`: what a run read, dropped and wrote. It is written last,
//! so its presence also marks a finished run.

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::cleaning::DropCounts;
use crate::input::InputFormat;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub job: &'static str,
    pub version: &'static str,
    /// Locations as URLs; they never carry credentials.
    pub input: String,
    pub output: String,
    pub format: InputFormat,
    pub input_files: usize,
    pub input_bytes: u64,
    pub rows_read: u64,
    pub rows_kept: u64,
    pub rows_dropped: u64,
    /// Drops by reason, in the order the cleaning rules run.
    pub drops: DropsByReason,
    /// Sensors with at least one kept reading.
    pub sensors: usize,
    /// Rows written per output table.
    pub outputs: OutputRows,
    pub threads: usize,
    /// RFC 3339 start time of the run.
    pub started_at: String,
    /// Wall time from start until the outputs were written.
    pub wall_time_seconds: f64,
    /// Where that time went, step by step.
    pub step_seconds: StepSeconds,
}

/// Wall seconds of each step of a run, in the order they run; together they make up the run's
/// wall time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StepSeconds {
    /// Listing the input and output prefixes, and checking the input files' headers or schemas.
    pub check: f64,
    /// Reading every row, cleaning, dropping duplicates and summing per sensor and hour: the one
    /// pass over the data.
    pub hourly: f64,
    /// The daily AQI per sensor, from the hourly means.
    pub aqi_daily: f64,
    /// The pollution-alert episodes: runs of consecutive unhealthy hours per sensor.
    pub alerts: f64,
    /// Writing the three tables and `tables.sql` (the summary itself is written after).
    pub write: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutputRows {
    pub hourly: u64,
    pub aqi_daily: u64,
    pub alerts: u64,
}

/// Serializes as `{"missing_sensor_id": n, ...}` in rule order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropsByReason(pub DropCounts);

impl Serialize for DropsByReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (reason, count) in self.0.iter() {
            map.serialize_entry(reason.as_str(), &count)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cleaning::DropReason;

    #[test]
    fn drops_serialize_in_rule_order_with_zeros() {
        let mut counts = DropCounts::default();
        counts.add(DropReason::Duplicate, 3);
        counts.add(DropReason::MissingSensorId, 1);
        let json = serde_json::to_string(&DropsByReason(counts)).unwrap();
        assert!(json.starts_with("{\"missing_sensor_id\":1,\"missing_or_invalid_ts\":0"));
        assert!(json.ends_with("\"duplicate\":3}"));
    }
}
