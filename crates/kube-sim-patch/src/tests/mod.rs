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
