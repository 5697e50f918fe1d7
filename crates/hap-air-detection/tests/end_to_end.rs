//! End to end on generated data, local files: the binary's outputs against
//! the independent computation in `common::oracle`.

mod common;

use std::path::Path;

use common::{
    assert_outputs_match, assert_summary_matches, bin, generate, oracle, run_ok, summary,
};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 24 sensors × 3 days at one reading a minute: about 100 000 rows, enough
/// for every fault the generator injects to occur.
fn generated(dir: &Path, seed: u64, extra: &[&str]) -> std::path::PathBuf {
    let input = dir.join(format!("in-{seed}-{}", extra.join("")));
    generate(path(&input), 24, 3, seed, extra);
    input
}

#[test]
fn csv_outputs_match_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let input = generated(dir.path(), 7, &[]);
    let output = dir.path().join("out");
    run_ok(bin().args([
        "--input",
        path(&input),
        "--output",
        path(&output),
        "--threads",
        "2",
    ]));

    let expected = oracle::compute(&input);
    // The data set must exercise every rule, or the comparison proves little.
    for reason in [
        "missing_sensor_id",
        "missing_or_invalid_ts",
        "missing_or_invalid_pm25",
        "missing_or_invalid_pm10",
        "negative_concentration",
        "pm25_above_1000",
        "pm10_above_2000",
        "duplicate",
    ] {
        assert!(
            expected.drops.get(reason).copied().unwrap_or(0) > 0,
            "no {reason} rows generated"
        );
    }
    assert!(
        expected.alerts.len() >= 5,
        "too few episodes: {}",
        expected.alerts.len()
    );
    assert!(expected.daily.values().any(|d| d.dominant == "pm10"));
    assert!(expected.daily.values().any(|d| d.dominant == "pm25"));

    let s = summary(&output);
    assert_summary_matches(&s, &expected);
    assert_outputs_match(&output, &expected);
    assert_eq!(s["input_files"], 12); // 3 days × 4 files a day
}

#[test]
fn parquet_input_gives_the_same_results_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = generated(dir.path(), 11, &[]);
    let parquet = generated(dir.path(), 11, &["--format", "parquet"]);
    let output = dir.path().join("out");
    run_ok(bin().args([
        "--input",
        path(&parquet),
        "--output",
        path(&output),
        "--format",
        "parquet",
    ]));

    // Parquet stores unparsable text as null, which falls under the same
    // "missing or invalid" reasons, so the CSV oracle applies unchanged.
    let expected = oracle::compute(&csv);
    let s = summary(&output);
    assert_eq!(s["format"], "parquet");
    assert_summary_matches(&s, &expected);
    assert_outputs_match(&output, &expected);
}

#[test]
fn files_per_day_changes_the_layout_but_not_the_readings() {
    let dir = tempfile::tempdir().unwrap();
    let four = generated(dir.path(), 5, &[]);
    let one = generated(dir.path(), 5, &["--files-per-day", "1"]);
    let again = generated(dir.path(), 5, &["--files-per-day", "4"]);
    let other_seed = generated(dir.path(), 6, &[]);

    let lines = |dir: &Path| {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            all.extend(text.lines().skip(1).map(str::to_string));
        }
        all.sort();
        all
    };
    assert_eq!(std::fs::read_dir(&one).unwrap().count(), 3);
    assert_eq!(lines(&four), lines(&one));
    assert_ne!(lines(&four), lines(&other_seed));
    // Same seed, same arguments: byte-identical files.
    for entry in std::fs::read_dir(&four).unwrap() {
        let entry = entry.unwrap();
        let twin = again.join(entry.file_name());
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(twin).unwrap()
        );
    }
}

#[test]
fn a_rerun_replaces_outputs_and_removes_stale_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let three_days = dir.path().join("in3");
    let two_days = dir.path().join("in2");
    generate(path(&three_days), 6, 3, 3, &[]);
    generate(path(&two_days), 6, 2, 3, &[]);
    let output = dir.path().join("out");
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(output.join("notes.txt"), "kept").unwrap();

    run_ok(bin().args(["--input", path(&three_days), "--output", path(&output)]));
    assert!(
        output
            .join("hourly/date=2024-03-03/part-00000.parquet")
            .exists()
    );
    run_ok(bin().args(["--input", path(&two_days), "--output", path(&output)]));

    assert!(
        !output
            .join("hourly/date=2024-03-03")
            .join("part-00000.parquet")
            .exists()
    );
    assert!(
        !output
            .join("aqi_daily/date=2024-03-03/part-00000.parquet")
            .exists()
    );
    assert!(
        output.join("notes.txt").exists(),
        "files outside the tables are left alone"
    );
    let expected = oracle::compute(&two_days);
    assert_summary_matches(&summary(&output), &expected);
    assert_outputs_match(&output, &expected);
}

#[test]
fn a_rerun_that_fails_part_way_leaves_no_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    generate(path(&input), 4, 2, 5, &[]);
    let output = dir.path().join("out");
    run_ok(bin().args(["--input", path(&input), "--output", path(&output)]));
    assert!(output.join("_summary.json").exists());

    // A file where the alerts table's directory should be: the re-run writes
    // the hourly and daily tables, then fails on the alerts.
    std::fs::remove_dir_all(output.join("alerts")).unwrap();
    std::fs::write(output.join("alerts"), "in the way").unwrap();
    let message =
        common::run_failing(bin().args(["--input", path(&input), "--output", path(&output)]));
    assert!(message.contains("alerts"), "{message}");
    assert!(
        !output.join("_summary.json").exists(),
        "the previous run's summary would vouch for a half-written output"
    );
}

#[test]
fn tables_sql_declares_the_three_tables_over_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    generate(path(&input), 2, 1, 1, &[]);
    let output = dir.path().join("out");
    run_ok(bin().args([
        "--input",
        path(&input),
        "--output",
        path(&output),
        "--sql-schema",
        "airq",
    ]));
    let sql = std::fs::read_to_string(output.join("tables.sql")).unwrap();
    let location = output.canonicalize().unwrap();
    for table in ["hourly", "aqi_daily", "alerts"] {
        assert!(sql.contains(&format!(
            "CREATE TABLE IF NOT EXISTS \"airq\".\"air_{table}\" ("
        )));
        assert!(sql.contains(&format!(
            "external_location = 'file://{}/{table}/'",
            location.display()
        )));
        assert!(sql.contains(&format!(
            "CALL system.sync_partition_metadata('airq', 'air_{table}', 'FULL');"
        )));
    }
    assert_eq!(sql.matches("partitioned_by = ARRAY['date']").count(), 3);
    assert_eq!(sql.matches("format = 'PARQUET'").count(), 3);
}

#[test]
fn a_single_file_can_be_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = generated(dir.path(), 9, &[]);
    let alone = dir.path().join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    let name = "readings-2024-03-02-part002.csv";
    std::fs::copy(input.join(name), alone.join(name)).unwrap();
    let output = dir.path().join("out");
    run_ok(bin().args([
        "--input",
        path(&input.join(name)),
        "--output",
        path(&output),
    ]));

    let expected = oracle::compute(&alone);
    let s = summary(&output);
    assert_eq!(s["input_files"], 1);
    assert_summary_matches(&s, &expected);
    assert_outputs_match(&output, &expected);
}
