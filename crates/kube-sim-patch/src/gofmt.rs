//! Text rendering that matches Go's `fmt` and `encoding/json`.
//!
//! The apiserver's error messages, manager identifiers, `k:`/`v:` path elements and the
//! last-applied annotation are all produced by Go formatting, so reproducing them byte for byte
//! needs Go's rules rather than Rust's.

use serde_json::{Number, Value};
use std::fmt::Write as _;

/// How control characters are escaped: Go's `encoding/json` (since 1.22) writes `\b` and `\f`,
/// while json-iterator (used by structured-merge-diff for path elements) writes `\u0008`/`\u000c`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaper {
    Stdlib,
    JsonIter,
}

/// `encoding/json.Marshal` of a decoded JSON value: object keys sorted, HTML characters escaped.
pub(crate) fn json(value: &Value, escaper: Escaper) -> String {
    let mut out = String::new();
    write_json(&mut out, value, escaper);
    out
}

pub(crate) fn write_json(out: &mut String, value: &Value, escaper: Escaper) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&json_number(n)),
        Value::String(s) => write_json_string(out, s, escaper),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, escaper);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key, escaper);
                out.push(':');
                write_json(out, &map[key], escaper);
            }
            out.push('}');
        }
    }
}

pub(crate) fn write_json_string(out: &mut String, s: &str, escaper: Escaper) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' if escaper == Escaper::Stdlib => out.push_str("\\b"),
            '\u{c}' if escaper == Escaper::Stdlib => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number as Go encodes an `int64` or `float64`.
fn json_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    json_float(n.as_f64().unwrap_or(0.0))
}

/// Go's `encoding/json` float format: plain decimal, exponent only outside [1e-6, 1e21).
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (mantissa, exp) = split_exponent(f);
        if exp >= 0 {
            format!("{mantissa}e+{exp}")
        } else {
            format!("{mantissa}e{exp}")
        }
    } else {
        format!("{f}")
    }
}

/// Shortest round-trip mantissa and decimal exponent of `f`.
fn split_exponent(f: f64) -> (String, i32) {
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

/// `fmt.Sprintf("%v", f)` for a float64: shortest digits, exponent form when the decimal
/// exponent is below -4 or at least 6 (Go's `%g` rule for the shortest precision).
pub(crate) fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (mantissa, exp) = split_exponent(f);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// `fmt.Sprintf("%v", x)` for a value decoded by the apiserver into `interface{}`
/// (maps print as `map[k:v ...]` with sorted keys, lists as `[a b]`, nil as `<nil>`).
pub(crate) fn value_v(value: &Value) -> String {
    let mut out = String::new();
    write_value_v(&mut out, value);
    out
}

fn write_value_v(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_v(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value_v(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_value_v(out, &map[key]);
            }
            out.push(']');
        }
    }
}

pub(crate) fn number_v(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        float_v(u as f64)
    } else {
        float_v(n.as_f64().unwrap_or(0.0))
    }
}

/// `%v` of several slices at once, as `fmt.Sprint([][]interface{}{...})` prints them.
pub(crate) fn slices_v(slices: &[&[Value]]) -> String {
    let inner: Vec<String> = slices
        .iter()
        .map(|s| value_v(&Value::Array(s.to_vec())))
        .collect();
    format!("[{}]", inner.join(" "))
}

/// `strconv.Quote`, which is what `%q` prints for a string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Go type name `reflect.TypeOf` reports for a decoded JSON value, as used by
/// `mergepatch.ErrBadArgType`. Integers decode to `int64`, other numbers to `float64`.
pub(crate) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "%!s(<nil>)",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_i64() => "int64",
        Some(Value::Number(_)) => "float64",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_escapes_like_go() {
        let v = json!({"b": "<a&b>", "a": [1, 2.5, 1e21, 1.5e-7], "c": "tab\there"});
        assert_eq!(
            json(&v, Escaper::Stdlib),
            r#"{"a":[1,2.5,1e+21,1.5e-7],"b":"\u003ca\u0026b\u003e","c":"tab\there"}"#
        );
    }

    #[test]
    fn v_formats_like_go() {
        let v = json!({"name": "nginx", "ports": [80, 443], "x": null, "f": 1000000.0});
        assert_eq!(
            value_v(&v),
            "map[f:1e+06 name:nginx ports:[80 443] x:<nil>]"
        );
        assert_eq!(float_v(123456.0), "123456");
        assert_eq!(float_v(0.5), "0.5");
        assert_eq!(float_v(1e-5), "1e-05");
    }

    #[test]
    fn quote_matches_strconv() {
        assert_eq!(quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(quote("é"), "\"é\"");
        assert_eq!(quote("\u{1}"), r#""\x01""#);
    }
}
