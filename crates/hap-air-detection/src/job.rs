//! One run of the detection job, from input prefix to output tables.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use tracing::info;

use crate::daily::{daily_aqi, sensor_count, sensor_episodes};
use crate::ddl::tables_sql;
use crate::input::{
    InputFormat, check_csv_files, check_parquet_files, list_input_files, locate_malformed_row,
};
use crate::output::{list_existing, remove, write_table, write_text};
use crate::pipeline::{aggregate_hours, session};
use crate::storage::{
    Access, Location, LocationKind, S3Options, describe_endpoint, has_credentials,
};
use crate::summary::{DropsByReason, OutputRows, StepSeconds, Summary};
use crate::tables::{Table, alert_partitions, daily_partitions, hourly_partitions};

/// Everything a run needs; mirrors the command line.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub input: String,
    pub output: String,
    pub format: InputFormat,
    pub s3: S3Options,
    pub threads: usize,
    /// The schema `tables.sql` creates the tables in.
    pub sql_schema: String,
}

pub const SUMMARY_FILE: &str = "_summary.json";
pub const TABLES_SQL_FILE: &str = "tables.sql";

pub async fn run_job(options: &JobOptions) -> Result<Summary> {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now().to_string();

    let input =
        Location::resolve(&options.input, Access::Read, &options.s3).context("invalid --input")?;
    let output = Location::resolve(&options.output, Access::Write, &options.s3)
        .context("invalid --output")?;
    if input.overlaps(&output) {
        bail!(
            "--output {} overlaps --input {}; write the outputs to a prefix outside the input",
            output.url,
            input.url
        );
    }

    let files = list_input_files(&input, options.format)
        .await
        .map_err(|e| with_store_hint(e, &input, &options.s3))?;
    info!(
        input = %input.url,
        files = files.files.len(),
        bytes = files.total_bytes(),
        "listed input"
    );
    let header = match options.format {
        InputFormat::Csv => Some(check_csv_files(&input, &files).await?),
        InputFormat::Parquet => {
            check_parquet_files(&input, &files).await?;
            None
        }
    };
    // Listing the outputs up front also fails fast on an unreachable output.
    let existing = list_existing(&output)
        .await
        .map_err(|e| with_store_hint(e, &output, &options.s3))?;

    let mut steps = StepSeconds::default();
    let mut step_started = started;
    // The seconds since the last step ended, and the next one starts now.
    let mut lap = || {
        let seconds = step_started.elapsed().as_secs_f64();
        step_started = Instant::now();
        seconds
    };
    steps.check = lap();

    let ctx = session(options.threads);
    let table_url = files.table_url(&input);
    let aggregate = match aggregate_hours(
        &ctx,
        &input,
        &table_url,
        options.format,
        header.as_deref(),
    )
    .await
    {
        Ok(aggregate) => aggregate,
        Err(error) => {
            // A malformed row mid-file: find and name it.
            if let Some(header) = &header
                && format!("{error:#}").contains("incorrect number of fields")
                && let Some((file, line, fields)) =
                    locate_malformed_row(&input, &files, header.len()).await?
            {
                bail!(
                    "input file {file}, line {line}, has {fields} field(s) but the header has {}; \
                     fix or remove the file (it may have been cut mid-upload)",
                    header.len()
                );
            }
            return Err(error);
        }
    };
    if aggregate.rows_read == 0 {
        bail!(
            "the {} input file(s) under {} hold no rows, only headers; \
             check that the upload finished",
            files.files.len(),
            input.url
        );
    }
    info!(
        rows_read = aggregate.rows_read,
        rows_kept = aggregate.rows_kept(),
        hours = aggregate.buckets.len(),
        "aggregated readings"
    );

    steps.hourly = lap();

    let days = daily_aqi(&aggregate.buckets);
    steps.aqi_daily = lap();
    let episodes = sensor_episodes(&aggregate.buckets);
    steps.alerts = lap();
    let tables = [
        (Table::Hourly, hourly_partitions(&aggregate.buckets)?),
        (Table::AqiDaily, daily_partitions(&days)?),
        (Table::Alerts, alert_partitions(&episodes)?),
    ];
    // The summary is the mark of a finished run: the previous run's goes
    // before any table changes, so a run that fails part-way leaves none.
    remove(&output, SUMMARY_FILE).await?;
    let mut outputs = OutputRows::default();
    for (table, partitions) in &tables {
        let written = write_table(&output, *table, partitions, &existing).await?;
        info!(
            table = table.dir(),
            rows = written.rows,
            files = written.files,
            "wrote table"
        );
        match table {
            Table::Hourly => outputs.hourly = written.rows,
            Table::AqiDaily => outputs.aqi_daily = written.rows,
            Table::Alerts => outputs.alerts = written.rows,
        }
    }
    write_text(
        &output,
        TABLES_SQL_FILE,
        tables_sql(&output, &options.sql_schema),
    )
    .await?;
    steps.write = lap();

    let summary = Summary {
        job: "hap-air-detection",
        version: env!("CARGO_PKG_VERSION"),
        input: input.url.to_string(),
        output: output.url.to_string(),
        format: options.format,
        input_files: files.files.len(),
        input_bytes: files.total_bytes(),
        rows_read: aggregate.rows_read,
        rows_kept: aggregate.rows_kept(),
        rows_dropped: aggregate.drops.total(),
        drops: DropsByReason(aggregate.drops.clone()),
        sensors: sensor_count(&aggregate.buckets),
        outputs,
        threads: options.threads,
        started_at,
        wall_time_seconds: started.elapsed().as_secs_f64(),
        step_seconds: steps,
    };
    let json = serde_json::to_string_pretty(&summary)? + "\n";
    write_text(&output, SUMMARY_FILE, json).await?;
    Ok(summary)
}

/// Adds what to check when a store cannot be reached or read.
fn with_store_hint(error: anyhow::Error, location: &Location, s3: &S3Options) -> anyhow::Error {
    let from_store = error
        .chain()
        .any(|cause| cause.downcast_ref::<object_store::Error>().is_some());
    let credentials = if has_credentials() {
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    } else {
        "the credentials (none are set, so the requests were anonymous: set \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    };
    match &location.kind {
        // object_store reports S3 error codes only in its message text.
        LocationKind::S3 { bucket }
            if from_store && format!("{error:#}").contains("<Code>NoSuchBucket</Code>") =>
        {
            error.context(format!(
                "the bucket {bucket} does not exist at the S3 endpoint {}: create it, or fix \
                 the bucket in {}",
                describe_endpoint(s3),
                location.url
            ))
        }
        LocationKind::S3 { .. } if from_store => error.context(format!(
            "cannot use {} through the S3 endpoint {}: check --s3-endpoint (or \
             AWS_ENDPOINT_URL), that the store is reachable from here, the bucket name, \
             {credentials}, and --s3-path-style for stores that do not serve buckets \
             as subdomains",
            location.url,
            describe_endpoint(s3)
        )),
        _ => error,
    }
}
