//! Strategic merge patch applied server-side (k8s.io/apimachinery `strategicpatch`
//! `StrategicMergeMapPatch`, with the server's options: parallel lists are merged and nulls
//! that match nothing are ignored).
//!
//! Maps merge key by key and `null` deletes. Lists merge only when the field's strategy is
//! `merge` (by `patchMergeKey` for lists of maps, by value for scalars); otherwise the patch
//! replaces them. Directives: `$patch: replace|delete|merge`, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`.

use crate::error::PatchError;
use crate::gofmt;
use crate::gosort;
use crate::schema::{Schema, Smp, SmpStrategy, TypeRef, UNTYPED_DEDUCED};
use crate::values::go_scalar_eq;
use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Upstream's error values; which one decides the HTTP status.
enum SmpError {
    NoListOfLists,
    BadPatchFormatForPrimitiveList,
    BadPatchFormatForRetainKeys,
    BadPatchFormatForSetElementOrderList,
    Other(String),
}

impl From<SmpError> for PatchError {
    fn from(e: SmpError) -> PatchError {
        match e {
            SmpError::NoListOfLists => {
                PatchError::Unprocessable("lists of lists are not supported".into())
            }
            SmpError::BadPatchFormatForPrimitiveList => {
                PatchError::BadRequest("invalid patch format of primitive list".into())
            }
            SmpError::BadPatchFormatForRetainKeys => {
                PatchError::BadRequest("invalid patch format of retainKeys".into())
            }
            SmpError::BadPatchFormatForSetElementOrderList => {
                PatchError::BadRequest("invalid patch format of setElementOrder list".into())
            }
            SmpError::Other(message) => PatchError::Internal(message),
        }
    }
}

type Result<T> = std::result::Result<T, SmpError>;

fn no_merge_key(item: &Map<String, Value>, key: &str) -> SmpError {
    SmpError::Other(format!(
        "map: {} does not contain declared merge key: {key}",
        gofmt::value_v(&Value::Object(item.clone()))
    ))
}

fn bad_arg_type(expected: &str, actual: Option<&Value>) -> SmpError {
    SmpError::Other(format!(
        "expected a {expected}, but received a {}",
        gofmt::type_name(actual)
    ))
}

const MAP_TYPE: &str = "map[string]interface {}";
const SLICE_TYPE: &str = "[]interface {}";

/// Applies a strategic merge patch (Content-Type `application/strategic-merge-patch+json`) to
/// `original`, as the apiserver does for built-in kinds. The apiserver refuses this patch type
/// for custom resources (415) before getting here; that check is the caller's.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    schema: &Schema,
) -> std::result::Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError::Internal(
            "the original object is not a JSON object".into(),
        ));
    };
    let patch = match patch {
        Value::Object(p) => p.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(other)
            )));
        }
    };
    let meta = Meta {
        schema,
        tr: schema.root.clone(),
    };
    let mut merged = Value::Object(merge_map(original.clone(), patch, &meta)?);
    drop_directive_keys(&mut merged);
    Ok(merged)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "object",
    }
}

/// Directive keys can survive inside values the patch adds; the apiserver's decode into Go
/// structs drops them as unknown fields.
fn drop_directive_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| {
                !(k == DIRECTIVE
                    || k == RETAIN_KEYS
                    || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                    || k.starts_with(SET_ELEMENT_ORDER))
            });
            map.values_mut().for_each(drop_directive_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_directive_keys),
        _ => {}
    }
}

/// A position in the schema, for looking up patch strategies (upstream `LookupPatchMeta`).
struct Meta<'s> {
    schema: &'s Schema,
    tr: TypeRef,
}

impl<'s> Meta<'s> {
    /// The field `key` of this struct: its type and strategy.
    fn field(&self, key: &str) -> (Meta<'s>, Smp) {
        let map = self.schema.resolve(&self.tr).and_then(|a| a.map.as_ref());
        let (tr, smp) = match map.and_then(|m| m.find_field(key)) {
            Some(f) => (f.ty.clone(), f.smp.clone()),
            None => (
                map.and_then(|m| m.element.clone())
                    .unwrap_or_else(|| TypeRef::named(UNTYPED_DEDUCED)),
                Smp::default(),
            ),
        };
        (
            Meta {
                schema: self.schema,
                tr,
            },
            smp,
        )
    }

    /// The list field `key`: its element type and the field's strategy.
    fn list_field(&self, key: &str) -> (Meta<'s>, Smp) {
        let (field, smp) = self.field(key);
        let element = self
            .schema
            .resolve(&field.tr)
            .and_then(|a| a.list.as_ref())
            .map(|l| l.element.clone())
            .unwrap_or_else(|| TypeRef::named(UNTYPED_DEDUCED));
        (
            Meta {
                schema: self.schema,
                tr: element,
            },
            smp,
        )
    }
}

/// Go's dynamic type of a decoded JSON value, as `reflect.TypeOf` distinguishes them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GoType {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

fn go_type(v: &Value) -> GoType {
    match v {
        Value::Null => GoType::Nil,
        Value::Bool(_) => GoType::Bool,
        Value::Number(n) if n.is_i64() => GoType::Int,
        Value::Number(_) => GoType::Float,
        Value::String(_) => GoType::String,
        Value::Array(_) => GoType::Slice,
        Value::Object(_) => GoType::Map,
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    meta: &Meta,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE).cloned() {
        return handle_directive_in_merge_map(&directive, patch);
    }
    apply_retain_keys_directive(&mut original, &mut patch)?;
    merge_set_element_order_lists(&mut original, &mut patch, meta)?;

    for (key, patch_v) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else {
            (key, false)
        };
        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(original_v) = original.get(&key) else {
            if !is_delete_list {
                put(&mut original, key, patch_v);
            }
            continue;
        };
        if go_type(original_v) != go_type(&patch_v) {
            if !is_delete_list {
                put(&mut original, key, patch_v);
            }
            continue;
        }
        let merged = match (original_v, patch_v) {
            (Value::Object(o), Value::Object(p)) => {
                let (child, smp) = meta.field(&key);
                if smp.strategy == SmpStrategy::Replace {
                    Value::Object(p)
                } else {
                    Value::Object(merge_map(o.clone(), p, &child)?)
                }
            }
            (Value::Array(o), Value::Array(p)) => {
                let (element, smp) = meta.list_field(&key);
                Value::Array(merge_slice_handler(
                    o.clone(),
                    p,
                    &element,
                    &smp,
                    is_delete_list,
                )?)
            }
            (_, scalar) => {
                put(&mut original, key, scalar);
                continue;
            }
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// Adds a value the original lacks (or replaces one of another type): nulls dropped,
/// directives removed, and a value that is itself a directive deletes the key.
fn put(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_null_values(&mut value);
    match remove_directives(value) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            original.remove(&key);
        }
    }
}

fn handle_directive_in_merge_map(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>> {
    match directive.as_str() {
        Some("replace") => {
            patch.remove(DIRECTIVE);
            Ok(patch)
        }
        Some("delete") => Ok(Map::new()),
        _ => Err(bad_patch_type(directive, &patch)),
    }
}

fn bad_patch_type(directive: &Value, item: &Map<String, Value>) -> SmpError {
    let shown = match directive {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".into(),
        other => format!(
            "%!s({}={})",
            gofmt::type_name(Some(other)),
            gofmt::value_v(other)
        ),
    };
    SmpError::Other(format!(
        "unknown patch type: {shown} in map: {}",
        gofmt::value_v(&Value::Object(item.clone()))
    ))
}

fn extract_key(s: &str, prefix: &str) -> Result<String> {
    match s.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ => Err(match prefix {
            DELETE_FROM_PRIMITIVE_LIST => SmpError::BadPatchFormatForPrimitiveList,
            _ => SmpError::BadPatchFormatForSetElementOrderList,
        }),
    }
}

/// `$retainKeys`: keys of the original not listed are cleared; every key the patch sets must
/// be listed.
fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(SmpError::BadPatchFormatForRetainKeys);
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(SmpError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merges that list now and orders the result by the directive
/// (then patch order, then live order).
fn merge_set_element_order_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    meta: &Meta,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order_v) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(order) = order_v else {
            return Err(bad_arg_type(SLICE_TYPE, Some(&order_v)));
        };
        let list_key = extract_key(&key, SET_ELEMENT_ORDER)?;
        let original_list = match original.get(&list_key) {
            Some(Value::Array(l)) => Some(l.clone()),
            Some(other) => return Err(bad_arg_type(SLICE_TYPE, Some(other))),
            None => None,
        };
        let patch_list = match patch.get(&list_key) {
            Some(Value::Array(l)) => Some(l.clone()),
            Some(other) => return Err(bad_arg_type(SLICE_TYPE, Some(other))),
            None => None,
        };
        let (element, smp) = meta.list_field(&list_key);
        let merge_key = smp.merge_key.clone().unwrap_or_default();
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or_default(),
            &order,
            &merge_key,
        )?;

        let merged = match (&original_list, &patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => match remove_directives(Value::Array(p.clone())) {
                Some(Value::Array(v)) => v,
                _ => continue,
            },
            (Some(o), Some(p)) => merge_slice_handler(o.clone(), p.clone(), &element, &smp, false)?,
            (None, None) => continue,
        };
        let (in_order, server_only) = if merge_key.is_empty() {
            partition_primitives(&merged, &order)
        } else {
            partition_maps(&merged, &order, &merge_key)?
        };
        let original_list = original_list.unwrap_or_default();
        let kind =
            slice_element_type(&[&original_list, patch_list.as_deref().unwrap_or_default()])?;
        let both = normalize_element_order(
            in_order,
            server_only,
            &order,
            &original_list,
            &merge_key,
            kind,
        )?;
        original.insert(list_key.clone(), Value::Array(both));
        patch.remove(&list_key);
    }
    Ok(())
}

fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<Value> = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list)?.0
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(SmpError::Other(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            gofmt::value_v(&Value::Array(patch_list.to_vec())),
            gofmt::value_v(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(go_scalar_eq(Some(left), Some(right)));
    }
    let l = left
        .as_object()
        .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(left)))?;
    let r = right
        .as_object()
        .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(right)))?;
    let lv = l.get(merge_key).ok_or_else(|| no_merge_key(l, merge_key))?;
    let rv = r.get(merge_key).ok_or_else(|| no_merge_key(r, merge_key))?;
    Ok(go_scalar_eq(Some(lv), Some(rv)))
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    element: &Meta,
    smp: &Smp,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if smp.strategy == SmpStrategy::Merge || is_delete_list {
        merge_slice(
            original,
            patch,
            element,
            smp.merge_key.as_deref().unwrap_or(""),
            is_delete_list,
        )
    } else {
        Ok(patch)
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    element: &Meta,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_type(&[&original, &patch])?;
    let (original, patch, merged) = if kind != GoType::Map {
        if is_delete_list {
            return Ok(delete_from_slice(&original, &patch));
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        let merged = deduplicate_scalars(both);
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(SmpError::Other(
                "cannot merge lists without merge key for struct".into(),
            ));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged =
            merge_slice_without_special_elements(original.clone(), &patch, merge_key, element)?;
        (original, patch, merged)
    };
    // Patch items take the patch's order; items only on the server keep theirs.
    let (patch_items, server_only) = if merge_key.is_empty() {
        partition_primitives(&merged, &patch)
    } else {
        partition_maps(&merged, &patch, merge_key)?
    };
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
}

/// `$patch: delete` items remove by key, `$patch: replace` discards the original list.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Value::Object(item) = &v else {
            plain.push(v);
            continue;
        };
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => match item.get(merge_key) {
                Some(key_value) => {
                    original = delete_matching_entries(original, merge_key, key_value)?
                }
                None => return Err(no_merge_key(item, merge_key)),
            },
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(SmpError::Other(
                    "merging lists cannot yet be specified in the patch".into(),
                ));
            }
            _ => return Err(bad_patch_type(directive, item)),
        }
    }
    if replace {
        Ok((plain, vec![]))
    } else {
        Ok((original, plain))
    }
}

fn delete_matching_entries(
    mut original: Vec<Value>,
    merge_key: &str,
    key_value: &Value,
) -> Result<Vec<Value>> {
    while let Some((index, _)) = find_map_in_slice(&original, merge_key, key_value)? {
        original.remove(index);
    }
    Ok(original)
}

fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    element: &Meta,
) -> Result<Vec<Value>> {
    for v in patch {
        let item = v
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(v)))?;
        let key_value = item
            .get(merge_key)
            .ok_or_else(|| no_merge_key(item, merge_key))?;
        match find_map_in_slice(&original, merge_key, key_value)? {
            Some((index, found)) => {
                original[index] = Value::Object(merge_map(found, item.clone(), element)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

fn find_map_in_slice(
    list: &[Value],
    key: &str,
    value: &Value,
) -> Result<Option<(usize, Map<String, Value>)>> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(SmpError::Other(format!("value for key {i} is not a map")));
        };
        if m.get(key)
            .is_some_and(|found| go_scalar_eq(Some(found), Some(value)))
        {
            return Ok(Some((i, m.clone())));
        }
    }
    Ok(None)
}

fn delete_from_slice(current: &[Value], to_delete: &[Value]) -> Vec<Value> {
    current
        .iter()
        .filter(|v| !to_delete.iter().any(|d| go_scalar_eq(Some(d), Some(v))))
        .cloned()
        .collect()
}

/// Upstream's in-place deduplication, which moves the last element into each duplicate's slot.
fn deduplicate_scalars(mut s: Vec<Value>) -> Vec<Value> {
    let mut length = s.len() as isize - 1;
    let mut i = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if go_scalar_eq(Some(&s[i as usize]), Some(&s[j as usize])) {
                s[j as usize] = s[length as usize].clone();
                s.truncate(length as usize);
                length -= 1;
                j -= 1;
            }
            j += 1;
        }
        i += 1;
    }
    s
}

fn partition_primitives(list: &[Value], present: &[Value]) -> (Vec<Value>, Vec<Value>) {
    list.iter()
        .cloned()
        .partition(|v| present.iter().any(|p| go_scalar_eq(Some(p), Some(v))))
}

fn partition_maps(
    list: &[Value],
    present: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for v in list {
        let item = v
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(v)))?;
        let key_value = item
            .get(merge_key)
            .ok_or_else(|| no_merge_key(item, merge_key))?;
        if find_map_in_slice(present, merge_key, key_value)?.is_some() {
            inside.push(v.clone());
        } else {
            outside.push(v.clone());
        }
    }
    Ok((inside, outside))
}

fn slice_element_type(slices: &[&[Value]]) -> Result<GoType> {
    let mut prev: Option<GoType> = None;
    for s in slices {
        for v in s.iter() {
            let current = go_type(v);
            match prev {
                None => {
                    if current == GoType::Slice {
                        return Err(SmpError::NoListOfLists);
                    }
                    if current == GoType::Nil {
                        // Upstream dereferences a nil type here and the request fails.
                        return Err(SmpError::Other(
                            "runtime error: invalid memory address or nil pointer dereference"
                                .into(),
                        ));
                    }
                    prev = Some(current);
                }
                Some(p) if p != current => {
                    return Err(SmpError::Other(format!(
                        "list element types are not identical: {}",
                        gofmt::slices_v(slices)
                    )));
                }
                Some(_) => {}
            }
        }
    }
    prev.ok_or_else(|| SmpError::Other("no elements in any of the given slices".into()))
}

fn extract_to_delete_items(list: &[Value]) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut keep, mut delete) = (Vec::new(), Vec::new());
    for v in list {
        let item = v
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(v)))?;
        if item.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
            delete.push(v.clone());
        } else {
            keep.push(v.clone());
        }
    }
    Ok((keep, delete))
}

/// Position of `value` in `list`: by merge key for maps, by value otherwise.
fn index_of(list: &[Value], value: &Value, merge_key: &str, kind: GoType) -> Option<usize> {
    let key = |v: &Value| -> Option<Value> {
        if kind == GoType::Map {
            v.as_object().and_then(|m| m.get(merge_key)).cloned()
        } else {
            Some(v.clone())
        }
    };
    let wanted = key(value);
    list.iter()
        .position(|v| go_scalar_eq(key(v).as_ref(), wanted.as_ref()))
}

fn normalize_slice_order(
    mut to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>> {
    let mut to_delete = Vec::new();
    if kind == GoType::Map {
        for v in to_sort.iter().chain(order.iter()) {
            let item = v
                .as_object()
                .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(v)))?;
            if !item.contains_key(merge_key) {
                return Err(no_merge_key(item, merge_key));
            }
        }
        let (keep, delete) = extract_to_delete_items(&to_sort)?;
        to_sort = keep;
        to_delete = delete;
    }
    gosort::slice_stable(&mut to_sort, |a, b| {
        match (
            index_of(order, a, merge_key, kind),
            index_of(order, b, merge_key, kind),
        ) {
            (Some(i), Some(j)) => i < j,
            _ => true,
        }
    });
    to_sort.extend(to_delete);
    Ok(to_sort)
}

fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        &server_only,
        &patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// Interleaves server-only items into the patch items, keeping each side's order and placing a
/// server-only item before a patch item only when the live list had it first.
fn merge_sorted_slice(
    left: &[Value],
    right: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        if i >= left.len() {
            out.push(right[j].clone());
            j += 1;
        } else if j >= right.len() {
            out.push(left[i].clone());
            i += 1;
        } else {
            let li = index_of(server_order, &left[i], merge_key, kind);
            let ri = index_of(server_order, &right[j], merge_key, kind);
            if matches!((li, ri), (Some(a), Some(b)) if a < b) {
                out.push(left[i].clone());
                i += 1;
            } else {
                out.push(right[j].clone());
                j += 1;
            }
        }
    }
    out
}

/// `None` when the value is itself a directive and must not be kept.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_null_values);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}
