//! Decoding built-in objects as the apiserver does: into the typed API structs and back. That drops
//! unknown fields (which `fieldValidation=Strict` turns into an error) and rejects wrongly typed values.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::{apps, batch, coordination, core, discovery, events, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;

/// The decoded object and the paths of the fields it dropped.
pub struct Decoded {
    pub object: Value,
    pub unknown: Vec<String>,
}

fn roundtrip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Fields of `input` that `decoded` lacks, as `spec.containers[0].foo`.
fn unknown_fields(input: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(i), Value::Object(d)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match d.get(k) {
                    None if !v.is_null() => out.push(p),
                    None => {}
                    Some(dv) => unknown_fields(v, dv, &p, out),
                }
            }
        }
        (Value::Array(i), Value::Array(d)) => {
            for (n, (iv, dv)) in i.iter().zip(d).enumerate() {
                unknown_fields(iv, dv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Decodes a built-in object of `group`/`kind`. Kinds without a typed form pass through unchanged.
pub fn decode(group: &str, kind: &str, v: &Value) -> Result<Decoded, String> {
    let object = match (group, kind) {
        ("", "Pod") => roundtrip::<core::v1::Pod>(v),
        ("", "Service") => roundtrip::<core::v1::Service>(v),
        ("", "ConfigMap") => roundtrip::<core::v1::ConfigMap>(v),
        ("", "Secret") => roundtrip::<core::v1::Secret>(v),
        ("", "ServiceAccount") => roundtrip::<core::v1::ServiceAccount>(v),
        ("", "PersistentVolumeClaim") => roundtrip::<core::v1::PersistentVolumeClaim>(v),
        ("", "Endpoints") => roundtrip::<core::v1::Endpoints>(v),
        ("", "Event") => roundtrip::<core::v1::Event>(v),
        ("", "Namespace") => roundtrip::<core::v1::Namespace>(v),
        ("", "Node") => roundtrip::<core::v1::Node>(v),
        ("apps", "Deployment") => roundtrip::<apps::v1::Deployment>(v),
        ("apps", "ReplicaSet") => roundtrip::<apps::v1::ReplicaSet>(v),
        ("apps", "StatefulSet") => roundtrip::<apps::v1::StatefulSet>(v),
        ("batch", "Job") => roundtrip::<batch::v1::Job>(v),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<rbac::v1::Role>(v),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<rbac::v1::RoleBinding>(v),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<rbac::v1::ClusterRole>(v),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip::<rbac::v1::ClusterRoleBinding>(v)
        }
        ("coordination.k8s.io", "Lease") => roundtrip::<coordination::v1::Lease>(v),
        ("events.k8s.io", "Event") => roundtrip::<events::v1::Event>(v),
        ("discovery.k8s.io", "EndpointSlice") => roundtrip::<discovery::v1::EndpointSlice>(v),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            roundtrip::<apiextensions::v1::CustomResourceDefinition>(v)
        }
        _ => Ok(v.clone()),
    }?;
    let mut unknown = Vec::new();
    unknown_fields(v, &object, "", &mut unknown);
    let mut object = object;
    canonical_quantities(group, kind, &mut object)?;
    Ok(Decoded { object, unknown })
}

/// The field at `path` below `v`, if present (never inserting, as indexing would).
fn field<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(*k))
}

fn each<'a>(v: &'a mut Value, path: &[&str]) -> impl Iterator<Item = &'a mut Value> {
    field(v, path)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn quantity(v: &mut Value) -> Result<(), String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Ok(()),
    };
    *v = Value::String(crate::quantity::canonical(&text).map_err(str::to_string)?);
    Ok(())
}

fn quantity_map(v: Option<&mut Value>) -> Result<(), String> {
    for q in v
        .and_then(Value::as_object_mut)
        .into_iter()
        .flatten()
        .map(|(_, q)| q)
    {
        quantity(q)?;
    }
    Ok(())
}

fn requirements(v: &mut Value, path: &[&str]) -> Result<(), String> {
    if let Some(r) = field(v, path) {
        quantity_map(r.get_mut("requests"))?;
        quantity_map(r.get_mut("limits"))?;
    }
    Ok(())
}

fn pod_spec(spec: &mut Value) -> Result<(), String> {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each(spec, &[list]) {
            requirements(c, &["resources"])?;
        }
    }
    requirements(spec, &["resources"])?;
    quantity_map(spec.get_mut("overhead"))?;
    for vol in each(spec, &["volumes"]) {
        if let Some(limit) = field(vol, &["emptyDir", "sizeLimit"]) {
            quantity(limit)?;
        }
        requirements(
            vol,
            &["ephemeral", "volumeClaimTemplate", "spec", "resources"],
        )?;
    }
    Ok(())
}

/// Quantities are stored in canonical form (`1000m` becomes `1`), because the apiserver decodes them
/// into resource.Quantity and encodes them back.
fn canonical_quantities(group: &str, kind: &str, obj: &mut Value) -> Result<(), String> {
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec)?;
            }
            for list in ["containerStatuses", "initContainerStatuses"] {
                for c in each(obj, &["status", list]) {
                    quantity_map(c.get_mut("allocatedResources"))?;
                    requirements(c, &["resources"])?;
                }
            }
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") | ("batch", "Job") => {
            if let Some(spec) = field(obj, &["spec", "template", "spec"]) {
                pod_spec(spec)?;
            }
            for claim in each(obj, &["spec", "volumeClaimTemplates"]) {
                requirements(claim, &["spec", "resources"])?;
            }
        }
        ("", "PersistentVolumeClaim") => {
            requirements(obj, &["spec", "resources"])?;
            quantity_map(field(obj, &["status", "capacity"]))?;
            quantity_map(field(obj, &["status", "allocatedResources"]))?;
        }
        ("", "Node") => {
            quantity_map(field(obj, &["status", "capacity"]))?;
            quantity_map(field(obj, &["status", "allocatable"]))?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_and_dropped() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "colour": "red"}]}
        });
        let d = decode("", "Pod", &pod).unwrap();
        assert_eq!(
            d.unknown,
            vec!["metadata.bogus", "spec.containers[0].colour"]
        );
        assert!(d.object["spec"]["containers"][0].get("colour").is_none());
        assert_eq!(d.object["spec"]["containers"][0]["image"], "i");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "nope"}});
        assert!(decode("", "Pod", &pod).is_err());
    }

    #[test]
    fn quantities_are_stored_canonical() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": {"cpu": 2}}}
        ], "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "0.5Gi"}}]}});
        let d = decode("", "Pod", &pod).unwrap().object;
        assert_eq!(
            d["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2"}})
        );
        assert_eq!(d["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "512Mi");
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "lots"}}}]}});
        assert_eq!(
            decode("", "Pod", &bad).err().as_deref(),
            Some(crate::quantity::SYNTAX_ERROR)
        );
    }

    #[test]
    fn nulls_are_not_unknown() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": null}, "data": {"a": "b"}});
        assert!(decode("", "ConfigMap", &cm).unwrap().unknown.is_empty());
    }
}
