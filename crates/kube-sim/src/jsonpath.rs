//! The JSONPath subset CRD printer columns use: `.a.b`, `['a.b']`, `[0]`, `[*]` and
//! `[?(@.type=="Ready")]` filters.
//!
//! Hand-written: the JSONPath crates on crates.io implement RFC 9535, whose filter syntax and results differ
//! from the Kubernetes dialect that CRD authors write.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter { path: Vec<String>, equals: String },
}

fn parse(expr: &str) -> Result<Vec<Step>, String> {
    let e = expr.trim();
    let e = e
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(e);
    let chars: Vec<char> = e.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i)
                    .ok_or_else(|| format!("unclosed [ in {expr}"))?;
                let inner: String = chars[i + 1..end].iter().collect();
                steps.push(bracket(&inner, expr)?);
                i = end + 1;
            }
            '@' | '$' => i += 1,
            c => return Err(format!("unexpected {c:?} in {expr}")),
        }
    }
    Ok(steps)
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return Some(inner.to_string());
        }
    }
    None
}

fn bracket(inner: &str, expr: &str) -> Result<Step, String> {
    let inner = inner.trim();
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name));
    }
    if let Ok(n) = inner.parse() {
        return Ok(Step::Index(n));
    }
    let filter = inner
        .strip_prefix("?(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported [{inner}] in {expr}"))?;
    let (lhs, rhs) = filter
        .split_once("==")
        .ok_or_else(|| format!("unsupported filter {filter} in {expr}"))?;
    let path = lhs
        .trim()
        .strip_prefix("@.")
        .ok_or_else(|| format!("filter must start with @. in {expr}"))?
        .split('.')
        .map(str::to_string)
        .collect();
    let equals = unquote(rhs).unwrap_or_else(|| rhs.trim().to_string());
    Ok(Step::Filter { path, equals })
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every value `expr` selects in `obj`, or the parse error.
pub fn find<'a>(obj: &'a Value, expr: &str) -> Result<Vec<&'a Value>, String> {
    let mut current = vec![obj];
    for step in parse(expr)? {
        let mut next = Vec::new();
        for v in current {
            match &step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f) {
                        next.push(x);
                    }
                }
                Step::Index(n) => {
                    if let Some(x) = v.get(*n) {
                        next.push(x);
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(o) => next.extend(o.values()),
                    _ => {}
                },
                Step::Filter { path, equals } => {
                    for item in v.as_array().into_iter().flatten() {
                        let got = path.iter().try_fold(item, |acc, f| acc.get(f));
                        if got.is_some_and(|g| scalar_text(g) == *equals) {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printer_column_paths() {
        let o = json!({
            "spec": {"size": 1, "a.b": "dotted"},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Configured", "status": "False"}
            ]}
        });
        assert_eq!(find(&o, ".status.phase").unwrap(), vec![&json!("Running")]);
        assert_eq!(find(&o, ".spec.size").unwrap(), vec![&json!(1)]);
        assert_eq!(find(&o, ".spec['a.b']").unwrap(), vec![&json!("dotted")]);
        assert_eq!(
            find(&o, ".status.conditions[?(@.type==\"Ready\")].status").unwrap(),
            vec![&json!("True")]
        );
        assert_eq!(
            find(&o, "{.status.conditions[1].type}").unwrap(),
            vec![&json!("Configured")]
        );
        assert_eq!(find(&o, ".status.conditions[*].type").unwrap().len(), 2);
        assert!(find(&o, ".status.missing").unwrap().is_empty());
        assert!(find(&o, ".status[").is_err());
    }
}
