//! hap-operator: runs HapContainer workspaces (Jupyter, Spark and TensorFlow next to an S3 store) and
//! HapQuery SQL stacks (a Hive metastore, Trino and a dashboard over the same store).
//!
//! Each resource goes through one pipeline, resolve -> read -> build -> plan -> apply -> status (see
//! docs/architecture.md): `pipeline` is the neutral core every resource is built from, and
//! `hapcontainer` and `hapquery` are its two resources, side by side, importing from the core and
//! never from each other. `controller` wires any of them to the shared `watches`; `render` prints the
//! plan made against nothing observed; `app` is the process (leader election, signals, metrics).
#![forbid(unsafe_code)]

pub mod app;
pub mod connection;
pub mod controller;
pub mod endpoints;
pub mod freshness;
pub mod hapcontainer;
pub mod hapquery;
pub mod lease;
pub mod pipeline;
pub mod render;
pub mod shutdown;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod watches;

/// One CRD as a YAML document, as its file in deploy/crds/ holds it.
pub fn crd_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> anyhow::Result<String> {
    document(crd)
}

/// One object as a YAML document.
fn document<T: serde::Serialize>(obj: &T) -> anyhow::Result<String> {
    Ok(format!("---\n{}", serde_saphyr::to_string(obj)?))
}

/// The HapContainer CRD's file in deploy/crds/: the CRD, and the admission policies that confine
/// workspaces' Spark drivers with their bindings (they go wherever HapContainers go).
pub fn hapcontainer_crd_yaml() -> anyhow::Result<String> {
    use kube::CustomResourceExt;
    let mut out = crd_yaml(&hap_api::HapContainer::crd())?;
    for p in hapcontainer::admission::policies() {
        out += &document(&p)?;
    }
    for b in hapcontainer::admission::bindings() {
        out += &document(&b)?;
    }
    Ok(out)
}

/// Every CRD the operator serves, with the HapContainer's admission policy, as multi-document YAML
/// (what `hap-operator crd` prints).
pub fn crds_yaml() -> anyhow::Result<String> {
    use kube::CustomResourceExt;
    Ok(hapcontainer_crd_yaml()? + &crd_yaml(&hap_api::HapQuery::crd())?)
}
