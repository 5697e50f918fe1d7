//! JSON patch as the apiserver applies it (evanphx/json-patch v4), where that differs from RFC 6902 in
//! ways clients rely on: testing a missing member against `null` succeeds when its parent exists, which
//! is how kube-rs's finalizer helper asks "no finalizers yet". Other operations are RFC 6902's.

use json_patch::PatchOperation;
use serde_json::Value;

/// Applies `patch` to `doc` all or nothing; Err when an operation fails.
pub fn apply(doc: &mut Value, patch: &json_patch::Patch) -> Result<(), ()> {
    let mut work = doc.clone();
    for op in patch.iter() {
        match op {
            PatchOperation::Test(t) => test(&work, t.path.as_str(), &t.value)?,
            other => json_patch::patch(&mut work, std::slice::from_ref(other)).map_err(|_| ())?,
        }
    }
    *doc = work;
    Ok(())
}

fn test(doc: &Value, path: &str, expected: &Value) -> Result<(), ()> {
    match doc.pointer(path) {
        Some(v) if v == expected => Ok(()),
        Some(_) => Err(()),
        None => {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            let parent_exists = doc
                .pointer(parent)
                .is_some_and(|p| p.is_object() || p.is_array());
            if expected.is_null() && parent_exists {
                Ok(())
            } else {
                Err(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(ops: Value) -> json_patch::Patch {
        serde_json::from_value(ops).unwrap()
    }

    #[test]
    fn a_missing_member_tests_equal_to_null() {
        let mut doc = json!({"metadata": {"name": "x"}});
        let p = patch(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
        ]));
        apply(&mut doc, &p).unwrap();
        assert_eq!(doc["metadata"]["finalizers"], json!(["f"]));
        // But not when the parent is missing too, nor against another value.
        let orphan = patch(json!([{"op": "test", "path": "/spec/x", "value": null}]));
        assert!(apply(&mut doc, &orphan).is_err());
        let other = patch(json!([{"op": "test", "path": "/metadata/labels", "value": {}}]));
        assert!(apply(&mut doc, &other).is_err());
    }

    #[test]
    fn a_failed_operation_changes_nothing() {
        let mut doc = json!({"a": 1});
        let p = patch(
            json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 3}]),
        );
        assert!(apply(&mut doc, &p).is_err());
        assert_eq!(doc, json!({"a": 1}));
    }
}
