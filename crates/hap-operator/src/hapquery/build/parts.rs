//! What every child of a HapQuery is made with: its metadata and labels, the header of the files it
//! writes, ConfigMaps of files, and the shape of generated Secrets.

use std::collections::BTreeMap;

use hap_api::HapQuery;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::ResourceExt;

use crate::hapquery::names::APP;
use crate::pipeline::MANAGER;
use crate::pipeline::hash::hash_of;
use crate::pipeline::objects;

/// The annotation on a pod template holding the hash of the configuration files its pods mount: a
/// changed file changes the template, so the Deployment rolls its pods.
pub const CONFIG_HASH: &str = "hap.cloudian.com/config-hash";

/// What a component's pods are selected by.
pub fn selector(hq: &HapQuery, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP.to_string()),
        ("app.kubernetes.io/instance".to_string(), hq.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
    ])
}

fn labels(hq: &HapQuery, component: &str) -> BTreeMap<String, String> {
    let mut l = selector(hq, component);
    l.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    l
}

/// Metadata of a child: its name, the HapQuery's namespace, the common labels, and a controller owner
/// reference when the HapQuery has a uid (it has none when rendered from a file).
pub fn meta(hq: &HapQuery, name: &str, component: &str) -> ObjectMeta {
    objects::meta(hq, name, labels(hq, component))
}

/// A pod template's metadata: the component's labels, and the hash of the files it mounts.
pub fn template_meta(hq: &HapQuery, component: &str, config: &[&ConfigMap]) -> ObjectMeta {
    let data: Vec<_> = config.iter().map(|c| &c.data).collect();
    ObjectMeta {
        labels: Some(labels(hq, component)),
        annotations: (!config.is_empty())
            .then(|| BTreeMap::from([(CONFIG_HASH.to_string(), hash_of(&data))])),
        ..Default::default()
    }
}

pub fn label_selector(hq: &HapQuery, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector(hq, component)),
        ..Default::default()
    }
}

/// The header every generated file starts with, in the file's comment syntax.
pub fn header(hq: &HapQuery, comment: &str) -> String {
    format!(
        "{comment} Written by hap-operator for HapQuery {}/{}; edits are overwritten.\n",
        hq.namespace().unwrap_or_default(),
        hq.name_any()
    )
}

pub fn config_map(
    hq: &HapQuery,
    name: &str,
    component: &str,
    files: &[(&str, String)],
) -> ConfigMap {
    ConfigMap {
        metadata: meta(hq, name, component),
        data: Some(
            files
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The shape of a Secret the operator generates: no data. Its keys get random values when it is
/// first created (at apply time, never here), and it is never rewritten.
pub fn generated_secret(hq: &HapQuery, name: &str, component: &str) -> Secret {
    Secret {
        metadata: meta(hq, name, component),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}
