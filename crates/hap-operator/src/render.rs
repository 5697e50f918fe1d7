//! `hap-operator render`: the children of the HapContainers in a file, as YAML, with no cluster.
//! What it prints is what the operator would apply, except owner references (which need the object's
//! uid) and the generated Jupyter token, which exists only in the cluster.

use anyhow::{Context, bail};
use hap_api::HapContainer;
use kube::Resource;
use serde_json::Value;

use crate::build;
use crate::config::BuildConfig;

/// The desired children in the order they are applied.
fn children(desired: build::Desired) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut push = |v: serde_json::Result<Value>| -> anyhow::Result<()> {
        out.push(v?);
        Ok(())
    };
    if let Some(s) = desired.token_secret {
        push(serde_json::to_value(s))?;
    }
    if let Some(sa) = desired.spark_service_account {
        push(serde_json::to_value(sa))?;
    }
    if let Some(role) = desired.spark_role {
        push(serde_json::to_value(role))?;
    }
    if let Some(binding) = desired.spark_role_binding {
        push(serde_json::to_value(binding))?;
    }
    push(serde_json::to_value(desired.spark_conf))?;
    if let Some(pvc) = desired.volume {
        push(serde_json::to_value(pvc))?;
    }
    push(serde_json::to_value(desired.service))?;
    if let Some(svc) = desired.spark_driver_service {
        push(serde_json::to_value(svc))?;
    }
    if let Some(pod) = desired.pod {
        push(serde_json::to_value(pod))?;
    }
    Ok(out)
}

/// Renders every HapContainer in `input` (multi-document YAML). Other documents are skipped; problems
/// the operator would report are returned as warnings.
pub fn render(input: &str, cfg: &BuildConfig) -> anyhow::Result<(String, Vec<String>)> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(input).context("reading the YAML")?;
    let api_version = HapContainer::api_version(&()).to_string();
    let mut out = String::new();
    let mut warnings = Vec::new();
    let mut found = 0;
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        if doc["kind"] != "HapContainer" || doc["apiVersion"] != Value::String(api_version.clone())
        {
            continue;
        }
        found += 1;
        let mut hc: HapContainer = serde_json::from_value(doc).context("reading a HapContainer")?;
        let name = hc
            .metadata
            .name
            .clone()
            .context("a HapContainer has no metadata.name")?;
        if hc.metadata.namespace.is_none() {
            hc.metadata.namespace = Some("default".into());
        }
        for p in hap_api::validation::problems(&hc.spec) {
            warnings.push(format!("HapContainer {name}: {p}"));
        }
        for child in children(build::build(&hc, cfg))? {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(&child).context("writing YAML")?);
        }
    }
    if found == 0 {
        bail!("no HapContainer ({api_version}) in the input");
    }
    Ok((out, warnings))
}
