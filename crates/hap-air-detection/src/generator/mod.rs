//! `hap-air-detection generate`: writes a realistic synthetic data set of
//! sensor readings, deterministic for a given seed, so tests and benchmarks
//! need no downloaded data.
//!
//! Layout: one file per UTC day and shard of sensors,
//! `readings-YYYY-MM-DD-partNNN.csv` (or `.parquet`), each holding the rows
//! the shard's sensors uploaded that day. The readings do not depend on the
//! number of shards.

pub mod encode;
pub mod model;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::input::InputFormat;
use crate::storage::Location;
use crate::utc::date_label;
use model::{Network, NetworkConfig};

/// What `generate` wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenerateReport {
    pub output: String,
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
}

/// Files being encoded or uploaded at once; bounds memory to a few files.
const FILES_IN_FLIGHT: usize = 4;

/// Simulates the network and writes its files under `output`.
pub async fn generate(
    network: NetworkConfig,
    files_per_day: u32,
    format: InputFormat,
    output: &Location,
) -> Result<GenerateReport> {
    if network.sensors == 0 || network.days == 0 {
        bail!("--sensors and --days must be at least 1");
    }
    if network.interval_secs == 0 || network.interval_secs > 86_400 {
        bail!("--interval-secs must be between 1 and 86400");
    }
    let shards = files_per_day.clamp(1, network.sensors);
    let network = std::sync::Arc::new(Network::new(network));

    // Each shard simulates its sensors day by day on a blocking thread and
    // hands finished files to the uploader below.
    let (sender, mut receiver) = mpsc::channel::<Result<(String, Vec<u8>, u64)>>(FILES_IN_FLIGHT);
    let mut workers = Vec::new();
    for shard in 0..shards {
        let network = std::sync::Arc::clone(&network);
        let sender = sender.clone();
        workers.push(tokio::task::spawn_blocking(move || {
            let config = network.config().clone();
            let first = (u64::from(shard) * u64::from(config.sensors) / u64::from(shards)) as u32;
            let end = (u64::from(shard + 1) * u64::from(config.sensors) / u64::from(shards)) as u32;
            let mut sensors: Vec<_> = (first..end).map(|i| network.sensor(i)).collect();
            let mut rows = Vec::new();
            for day in 0..config.days {
                rows.clear();
                for sensor in &mut sensors {
                    network.day_readings(sensor, day, &mut rows);
                }
                let name = format!(
                    "readings-{}-part{shard:03}{}",
                    date_label(config.first_day + day as i32),
                    format.extension()
                );
                let encoded = match format {
                    InputFormat::Csv => Ok(encode::encode_csv(&rows)),
                    InputFormat::Parquet => encode::encode_parquet(&rows),
                };
                let message = encoded.map(|bytes| (name, bytes, rows.len() as u64));
                if sender.blocking_send(message).is_err() {
                    return; // the uploader stopped after an error
                }
            }
        }));
    }
    drop(sender);

    let mut report = GenerateReport {
        output: output.url.to_string(),
        ..GenerateReport::default()
    };
    let uploads = futures::stream::poll_fn(|cx| receiver.poll_recv(cx))
        .map(|message| async move {
            let (name, bytes, rows) = message?;
            let path = output.child(&name);
            let size = bytes.len() as u64;
            output
                .store
                .put(&path, PutPayload::from(bytes))
                .await
                .with_context(|| format!("cannot write {}", output.describe(&path)))?;
            Ok::<_, anyhow::Error>((size, rows))
        })
        .buffer_unordered(FILES_IN_FLIGHT);
    futures::pin_mut!(uploads);
    while let Some(result) = uploads.next().await {
        let (size, rows) = result?;
        report.files += 1;
        report.rows += rows;
        report.bytes += size;
    }
    for worker in workers {
        worker.await.context("a generator thread failed")?;
    }
    Ok(report)
}
