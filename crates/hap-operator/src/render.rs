//! `hap-operator render`: the children of the HapContainers and HapQueries in a file, as YAML, with
//! no cluster. What it prints is the plan each resource makes against nothing observed, so render and
//! reconcile cannot disagree on what there is or in which order: what the operator would write into
//! an empty namespace, except owner references (which need the object's uid) and the values of
//! generated Secrets (the Jupyter token, the database, Superset and Redash passwords), which are drawn
//! only when the operator creates them.

use anyhow::{Context, bail};
use hap_api::profile::{self, Catalog};
use hap_api::{HapContainer, HapQuery};
use jiff::Timestamp;
use kube::Resource;
use serde_json::Value;

use crate::pipeline::config::{BuildConfig, RunConfig};
use crate::pipeline::kinds::Child;
use crate::pipeline::plan::Action;
use crate::pipeline::{Planning, Reconciled};

/// The children the operator would write for `obj` into an empty namespace, in the order it applies
/// them (those it holds until another is done, in their place).
pub fn children<R: Reconciled>(obj: &R, cfg: &BuildConfig, profiles: &Catalog) -> Vec<Value> {
    let resolved = obj.resolve(cfg, profiles);
    let desired = obj.build(&resolved, cfg);
    let observed = R::Observed::default();
    let mut memory = obj.memory();
    let config = RunConfig {
        build: cfg.clone(),
        ..RunConfig::default()
    };
    // With nothing observed, neither the time nor the back-off plays a part.
    let plan = obj.plan(Planning {
        resolved: &resolved,
        observed: &observed,
        desired: &desired,
        runnable: true,
        memory: &mut memory,
        now: Timestamp::UNIX_EPOCH,
        config: &config,
    });
    plan.steps
        .into_iter()
        .filter_map(|step| match step.action {
            Action::Apply(obj) | Action::Create(obj) | Action::Later(obj) => Some(obj),
            Action::CreateOnce(secret, _)
            | Action::Issue(secret, _)
            | Action::Copy { secret, .. } => Some(secret.into_object()),
            Action::Keep
            | Action::Wait(_)
            | Action::Foreign(_)
            | Action::Delete(_)
            | Action::Replace(_) => None,
        })
        .map(|obj| serde_json::to_value(obj).expect("built objects serialize"))
        .collect()
}

/// One document of the input as a resource of kind R, in namespace `default` unless it names one,
/// with its children and the problems the operator would report.
fn render_one<R: Reconciled>(
    doc: Value,
    cfg: &BuildConfig,
    profiles: &Catalog,
) -> anyhow::Result<(String, Vec<Value>, Vec<String>)> {
    let kind = R::kind(&());
    let mut obj: R = serde_json::from_value(doc).with_context(|| format!("reading a {kind}"))?;
    let name = obj
        .meta()
        .name
        .clone()
        .with_context(|| format!("a {kind} has no metadata.name"))?;
    obj.meta_mut()
        .namespace
        .get_or_insert_with(|| "default".into());
    let problems = R::problems(&obj.resolve(cfg, profiles))
        .into_iter()
        .map(|p| format!("{kind} {name}: {}", p.message))
        .collect();
    Ok((name, children(&obj, cfg, profiles), problems))
}

/// The workspace profiles of the input: its ConfigMap `hap-profiles`, as the operator reads it from
/// its namespace.
fn profiles_in(docs: &[Value]) -> Catalog {
    docs.iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == profile::CONFIG_MAP)
        .map_or(Catalog::Absent, |d| {
            Catalog::parse(d["data"][profile::KEY].as_str().unwrap_or_default())
        })
}

/// Renders every HapContainer and HapQuery in `input` (multi-document YAML). Other documents are
/// skipped; problems the operator would report are returned as warnings.
pub fn render(input: &str, cfg: &BuildConfig) -> anyhow::Result<(String, Vec<String>)> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(input).context("reading the YAML")?;
    let api_version = HapContainer::api_version(&()).to_string();
    let mut out = String::new();
    let mut warnings = Vec::new();
    let mut found = 0;
    let profiles = profiles_in(&docs);
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        if doc["apiVersion"] != Value::String(api_version.clone()) {
            continue;
        }
        let (_, children, problems) = match doc["kind"].as_str() {
            Some("HapContainer") => render_one::<HapContainer>(doc, cfg, &profiles)?,
            Some("HapQuery") => render_one::<HapQuery>(doc, cfg, &profiles)?,
            _ => continue,
        };
        found += 1;
        warnings.extend(problems);
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
