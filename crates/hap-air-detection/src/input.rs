//! Finding and checking the input files before any heavy work starts, so a
//! wrong prefix, a wrong header or an unreachable store fails in seconds
//! with a message that names the file and the fix.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::storage::Location;

/// The columns every input file must have.
pub const REQUIRED_COLUMNS: [&str; 8] = [
    "sensor_id",
    "ts",
    "lat",
    "lon",
    "pm25",
    "pm10",
    "temperature_c",
    "humidity_pct",
];

/// The input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Csv,
    Parquet,
}

impl InputFormat {
    /// Files of this format end with this; others under the prefix are ignored.
    pub fn extension(self) -> &'static str {
        match self {
            InputFormat::Csv => ".csv",
            InputFormat::Parquet => ".parquet",
        }
    }
}

/// The files the job will read.
#[derive(Debug, Clone)]
pub struct InputFiles {
    pub files: Vec<ObjectMeta>,
}

impl InputFiles {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The URL DataFusion reads: the prefix, or the object itself when the
    /// input names a single file (a prefix URL would be listed as a
    /// directory and find nothing).
    pub fn table_url(&self, input: &Location) -> String {
        match self.files.as_slice() {
            [only] if only.location == input.prefix => input.object_url(&only.location),
            _ => input.url.to_string(),
        }
    }
}

/// Lists the files of `format` under the input location (recursively), or
/// the location itself when it names one file.
pub async fn list_input_files(input: &Location, format: InputFormat) -> Result<InputFiles> {
    let extension = format.extension();
    let listed: Vec<ObjectMeta> = input
        .store
        .list(Some(&input.prefix))
        .try_collect()
        .await
        .with_context(|| format!("cannot list the input {}", input.url))?;

    let mut files: Vec<ObjectMeta> = listed
        .iter()
        .filter(|meta| meta.location.as_ref().ends_with(extension))
        .cloned()
        .collect();
    files.sort_by(|a, b| a.location.cmp(&b.location));

    if files.is_empty() && listed.is_empty() {
        // The location may be a single object rather than a prefix.
        if let Ok(meta) = input.store.head(&input.prefix).await
            && meta.location.as_ref().ends_with(extension)
        {
            files.push(meta);
        }
    }

    if files.is_empty() {
        let hint = match listed.first() {
            Some(other) => format!(
                "; it holds {} other object(s), such as {} — pass --format if they are {}",
                listed.len(),
                input.describe(&other.location),
                match format {
                    InputFormat::Csv => "Parquet",
                    InputFormat::Parquet => "CSV",
                }
            ),
            None => "; it is empty — check the prefix and that the upload finished".to_string(),
        };
        bail!("no {extension} files under the input {}{hint}", input.url);
    }
    if let Some(empty) = files.iter().find(|f| f.size == 0) {
        bail!(
            "input file {} is empty (0 bytes); it needs at least a header line — \
             re-upload it or remove it from the prefix",
            input.describe(&empty.location)
        );
    }
    Ok(InputFiles { files })
}

/// How many header reads run at once; enough to hide store latency without
/// flooding it.
const HEADER_READ_CONCURRENCY: usize = 16;

/// Header lines (and last rows) longer than this are not sensor CSV.
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Checks every CSV file before the scan: all share one header that has the
/// required columns, and none ends in a cut-off row. Returns the header.
///
/// Reading the first and last few KiB of each file is cheap, and it lets the
/// error name the file — DataFusion's scan errors do not.
pub async fn check_csv_files(input: &Location, files: &InputFiles) -> Result<Vec<String>> {
    let checked: Vec<(String, Vec<String>)> = futures::stream::iter(files.files.iter())
        .map(|meta| async move {
            let name = input.describe(&meta.location);
            let header = check_csv_file(input.store.as_ref(), meta, &name)
                .await
                .with_context(|| format!("input file {name} is not usable"))?;
            Ok::<_, anyhow::Error>((name, header))
        })
        .buffered(HEADER_READ_CONCURRENCY)
        .try_collect()
        .await?;

    let (first_name, first) = &checked[0];
    for (name, header) in &checked[1..] {
        if header != first {
            bail!(
                "input file {name} has header [{}] but {first_name} has [{}]; \
                 all files under the prefix must share one header",
                header.join(","),
                first.join(",")
            );
        }
    }
    check_columns(first_name, first)?;
    Ok(first.clone())
}

/// Checks every Parquet file's own schema for the required columns. DataFusion
/// merges the files' schemas, so a file that lacks a column would otherwise
/// read as nulls there and every one of its rows would become a counted drop.
/// Only the footers are read.
pub async fn check_parquet_files(input: &Location, files: &InputFiles) -> Result<()> {
    futures::stream::iter(files.files.iter())
        .map(|meta| async move {
            let name = input.describe(&meta.location);
            let columns = parquet_columns(input.store.as_ref(), meta)
                .await
                .with_context(|| format!("input file {name} is not a readable Parquet file"))?;
            check_columns(&name, &columns)
        })
        .buffered(HEADER_READ_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// How much of a Parquet file's end is read first: enough for the footer of
/// a file of a few dozen columns; a larger footer costs one more read.
const FOOTER_PREFETCH: u64 = 64 * 1024;

/// The top-level column names of one Parquet file, from its footer.
async fn parquet_columns(store: &dyn ObjectStore, meta: &ObjectMeta) -> Result<Vec<String>> {
    let mut tail_len = meta.size.min(FOOTER_PREFETCH);
    loop {
        let tail = store
            .get_range(&meta.location, meta.size - tail_len..meta.size)
            .await?;
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&tail, meta.size) {
            Ok(()) => {
                let metadata = reader.finish()?;
                let root = metadata.file_metadata().schema_descr().root_schema();
                return Ok(root
                    .get_fields()
                    .iter()
                    .map(|field| field.name().to_string())
                    .collect());
            }
            Err(ParquetError::NeedMoreData(needed)) if needed as u64 > tail_len => {
                tail_len = needed as u64;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

async fn check_csv_file(
    store: &dyn ObjectStore,
    meta: &ObjectMeta,
    name: &str,
) -> Result<Vec<String>> {
    let head = store
        .get_range(&meta.location, 0..meta.size.min(MAX_LINE_BYTES))
        .await?;
    let Some(line_end) = head
        .iter()
        .position(|&b| b == b'\n')
        .or_else(|| (meta.size <= MAX_LINE_BYTES).then_some(head.len()))
    else {
        bail!("its first line is longer than {MAX_LINE_BYTES} bytes; is it a CSV file?");
    };
    let line =
        std::str::from_utf8(&head[..line_end]).context("its header line is not UTF-8 text")?;
    let line = line.trim_start_matches('\u{feff}').trim_end_matches('\r');
    let header: Vec<String> = line
        .split(',')
        .map(|column| column.trim().trim_matches('"').to_string())
        .collect();

    // The last row: a transfer cut mid-row leaves it with too few fields.
    let tail_start = meta.size.saturating_sub(MAX_LINE_BYTES);
    let tail = if tail_start == 0 {
        head
    } else {
        store
            .get_range(&meta.location, tail_start..meta.size)
            .await?
    };
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let last_row = match body.iter().rposition(|&b| b == b'\n') {
        Some(newline) => &body[newline + 1..],
        None if tail_start == 0 => &[][..], // only a header
        None => bail!("its last line is longer than {MAX_LINE_BYTES} bytes; is it a CSV file?"),
    };
    if !last_row.is_empty() && field_count(last_row) != header.len() {
        bail!(
            "{name} ends with a row of {} field(s) but its header has {}: the file looks \
             truncated (cut mid-upload); re-upload it or remove it from the prefix",
            field_count(last_row),
            header.len()
        );
    }
    Ok(header)
}

/// Fields in one CSV row, honouring double quotes (a quoted comma does not
/// split a field).
pub fn field_count(row: &[u8]) -> usize {
    let mut fields = 1;
    let mut quoted = false;
    for &byte in row {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => fields += 1,
            _ => {}
        }
    }
    fields
}

/// Where a scan failed on a row with the wrong number of fields: finds the
/// first such row by reading the files in order. Only used after a failed
/// scan, to turn DataFusion's error (which names neither file nor a line in
/// it) into one that does.
pub async fn locate_malformed_row(
    input: &Location,
    files: &InputFiles,
    header_fields: usize,
) -> Result<Option<(String, u64, usize)>> {
    for meta in &files.files {
        let bytes = input.store.get(&meta.location).await?.bytes().await?;
        for (index, row) in bytes.split(|&b| b == b'\n').enumerate().skip(1) {
            let row = row.strip_suffix(b"\r").unwrap_or(row);
            if row.is_empty() {
                continue;
            }
            let fields = field_count(row);
            if fields != header_fields {
                let name = input.describe(&meta.location);
                return Ok(Some((name, index as u64 + 1, fields)));
            }
        }
    }
    Ok(None)
}

/// Every required column must be present exactly once; extra columns are
/// allowed and ignored.
pub fn check_columns(file: &str, header: &[String]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for name in header {
        if !seen.insert(name.as_str()) {
            bail!("input file {file} has the column {name:?} twice in its header");
        }
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !seen.contains(c))
        .collect();
    if !missing.is_empty() {
        bail!(
            "input file {file} has header [{}], which lacks the required column(s) {}; \
             the header must name {}",
            header.join(","),
            missing.join(", "),
            REQUIRED_COLUMNS.join(",")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Vec<String> {
        text.split(',').map(str::to_string).collect()
    }

    #[test]
    fn accepts_required_columns_in_any_order_with_extras() {
        let h = header("ts,sensor_id,pm10,pm25,lat,lon,humidity_pct,temperature_c,battery_v");
        check_columns("f.csv", &h).unwrap();
    }

    #[test]
    fn names_missing_columns() {
        let h = header("sensor_id,ts,lat,lon,pm2_5,pm10,temperature_c,humidity_pct");
        let err = check_columns("f.csv", &h).unwrap_err().to_string();
        assert!(err.contains("f.csv") && err.contains("pm25"), "{err}");
        assert!(!err.contains("lacks the required column(s) pm10"), "{err}");
    }

    #[test]
    fn counts_fields_outside_quotes() {
        assert_eq!(field_count(b"a,b,c"), 3);
        assert_eq!(field_count(b"\"a,b\",c"), 2);
        assert_eq!(field_count(b""), 1);
        assert_eq!(field_count(b"a,"), 2);
    }

    #[test]
    fn rejects_repeated_columns() {
        let h = header("sensor_id,ts,lat,lon,pm25,pm10,temperature_c,humidity_pct,pm25");
        let err = check_columns("f.csv", &h).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
