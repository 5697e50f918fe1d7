//! Value ordering, equality and display with structured-merge-diff's semantics.
//!
//! SMD compares integers and floats numerically and orders values of different kinds
//! (numbers < strings < booleans < lists < maps < null); set members and list keys are sorted
//! with these rules, so field sets, conflict lists and `k:`/`v:` keys depend on them.

use crate::gofmt;
use serde_json::Value;
use std::cmp::Ordering;

enum Number {
    Int(i64),
    Float(f64),
}

fn number(v: &Value) -> Option<Number> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        Some(Number::Int(i))
    } else {
        // u64 beyond i64 decodes as float64 in the apiserver, like any non-integer.
        Some(Number::Float(n.as_f64().unwrap_or(0.0)))
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// Total order over values (SMD `value.Compare`).
pub(crate) fn compare(lhs: &Value, rhs: &Value) -> Ordering {
    match (lhs, rhs) {
        (Value::Number(_), Value::Number(_)) => match (number(lhs), number(rhs)) {
            (Some(Number::Int(a)), Some(Number::Int(b))) => a.cmp(&b),
            (Some(a), Some(b)) => float_cmp(as_f64(a), as_f64(b)),
            _ => Ordering::Equal,
        },
        (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter().zip(b.iter()) {
                let c = compare(x, y);
                if c != Ordering::Equal {
                    return c;
                }
            }
            a.len().cmp(&b.len())
        }
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<&String> = a.keys().collect();
            let mut kb: Vec<&String> = b.keys().collect();
            ka.sort();
            kb.sort();
            for (x, y) in ka.iter().zip(kb.iter()) {
                let c = x.as_bytes().cmp(y.as_bytes());
                if c != Ordering::Equal {
                    return c;
                }
                let c = compare(&a[*x], &b[*y]);
                if c != Ordering::Equal {
                    return c;
                }
            }
            ka.len().cmp(&kb.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(lhs).cmp(&rank(rhs)),
    }
}

fn as_f64(n: Number) -> f64 {
    match n {
        Number::Int(i) => i as f64,
        Number::Float(f) => f,
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Deep equality with numeric int/float equivalence (SMD `value.Equals`).
pub(crate) fn equals(lhs: &Value, rhs: &Value) -> bool {
    match (lhs, rhs) {
        (Value::Number(_), Value::Number(_)) => compare(lhs, rhs) == Ordering::Equal,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| equals(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|other| equals(v, other)))
        }
        _ => lhs == rhs,
    }
}

/// Human-readable rendering used in path strings (SMD `value.ToString`).
pub(crate) fn to_display(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Number(n) => gofmt::number_v(n),
        Value::String(s) => gofmt::quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(to_display).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| format!("{k}={}", to_display(&map[k])))
                .collect()
        }
    }
}

/// Go's `==` on two decoded JSON scalars held in `interface{}`: the dynamic types must match,
/// so `int64(1)` differs from `float64(1)`. Strategic merge patch compares merge keys this way.
pub(crate) fn go_scalar_eq(lhs: Option<&Value>, rhs: Option<&Value>) -> bool {
    match (lhs, rhs) {
        (None | Some(Value::Null), None | Some(Value::Null)) => true,
        (Some(Value::Number(a)), Some(Value::Number(b))) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            (None, None) => a.as_f64() == b.as_f64(),
            _ => false,
        },
        (Some(Value::String(a)), Some(Value::String(b))) => a == b,
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a == b,
        // Maps and lists are not comparable in Go; patches never use them as keys.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_numerically_across_int_and_float() {
        assert_eq!(compare(&json!(9), &json!(10)), Ordering::Less);
        assert_eq!(compare(&json!(2.5), &json!(2)), Ordering::Greater);
        assert!(equals(&json!(1), &json!(1.0)));
        assert!(!go_scalar_eq(Some(&json!(1)), Some(&json!(1.0))));
    }

    #[test]
    fn kinds_are_ordered_numbers_strings_bools() {
        assert_eq!(compare(&json!(5), &json!("a")), Ordering::Less);
        assert_eq!(compare(&json!("a"), &json!(true)), Ordering::Less);
        assert_eq!(compare(&json!(null), &json!({})), Ordering::Greater);
    }
}
