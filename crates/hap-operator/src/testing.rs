//! Shared by the unit tests: a HapContainer or a HapQuery from a spec written as YAML.

use hap_api::HapContainer;

/// HapContainer `w` in namespace `ns`, with uid `u-1` and the given spec (a YAML mapping).
pub fn hapcontainer(spec: &str) -> HapContainer {
    serde_saphyr::from_str(&format!(
        "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {{name: w, namespace: ns, uid: u-1}}\nspec: {spec}\n"
    ))
    .expect("a HapContainer")
}

/// HapQuery `q` in namespace `ns`, with uid `u-2` and the given spec (a YAML mapping).
pub fn hapquery(spec: &str) -> hap_api::HapQuery {
    serde_saphyr::from_str(&format!(
        "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapQuery\nmetadata: {{name: q, namespace: ns, uid: u-2}}\nspec: {spec}\n"
    ))
    .expect("a HapQuery")
}

/// A built child as the API holds it once the operator applied it: stamped with the hash of its
/// content (as the plan stamps what it writes), with `status` as its status.
pub fn applied<T>(obj: &T, status: serde_json::Value) -> std::sync::Arc<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + kube::Resource + Clone,
{
    let mut v = serde_json::to_value(crate::pipeline::hash::hashed(obj.clone())).unwrap();
    v["status"] = status;
    std::sync::Arc::new(serde_json::from_value(v).unwrap())
}

/// A HapQuery resolved within the default limits.
pub fn resolve_hapquery(hq: &hap_api::HapQuery) -> crate::hapquery::resolve::Resolved {
    crate::hapquery::resolve::resolve(hq, &Default::default())
}
