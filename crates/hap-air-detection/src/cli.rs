//! The command line.

use clap::{Args, Parser, Subcommand};

use crate::input::InputFormat;
use crate::storage::S3Options;

#[derive(Debug, Parser)]
#[command(
    name = "hap-air-detection",
    version,
    about = "Cleans air-quality sensor readings and writes hourly means, daily AQI and \
             pollution alerts as Parquet tables.",
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic, deterministic data set of sensor readings.
    Generate(GenerateArgs),
}

/// Arguments of a detection run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Input prefix: s3://bucket/prefix/ or a local directory (or one file).
    #[arg(long, value_name = "URL", required = true)]
    pub input: Option<String>,

    /// Output prefix: s3://bucket/prefix/ or a local directory.
    #[arg(long, value_name = "URL", required = true)]
    pub output: Option<String>,

    /// Input file format; files with other extensions are ignored.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: InputFormat,

    /// Schema that tables.sql creates the tables in.
    #[arg(long, value_name = "NAME", default_value = "air")]
    pub sql_schema: String,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of sensors.
    #[arg(long)]
    pub sensors: u32,

    /// Number of days, starting at --start-date.
    #[arg(long)]
    pub days: u32,

    /// Output prefix: s3://bucket/prefix/ or a local directory.
    #[arg(long, value_name = "URL")]
    pub output: String,

    /// First simulated day (UTC).
    #[arg(long, value_name = "YYYY-MM-DD", default_value = "2024-03-01")]
    pub start_date: jiff::civil::Date,

    /// Seed of the simulation; the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Seconds between two readings of one sensor.
    #[arg(long, default_value_t = 60)]
    pub interval_secs: u32,

    /// Files per day; sensors are split evenly across them.
    #[arg(long, default_value_t = 4)]
    pub files_per_day: u32,

    /// File format to write.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: InputFormat,
}

/// Options shared by both commands.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// S3 endpoint URL, for S3-compatible stores [default: AWS_ENDPOINT_URL, else AWS].
    #[arg(long, value_name = "URL", global = true)]
    pub s3_endpoint: Option<String>,

    /// S3 region [default: AWS_REGION, else us-east-1].
    #[arg(long, value_name = "R", global = true)]
    pub s3_region: Option<String>,

    /// Address buckets as endpoint/bucket/ rather than bucket.endpoint/.
    #[arg(long, global = true, env = "HAP_S3_PATH_STYLE")]
    pub s3_path_style: bool,

    /// Worker threads [default: the number of CPUs].
    #[arg(long, value_name = "N", global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

impl CommonArgs {
    pub fn s3_options(&self) -> S3Options {
        S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            path_style: self.s3_path_style,
        }
    }

    pub fn threads(&self) -> usize {
        self.threads.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_needs_input_and_output_but_generate_does_not() {
        assert!(Cli::try_parse_from(["hap-air-detection", "--input", "a"]).is_err());
        let cli = Cli::try_parse_from([
            "hap-air-detection",
            "--input",
            "s3://b/in/",
            "--output",
            "out",
            "--format",
            "parquet",
            "--s3-path-style",
            "--threads",
            "2",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.format, InputFormat::Parquet);
        assert!(cli.common.s3_path_style);
        assert_eq!(cli.common.threads(), 2);

        let cli = Cli::try_parse_from([
            "hap-air-detection",
            "generate",
            "--sensors",
            "3",
            "--days",
            "1",
            "--output",
            "x",
            "--s3-endpoint",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Generate(ref g)) if g.sensors == 3));
        assert_eq!(
            cli.common.s3_endpoint.as_deref(),
            Some("http://127.0.0.1:1")
        );
    }

    #[test]
    fn rejects_unknown_formats_and_zero_threads() {
        let base = ["hap-air-detection", "--input", "a", "--output", "b"];
        let with = |extra: &[&'static str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        assert!(with(&["--format", "json"]).is_err());
        assert!(with(&["--threads", "0"]).is_err());
    }
}
