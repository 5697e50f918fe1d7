//! What changed between two versions of an object (SMD `Compare`): fields added, removed or
//! modified. A subtree that appears or disappears as a whole also reports its root path, which
//! is where the `".": {}` entries of update managers come from.

use super::{items, validate::scalar_side_ok};
use crate::fieldpath::{PathElement, Set};
use crate::schema::{ListDef, MapDef, Schema, Shape, TypeRef};
use crate::values;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub removed: Set,
    pub modified: Set,
    pub added: Set,
}

impl Comparison {
    /// Drops everything at or below the paths in `ignored` (the endpoint's reset fields).
    pub(crate) fn excluding(self, ignored: &Set) -> Comparison {
        Comparison {
            removed: self.removed.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            added: self.added.recursive_difference(ignored),
        }
    }
}

pub(crate) fn compare(schema: &Schema, tr: &TypeRef, lhs: &Value, rhs: &Value) -> Comparison {
    let mut cmp = Comparison::default();
    let mut path = Vec::new();
    Walker {
        schema,
        cmp: &mut cmp,
    }
    .node(tr, Some(lhs), Some(rhs), &mut path);
    cmp
}

struct Walker<'s, 'c> {
    schema: &'s Schema,
    cmp: &'c mut Comparison,
}

impl Walker<'_, '_> {
    /// Compares one position; `None` means the field is absent on that side.
    fn node(
        &mut self,
        tr: &TypeRef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
    ) {
        let lhs_shape = self.schema.shape(tr, lhs);
        let rhs_shape = self.schema.shape(tr, rhs);
        let was_leaf = if rhs.is_none() {
            self.handle(lhs_shape, lhs, rhs, path)
        } else if lhs.is_none() || lhs_shape.same_kind(&rhs_shape) {
            self.handle(rhs_shape, lhs, rhs, path)
        } else {
            // The value changed kind (possible for untyped fields): upstream walks it once as the
            // old kind and once as the new one, recording into the same comparison.
            self.handle(lhs_shape, lhs, rhs, path);
            self.handle(rhs_shape, lhs, rhs, path)
        };
        if !was_leaf {
            if lhs.is_none() {
                self.cmp.added.insert(path);
            } else if rhs.is_none() {
                self.cmp.removed.insert(path);
            }
        }
    }

    /// Returns whether the position was compared as a leaf.
    fn handle(
        &mut self,
        shape: Shape<'_>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
    ) -> bool {
        match shape {
            Shape::Scalar(kind) => {
                if !scalar_side_ok(kind, lhs) && !scalar_side_ok(kind, rhs) {
                    return false;
                }
                self.leaf(lhs, rhs, path);
                true
            }
            Shape::List(list) => self.list(list, lhs, rhs, path),
            Shape::Map(map) => self.map(map, lhs, rhs, path),
            Shape::Invalid => false,
        }
    }

    fn leaf(&mut self, lhs: Option<&Value>, rhs: Option<&Value>, path: &[PathElement]) {
        match (lhs, rhs) {
            (None, _) => self.cmp.added.insert(path),
            (_, None) => self.cmp.removed.insert(path),
            (Some(l), Some(r)) => {
                if !values::equals(l, r) {
                    self.cmp.modified.insert(path);
                }
            }
        }
    }

    fn list(
        &mut self,
        list: &ListDef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
    ) -> bool {
        let l = lhs.and_then(Value::as_array);
        let r = rhs.and_then(Value::as_array);
        let empty = |x: Option<&Vec<Value>>| x.is_none_or(|v| v.is_empty());
        if !list.associative || (empty(l) && empty(r)) {
            // Both empty or null: compare as a leaf to keep the empty/null distinction.
            self.leaf(lhs, rhs, path);
            return true;
        }
        if l.is_none() && r.is_none() {
            return false;
        }
        // Items grouped by identity, in first-seen order, duplicates kept together.
        let mut order: Vec<PathElement> = Vec::new();
        let mut lvals: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        let mut rvals: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        for item in l.into_iter().flatten() {
            let Ok(pe) = items::list_item_element(self.schema, list, item) else {
                continue;
            };
            let entry = lvals.entry(pe.clone()).or_default();
            if entry.is_empty() {
                order.push(pe);
            }
            entry.push(item);
        }
        for item in r.into_iter().flatten() {
            let Ok(pe) = items::list_item_element(self.schema, list, item) else {
                continue;
            };
            let entry = rvals.entry(pe.clone()).or_default();
            if entry.is_empty() && !lvals.contains_key(&pe) {
                order.push(pe.clone());
            }
            entry.push(item);
        }
        for pe in order {
            let ls = lvals.get(&pe).map(Vec::as_slice).unwrap_or_default();
            let rs = rvals.get(&pe).map(Vec::as_slice).unwrap_or_default();
            path.push(pe);
            match (ls.len(), rs.len()) {
                (0..=1, 0..=1) => self.node(
                    &list.element,
                    ls.first().copied(),
                    rs.first().copied(),
                    path,
                ),
                (2.., 2..) => {
                    let same = ls.len() == rs.len()
                        && ls.iter().zip(rs).all(|(a, b)| values::equals(a, b));
                    if !same {
                        self.cmp.modified.insert(path);
                    }
                }
                (2.., _) => {
                    // Duplicates resolved: the survivor is new, the duplicate marker goes away.
                    if let Some(first) = rs.first() {
                        self.node(&list.element, None, Some(first), path);
                    }
                    self.cmp.removed.insert(path);
                }
                (_, _) => {
                    // Duplicates introduced: the old single item goes away, the marker appears.
                    if let Some(first) = ls.first() {
                        self.node(&list.element, Some(first), None, path);
                    }
                    self.cmp.added.insert(path);
                }
            }
            path.pop();
        }
        false
    }

    fn map(
        &mut self,
        map: &MapDef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
    ) -> bool {
        let l = lhs.and_then(Value::as_object);
        let r = rhs.and_then(Value::as_object);
        let empty = |x: Option<&Map<String, Value>>| x.is_none_or(|m| m.is_empty());
        if map.atomic || (empty(l) && empty(r)) {
            self.leaf(lhs, rhs, path);
            return true;
        }
        if l.is_none() && r.is_none() {
            return false;
        }
        let mut keys: Vec<&String> = l.into_iter().flat_map(|m| m.keys()).collect();
        keys.extend(r.into_iter().flat_map(|m| m.keys()));
        keys.sort();
        keys.dedup();
        for key in keys {
            path.push(PathElement::field(key.clone()));
            let tr = map.child_type(key);
            self.node(
                &tr,
                l.and_then(|m| m.get(key)),
                r.and_then(|m| m.get(key)),
                path,
            );
            path.pop();
        }
        false
    }
}
