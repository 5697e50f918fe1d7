//! Bad input: every case must end with exit code 1 and a message that names
//! what is wrong and what to do, never a panic or a silent success.

mod common;

use std::path::Path;

use common::{bin, generate, run, run_failing};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small generated input, and an output path next to it.
fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    generate(path(&input), 4, 2, 1, &["--files-per-day", "2"]);
    let output = dir.path().join("out");
    (dir, input, output)
}

fn first_file(input: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.remove(0)
}

#[test]
fn a_truncated_csv_is_an_error() {
    let (_dir, input, output) = setup();
    let file = first_file(&input);
    let text = std::fs::read_to_string(&file).unwrap();
    // Cut the upload mid-row, as an interrupted transfer would.
    let cut = text.len() / 2;
    let cut = text[..cut].rfind(',').unwrap() - 3;
    std::fs::write(&file, &text[..cut]).unwrap();

    let message = run_failing(bin().args(["--input", path(&input), "--output", path(&output)]));
    assert!(message.contains("truncated"), "{message}");
    assert!(
        message.contains(file.file_name().unwrap().to_str().unwrap()),
        "the message must name the file:\n{message}"
    );
    assert!(!output.join("_summary.json").exists());
}

#[test]
fn a_wrong_header_names_the_file_and_the_missing_column() {
    let (_dir, input, output) = setup();
    let file = first_file(&input);
    let text = std::fs::read_to_string(&file).unwrap();
    let renamed = text.replacen("pm25", "pm2_5", 1);
    std::fs::write(&file, renamed).unwrap();

    let message = run_failing(bin().args(["--input", path(&input), "--output", path(&output)]));
    assert!(
        message.contains(file.file_name().unwrap().to_str().unwrap()),
        "{message}"
    );
    // The other files still say pm25, so the mismatch is what is reported,
    // with both headers shown.
    assert!(
        message.contains("pm2_5") && message.contains("must share one header"),
        "{message}"
    );
}

#[test]
fn a_parquet_file_missing_a_column_is_named_even_when_other_files_have_it() {
    use datafusion::arrow::array::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    generate(
        path(&input),
        4,
        2,
        1,
        &["--files-per-day", "2", "--format", "parquet"],
    );
    // Rewrite one file without its pm10 column, as an older sensor export
    // would have it.
    let file = first_file(&input);
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let without = |batch: &RecordBatch| {
        let mut batch = batch.clone();
        batch.remove_column(batch.schema().index_of("pm10").unwrap());
        batch
    };
    let schema = without(&batches[0]).schema();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&file).unwrap(), schema, None).unwrap();
    for batch in &batches {
        writer.write(&without(batch)).unwrap();
    }
    writer.close().unwrap();

    let output = dir.path().join("out");
    let message = run_failing(bin().args([
        "--input",
        path(&input),
        "--output",
        path(&output),
        "--format",
        "parquet",
    ]));
    assert!(
        message.contains(file.file_name().unwrap().to_str().unwrap())
            && message.contains("lacks the required column(s) pm10"),
        "{message}"
    );
    assert!(!output.join("_summary.json").exists());
}

#[test]
fn a_header_missing_a_column_in_every_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("x.csv"),
        "sensor_id,ts,lat,lon,pm25,temperature_c,humidity_pct\ns1,2024-03-01T00:00:00Z,1,2,3,4,5\n",
    )
    .unwrap();
    let message = run_failing(bin().args([
        "--input",
        path(&input),
        "--output",
        path(&dir.path().join("out")),
    ]));
    assert!(
        message.contains("x.csv") && message.contains("lacks the required column(s) pm10"),
        "{message}"
    );
}

#[test]
fn an_empty_prefix_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty");
    std::fs::create_dir_all(&input).unwrap();
    let message = run_failing(bin().args([
        "--input",
        path(&input),
        "--output",
        path(&dir.path().join("out")),
    ]));
    assert!(
        message.contains("no .csv files under the input"),
        "{message}"
    );
    assert!(message.contains("it is empty"), "{message}");
}

#[test]
fn the_wrong_format_is_pointed_out() {
    let (_dir, input, output) = setup();
    let message = run_failing(bin().args([
        "--input",
        path(&input),
        "--output",
        path(&output),
        "--format",
        "parquet",
    ]));
    assert!(message.contains("no .parquet files"), "{message}");
    assert!(message.contains("pass --format"), "{message}");
}

#[test]
fn an_empty_file_is_an_error() {
    let (_dir, input, output) = setup();
    std::fs::write(input.join("zero.csv"), "").unwrap();
    let message = run_failing(bin().args(["--input", path(&input), "--output", path(&output)]));
    assert!(
        message.contains("zero.csv") && message.contains("empty"),
        "{message}"
    );
}

#[test]
fn a_missing_input_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let message = run_failing(bin().args([
        "--input",
        path(&dir.path().join("nope")),
        "--output",
        path(&dir.path().join("out")),
    ]));
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn output_inside_the_input_is_refused() {
    let (_dir, input, _) = setup();
    let message = run_failing(bin().args([
        "--input",
        path(&input),
        "--output",
        path(&input.join("results")),
    ]));
    assert!(message.contains("overlaps --input"), "{message}");
}

#[test]
fn an_unreachable_endpoint_is_an_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let message = run_failing(
        bin()
            .env("AWS_ACCESS_KEY_ID", "test-key")
            .env("AWS_SECRET_ACCESS_KEY", "test-secret-never-printed")
            .args([
                "--input",
                "s3://air/readings/",
                "--output",
                path(dir.path()),
            ])
            .args(["--s3-endpoint", &endpoint, "--s3-path-style"]),
    );
    assert!(
        message.contains(&endpoint),
        "the message must name the endpoint:\n{message}"
    );
    assert!(message.contains("reachable"), "{message}");
    assert!(!message.contains("test-secret-never-printed"));
}

#[test]
fn usage_errors_exit_with_code_2() {
    let output = run(bin().args(["--input", "a", "--output", "b", "--format", "json"]));
    assert_eq!(output.status.code(), Some(2));
    let output = run(bin().args(["--output", "b"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--input"));
}

#[test]
fn a_malformed_row_inside_a_file_is_located() {
    let (_dir, input, output) = setup();
    let file = first_file(&input);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[100] = "aq-00001,2024-03-01T01:00:00Z,52.3";
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let message = run_failing(bin().args(["--input", path(&input), "--output", path(&output)]));
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        message.contains(&format!("{name}, line 101, has 3 field(s)")),
        "{message}"
    );
}

#[test]
fn files_with_only_a_header_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let header = "sensor_id,ts,lat,lon,pm25,pm10,temperature_c,humidity_pct\n";
    std::fs::write(input.join("a.csv"), header).unwrap();
    std::fs::write(input.join("b.csv"), header).unwrap();
    let output = dir.path().join("out");
    let message = run_failing(bin().args(["--input", path(&input), "--output", path(&output)]));
    assert!(message.contains("hold no rows"), "{message}");
    assert!(!output.join("_summary.json").exists());
}
