//! Encoding simulated readings as the files sensors upload: CSV text, or
//! typed Parquet (where unparsable text can only be a null).

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use super::model::{Field, Reading, TsForm, sensor_id};
use crate::input::REQUIRED_COLUMNS;
use crate::utc::{MICROS_PER_DAY, MICROS_PER_SECOND, UTC, date_label, day_number};

/// CSV with a header line, columns in [`REQUIRED_COLUMNS`] order.
pub fn encode_csv(readings: &[Reading]) -> Vec<u8> {
    let mut out = Vec::with_capacity(readings.len() * 80 + 128);
    out.extend_from_slice(REQUIRED_COLUMNS.join(",").as_bytes());
    out.push(b'\n');
    // Formatting the date is the slow part of a timestamp; readings come in
    // day-long runs, so remember the last one.
    let mut cached_day: Option<(i32, String)> = None;
    for r in readings {
        if !r.blank_sensor_id {
            out.extend_from_slice(sensor_id(r.sensor).as_bytes());
        }
        out.push(b',');
        let day = day_number(r.ts_us);
        let date = match &cached_day {
            Some((d, text)) if *d == day => text,
            _ => &cached_day.insert((day, date_label(day))).1,
        };
        write_timestamp(&mut out, date, r.ts_us, r.ts_form);
        // Writing to a Vec cannot fail.
        let _ = write!(out, ",{:.5},{:.5},", r.lat, r.lon);
        write_field(&mut out, r.pm25);
        out.push(b',');
        write_field(&mut out, r.pm10);
        let _ = writeln!(out, ",{:.1},{:.1}", r.temperature_c, r.humidity_pct);
    }
    out
}

fn write_timestamp(out: &mut Vec<u8>, date: &str, ts_us: i64, form: TsForm) {
    let second_of_day = ts_us.rem_euclid(MICROS_PER_DAY) / MICROS_PER_SECOND;
    let (h, m, s) = (
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let _ = match form {
        TsForm::Zulu => write!(out, "{date}T{h:02}:{m:02}:{s:02}Z"),
        TsForm::ZuluMillis => write!(out, "{date}T{h:02}:{m:02}:{s:02}.000Z"),
        TsForm::ZeroOffset => write!(out, "{date}T{h:02}:{m:02}:{s:02}+00:00"),
        TsForm::Missing => Ok(()),
        TsForm::NotATime => write!(out, "N/A"),
        TsForm::BadMinute => write!(out, "{date}T{h:02}:61:{s:02}Z"),
    };
}

fn write_field(out: &mut Vec<u8>, field: Field) {
    let _ = match field {
        Field::Number(v) => write!(out, "{v:.1}"),
        Field::Missing => Ok(()),
        Field::Text(text) => write!(out, "{text}"),
    };
}

/// The typed schema of generated Parquet files.
pub fn parquet_schema() -> Schema {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC)));
    Schema::new(vec![
        ArrowField::new("sensor_id", DataType::Utf8, true),
        ArrowField::new("ts", ts, true),
        ArrowField::new("lat", DataType::Float64, true),
        ArrowField::new("lon", DataType::Float64, true),
        ArrowField::new("pm25", DataType::Float64, true),
        ArrowField::new("pm10", DataType::Float64, true),
        ArrowField::new("temperature_c", DataType::Float64, true),
        ArrowField::new("humidity_pct", DataType::Float64, true),
    ])
}

/// Parquet: a timestamp that is not a time becomes null, `NaN` stays NaN,
/// other text becomes null.
pub fn encode_parquet(readings: &[Reading]) -> Result<Vec<u8>> {
    let n = readings.len();
    let mut sensor = StringBuilder::with_capacity(n, n * 8);
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone(UTC);
    let mut columns: [Float64Builder; 6] =
        std::array::from_fn(|_| Float64Builder::with_capacity(n));
    for r in readings {
        sensor.append_option((!r.blank_sensor_id).then(|| sensor_id(r.sensor)));
        ts.append_option(match r.ts_form {
            TsForm::Zulu | TsForm::ZuluMillis | TsForm::ZeroOffset => Some(r.ts_us),
            TsForm::Missing | TsForm::NotATime | TsForm::BadMinute => None,
        });
        let numbers = [
            Some(r.lat),
            Some(r.lon),
            typed(r.pm25),
            typed(r.pm10),
            Some(r.temperature_c),
            Some(r.humidity_pct),
        ];
        for (builder, value) in columns.iter_mut().zip(numbers) {
            builder.append_option(value);
        }
    }
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(sensor.finish()), Arc::new(ts.finish())];
    arrays.extend(columns.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    let batch = RecordBatch::try_new(Arc::new(parquet_schema()), arrays)?;

    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(buffer)
}

fn typed(field: Field) -> Option<f64> {
    match field {
        Field::Number(v) => Some(v),
        Field::Text("NaN") => Some(f64::NAN),
        Field::Text(_) | Field::Missing => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> Reading {
        Reading {
            sensor: 7,
            blank_sensor_id: false,
            ts_us: 1_709_251_200_000_000 + 3_725 * MICROS_PER_SECOND, // 2024-03-01T01:02:05Z
            ts_form: TsForm::Zulu,
            lat: 52.31234,
            lon: 4.9,
            pm25: Field::Number(12.3),
            pm10: Field::Number(20.0),
            temperature_c: -1.5,
            humidity_pct: 80.0,
        }
    }

    #[test]
    fn csv_rows_look_like_sensor_uploads() {
        let mut faulty = reading();
        faulty.blank_sensor_id = true;
        faulty.ts_form = TsForm::BadMinute;
        faulty.pm25 = Field::Text("NaN");
        faulty.pm10 = Field::Missing;
        let mut offset = reading();
        offset.ts_form = TsForm::ZeroOffset;
        let text = String::from_utf8(encode_csv(&[reading(), faulty, offset])).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "sensor_id,ts,lat,lon,pm25,pm10,temperature_c,humidity_pct"
        );
        assert_eq!(
            lines[1],
            "aq-00007,2024-03-01T01:02:05Z,52.31234,4.90000,12.3,20.0,-1.5,80.0"
        );
        assert_eq!(
            lines[2],
            ",2024-03-01T01:61:05Z,52.31234,4.90000,NaN,,-1.5,80.0"
        );
        assert!(lines[3].starts_with("aq-00007,2024-03-01T01:02:05+00:00,"));
    }
}
