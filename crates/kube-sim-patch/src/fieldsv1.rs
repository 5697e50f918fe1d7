//! The `FieldsV1` encoding of a field set, as stored in `metadata.managedFields[].fieldsV1`.
//!
//! Each path element becomes a key (`f:name`, `k:{"name":"c"}`, `v:"x"`, `i:0`); a node that is
//! itself a member and also has children carries a `".": {}` entry.

use crate::fieldpath::{PathElement, Set};
use crate::gofmt::{self, Escaper};
use serde_json::{Map, Value};

/// Serialises one path element (SMD `SerializePathElement`).
pub fn path_element_key(pe: &PathElement) -> String {
    match pe {
        // Field names are written raw; only the surrounding JSON key is escaped.
        PathElement::Field(name) => format!("f:{name}"),
        PathElement::Key(fields) => {
            let mut out = String::from("k:{");
            for (i, (name, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                gofmt::write_json_string(&mut out, name, Escaper::JsonIter);
                out.push(':');
                gofmt::write_json(&mut out, value, Escaper::JsonIter);
            }
            out.push('}');
            out
        }
        PathElement::Value(v) => format!("v:{}", gofmt::json(v, Escaper::JsonIter)),
        PathElement::Index(i) => format!("i:{i}"),
    }
}

/// Parses one key. `Ok(None)` means an unknown element type, which upstream silently drops.
pub fn parse_path_element(key: &str) -> Result<Option<PathElement>, String> {
    let bytes = key.as_bytes();
    if bytes.len() < 2 {
        return Err("key must be 2 characters long:".into());
    }
    if bytes[1] != b':' {
        return Err(format!("missing colon: {key}"));
    }
    let rest = &key[2..];
    match bytes[0] {
        b'f' => Ok(Some(PathElement::Field(rest.to_string()))),
        b'v' => {
            let v: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
            Ok(Some(PathElement::Value(v)))
        }
        b'k' => {
            let v: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
            let Value::Object(map) = v else {
                return Err(format!("ReadObjectCB: expect {{ or n, but found {rest}"));
            };
            let mut fields: Vec<(String, Value)> = map.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Some(PathElement::Key(fields)))
        }
        b'i' => rest
            .parse::<i64>()
            .map(|i| Some(PathElement::Index(i)))
            .map_err(|e| format!("strconv.Atoi: parsing {}: {e}", gofmt::quote(rest))),
        _ => Ok(None),
    }
}

/// Encodes a set as a `fieldsV1` JSON object.
///
/// `serde_json` here keeps object keys sorted as strings, which can differ from the apiserver's
/// byte order for numeric keys (`k:{"port":9}` vs `k:{"port":10}`); the content is identical.
/// Use [`to_json_string`] when the exact bytes matter.
pub fn encode(set: &Set) -> Value {
    Value::Object(encode_contents(set, false))
}

fn encode_contents(set: &Set, include_self: bool) -> Map<String, Value> {
    let mut out = Map::new();
    if include_self && !set.is_empty() {
        out.insert(".".into(), Value::Object(Map::new()));
    }
    for pe in &set.members {
        let inner = match set.children.get(pe) {
            Some(child) => encode_contents(child, true),
            None => Map::new(),
        };
        out.insert(path_element_key(pe), Value::Object(inner));
    }
    for (pe, child) in &set.children {
        if !set.members.contains(pe) {
            out.insert(
                path_element_key(pe),
                Value::Object(encode_contents(child, false)),
            );
        }
    }
    out
}

/// Encodes a set byte-for-byte as the apiserver writes it (keys in SMD order).
pub fn to_json_string(set: &Set) -> String {
    let mut out = String::new();
    write_contents(&mut out, set, false);
    out
}

fn write_contents(out: &mut String, set: &Set, include_self: bool) {
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !std::mem::replace(&mut first, false) {
            out.push(',');
        }
    };
    if include_self && !set.is_empty() {
        sep(out);
        out.push_str("\".\":{}");
    }
    // Members and children interleave in path-element order.
    let mut keys: Vec<&PathElement> = set.members.iter().chain(set.children.keys()).collect();
    keys.sort();
    keys.dedup();
    for pe in keys {
        sep(out);
        gofmt::write_json_string(out, &path_element_key(pe), Escaper::JsonIter);
        out.push(':');
        match set.children.get(pe) {
            Some(child) => write_contents(out, child, set.members.contains(pe)),
            None => out.push_str("{}"),
        }
    }
    out.push('}');
}

/// Decodes a `fieldsV1` object into a set (SMD `Set.FromJSON`).
pub fn decode(fields: &Value) -> Result<Set, String> {
    match fields {
        Value::Object(map) => Ok(decode_node(map)?.0.unwrap_or_default()),
        Value::Null => Ok(Set::new()),
        other => Err(format!(
            "ReadMapCB: expect {{ or n, but found {}",
            gofmt::json(other, Escaper::Stdlib)
        )),
    }
}

/// Returns the children found under this node and whether the node itself is a member.
fn decode_node(map: &Map<String, Value>) -> Result<(Option<Set>, bool), String> {
    let mut children: Option<Set> = None;
    let mut is_member = false;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let pe = match parse_path_element(key) {
            Ok(Some(pe)) => pe,
            Ok(None) => continue,
            Err(e) => return Err(format!("parsing key as path element: {e}")),
        };
        let (grandchildren, child_is_member) = match value {
            Value::Object(inner) => decode_node(inner)?,
            Value::Null => (None, true),
            other => {
                return Err(format!(
                    "ReadMapCB: expect {{ or n, but found {}",
                    gofmt::json(other, Escaper::Stdlib)
                ));
            }
        };
        let node = children.get_or_insert_with(Set::new);
        if child_is_member {
            node.members.insert(pe.clone());
        }
        if let Some(gc) = grandchildren {
            let merged = match node.children.remove(&pe) {
                Some(existing) => existing.union(&gc),
                None => gc,
            };
            node.children.insert(pe, merged);
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::Path;
    use serde_json::json;

    /// The shape `kubectl run nginx --image=nginx` leaves in managedFields.
    fn kubectl_run_fields() -> Value {
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:run": {}}},
            "f:spec": {
                "f:containers": {
                    "k:{\"name\":\"nginx\"}": {
                        ".": {},
                        "f:image": {},
                        "f:imagePullPolicy": {},
                        "f:name": {},
                        "f:resources": {},
                        "f:terminationMessagePath": {},
                        "f:terminationMessagePolicy": {}
                    }
                },
                "f:dnsPolicy": {},
                "f:enableServiceLinks": {},
                "f:restartPolicy": {},
                "f:schedulerName": {},
                "f:securityContext": {},
                "f:terminationGracePeriodSeconds": {}
            }
        })
    }

    #[test]
    fn round_trips_apiserver_fields() {
        let fields = kubectl_run_fields();
        let set = decode(&fields).unwrap();
        assert!(set.has(&Path::fields(&["metadata", "labels"]).0));
        assert!(set.has(&Path::fields(&["metadata", "labels", "run"]).0));
        assert!(!set.has(&Path::fields(&["metadata"]).0));
        let container = PathElement::Key(vec![("name".into(), json!("nginx"))]);
        let mut image = Path::fields(&["spec", "containers"]).0;
        image.push(container);
        assert!(set.has(&image), "the list item itself is a member");
        image.push(PathElement::field("image"));
        assert!(set.has(&image));
        assert_eq!(encode(&set), fields);
    }

    #[test]
    fn exact_bytes_follow_smd_order() {
        let ports = |p: i64| {
            let mut path = Path::fields(&["spec", "ports"]).0;
            path.push(PathElement::Key(vec![
                ("port".into(), json!(p)),
                ("protocol".into(), json!("TCP")),
            ]));
            Path(path)
        };
        let set = Set::from_paths(&[ports(10), ports(9)]);
        assert_eq!(
            to_json_string(&set),
            r#"{"f:spec":{"f:ports":{"k:{\"port\":9,\"protocol\":\"TCP\"}":{},"k:{\"port\":10,\"protocol\":\"TCP\"}":{}}}}"#
        );
    }

    #[test]
    fn set_members_and_escaping() {
        let mut path = Path::fields(&["metadata", "finalizers"]).0;
        path.push(PathElement::Value(json!("a<b")));
        let set = Set::from_paths(&[Path(path)]);
        assert_eq!(
            encode(&set),
            json!({"f:metadata": {"f:finalizers": {"v:\"a\\u003cb\"": {}}}})
        );
        assert_eq!(decode(&encode(&set)).unwrap(), set);
    }

    #[test]
    fn rejects_malformed_keys_and_ignores_unknown_kinds() {
        assert!(decode(&json!({"x": {}})).is_err());
        assert!(decode(&json!({"f:a": 3})).is_err());
        let set = decode(&json!({"z:future": {}, "f:a": {}})).unwrap();
        assert_eq!(set, Set::from_paths(&[Path::fields(&["a"])]));
    }
}
