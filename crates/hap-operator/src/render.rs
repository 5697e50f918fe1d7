//! `hap-operator render`: the children of the HapContainers and HapQueries in a file, as YAML, with
//! no cluster. What it prints is what the operator would apply, except owner references (which need
//! the object's uid) and the values of generated Secrets (the Jupyter token, the database, Superset
//! and Redash passwords), which exist only in the cluster.

use std::time::Duration;

use anyhow::{Context, bail};
use hap_api::{HapContainer, HapQuery};
use jiff::Timestamp;
use kube::Resource;
use serde_json::Value;

use crate::build::{self, Children};
use crate::config::BuildConfig;
use crate::plan::{Action, Backoff, PodHistory};
use crate::reconcile::children;
use crate::resolve::resolve;

/// The children the operator would write into an empty namespace, in the order it applies them: the
/// plan against nothing observed, so render and reconcile cannot disagree on what there is.
fn children(hc: &HapContainer, cfg: &BuildConfig) -> anyhow::Result<Vec<Value>> {
    let resolved = resolve(hc, cfg);
    let desired = build::build(hc, &resolved, cfg);
    // With no pod observed, neither the time nor the back-off plays a part.
    let unused = Backoff {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };
    let plan = children::plan(
        &Children::default(),
        desired,
        None,
        true,
        PodHistory::default(),
        Timestamp::UNIX_EPOCH,
        unused,
    );
    let mut out = Vec::new();
    for step in plan.steps {
        match step.action {
            Action::Apply(obj) => out.push(serde_json::to_value(obj)?),
            Action::CreateOnce(secret, _) => out.push(serde_json::to_value(secret)?),
            Action::Keep | Action::Wait(_) | Action::Delete(_) | Action::Replace(_) => {}
        }
    }
    Ok(out)
}

/// A HapQuery's children in the order they are applied. Until HapQuery is reconciled they are not
/// planned: against nothing observed, a plan would apply every one of them anyway.
fn query_children(hq: &HapQuery) -> (Vec<Value>, Vec<String>) {
    let resolved = crate::query::resolve::resolve(hq);
    let problems = resolved.problems.clone();
    (
        crate::build::query::build(hq, &resolved).in_apply_order(),
        problems,
    )
}

/// Renders every HapContainer and HapQuery in `input` (multi-document YAML). Other documents are
/// skipped; problems the operator would report are returned as warnings.
pub fn render(input: &str, cfg: &BuildConfig) -> anyhow::Result<(String, Vec<String>)> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(input).context("reading the YAML")?;
    let api_version = HapContainer::api_version(&()).to_string();
    let mut out = String::new();
    let mut warnings = Vec::new();
    let mut found = 0;
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        if doc["apiVersion"] != Value::String(api_version.clone()) {
            continue;
        }
        let (children, kind, name, problems) = match doc["kind"].as_str() {
            Some("HapContainer") => {
                let mut hc: HapContainer =
                    serde_json::from_value(doc).context("reading a HapContainer")?;
                let name = hc
                    .metadata
                    .name
                    .clone()
                    .context("a HapContainer has no metadata.name")?;
                if hc.metadata.namespace.is_none() {
                    hc.metadata.namespace = Some("default".into());
                }
                let problems = resolve(&hc, cfg).problems;
                (children(&hc, cfg)?, "HapContainer", name, problems)
            }
            Some("HapQuery") => {
                let mut hq: HapQuery = serde_json::from_value(doc).context("reading a HapQuery")?;
                let name = hq
                    .metadata
                    .name
                    .clone()
                    .context("a HapQuery has no metadata.name")?;
                if hq.metadata.namespace.is_none() {
                    hq.metadata.namespace = Some("default".into());
                }
                let (children, problems) = query_children(&hq);
                (children, "HapQuery", name, problems)
            }
            _ => continue,
        };
        found += 1;
        for p in problems {
            warnings.push(format!("{kind} {name}: {p}"));
        }
        for child in children {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(&child).context("writing YAML")?);
        }
    }
    if found == 0 {
        bail!("no HapContainer ({api_version}) in the input, and no HapQuery");
    }
    Ok((out, warnings))
}
