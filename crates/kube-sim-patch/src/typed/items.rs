//! Identity of associative-list items: the key fields of a list-map item, or a set member's value.

use crate::fieldpath::PathElement;
use crate::schema::{ListDef, Schema};
use serde_json::Value;

/// The path element naming `item` within an associative list (SMD `listItemToPathElement`).
pub(crate) fn list_item_element(
    schema: &Schema,
    list: &ListDef,
    item: &Value,
) -> Result<PathElement, String> {
    if !list.associative {
        return Err("invalid indexing of non-associative list".into());
    }
    if list.keys.is_empty() {
        return set_member_element(item);
    }
    let map = match item {
        Value::Null => return Err("associative list with keys may not have a null element".into()),
        Value::Object(map) => map,
        _ => return Err("associative list with keys may not have non-map elements".into()),
    };
    let mut key = Vec::new();
    for name in &list.keys {
        if let Some(v) = map.get(name) {
            key.push((name.clone(), v.clone()));
        } else if let Some(default) = key_default(schema, list, name)? {
            // An omitted key with a schema default (e.g. protocol: TCP) still identifies the item.
            key.push((name.clone(), default));
        }
    }
    if key.is_empty() {
        let quoted: Vec<String> = list.keys.iter().map(|k| crate::gofmt::quote(k)).collect();
        return Err(format!(
            "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
            quoted.join(" ")
        ));
    }
    key.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(PathElement::Key(key))
}

fn key_default(schema: &Schema, list: &ListDef, name: &str) -> Result<Option<Value>, String> {
    let Some(atom) = schema.resolve(&list.element) else {
        return Err(format!(
            "couldn't find default value for {name}: invalid elementType for list"
        ));
    };
    let Some(map) = &atom.map else {
        return Err(format!(
            "couldn't find default value for {name}: associative list may not have non-map types"
        ));
    };
    Ok(map.fields.get(name).and_then(|f| f.default.clone()))
}

fn set_member_element(item: &Value) -> Result<PathElement, String> {
    match item {
        Value::Object(_) => {
            Err("associative list without keys has an element that's a map type".into())
        }
        Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
        Value::Null => {
            Err("associative list without keys has an element that's an explicit null".into())
        }
        scalar => Ok(PathElement::Value(scalar.clone())),
    }
}
