//! `metadata.managedFields`: the wire entries and the in-memory view the field manager works on.
//!
//! Upstream keys managers by an *identifier*: the JSON of the entry without time and fields,
//! and without `apiVersion` for appliers. So there is one entry per (manager, "Update",
//! apiVersion, subresource) and one per (manager, "Apply", subresource); an applier's entry
//! records the version it last applied with.

use crate::fieldpath::Set;
use crate::fieldsv1;
use crate::gofmt::{self, Escaper};
use crate::rfc3339;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One entry of `metadata.managedFields`, serde-compatible with the Kubernetes JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedFieldsEntry {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub manager: String,
    /// `"Apply"` or `"Update"`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub operation: String,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    /// RFC 3339, UTC, whole seconds (as the apiserver writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Always `"FieldsV1"` for entries this crate writes.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub fields_type: String,
    #[serde(rename = "fieldsV1", default, skip_serializing_if = "Option::is_none")]
    pub fields_v1: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";

/// A manager's fields at the API version it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VersionedSet {
    pub set: Set,
    pub api_version: String,
    pub applied: bool,
}

/// Field ownership keyed by manager identifier, plus the time of each manager's last change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Managed {
    pub fields: BTreeMap<String, VersionedSet>,
    pub times: BTreeMap<String, String>,
}

/// The identifier of a manager (upstream `BuildManagerIdentifier`).
pub(crate) fn identifier(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = String::from("{");
    let mut field = |name: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        gofmt::write_json_string(&mut out, value, Escaper::Stdlib);
    };
    field("manager", manager);
    field("operation", operation);
    if operation != APPLY {
        field("apiVersion", api_version);
    }
    field("subresource", subresource);
    out.push('}');
    out
}

/// The parts of an identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ManagerInfo {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: String,
}

pub(crate) fn parse_identifier(id: &str) -> ManagerInfo {
    let parsed: serde_json::Map<String, Value> = serde_json::from_str(id).unwrap_or_default();
    let get = |k: &str| {
        parsed
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    ManagerInfo {
        manager: get("manager"),
        operation: get("operation"),
        api_version: get("apiVersion"),
        subresource: get("subresource"),
    }
}

impl Managed {
    /// Decodes wire entries (upstream `DecodeManagedFields`), with its validation messages.
    pub(crate) fn decode(entries: &[ManagedFieldsEntry]) -> Result<Managed, String> {
        let mut managed = Managed::default();
        for (i, e) in entries.iter().enumerate() {
            if e.operation != APPLY && e.operation != UPDATE {
                return Err("operation must be `Apply` or `Update`".into());
            }
            if e.api_version.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match e.fields_type.as_str() {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => {
                    return Err(format!(
                        "invalid fieldsType {} in managed fields entry {i}",
                        gofmt::quote(other)
                    ));
                }
            }
            let id = identifier(
                &e.manager,
                &e.operation,
                &e.api_version,
                e.subresource.as_deref().unwrap_or(""),
            );
            let set = match &e.fields_v1 {
                Some(f) => fieldsv1::decode(f).map_err(|err| {
                    format!("error decoding versioned set from {id}: error decoding set: {err}")
                })?,
                None => Set::new(),
            };
            managed.fields.insert(
                id.clone(),
                VersionedSet {
                    set,
                    api_version: e.api_version.clone(),
                    applied: e.operation == APPLY,
                },
            );
            match &e.time {
                Some(t) => managed.times.insert(id, rfc3339::normalize(t)),
                None => managed.times.remove(&id),
            };
        }
        Ok(managed)
    }

    /// Encodes to wire entries in the apiserver's order: appliers before updaters, then by time
    /// (whole seconds, missing = epoch), manager, apiVersion and subresource.
    pub(crate) fn encode(&self) -> Vec<ManagedFieldsEntry> {
        let mut out: Vec<ManagedFieldsEntry> = self
            .fields
            .iter()
            .map(|(id, vs)| {
                let info = parse_identifier(id);
                ManagedFieldsEntry {
                    manager: info.manager,
                    operation: if vs.applied {
                        APPLY.into()
                    } else {
                        info.operation
                    },
                    api_version: vs.api_version.clone(),
                    time: self.times.get(id).cloned(),
                    fields_type: "FieldsV1".into(),
                    fields_v1: Some(fieldsv1::encode(&vs.set)),
                    subresource: Some(info.subresource).filter(|s| !s.is_empty()),
                }
            })
            .collect();
        out.sort_by(|p, q| {
            let secs =
                |e: &ManagedFieldsEntry| e.time.as_deref().and_then(rfc3339::parse).unwrap_or(0);
            p.operation
                .cmp(&q.operation)
                .then_with(|| secs(p).cmp(&secs(q)))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| {
                    p.subresource
                        .as_deref()
                        .unwrap_or("")
                        .cmp(q.subresource.as_deref().unwrap_or(""))
                })
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_match_go_json_of_the_entry() {
        assert_eq!(
            identifier("kubectl", UPDATE, "apps/v1", ""),
            r#"{"manager":"kubectl","operation":"Update","apiVersion":"apps/v1"}"#
        );
        assert_eq!(
            identifier("kubelet", APPLY, "v1", "status"),
            r#"{"manager":"kubelet","operation":"Apply","subresource":"status"}"#
        );
    }

    #[test]
    fn entries_deserialize_from_apiserver_json_and_round_trip() {
        let wire = json!([
            {"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
             "time": "2026-11-24T10:00:05Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:status": {"f:phase": {}}}, "subresource": "status"},
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
             "time": "2026-11-24T10:00:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}
        ]);
        let entries: Vec<ManagedFieldsEntry> = serde_json::from_value(wire.clone()).unwrap();
        let managed = Managed::decode(&entries).unwrap();
        let encoded = managed.encode();
        // Apply sorts before Update regardless of input order.
        assert_eq!(
            serde_json::to_value(&encoded).unwrap(),
            json!([wire[1], wire[0]])
        );
    }

    #[test]
    fn invalid_entries_are_rejected_with_upstream_messages() {
        let bad = ManagedFieldsEntry {
            manager: "m".into(),
            operation: "Patch".into(),
            api_version: "v1".into(),
            fields_type: "FieldsV1".into(),
            ..Default::default()
        };
        assert_eq!(
            Managed::decode(&[bad]).unwrap_err(),
            "operation must be `Apply` or `Update`"
        );
        let untyped = ManagedFieldsEntry {
            manager: "m".into(),
            operation: "Update".into(),
            api_version: "v1".into(),
            ..Default::default()
        };
        assert_eq!(
            Managed::decode(&[untyped]).unwrap_err(),
            "missing fieldsType in managed fields entry 0"
        );
    }
}
