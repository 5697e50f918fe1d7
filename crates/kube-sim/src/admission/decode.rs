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
    Ok(Decoded { object, unknown })
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
    fn nulls_are_not_unknown() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": null}, "data": {"a": "b"}});
        assert!(decode("", "ConfigMap", &cm).unwrap().unknown.is_empty());
    }
}
