//! HAP air-quality detection: reads sensor readings (CSV or Parquet) from S3
//! or local disk, cleans them, and writes hourly means, the daily US EPA AQI
//! and pollution-episode alerts as Hive-partitioned Parquet tables.
//!
//! Pure logic lives in [`aqi`], [`episodes`], [`cleaning`], [`daily`],
//! [`pair_min`], [`utc`] and [`generator::model`]; [`parsing`] and
//! [`pipeline`] are the DataFusion functions and plan; [`storage`],
//! [`input`] and [`output`] do the I/O; [`job`] ties one run together.

#![forbid(unsafe_code)]

pub mod aqi;
pub mod cleaning;
pub mod cli;
pub mod daily;
pub mod ddl;
pub mod episodes;
pub mod generator;
pub mod input;
pub mod job;
pub mod output;
pub mod pair_min;
pub mod parsing;
pub mod pipeline;
pub mod storage;
pub mod summary;
pub mod tables;
pub mod utc;
