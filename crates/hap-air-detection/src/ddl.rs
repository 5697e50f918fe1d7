//! `tables.sql`: statements that expose the outputs to Presto/Trino through
//! the Hive connector, as external tables over the output prefix,
//! partitioned by date.

use std::fmt::Write;

use datafusion::arrow::datatypes::DataType;

use crate::storage::Location;
use crate::tables::{PARTITION_COLUMN, Table};

/// The SQL type the Hive connector reads a Parquet column of `data_type` as.
fn sql_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Utf8 => "varchar",
        DataType::Timestamp(_, _) => "timestamp",
        DataType::Float64 => "double",
        DataType::Int64 => "bigint",
        DataType::Int32 => "integer",
        // The output schemas use only the types above; see tables.rs.
        other => unreachable!("no SQL type mapped for {other}"),
    }
}

/// Quotes an identifier; `end` is reserved in Presto/Trino SQL, and quoting
/// every name keeps the statements safe for any future column.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The full text of `tables.sql` for outputs under `output`, in `schema`.
pub fn tables_sql(output: &Location, schema: &str) -> String {
    let mut sql = String::new();
    let is_local = output.hive_location("").starts_with("file:");
    let _ = writeln!(
        sql,
        "-- External tables over the outputs of hap-air-detection at {}",
        output.url
    );
    let _ = writeln!(
        sql,
        "-- Dialect: Presto/Trino Hive connector. Run with the Hive catalog selected, e.g.\n\
         --   trino --catalog hive --file tables.sql\n\
         -- Every statement is idempotent. Run the CALL statements again after each job run\n\
         -- so that new date=YYYY-MM-DD partitions become visible (FULL also drops\n\
         -- partitions whose directories are gone)."
    );
    if is_local {
        let _ = writeln!(
            sql,
            "-- The output is a local directory, so the locations are file:// URLs; they\n\
             -- work only where the Presto/Trino workers can see that directory."
        );
    }
    let _ = writeln!(
        sql,
        "\nCREATE SCHEMA IF NOT EXISTS {} WITH (location = {});",
        quoted(schema),
        literal(&output.hive_location(""))
    );

    for table in Table::ALL {
        let name = format!("{}.{}", quoted(schema), quoted(table.sql_name()));
        let _ = writeln!(sql, "\nCREATE TABLE IF NOT EXISTS {name} (");
        for field in table.schema().fields() {
            let _ = writeln!(
                sql,
                "  {} {},",
                quoted(field.name()),
                sql_type(field.data_type())
            );
        }
        // The partition column comes last, as the Hive connector requires.
        let (partition_name, partition_type) = PARTITION_COLUMN;
        let _ = writeln!(sql, "  {} {}", quoted(partition_name), partition_type);
        let _ = writeln!(
            sql,
            ")\nWITH (\n  external_location = {},\n  format = 'PARQUET',\n  partitioned_by = ARRAY[{}]\n);",
            literal(&output.hive_location(table.dir())),
            literal(partition_name)
        );
    }

    let _ = writeln!(sql);
    for table in Table::ALL {
        let _ = writeln!(
            sql,
            "CALL system.sync_partition_metadata({}, {}, 'FULL');",
            literal(schema),
            literal(table.sql_name())
        );
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Access, S3Options};

    #[test]
    fn local_outputs_get_file_locations_and_partition_last() {
        let dir = tempfile::tempdir().unwrap();
        let output = Location::resolve(
            dir.path().to_str().unwrap(),
            Access::Write,
            &S3Options::default(),
        )
        .unwrap();
        let sql = tables_sql(&output, "air");
        let canonical = dir.path().canonicalize().unwrap();
        assert!(sql.contains(&format!(
            "external_location = 'file://{}/alerts/'",
            canonical.display()
        )));
        assert!(sql.contains("\"end\" timestamp,"));
        assert!(sql.contains("\"readings\" bigint,\n  \"date\" date\n)"));
        assert_eq!(sql.matches("CREATE TABLE IF NOT EXISTS").count(), 3);
        assert!(
            sql.contains("CALL system.sync_partition_metadata('air', 'air_aqi_daily', 'FULL');")
        );
    }

    #[test]
    fn identifiers_and_literals_are_escaped() {
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
