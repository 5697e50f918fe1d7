//! The heavy part of the job, as one DataFusion plan: parse, clean,
//! de-duplicate and reduce every reading to per-sensor hourly sums.
//!
//! The plan makes a single pass over the input and returns only a small
//! result — one row per (sensor, hour) plus one row per drop reason — from
//! which the daily index and the episodes are computed in plain Rust.
//!
//! ```text
//! readings ─ parse ─ classify ─ group by (reason, sensor_id, ts)     de-duplicate
//!                               └ group by (reason, sensor_id, hour)  hourly sums
//! ```
//!
//! Dropped rows keep their reason and lose their key, so each reason
//! collapses to one group whose row count is its drop count, and the
//! duplicates of a kept hour are its rows minus its distinct readings.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, TimestampMicrosecondType, UInt8Type,
};
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::{btrim, date_trunc};
use datafusion::functions_aggregate::expr_fn::{count, min, sum};
use datafusion::logical_expr::{Expr, cast as cast_expr, col, lit, when};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;

use crate::cleaning::{DropCounts, DropReason, KEPT, row_reason_code};
use crate::input::InputFormat;
use crate::pair_min::{pack_udf, unpack_first_udf, unpack_second_udf};
use crate::parsing::{parse_number_udf, parse_timestamp_udf, timestamp_type};
use crate::storage::Location;

/// One sensor's clean readings in one UTC hour, reduced to sums so that
/// daily means can be derived exactly from them.
#[derive(Debug, Clone, PartialEq)]
pub struct HourBucket {
    pub sensor_id: Arc<str>,
    pub hour_start_us: i64,
    pub readings: u64,
    pub pm25_sum: f64,
    pub pm10_sum: f64,
}

impl HourBucket {
    pub fn pm25_avg(&self) -> f64 {
        self.pm25_sum / self.readings as f64
    }

    pub fn pm10_avg(&self) -> f64 {
        self.pm10_sum / self.readings as f64
    }
}

/// What the plan returns: the hour buckets sorted by (sensor, hour), and
/// the row counts behind them.
#[derive(Debug, Clone, Default)]
pub struct HourlyAggregate {
    pub buckets: Vec<HourBucket>,
    pub drops: DropCounts,
    pub rows_read: u64,
}

impl HourlyAggregate {
    pub fn rows_kept(&self) -> u64 {
        self.buckets.iter().map(|b| b.readings).sum()
    }
}

/// A DataFusion session sized to `threads`, that reads below the prefix
/// recursively.
pub fn session(threads: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .set_bool(
            "datafusion.execution.listing_table_ignore_subdirectory",
            false,
        );
    SessionContext::new_with_config(config)
}

/// Reads the input and reduces it to hour buckets and drop counts.
/// `table_url` is the prefix (or single file) to read; `csv_header` is the
/// checked header of the CSV files.
pub async fn aggregate_hours(
    ctx: &SessionContext,
    input: &Location,
    table_url: &str,
    format: InputFormat,
    csv_header: Option<&[String]>,
) -> Result<HourlyAggregate> {
    ctx.register_object_store(&input.store_url(), Arc::clone(&input.store));
    let raw = read_raw(ctx, table_url, format, csv_header).await?;
    let plan = hourly_plan(raw)?;
    let batches = plan
        .collect()
        .await
        .with_context(|| format!("reading the input {} failed", input.url))?;
    collect_buckets(&batches)
}

async fn read_raw(
    ctx: &SessionContext,
    url: &str,
    format: InputFormat,
    csv_header: Option<&[String]>,
) -> Result<DataFrame> {
    match format {
        InputFormat::Csv => {
            let header = csv_header.context("CSV input needs its checked header")?;
            // Every column is read as text: a bad value must become a counted
            // drop, not a failed scan.
            let schema = Schema::new(
                header
                    .iter()
                    .map(|name| Field::new(name, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            );
            let options = CsvReadOptions::new()
                .has_header(true)
                .schema(&schema)
                .file_extension(InputFormat::Csv.extension());
            Ok(ctx.read_csv(url, options).await?)
        }
        InputFormat::Parquet => {
            let options =
                ParquetReadOptions::default().file_extension(InputFormat::Parquet.extension());
            // Each file's columns were checked before (input::check_parquet_files).
            ctx.read_parquet(url, options)
                .await
                .with_context(|| format!("cannot read the Parquet schema of {url}"))
        }
    }
}

/// Builds the plan over raw readings (text or typed columns).
pub fn hourly_plan(raw: DataFrame) -> Result<DataFrame> {
    let schema = raw.schema().clone();
    let type_of = |name: &str| -> Result<DataType> {
        Ok(schema
            .field_with_unqualified_name(name)
            .with_context(|| format!("the input has no column {name}"))?
            .data_type()
            .clone())
    };
    let sensor_id = sensor_expr(&type_of("sensor_id")?)?;
    let ts = timestamp_expr(&type_of("ts")?)?;
    let pm25 = concentration_expr("pm25", &type_of("pm25")?)?;
    let pm10 = concentration_expr("pm10", &type_of("pm10")?)?;

    let parsed = raw.select(vec![
        sensor_id.alias("sensor_id"),
        ts.alias("ts"),
        pm25.alias("pm25"),
        pm10.alias("pm10"),
    ])?;
    let reason = row_reason_code(col("sensor_id"), col("ts"), col("pm25"), col("pm10"))?;
    let classified = parsed.select(vec![
        col("sensor_id"),
        col("ts"),
        col("pm25"),
        col("pm10"),
        reason.alias("reason"),
    ])?;

    let kept = || col("reason").eq(lit(KEPT));
    let only_kept = |e: Expr, null: ScalarValue| when(kept(), e).otherwise(lit(null));
    let keyed = classified.select(vec![
        col("reason"),
        only_kept(col("sensor_id"), ScalarValue::Utf8(None))?.alias("sensor_id"),
        only_kept(col("ts"), ScalarValue::try_from(timestamp_type())?)?.alias("ts"),
        only_kept(col("pm25"), ScalarValue::Float64(None))?.alias("pm25"),
        only_kept(col("pm10"), ScalarValue::Float64(None))?.alias("pm10"),
    ])?;

    // One row per distinct reading: the copy with the lowest (pm25, pm10),
    // found as a plain `min` over the packed pair (see pair_min.rs).
    let distinct = keyed.aggregate(
        vec![col("reason"), col("sensor_id"), col("ts")],
        vec![
            min(pack_udf().call(vec![col("pm25"), col("pm10")])).alias("pair"),
            count(lit(1)).alias("copies"),
        ],
    )?;

    let hourly = distinct.aggregate(
        vec![
            col("reason"),
            col("sensor_id"),
            date_trunc(lit("hour"), col("ts")).alias("hour"),
        ],
        vec![
            sum(col("copies")).alias("rows"),
            count(lit(1)).alias("readings"),
            sum(unpack_first_udf().call(vec![col("pair")])).alias("pm25_sum"),
            sum(unpack_second_udf().call(vec![col("pair")])).alias("pm10_sum"),
        ],
    )?;
    Ok(hourly)
}

/// The sensor id as trimmed text: `" s1"` written by a padding CSV writer is
/// sensor `s1`, and its readings are de-duplicated against `s1`'s.
fn sensor_expr(data_type: &DataType) -> Result<Expr> {
    let text = match data_type {
        DataType::Utf8 => col("sensor_id"),
        t if is_text(t) || t.is_integer() => cast_expr(col("sensor_id"), DataType::Utf8),
        DataType::Dictionary(_, value) if is_text(value) => {
            cast_expr(col("sensor_id"), DataType::Utf8)
        }
        other => bail!("input column sensor_id has type {other}; expected text"),
    };
    Ok(btrim(vec![text]))
}

fn timestamp_expr(data_type: &DataType) -> Result<Expr> {
    Ok(match data_type {
        t if is_text(t) => parse_timestamp_udf().call(vec![col("ts")]),
        DataType::Timestamp(_, _) => cast_expr(col("ts"), timestamp_type()),
        other => bail!("input column ts has type {other}; expected RFC 3339 text or a timestamp"),
    })
}

fn concentration_expr(name: &str, data_type: &DataType) -> Result<Expr> {
    Ok(match data_type {
        t if is_text(t) => parse_number_udf().call(vec![col(name)]),
        t if t.is_numeric() => {
            // Typed columns can still hold NaN or infinity.
            let value = cast_expr(col(name), DataType::Float64);
            when(
                value
                    .clone()
                    .gt(lit(f64::NEG_INFINITY))
                    .and(value.clone().lt(lit(f64::INFINITY))),
                value,
            )
            .otherwise(lit(ScalarValue::Float64(None)))?
        }
        other => bail!("input column {name} has type {other}; expected a number"),
    })
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Turns the plan's result batches into sorted hour buckets and counts.
fn collect_buckets(batches: &[RecordBatch]) -> Result<HourlyAggregate> {
    let mut result = HourlyAggregate::default();
    let mut interned: HashMap<String, Arc<str>> = HashMap::new();

    for batch in batches {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .with_context(|| format!("the plan returned no column {name}"))
        };
        let reason = column("reason")?.as_primitive::<UInt8Type>();
        let sensor = cast(column("sensor_id")?, &DataType::Utf8)?;
        let sensor = sensor.as_string::<i32>();
        let hour = column("hour")?.as_primitive::<TimestampMicrosecondType>();
        let rows = column("rows")?.as_primitive::<Int64Type>();
        let readings = column("readings")?.as_primitive::<Int64Type>();
        let pm25_sum = column("pm25_sum")?.as_primitive::<Float64Type>();
        let pm10_sum = column("pm10_sum")?.as_primitive::<Float64Type>();

        for i in 0..batch.num_rows() {
            let row_count = u64::try_from(rows.value(i)).context("negative row count")?;
            result.rows_read += row_count;
            let code = reason.value(i);
            if code != KEPT {
                let reason = DropReason::from_code(code)
                    .with_context(|| format!("unknown drop reason code {code}"))?;
                result.drops.add(reason, row_count);
                continue;
            }
            let distinct = u64::try_from(readings.value(i)).context("negative reading count")?;
            result
                .drops
                .add(DropReason::Duplicate, row_count - distinct);
            let name = sensor.value(i);
            let sensor_id = match interned.get(name) {
                Some(id) => Arc::clone(id),
                None => {
                    let id: Arc<str> = Arc::from(name);
                    interned.insert(name.to_string(), Arc::clone(&id));
                    id
                }
            };
            result.buckets.push(HourBucket {
                sensor_id,
                hour_start_us: hour.value(i),
                readings: distinct,
                pm25_sum: pm25_sum.value(i),
                pm10_sum: pm10_sum.value(i),
            });
        }
    }
    result
        .buckets
        .sort_by(|a, b| (&a.sensor_id, a.hour_start_us).cmp(&(&b.sensor_id, b.hour_start_us)));
    Ok(result)
}
