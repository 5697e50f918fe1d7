//! The set of fields an object specifies (SMD `ToFieldSet`); this is what an applier owns.
//!
//! Leaves are members: scalars, atomic lists and maps, empty or null maps, list items and
//! entries of granular maps. Struct fields that hold non-empty maps are not members themselves,
//! only their contents are.

use super::items;
use crate::fieldpath::{PathElement, Set};
use crate::schema::{Schema, Shape, TypeRef};
use serde_json::Value;
use std::collections::BTreeSet;

pub(crate) fn to_field_set(schema: &Schema, tr: &TypeRef, value: &Value) -> Set {
    let mut set = Set::new();
    let mut path = Vec::new();
    walk(schema, tr, value, &mut path, &mut set);
    set
}

fn walk(schema: &Schema, tr: &TypeRef, value: &Value, path: &mut Vec<PathElement>, set: &mut Set) {
    match schema.shape(tr, Some(value)) {
        Shape::Scalar(_) => set.insert(path),
        Shape::List(list) => {
            if !list.associative {
                set.insert(path);
                return;
            }
            let Value::Array(items) = value else { return };
            // Items whose key repeats are owned as a whole, once, rather than field by field.
            let mut seen = BTreeSet::new();
            let mut duplicates = BTreeSet::new();
            let elements: Vec<Option<PathElement>> = items
                .iter()
                .map(|item| items::list_item_element(schema, list, item).ok())
                .collect();
            for pe in elements.iter().flatten() {
                if !seen.insert(pe.clone()) && duplicates.insert(pe.clone()) {
                    path.push(pe.clone());
                    set.insert(path);
                    path.pop();
                }
            }
            for (item, pe) in items.iter().zip(elements) {
                let Some(pe) = pe else { continue };
                if duplicates.contains(&pe) {
                    continue;
                }
                path.push(pe);
                walk(schema, &list.element, item, path, set);
                set.insert(path);
                path.pop();
            }
        }
        Shape::Map(map) => {
            if map.atomic {
                set.insert(path);
                return;
            }
            let Value::Object(entries) = value else {
                return;
            };
            for (key, child) in entries {
                path.push(PathElement::field(key.clone()));
                walk(schema, &map.child_type(key), child, path, set);
                let empty_or_null = match child {
                    Value::Null => true,
                    Value::Object(m) => m.is_empty(),
                    _ => false,
                };
                if empty_or_null || map.find_field(key).is_none() {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Shape::Invalid => {}
    }
}
