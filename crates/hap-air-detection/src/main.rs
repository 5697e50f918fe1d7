//! `hap-air-detection`: run the detection job, or generate synthetic readings.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use hap_air_detection::cli::{Cli, Command};
use hap_air_detection::generator::{generate, model::NetworkConfig};
use hap_air_detection::job::{JobOptions, run_job};
use hap_air_detection::storage::{Access, Location};
use hap_air_detection::utc::day_number;

fn main() -> ExitCode {
    // Usage errors exit with clap's code 2 and its own message.
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            // Many errors repeat their source's text in their own; print
            // each piece of information once.
            let mut last = error.to_string();
            for cause in error.chain().skip(1) {
                let text = cause.to_string();
                if !last.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                last = text;
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so stdout carries only the JSON result.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("hap_air_detection=info,warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> Result<()> {
    let threads = cli.common.threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let s3 = cli.common.s3_options();

    let report = match cli.command {
        Some(Command::Generate(args)) => runtime.block_on(async {
            let output =
                Location::resolve(&args.output, Access::Write, &s3).context("invalid --output")?;
            let first_day = args
                .start_date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .context("invalid --start-date")?
                .timestamp()
                .as_microsecond();
            let network = NetworkConfig {
                sensors: args.sensors,
                days: args.days,
                first_day: day_number(first_day),
                interval_secs: args.interval_secs,
                seed: args.seed,
            };
            let report = generate(network, args.files_per_day, args.format, &output).await?;
            Ok::<_, anyhow::Error>(serde_json::to_string_pretty(&report)?)
        })?,
        None => {
            let options = JobOptions {
                input: cli.run.input.context("--input is required")?,
                output: cli.run.output.context("--output is required")?,
                format: cli.run.format,
                s3,
                threads,
                sql_schema: cli.run.sql_schema,
            };
            let summary = runtime.block_on(run_job(&options))?;
            serde_json::to_string_pretty(&summary)?
        }
    };
    println!("{report}");
    Ok(())
}
