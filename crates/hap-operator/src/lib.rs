//! hap-operator: runs HapContainer workspaces (Jupyter, Spark and TensorFlow next to an S3 store).
//!
//! The pipeline is read -> validate -> build -> apply -> report status. `build` is pure; only
//! `reconcile::references` (read), `reconcile::children` (apply) and the status write use the API.
#![forbid(unsafe_code)]

pub mod app;
pub mod build;
pub mod config;
pub mod controller;
pub mod metrics;
pub mod names;
pub mod reconcile;
pub mod render;
pub mod telemetry;

/// Every CRD the operator serves, as multi-document YAML (what `hap-operator crd` prints).
pub fn crds_yaml() -> anyhow::Result<String> {
    let mut out = String::new();
    for crd in hap_api::crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
