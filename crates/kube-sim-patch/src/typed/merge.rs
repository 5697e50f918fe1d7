//! Merges an applied configuration into the live object (SMD `Merge` with "keep right-hand side"
//! for leaves): granular maps merge per key, associative lists per item, atomic values and
//! leaves take the configuration's value.

use super::{ValidationErrors, items, validate::scalar_side_ok};
use crate::fieldpath::PathElement;
use crate::schema::{ListDef, MapDef, Schema, Shape, TypeRef};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Merges `rhs` into `lhs`. `None` on a side means absent.
pub(crate) fn merge(
    schema: &Schema,
    tr: &TypeRef,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
) -> Result<Option<Value>, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let out = Merger { schema }.node(tr, lhs, rhs, &mut errs);
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

struct Merger<'s> {
    schema: &'s Schema,
}

fn keep_rhs(lhs: Option<&Value>, rhs: Option<&Value>) -> Option<Value> {
    rhs.or(lhs).cloned()
}

impl Merger<'_> {
    fn node(
        &self,
        tr: &TypeRef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        errs: &mut ValidationErrors,
    ) -> Option<Value> {
        if lhs.is_none() && rhs.is_none() {
            errs.extend(ValidationErrors::one(
                "at least one of lhs and rhs must be provided",
            ));
            return None;
        }
        // When the value changes kind upstream also walks the old kind, but discards that output.
        let shape = match rhs {
            None => self.schema.shape(tr, lhs),
            Some(_) => self.schema.shape(tr, rhs),
        };
        match shape {
            Shape::Scalar(kind) => {
                if !scalar_side_ok(kind, lhs) && !scalar_side_ok(kind, rhs) {
                    errs.extend(ValidationErrors::one(
                        "lhs and rhs are both invalid scalars",
                    ));
                    return None;
                }
                keep_rhs(lhs, rhs)
            }
            Shape::List(list) => self.list(list, lhs, rhs, errs),
            Shape::Map(map) => self.map(map, lhs, rhs, errs),
            Shape::Invalid => {
                errs.extend(ValidationErrors::one(
                    "schema error: no type found matching: inlined type",
                ));
                None
            }
        }
    }

    fn list(
        &self,
        list: &ListDef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        errs: &mut ValidationErrors,
    ) -> Option<Value> {
        let l = lhs.and_then(Value::as_array);
        let r = rhs.and_then(Value::as_array);
        let empty = |x: Option<&Vec<Value>>| x.is_none_or(|v| v.is_empty());
        if !list.associative || (empty(l) && empty(r)) {
            return keep_rhs(lhs, rhs);
        }
        if l.is_none() && r.is_none() {
            return None;
        }
        self.list_items(
            list,
            l.map(Vec::as_slice).unwrap_or_default(),
            r.map(Vec::as_slice).unwrap_or_default(),
            errs,
        )
    }

    /// Interleaves live and applied items: live order is kept, applied items that are new land
    /// after the live items preceding them, and shared items follow the applied order.
    fn list_items(
        &self,
        list: &ListDef,
        lhs: &[Value],
        rhs: &[Value],
        errs: &mut ValidationErrors,
    ) -> Option<Value> {
        let (rhs_pes, observed_rhs) = match self.index(list, rhs, false) {
            Ok(x) => x,
            Err(e) => {
                errs.extend(e);
                return None;
            }
        };
        let (lhs_pes, observed_lhs) = match self.index(list, lhs, true) {
            Ok(x) => x,
            Err(e) => {
                errs.extend(e);
                return None;
            }
        };
        let mut shared: VecDeque<&PathElement> = rhs_pes
            .iter()
            .filter(|pe| observed_lhs.contains_key(*pe))
            .collect();
        let mut next_shared = shared.pop_front();
        let mut merged_rhs: BTreeSet<PathElement> = BTreeSet::new();
        // Upstream drops errors from merging individual items (they were validated before).
        let mut item_errs = ValidationErrors::default();
        let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
        let (mut li, mut ri) = (0, 0);
        while li < lhs_pes.len() || ri < rhs_pes.len() {
            if li < lhs_pes.len() && ri < rhs_pes.len() {
                let pe = &lhs_pes[li];
                if *pe == rhs_pes[ri] {
                    merged_rhs.insert(pe.clone());
                    let l = observed_lhs.get(pe).map(|v| v.as_ref());
                    let r = observed_rhs.get(pe).map(|v| v.as_ref());
                    out.extend(self.node(&list.element, l, r, &mut item_errs));
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    // Shared item, but the applied order places it later.
                    li += 1;
                    continue;
                }
            }
            if li < lhs_pes.len() {
                let pe = &lhs_pes[li];
                if !observed_rhs.contains_key(pe) {
                    out.extend(self.node(&list.element, Some(&lhs[li]), None, &mut item_errs));
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                }
            }
            if ri < rhs_pes.len() {
                let pe = &rhs_pes[ri];
                merged_rhs.insert(pe.clone());
                let l = observed_lhs.get(pe).map(|v| v.as_ref());
                let r = observed_rhs.get(pe).map(|v| v.as_ref());
                out.extend(self.node(&list.element, l, r, &mut item_errs));
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.pop_front();
                }
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        }
    }

    /// Item identities in order, and the value seen for each; a repeated live item maps to
    /// null so duplicates are not merged with the applied value.
    #[allow(clippy::type_complexity)]
    fn index<'v>(
        &self,
        list: &ListDef,
        items: &'v [Value],
        allow_duplicates: bool,
    ) -> Result<
        (
            Vec<PathElement>,
            BTreeMap<PathElement, std::borrow::Cow<'v, Value>>,
        ),
        ValidationErrors,
    > {
        let mut errs = ValidationErrors::default();
        let mut pes = Vec::with_capacity(items.len());
        let mut observed: BTreeMap<PathElement, std::borrow::Cow<'v, Value>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            let pe = match items::list_item_element(self.schema, list, item) {
                Ok(pe) => pe,
                Err(e) => {
                    errs.extend(ValidationErrors::one(format!("element {i}: {e}")));
                    continue;
                }
            };
            if observed.contains_key(&pe) {
                if !allow_duplicates {
                    errs.extend(ValidationErrors::one(format!(
                        "duplicate entries for key {pe}"
                    )));
                    continue;
                }
                observed.insert(pe.clone(), std::borrow::Cow::Owned(Value::Null));
            } else {
                observed.insert(pe.clone(), std::borrow::Cow::Borrowed(item));
            }
            pes.push(pe);
        }
        if errs.is_empty() {
            Ok((pes, observed))
        } else {
            Err(errs)
        }
    }

    fn map(
        &self,
        map: &MapDef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        errs: &mut ValidationErrors,
    ) -> Option<Value> {
        let l = lhs.and_then(Value::as_object);
        let r = rhs.and_then(Value::as_object);
        let empty = |x: Option<&Map<String, Value>>| x.is_none_or(|m| m.is_empty());
        if map.atomic || (empty(l) && empty(r)) {
            return keep_rhs(lhs, rhs);
        }
        if l.is_none() && r.is_none() {
            return None;
        }
        let mut out = Map::new();
        let mut keys: Vec<&String> = l.into_iter().flat_map(|m| m.keys()).collect();
        keys.extend(r.into_iter().flat_map(|m| m.keys()));
        keys.sort();
        keys.dedup();
        for key in keys {
            let tr = map.child_type(key);
            let mut child_errs = ValidationErrors::default();
            if let Some(v) = self.node(
                &tr,
                l.and_then(|m| m.get(key)),
                r.and_then(|m| m.get(key)),
                &mut child_errs,
            ) {
                out.insert(key.clone(), v);
            }
            errs.extend(child_errs.with_prefix(&PathElement::field(key.clone()).to_string()));
        }
        if out.is_empty() {
            None
        } else {
            Some(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A set of strings and a list-map keyed by (key, id), as in upstream's merge cases.
    fn schema() -> Schema {
        Schema::from_openapi_v3(&json!({
            "type": "object",
            "properties": {
                "setStr": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "list": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["key", "id"],
                    "items": {"type": "object", "properties": {"key": {"type": "string"}, "id": {"type": "integer"}}}
                }
            }
        }))
    }

    #[test]
    fn merged_lists_follow_upstream_ordering() {
        let s = schema();
        let cases = [
            (
                json!({"setStr": ["a", "b", "c"]}),
                json!({"setStr": ["a", "b"]}),
                json!({"setStr": ["a", "b", "c"]}),
            ),
            (
                json!({"setStr": ["a", "b"]}),
                json!({"setStr": ["b", "a"]}),
                json!({"setStr": ["b", "a"]}),
            ),
            (
                json!({"setStr": ["a", "b", "c"]}),
                json!({"setStr": ["c", "d", "e", "f"]}),
                json!({"setStr": ["a", "b", "c", "d", "e", "f"]}),
            ),
            (
                json!({"setStr": ["a", "b", "c", "g", "f"]}),
                json!({"setStr": ["c", "d", "e", "f"]}),
                json!({"setStr": ["a", "b", "c", "g", "d", "e", "f"]}),
            ),
            (
                json!({"list": [{"key": "a", "id": 1}, {"key": "b", "id": 2}, {"key": "c", "id": 3}]}),
                json!({"list": [{"key": "c", "id": 3}, {"key": "b", "id": 2}]}),
                json!({"list": [{"key": "a", "id": 1}, {"key": "c", "id": 3}, {"key": "b", "id": 2}]}),
            ),
            (
                json!({"list": [{"key": "a", "id": 1}, {"key": "b", "id": 2}, {"key": "c", "id": 3}]}),
                json!({"list": [{"key": "c", "id": 3}, {"key": "a", "id": 1}]}),
                json!({"list": [{"key": "b", "id": 2}, {"key": "c", "id": 3}, {"key": "a", "id": 1}]}),
            ),
            (
                json!({"list": [{"key": "a", "id": 1}, {"key": "b", "id": 1}]}),
                json!({"list": [{"key": "a", "id": 1}, {"key": "a", "id": 2}]}),
                json!({"list": [{"key": "a", "id": 1}, {"key": "b", "id": 1}, {"key": "a", "id": 2}]}),
            ),
        ];
        for (lhs, rhs, want) in cases {
            let got = merge(&s, &s.root, Some(&lhs), Some(&rhs)).unwrap();
            assert_eq!(got, Some(want), "{lhs} + {rhs}");
        }
    }

    #[test]
    fn applied_duplicates_are_refused_but_live_duplicates_are_kept_apart() {
        let s = schema();
        let dup = json!({"setStr": ["a", "a"]});
        let err = merge(&s, &s.root, Some(&json!({})), Some(&dup)).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".setStr: duplicate entries for key [=\"a\"]"
        );
        let out = merge(&s, &s.root, Some(&dup), Some(&json!({"setStr": ["b"]}))).unwrap();
        assert_eq!(out, Some(json!({"setStr": ["a", "a", "b"]})));
    }
}
