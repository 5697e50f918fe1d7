//! hap-operator: runs HapContainer workspaces (Jupyter, Spark and TensorFlow next to an S3 store).
//!
//! Each resource goes through resolve -> read -> build -> plan -> apply -> status (see
//! docs/architecture.md). For HapContainer: `resolve`, `reconcile::references` (read), `build`,
//! `reconcile::children` (the typed set, read from the caches and planned), `apply`, and
//! `reconcile::status`. Shared by every resource: `kinds`, `plan`, `apply`, `backoff`, `events`,
//! `error`, `hash`, `drift`, `pods`. Only read, apply and the status write use the API.
#![forbid(unsafe_code)]

pub mod app;
pub mod apply;
pub mod backoff;
pub mod build;
pub mod config;
pub mod controller;
pub mod drift;
pub mod error;
pub mod events;
pub mod hash;
pub mod kinds;
pub mod metrics;
pub mod names;
pub mod plan;
pub mod pod_memory;
pub mod pods;
pub mod query;
pub mod readiness;
pub mod reconcile;
pub mod render;
pub mod resolve;
pub mod telemetry;
#[cfg(test)]
mod testing;

/// One CRD as a YAML document, as its file in deploy/crds/ holds it.
pub fn crd_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> anyhow::Result<String> {
    Ok(format!("---\n{}", serde_saphyr::to_string(crd)?))
}

/// Every CRD the operator serves, as multi-document YAML (what `hap-operator crd` prints).
pub fn crds_yaml() -> anyhow::Result<String> {
    let mut out = String::new();
    for crd in hap_api::crds() {
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}
