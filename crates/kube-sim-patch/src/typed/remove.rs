//! Removes a set of fields from an object (SMD `RemoveItems`), used when an applier stops
//! specifying fields it owned.
//!
//! Like upstream, a map or list emptied by the removal becomes `null` rather than `{}`/`[]`;
//! the apiserver's typed round trip then drops it.

use super::items;
use crate::fieldpath::{PathElement, Set};
use crate::schema::{Schema, Shape, TypeRef};
use serde_json::{Map, Value};

pub(crate) fn remove_items(schema: &Schema, tr: &TypeRef, value: &Value, to_remove: &Set) -> Value {
    walk(schema, tr, value, to_remove).unwrap_or(Value::Null)
}

/// `None` is upstream's nil output, which the parent stores as null.
fn walk(schema: &Schema, tr: &TypeRef, value: &Value, to_remove: &Set) -> Option<Value> {
    match schema.shape(tr, Some(value)) {
        Shape::Scalar(_) => Some(value.clone()),
        Shape::List(list) => {
            let Value::Array(items) = value else {
                return None;
            };
            if items.is_empty() || !list.associative {
                return None;
            }
            let mut kept = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = items::list_item_element(schema, list, item) else {
                    kept.push(item.clone());
                    continue;
                };
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.child(&pe) {
                    Some(sub) if !sub.is_empty() => {
                        kept.push(walk(schema, &list.element, item, sub).unwrap_or(Value::Null))
                    }
                    _ => kept.push(item.clone()),
                }
            }
            if kept.is_empty() {
                None
            } else {
                Some(Value::Array(kept))
            }
        }
        Shape::Map(map) => {
            let Value::Object(entries) = value else {
                return None;
            };
            if entries.is_empty() || map.atomic {
                return None;
            }
            let mut kept = Map::new();
            for (key, child) in entries {
                let pe = PathElement::field(key.clone());
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                let v = match to_remove.child(&pe) {
                    Some(sub) if !sub.is_empty() => {
                        walk(schema, &map.child_type(key), child, sub).unwrap_or(Value::Null)
                    }
                    _ => child.clone(),
                };
                kept.insert(key.clone(), v);
            }
            if kept.is_empty() {
                None
            } else {
                Some(Value::Object(kept))
            }
        }
        Shape::Invalid => None,
    }
}
