//! The three output tables: their schemas (one definition feeds both the
//! Parquet files and `tables.sql`) and their rows as Arrow batches, split
//! into one batch per UTC date partition.
//!
//! Following Hive's layout, the `date` partition column lives in the
//! directory name (`date=YYYY-MM-DD/`), not inside the files.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::daily::{DailyAqi, SensorEpisode};
use crate::pipeline::HourBucket;
use crate::utc::{UTC, day_number};

/// The output tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Hourly,
    AqiDaily,
    Alerts,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::Hourly, Table::AqiDaily, Table::Alerts];

    /// The directory under `--output`.
    pub fn dir(self) -> &'static str {
        match self {
            Table::Hourly => "hourly",
            Table::AqiDaily => "aqi_daily",
            Table::Alerts => "alerts",
        }
    }

    /// The table name in `tables.sql`; prefixed so the tables sort together
    /// and do not clash with other jobs' tables in a shared schema.
    pub fn sql_name(self) -> &'static str {
        match self {
            Table::Hourly => "air_hourly",
            Table::AqiDaily => "air_aqi_daily",
            Table::Alerts => "air_alerts",
        }
    }

    /// The columns stored in the Parquet files (everything but `date`).
    pub fn schema(self) -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let instant = |name: &str| {
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC))),
                false,
            )
        };
        let real = |name: &str| Field::new(name, DataType::Float64, false);
        let int = |name: &str| Field::new(name, DataType::Int32, false);
        let fields = match self {
            Table::Hourly => vec![
                text("sensor_id"),
                instant("hour"),
                real("pm25_avg"),
                real("pm10_avg"),
                Field::new("readings", DataType::Int64, false),
            ],
            Table::AqiDaily => vec![
                text("sensor_id"),
                real("pm25_avg"),
                real("pm10_avg"),
                int("aqi_pm25"),
                int("aqi_pm10"),
                int("aqi"),
                text("category"),
                text("dominant"),
            ],
            Table::Alerts => vec![
                text("sensor_id"),
                instant("start"),
                instant("end"),
                int("hours"),
                int("peak_aqi"),
                real("peak_pm25"),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

/// The name and SQL type of the partition column every table ends with.
pub const PARTITION_COLUMN: (&str, &str) = ("date", "date");

/// Rows of one table, one batch per UTC date (days since the epoch).
pub type Partitions = BTreeMap<i32, RecordBatch>;

pub fn hourly_partitions(buckets: &[HourBucket]) -> Result<Partitions> {
    partition(
        buckets,
        |b| day_number(b.hour_start_us),
        |rows| {
            Ok(RecordBatch::try_new(
                Table::Hourly.schema(),
                vec![
                    strings(rows.iter().map(|b| &*b.sensor_id)),
                    instants(rows.iter().map(|b| b.hour_start_us)),
                    reals(rows.iter().map(|b| b.pm25_avg())),
                    reals(rows.iter().map(|b| b.pm10_avg())),
                    Arc::new(Int64Array::from_iter_values(
                        rows.iter().map(|b| b.readings as i64),
                    )),
                ],
            )?)
        },
    )
}

pub fn daily_partitions(days: &[DailyAqi]) -> Result<Partitions> {
    partition(
        days,
        |d| d.day,
        |rows| {
            Ok(RecordBatch::try_new(
                Table::AqiDaily.schema(),
                vec![
                    strings(rows.iter().map(|d| &*d.sensor_id)),
                    reals(rows.iter().map(|d| d.pm25_avg)),
                    reals(rows.iter().map(|d| d.pm10_avg)),
                    ints(rows.iter().map(|d| d.index.aqi_pm25)),
                    ints(rows.iter().map(|d| d.index.aqi_pm10)),
                    ints(rows.iter().map(|d| d.index.aqi)),
                    strings(rows.iter().map(|d| d.index.category.as_str())),
                    strings(rows.iter().map(|d| d.index.dominant.as_str())),
                ],
            )?)
        },
    )
}

/// Episodes are filed under the date they start on.
pub fn alert_partitions(episodes: &[SensorEpisode]) -> Result<Partitions> {
    partition(
        episodes,
        |e| day_number(e.episode.start_us),
        |rows| {
            Ok(RecordBatch::try_new(
                Table::Alerts.schema(),
                vec![
                    strings(rows.iter().map(|e| &*e.sensor_id)),
                    instants(rows.iter().map(|e| e.episode.start_us)),
                    instants(rows.iter().map(|e| e.episode.end_us)),
                    Arc::new(Int32Array::from_iter_values(
                        rows.iter().map(|e| e.episode.hours as i32),
                    )),
                    ints(rows.iter().map(|e| e.episode.peak_aqi)),
                    reals(rows.iter().map(|e| e.episode.peak_pm25)),
                ],
            )?)
        },
    )
}

/// Groups rows by day, keeping their order within each day.
fn partition<T>(
    rows: &[T],
    day_of: impl Fn(&T) -> i32,
    to_batch: impl Fn(&[&T]) -> Result<RecordBatch>,
) -> Result<Partitions> {
    let mut by_day: BTreeMap<i32, Vec<&T>> = BTreeMap::new();
    for row in rows {
        by_day.entry(day_of(row)).or_default().push(row);
    }
    by_day
        .into_iter()
        .map(|(day, rows)| Ok((day, to_batch(&rows)?)))
        .collect()
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn instants(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone(UTC))
}

fn reals(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn ints(values: impl Iterator<Item = u16>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values.map(i32::from)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::utc::MICROS_PER_HOUR;

    #[test]
    fn hourly_rows_split_by_utc_date_in_order() {
        let bucket = |sensor: &str, hour: i64| HourBucket {
            sensor_id: Arc::from(sensor),
            hour_start_us: hour * MICROS_PER_HOUR,
            readings: 2,
            pm25_sum: 20.0,
            pm10_sum: 30.0,
        };
        let buckets = vec![
            bucket("a", 23),
            bucket("a", 24),
            bucket("b", 0),
            bucket("b", 47),
        ];
        let parts = hourly_partitions(&buckets).unwrap();
        assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(parts[&0].num_rows(), 2);
        assert_eq!(parts[&1].num_rows(), 2);
        let pm25 = parts[&0]
            .column_by_name("pm25_avg")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(pm25.value(0), 10.0);
        assert!(parts[&0].schema().field_with_name("date").is_err());
    }
}
