//! Writing the outputs: one Parquet file per table and date partition, plus
//! small text files.
//!
//! Files are written straight to the store with the parquet crate rather
//! than through DataFusion's partitioned writer, because that writer names
//! files with random ids and may split a partition across files. Here every
//! partition is exactly `date=YYYY-MM-DD/part-00000.parquet`, rows sorted by
//! sensor and time, so a re-run overwrites the same names; objects left from
//! an earlier run (such as dates no longer present) are deleted after the
//! new files are in place, so readers never see an empty table.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::storage::Location;
use crate::tables::{Partitions, Table};
use crate::utc::date_label;

/// The file name of every partition.
pub const PART_FILE: &str = "part-00000.parquet";

/// An empty object that makes each table's prefix exist even when the
/// table has no rows; Hive-compatible readers skip names starting with `_`.
pub const TABLE_MARKER: &str = "_SUCCESS";

/// How many objects are written or deleted at once.
const WRITE_CONCURRENCY: usize = 8;

/// What was written for one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrittenTable {
    pub rows: u64,
    pub files: usize,
}

/// The objects already under each table's prefix, listed before the run
/// writes anything; this also proves early that the output is reachable.
#[derive(Debug, Clone, Default)]
pub struct ExistingObjects(BTreeSet<Path>);

pub async fn list_existing(output: &Location) -> Result<ExistingObjects> {
    let mut existing = BTreeSet::new();
    for table in Table::ALL {
        let prefix = output.child(table.dir());
        let objects: Vec<_> = output
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .with_context(|| format!("cannot list the output {}{}/", output.url, table.dir()))?;
        existing.extend(objects.into_iter().map(|meta| meta.location));
    }
    Ok(ExistingObjects(existing))
}

/// Writes one table and removes its stale objects.
pub async fn write_table(
    output: &Location,
    table: Table,
    partitions: &Partitions,
    existing: &ExistingObjects,
) -> Result<WrittenTable> {
    let mut files: Vec<(Path, Bytes)> = Vec::with_capacity(partitions.len() + 1);
    let mut rows = 0;
    for (day, batch) in partitions {
        rows += batch.num_rows() as u64;
        let path = output.child(&format!(
            "{}/date={}/{PART_FILE}",
            table.dir(),
            date_label(*day)
        ));
        files.push((path, encode_parquet(batch)?));
    }
    let file_count = files.len();
    files.push((
        output.child(&format!("{}/{TABLE_MARKER}", table.dir())),
        Bytes::new(),
    ));

    let written: BTreeSet<Path> = files.iter().map(|(path, _)| path.clone()).collect();
    futures::stream::iter(files)
        .map(|(path, bytes)| async move {
            output
                .store
                .put(&path, PutPayload::from(bytes))
                .await
                .with_context(|| format!("cannot write {}", output.describe(&path)))
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;

    let table_prefix = output.child(table.dir());
    let stale: Vec<Path> = existing
        .0
        .iter()
        .filter(|path| path.prefix_matches(&table_prefix) && !written.contains(*path))
        .cloned()
        .collect();
    futures::stream::iter(stale)
        .map(|path| async move {
            output
                .store
                .delete(&path)
                .await
                .with_context(|| format!("cannot delete stale {}", output.describe(&path)))
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;

    Ok(WrittenTable {
        rows,
        files: file_count,
    })
}

/// Removes a small object such as a previous run's `_summary.json`; one that
/// is not there is fine.
pub async fn remove(output: &Location, name: &str) -> Result<()> {
    let path = output.child(name);
    match output.store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => {
            Err(error).with_context(|| format!("cannot delete {}", output.describe(&path)))
        }
    }
}

/// Writes a small text object such as `_summary.json`.
pub async fn write_text(output: &Location, name: &str, text: String) -> Result<()> {
    let path = output.child(name);
    output
        .store
        .put(&path, PutPayload::from(text.into_bytes()))
        .await
        .with_context(|| format!("cannot write {}", output.describe(&path)))?;
    Ok(())
}

fn encode_parquet(batch: &RecordBatch) -> Result<Bytes> {
    let properties = WriterProperties::builder()
        // Snappy is what Hive-connector readers decode fastest and everywhere.
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("hap-air-detection {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}
