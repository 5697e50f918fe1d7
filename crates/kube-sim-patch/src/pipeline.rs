//! The steps the apiserver's field manager wraps around every update and apply
//! (k8s.io/apimachinery `managedfields/internal`): stripping fields nobody may own, recording
//! update managers under their own name with a fresh timestamp, capping the number of update
//! entries, and the bookkeeping around the object itself.

use crate::Request;
use crate::fieldpath::{Path, Set};
use crate::managed::{self, Managed, ManagedFieldsEntry, VersionedSet};
use crate::rfc3339;
use crate::schema::{Schema, Shape, TypeRef, UNTYPED_ATOMIC, UNTYPED_DEDUCED};
use crate::typed;
use crate::updater::Updater;
use serde_json::Value;

/// Fields that are never owned (upstream `stripmeta.go`).
fn strip_set() -> Set {
    let mut paths = vec![
        Path::fields(&["apiVersion"]),
        Path::fields(&["kind"]),
        Path::fields(&["metadata"]),
    ];
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        paths.push(Path::fields(&["metadata", f]));
    }
    Set::from_paths(&paths)
}

/// Removes never-owned fields from `id`'s set, dropping the entry if nothing remains.
pub(crate) fn strip(managed: &mut Managed, id: &str) {
    if let Some(vs) = managed.fields.get_mut(id) {
        vs.set = vs.set.difference(&strip_set());
        if vs.set.is_empty() {
            managed.fields.remove(id);
        }
    }
}

/// Upstream keeps at most this many update entries; older ones merge into "ancient-changes".
pub(crate) const MAX_UPDATE_MANAGERS: usize = 10;

/// Merges the oldest update entries into one "ancient-changes" entry per API version until at
/// most [`MAX_UPDATE_MANAGERS`] update entries remain (upstream `capmanagers.go`).
pub(crate) fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    let secs = |id: &String| {
        managed
            .times
            .get(id)
            .and_then(|t| rfc3339::parse(t))
            .unwrap_or(0)
    };
    updaters.sort_by(|a, b| secs(a).cmp(&secs(b)).then_with(|| a.cmp(b)));
    let mut first_per_version: std::collections::BTreeMap<String, String> = Default::default();
    let mut remaining = updaters.len();
    for id in updaters {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(vs) = managed.fields.get(&id).cloned() else {
            continue;
        };
        let time = managed.times.get(&id).cloned();
        let bucket = managed::identifier("ancient-changes", managed::UPDATE, &vs.api_version, "");
        match first_per_version.get(&vs.api_version) {
            Some(first) => {
                if !managed.fields.contains_key(&bucket)
                    && let Some(first_set) = managed.fields.remove(first)
                {
                    managed.fields.insert(bucket.clone(), first_set);
                }
                let merged = managed
                    .fields
                    .get(&bucket)
                    .map(|b| b.set.union(&vs.set))
                    .unwrap_or_else(|| vs.set.clone());
                managed.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: merged,
                        api_version: vs.api_version.clone(),
                        applied: vs.applied,
                    },
                );
                managed.fields.remove(&id);
                remaining -= 1;
                // The bucket takes the time of the newest update merged into it.
                match time {
                    Some(t) => managed.times.insert(bucket, t),
                    None => managed.times.remove(&bucket),
                };
            }
            None => {
                first_per_version.insert(vs.api_version.clone(), id);
            }
        }
    }
}

/// The paths an endpoint resets, as a set whose members exclude whole subtrees.
pub(crate) fn ignored_set(ignore: &[&[&str]]) -> Set {
    let paths: Vec<Path> = ignore.iter().map(|p| Path::fields(p)).collect();
    Set::from_paths(&paths)
}

/// Fallible steps report failures as text; the callers decide what the apiserver does with it.
pub(crate) type StepResult<T> = Result<T, String>;

/// `namespace/name; group/version, Kind=Kind` as upstream's error messages print an object.
pub(crate) fn object_gvknn(obj: &Value) -> String {
    let meta = obj.get("metadata");
    let field = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!(
        "{}/{}; {}",
        field("namespace"),
        field("name"),
        gvk_string(obj)
    )
}

/// `schema.GroupVersionKind.String()` of an object's apiVersion and kind.
pub(crate) fn gvk_string(obj: &Value) -> String {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    match split_api_version(api_version) {
        Some((group, version)) => format!("{group}/{version}, Kind={kind}"),
        None => "/, Kind=".into(),
    }
}

/// `schema.ParseGroupVersion`: "v1" is the core group, more than one slash is an error.
pub(crate) fn split_api_version(api_version: &str) -> Option<(&str, &str)> {
    match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [""] => Some(("", "")),
        [version] => Some(("", version)),
        [group, version] => Some((group, version)),
        _ => None,
    }
}

/// The object as the field manager sees it: without `metadata.managedFields`.
pub(crate) fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

/// Records an update by `manager_name`: the layers upstream runs for create, update and
/// non-apply patch (cap managers, build the identifier, record as "current-operation" and merge
/// into the manager's entry with a new timestamp if it changed anything, strip, update).
pub(crate) fn record_update_layers(
    schema: &Schema,
    ignored: &Set,
    old: &Value,
    new: &Value,
    managed: &mut Managed,
    manager_name: &str,
    req: &Request,
) -> StepResult<()> {
    let name = if manager_name.is_empty() {
        "unknown"
    } else {
        manager_name
    };
    let id = managed::identifier(
        name,
        managed::UPDATE,
        req.api_version,
        req.subresource.unwrap_or(""),
    );
    for (what, obj) in [("new", new), ("live", old)] {
        let errs = typed::validate(schema, &schema.root, obj, true);
        if !errs.is_empty() {
            return Err(format!(
                "failed to convert {what} object ({}) to smd typed: {errs}",
                object_gvknn(obj)
            ));
        }
    }
    // The change is first attributed to a placeholder so the manager's own earlier entry is
    // treated like anyone else's, then folded into the manager's entry.
    const CURRENT: &str = "current-operation";
    let updater = Updater {
        schema,
        ignored: ignored.clone(),
    };
    updater.update_ownership(old, new, req.api_version, &mut managed.fields, CURRENT);
    strip(managed, CURRENT);
    if let Some(vs) = managed.fields.remove(CURRENT) {
        let set = match managed.fields.get(&id) {
            Some(previous) => vs.set.union(&previous.set),
            None => vs.set,
        };
        managed.fields.insert(
            id.clone(),
            VersionedSet {
                set,
                api_version: vs.api_version,
                applied: vs.applied,
            },
        );
        managed.times.insert(id, rfc3339::normalize(req.time));
    }
    cap_update_managers(managed);
    Ok(())
}

/// `managedFields: []` (or a single empty entry) asks the apiserver to forget all ownership.
pub(crate) fn is_reset_request(obj: &Value) -> bool {
    match obj.get("metadata").and_then(|m| m.get("managedFields")) {
        Some(Value::Array(entries)) => match entries.as_slice() {
            [] => true,
            [only] => only.as_object().is_some_and(|o| o.is_empty()),
            _ => false,
        },
        _ => false,
    }
}

/// The entries a client sent in `metadata.managedFields`, if any decode.
pub(crate) fn requested_managed_fields(obj: &Value) -> Option<Vec<ManagedFieldsEntry>> {
    let raw = obj.get("metadata")?.get("managedFields")?;
    serde_json::from_value(raw.clone()).ok()
}

/// Upstream stores objects with ownership but no other change without touching timestamps:
/// if the object and the entries (ignoring time) are unchanged, the old times are kept.
pub(crate) fn revert_noop_timestamps(
    old_obj: &Value,
    new_obj: &Value,
    old_entries: &[ManagedFieldsEntry],
    new_entries: &mut [ManagedFieldsEntry],
) {
    if old_entries.len() != new_entries.len() || new_entries.is_empty() {
        return;
    }
    let normalized = |e: &ManagedFieldsEntry| ManagedFieldsEntry {
        time: None,
        ..e.clone()
    };
    let times_changed = old_entries
        .iter()
        .zip(new_entries.iter())
        .any(|(o, n)| o.time.as_deref().map(rfc3339::normalize) != n.time);
    if !times_changed {
        return;
    }
    let same_entries = old_entries
        .iter()
        .zip(new_entries.iter())
        .all(|(o, n)| normalized(o) == normalized(n));
    if same_entries && without_managed_fields(old_obj) == without_managed_fields(new_obj) {
        for (o, n) in old_entries.iter().zip(new_entries.iter_mut()) {
            n.time = o.time.as_deref().map(rfc3339::normalize);
        }
    }
}

/// Sets each ignored path of `result` back to its value in `source` (or removes it), as the
/// endpoint's strategy does before storing.
pub(crate) fn reset_paths(result: &mut Value, source: &Value, ignore: &[&[&str]]) {
    for path in ignore {
        reset_path(result, source, path);
    }
}

fn reset_path(result: &mut Value, source: &Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let original = parents
        .iter()
        .try_fold(source, |v, k| v.get(*k))
        .and_then(|v| v.get(*last));
    let mut node = result;
    for key in parents {
        let Some(obj) = node.as_object_mut() else {
            return;
        };
        if original.is_none() && !obj.contains_key(*key) {
            return;
        }
        node = obj
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    match original {
        Some(v) => {
            obj.insert(last.to_string(), v.clone());
        }
        None => {
            obj.remove(*last);
        }
    }
}

/// Removes nulls the apiserver would not store: typed built-ins lose them when converted to Go
/// structs, CRD schemas prune non-nullable nulls; values of deduced (untyped) fields keep them.
pub(crate) fn drop_nulls(schema: &Schema, value: &mut Value) {
    if schema.drops_nulls {
        drop_nulls_at(schema, &schema.root, value);
    }
}

fn drop_nulls_at(schema: &Schema, tr: &TypeRef, value: &mut Value) {
    match (schema.shape(tr, Some(value)), value) {
        (Shape::Map(map), Value::Object(entries)) => {
            entries.retain(|key, v| {
                if !v.is_null() {
                    return true;
                }
                match map.find_field(key) {
                    Some(f) => f.nullable || is_untyped(&f.ty),
                    None => map.element.as_ref().is_none_or(is_untyped),
                }
            });
            for (key, v) in entries.iter_mut() {
                drop_nulls_at(schema, &map.child_type(key), v);
            }
        }
        (Shape::List(list), Value::Array(items)) => {
            for item in items {
                drop_nulls_at(schema, &list.element, item);
            }
        }
        _ => {}
    }
}

fn is_untyped(tr: &TypeRef) -> bool {
    matches!(tr, TypeRef::Named(n) if &**n == UNTYPED_DEDUCED || &**n == UNTYPED_ATOMIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update_entry(i: i64) -> (String, VersionedSet, String) {
        let id = managed::identifier(&format!("m{i:02}"), managed::UPDATE, "v1", "");
        let set = Set::from_paths(&[Path::fields(&["data", &format!("k{i}")])]);
        let time = rfc3339::format(1_700_000_000 + i);
        (
            id,
            VersionedSet {
                set,
                api_version: "v1".into(),
                applied: false,
            },
            time,
        )
    }

    #[test]
    fn more_than_ten_update_entries_fold_the_oldest_into_ancient_changes() {
        let mut managed = Managed::default();
        for i in 0..12 {
            let (id, vs, time) = update_entry(i);
            managed.fields.insert(id.clone(), vs);
            managed.times.insert(id, time);
        }
        cap_update_managers(&mut managed);
        assert_eq!(managed.fields.len(), 10);
        let bucket = managed::identifier("ancient-changes", managed::UPDATE, "v1", "");
        let ancient = &managed.fields[&bucket];
        // The three oldest (m00, m01, m02) are now one entry with the newest of their times.
        for k in ["k0", "k1", "k2"] {
            assert!(ancient.set.has(&Path::fields(&["data", k]).0));
        }
        assert_eq!(managed.times[&bucket], rfc3339::format(1_700_000_002));
        assert!(!managed.fields.keys().any(|id| id.contains("\"m01\"")));
    }

    #[test]
    fn strip_removes_identity_metadata_but_keeps_labels() {
        let mut managed = Managed::default();
        let id = "x".to_string();
        managed.fields.insert(
            id.clone(),
            VersionedSet {
                set: Set::from_paths(&[
                    Path::fields(&["metadata"]),
                    Path::fields(&["metadata", "name"]),
                    Path::fields(&["metadata", "labels", "app"]),
                    Path::fields(&["kind"]),
                ]),
                api_version: "v1".into(),
                applied: true,
            },
        );
        strip(&mut managed, &id);
        assert_eq!(
            managed.fields[&id].set,
            Set::from_paths(&[Path::fields(&["metadata", "labels", "app"])])
        );
    }

    #[test]
    fn reset_paths_restores_the_source_value() {
        let mut result = json!({"spec": {"a": 1}, "status": {"phase": "Changed"}});
        reset_paths(
            &mut result,
            &json!({"status": {"phase": "Running"}}),
            &[&["status"]],
        );
        assert_eq!(
            result,
            json!({"spec": {"a": 1}, "status": {"phase": "Running"}})
        );
        reset_paths(&mut result, &json!({}), &[&["status"]]);
        assert_eq!(result, json!({"spec": {"a": 1}}));
    }
}
