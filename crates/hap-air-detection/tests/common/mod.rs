//! Helpers shared by the integration tests: running the real binary,
//! reading its Parquet outputs back, and comparing them with the oracle.

#![allow(dead_code)] // each test binary uses a different subset

pub mod oracle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datafusion::arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use oracle::{DailyRow, Expected};

/// The binary under test, with a clean environment: no AWS settings from
/// the machine running the tests, and plain logs.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hap-air-detection"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "hap_air_detection=info,warn");
    command.env("NO_COLOR", "1");
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs and insists on success, showing stderr otherwise.
pub fn run_ok(command: &mut Command) -> Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "command failed with {}:\n{}",
        output.status,
        stderr(&output)
    );
    output
}

/// Runs and insists on failure with exit code 1 (clap's usage errors are 2).
pub fn run_failing(command: &mut Command) -> String {
    let output = run(command);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit code 1, got {}; stdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    let text = stderr(&output);
    assert!(!text.contains("panicked"), "the binary panicked:\n{text}");
    text
}

/// Generates a data set with the binary's `generate` command.
pub fn generate(output: &str, sensors: u32, days: u32, seed: u64, extra: &[&str]) {
    run_ok(
        bin()
            .args(["generate", "--output", output])
            .args([
                "--sensors",
                &sensors.to_string(),
                "--days",
                &days.to_string(),
            ])
            .args(["--seed", &seed.to_string()])
            .args(extra),
    );
}

pub fn summary(output_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(output_dir.join("_summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every `date=...` partition of a table: (date label, batches).
pub fn read_table(output_dir: &Path, table: &str) -> Vec<(String, RecordBatch)> {
    let mut rows = Vec::new();
    let dir = output_dir.join(table);
    let mut partitions: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    partitions.sort();
    for partition in partitions {
        let name = partition.file_name().unwrap().to_str().unwrap().to_string();
        let date = name
            .strip_prefix("date=")
            .expect("Hive-style partition")
            .to_string();
        for file in std::fs::read_dir(&partition).unwrap() {
            let file = std::fs::File::open(file.unwrap().path()).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                rows.push((date.clone(), batch.unwrap()));
            }
        }
    }
    rows
}

// Typed views of an output column, by name.
pub fn strings<'a>(batch: &'a RecordBatch, name: &str) -> &'a StringArray {
    batch.column_by_name(name).unwrap().as_string::<i32>()
}
pub fn floats<'a>(batch: &'a RecordBatch, name: &str) -> &'a Float64Array {
    batch.column_by_name(name).unwrap().as_primitive()
}
pub fn ints<'a>(batch: &'a RecordBatch, name: &str) -> &'a Int32Array {
    batch.column_by_name(name).unwrap().as_primitive()
}
pub fn counts<'a>(batch: &'a RecordBatch, name: &str) -> &'a Int64Array {
    batch.column_by_name(name).unwrap().as_primitive()
}
pub fn instants<'a>(batch: &'a RecordBatch, name: &str) -> &'a TimestampMicrosecondArray {
    let column = batch.column_by_name(name).unwrap();
    assert!(
        matches!(column.data_type(), DataType::Timestamp(_, Some(tz)) if &**tz == "UTC"),
        "{name} is {}",
        column.data_type()
    );
    column.as_primitive()
}

/// `YYYY-MM-DD` of a µs timestamp.
pub fn date_of(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .unwrap()
        .strftime("%Y-%m-%d")
        .to_string()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Compares every output row with the oracle, partitions included.
pub fn assert_outputs_match(output_dir: &Path, expected: &Expected) {
    // hourly
    let mut hourly = BTreeMap::new();
    for (date, batch) in read_table(output_dir, "hourly") {
        let readings: &Int64Array = batch.column_by_name("readings").unwrap().as_primitive();
        for i in 0..batch.num_rows() {
            let hour = instants(&batch, "hour").value(i);
            assert_eq!(date, date_of(hour), "hourly row filed under the wrong date");
            let key = (strings(&batch, "sensor_id").value(i).to_string(), hour);
            let value = (
                floats(&batch, "pm25_avg").value(i),
                floats(&batch, "pm10_avg").value(i),
                readings.value(i) as u64,
            );
            assert!(hourly.insert(key, value).is_none(), "duplicate hourly row");
        }
    }
    assert_eq!(
        hourly.keys().collect::<Vec<_>>(),
        expected.hourly.keys().collect::<Vec<_>>(),
        "hourly keys"
    );
    for (key, (pm25, pm10, n)) in &hourly {
        let (e25, e10, en) = expected.hourly[key];
        assert!(
            close(*pm25, e25) && close(*pm10, e10) && *n == en,
            "hourly {key:?}: got {pm25} {pm10} {n}, want {e25} {e10} {en}"
        );
    }

    // aqi_daily
    let mut daily = BTreeMap::new();
    for (date, batch) in read_table(output_dir, "aqi_daily") {
        for i in 0..batch.num_rows() {
            let day = jiff::civil::Date::strptime("%Y-%m-%d", &date).unwrap();
            let day_number = day
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second()
                / 86_400;
            let row = DailyRow {
                pm25_avg: floats(&batch, "pm25_avg").value(i),
                pm10_avg: floats(&batch, "pm10_avg").value(i),
                aqi_pm25: ints(&batch, "aqi_pm25").value(i) as u32,
                aqi_pm10: ints(&batch, "aqi_pm10").value(i) as u32,
                aqi: ints(&batch, "aqi").value(i) as u32,
                category: leak(strings(&batch, "category").value(i)),
                dominant: leak(strings(&batch, "dominant").value(i)),
            };
            let key = (
                strings(&batch, "sensor_id").value(i).to_string(),
                day_number,
            );
            assert!(daily.insert(key, row).is_none(), "duplicate daily row");
        }
    }
    assert_eq!(
        daily.keys().collect::<Vec<_>>(),
        expected.daily.keys().collect::<Vec<_>>(),
        "daily keys"
    );
    for (key, got) in &daily {
        let want = &expected.daily[key];
        assert!(
            close(got.pm25_avg, want.pm25_avg) && close(got.pm10_avg, want.pm10_avg),
            "daily means {key:?}: got {got:?}, want {want:?}"
        );
        assert_eq!(
            (
                got.aqi_pm25,
                got.aqi_pm10,
                got.aqi,
                got.category,
                got.dominant
            ),
            (
                want.aqi_pm25,
                want.aqi_pm10,
                want.aqi,
                want.category,
                want.dominant
            ),
            "daily index {key:?}"
        );
    }

    // alerts
    let mut alerts = BTreeMap::new();
    for (date, batch) in read_table(output_dir, "alerts") {
        for i in 0..batch.num_rows() {
            let start = instants(&batch, "start").value(i);
            assert_eq!(date, date_of(start), "alert filed under the wrong date");
            let key = (strings(&batch, "sensor_id").value(i).to_string(), start);
            let value = (
                instants(&batch, "end").value(i),
                ints(&batch, "hours").value(i) as u32,
                ints(&batch, "peak_aqi").value(i) as u32,
                floats(&batch, "peak_pm25").value(i),
            );
            assert!(alerts.insert(key, value).is_none(), "duplicate alert");
        }
    }
    assert_eq!(
        alerts.keys().collect::<Vec<_>>(),
        expected.alerts.keys().collect::<Vec<_>>(),
        "alert keys"
    );
    for (key, (end, hours, peak_aqi, peak_pm25)) in &alerts {
        let (e_end, e_hours, e_aqi, e_pm25) = expected.alerts[key];
        assert_eq!(
            (*end, *hours, *peak_aqi),
            (e_end, e_hours, e_aqi),
            "alert {key:?}"
        );
        assert!(close(*peak_pm25, e_pm25), "alert peak {key:?}");
    }
}

/// Category and dominant are compared as `&'static str` with the oracle's.
fn leak(text: &str) -> &'static str {
    for known in [
        "Good",
        "Moderate",
        "Unhealthy for Sensitive Groups",
        "Unhealthy",
        "Very Unhealthy",
        "Hazardous",
        "pm25",
        "pm10",
    ] {
        if text == known {
            return known;
        }
    }
    panic!("unexpected label {text:?}")
}

/// Compares `_summary.json` counts with the oracle.
pub fn assert_summary_matches(summary: &serde_json::Value, expected: &Expected) {
    assert_eq!(summary["rows_read"], expected.rows_read, "rows_read");
    let dropped: u64 = expected.drops.values().sum();
    assert_eq!(summary["rows_dropped"], dropped, "rows_dropped");
    assert_eq!(
        summary["rows_kept"],
        expected.rows_read - dropped,
        "rows_kept"
    );
    let drops = summary["drops"].as_object().unwrap();
    for (reason, count) in drops {
        let want = expected.drops.get(reason.as_str()).copied().unwrap_or(0);
        assert_eq!(count.as_u64(), Some(want), "drops.{reason}");
    }
    for reason in expected.drops.keys() {
        assert!(drops.contains_key(*reason), "summary lacks drops.{reason}");
    }
    assert_eq!(summary["sensors"], expected.sensors, "sensors");
    assert_eq!(
        summary["outputs"]["hourly"],
        expected.hourly.len(),
        "outputs.hourly"
    );
    assert_eq!(
        summary["outputs"]["aqi_daily"],
        expected.daily.len(),
        "outputs.aqi_daily"
    );
    assert_eq!(
        summary["outputs"]["alerts"],
        expected.alerts.len(),
        "outputs.alerts"
    );
    // Every step is timed, and together they fit in the run's wall time.
    let steps = summary["step_seconds"].as_object().expect("step_seconds");
    let mut names: Vec<&str> = steps.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["alerts", "aqi_daily", "check", "hourly", "write"],
        "step_seconds"
    );
    let seconds: Vec<f64> = steps.values().map(|v| v.as_f64().unwrap()).collect();
    assert!(
        seconds.iter().all(|s| *s >= 0.0),
        "step_seconds {seconds:?}"
    );
    let wall = summary["wall_time_seconds"].as_f64().unwrap();
    assert!(
        seconds.iter().sum::<f64>() <= wall,
        "the steps {seconds:?} add up to more than the run's {wall} s"
    );
}
