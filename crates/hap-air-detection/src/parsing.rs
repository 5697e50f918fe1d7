//! Scalar functions that turn raw sensor text into typed values, with null
//! for anything missing or unparsable, so the cleaning rules can count such
//! rows instead of failing the whole scan.
//!
//! They are DataFusion UDFs rather than `TRY_CAST` because the rules are
//! stricter than Arrow's casts: a timestamp must carry an offset (Arrow
//! would read a bare date-time as UTC, or a bare date as midnight), and a
//! number must be finite (Arrow accepts `NaN` and `inf`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, StringArrayType, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::utc::{UTC, parse_rfc3339};

/// The type of parsed timestamps: µs since the epoch, in UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC)))
}

/// `parse_rfc3339_utc(text)`: RFC 3339 text with an offset → UTC timestamp (µs).
pub fn parse_timestamp_udf() -> ScalarUDF {
    ScalarUDF::from(ParseText::new("parse_rfc3339_utc", TextKind::Timestamp))
}

/// `parse_finite_number(text)`: decimal text → finite `Float64`.
pub fn parse_number_udf() -> ScalarUDF {
    ScalarUDF::from(ParseText::new(
        "parse_finite_number",
        TextKind::FiniteNumber,
    ))
}

/// Parses a reading's numeric text; `None` unless it is a finite number.
/// Surrounding spaces (`12.5, 30`) are a CSV writer's padding, not part of
/// the value.
pub fn parse_finite_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TextKind {
    Timestamp,
    FiniteNumber,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ParseText {
    name: &'static str,
    kind: TextKind,
    signature: Signature,
}

impl ParseText {
    fn new(name: &'static str, kind: TextKind) -> Self {
        Self {
            name,
            kind,
            signature: Signature::string(1, Volatility::Immutable),
        }
    }

    fn parse<'a>(&self, text: impl StringArrayType<'a>) -> ArrayRef {
        match self.kind {
            TextKind::Timestamp => Arc::new(
                text.iter()
                    .map(|v| v.and_then(|text| parse_rfc3339(text.trim())))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone(UTC),
            ),
            TextKind::FiniteNumber => Arc::new(
                text.iter()
                    .map(|v| v.and_then(parse_finite_number))
                    .collect::<Float64Array>(),
            ),
        }
    }
}

impl ScalarUDFImpl for ParseText {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            TextKind::Timestamp => timestamp_type(),
            TextKind::FiniteNumber => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name);
        };
        let text = arg.to_array(args.number_rows)?;
        let parsed = match text.data_type() {
            DataType::Utf8 => self.parse(text.as_string::<i32>()),
            DataType::LargeUtf8 => self.parse(text.as_string::<i64>()),
            DataType::Utf8View => self.parse(text.as_string_view()),
            other => return exec_err!("{} expects text, got {other}", self.name),
        };
        Ok(ColumnarValue::Array(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, StringViewArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn invoke(udf: &ScalarUDF, input: ArrayRef) -> ArrayRef {
        let rows = input.len();
        let args = ScalarFunctionArgs {
            arg_fields: vec![Arc::new(Field::new("x", input.data_type().clone(), true))],
            args: vec![ColumnarValue::Array(input)],
            number_rows: rows,
            return_field: Arc::new(Field::new(
                "out",
                udf.return_type(&[DataType::Utf8]).unwrap(),
                true,
            )),
            config_options: Arc::new(ConfigOptions::default()),
        };
        match udf.invoke_with_args(args).unwrap() {
            ColumnarValue::Array(array) => array,
            ColumnarValue::Scalar(_) => panic!("expected an array"),
        }
    }

    #[test]
    fn numbers_must_be_finite() {
        let input: ArrayRef = Arc::new(StringArray::from(vec![
            Some("12.5"),
            Some("-3"),
            Some("1e2"),
            Some(""),
            Some("NaN"),
            Some("inf"),
            Some("ERR"),
            None,
        ]));
        let out = invoke(&parse_number_udf(), input);
        let out = out.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let values: Vec<Option<f64>> = out.iter().collect();
        assert_eq!(
            values,
            vec![
                Some(12.5),
                Some(-3.0),
                Some(100.0),
                None,
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn timestamps_need_an_offset() {
        let input: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("2024-03-01T00:00:00Z"),
            Some("2024-03-01T01:00:00+01:00"),
            Some("2024-03-01T00:00:00"),
            Some("2024-03-01"),
            None,
        ]));
        let out = invoke(&parse_timestamp_udf(), input);
        assert_eq!(out.data_type(), &timestamp_type());
        let out = out.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
        let midnight = 1_709_251_200_000_000; // 2024-03-01T00:00:00Z
        let values: Vec<Option<i64>> = out.iter().collect();
        assert_eq!(
            values,
            vec![Some(midnight), Some(midnight), None, None, None]
        );
    }
}
