//! Behaviour tests of the public API, modelled on upstream's own cases and on what a real
//! apiserver returns.

mod apply;
mod smp;
mod update;

use crate::{ManagedFieldsEntry, Request};
use serde_json::Value;

pub(crate) const T0: &str = "2026-11-24T10:00:00Z";
pub(crate) const T1: &str = "2026-11-24T10:05:00Z";
pub(crate) const T2: &str = "2026-11-24T10:10:00Z";

pub(crate) fn req<'a>(manager: &'a str, api_version: &'a str, time: &'a str) -> Request<'a> {
    Request {
        manager,
        api_version,
        subresource: None,
        time,
    }
}

/// The `fieldsV1` of the single entry of `manager` with `operation`.
pub(crate) fn fields(entries: &[ManagedFieldsEntry], manager: &str, operation: &str) -> Value {
    let matching: Vec<&ManagedFieldsEntry> = entries
        .iter()
        .filter(|e| e.manager == manager && e.operation == operation)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one {operation} entry for {manager} in {entries:#?}"
    );
    matching[0].fields_v1.clone().unwrap_or(Value::Null)
}

pub(crate) fn managers(entries: &[ManagedFieldsEntry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| (e.manager.clone(), e.operation.clone()))
        .collect()
}

/// Objects, patches and managed fields come from clients: odd shapes must give errors or
/// harmless results, never a panic.
#[test]
fn hostile_inputs_do_not_panic() {
    use crate::{Schema, apply, record_update, strategic_merge};
    use serde_json::json;
    let odd = [
        json!(null),
        json!(5),
        json!("x"),
        json!([1, [2], {"a": null}]),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": 3, "spec": {"containers": "nope"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [null, 1, [], {"name": {"x": 1}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"finalizers": [{"a": 1}], "managedFields": [{"manager": 1}]}}),
    ];
    let garbage: Vec<ManagedFieldsEntry> = serde_json::from_value(json!([
        {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": 1}},
        {"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"k:[1]": {}, "v:": {}}}
    ]))
    .unwrap();
    let pod = &odd[6];
    let err = apply(
        Some(pod),
        pod,
        &garbage,
        &req("m", "v1", T0),
        false,
        &[],
        &Schema::untyped(),
    )
    .unwrap_err();
    assert!(
        err.message()
            .starts_with("failed to decode managed fields: "),
        "{err}"
    );
    assert_eq!(
        strategic_merge(pod, &odd[1], &Schema::untyped())
            .unwrap_err()
            .code(),
        400
    );
    for schema in [Schema::builtin("", "v1", "Pod"), Schema::untyped()] {
        for a in &odd {
            for b in &odd {
                let _ = strategic_merge(a, b, &schema);
                let _ = apply(
                    Some(a),
                    b,
                    &garbage,
                    &req("m", "v1", T0),
                    false,
                    &[&["status"]],
                    &schema,
                );
                let _ = apply(None, b, &[], &req("m", "v1", T0), true, &[], &schema);
                let _ = record_update(Some(a), b, &garbage, &req("m", "v1", T0), &schema);
            }
        }
    }
}
