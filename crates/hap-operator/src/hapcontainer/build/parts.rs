//! What every child of a HapContainer is made with: its metadata.

use std::collections::BTreeMap;

use hap_api::HapContainer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::hapcontainer::names;
use crate::pipeline::objects;

/// Metadata of a child: its name, the HapContainer's namespace, the workspace's labels, and a
/// controller owner reference when the HapContainer has a uid (none when rendered from a file).
pub fn meta(hc: &HapContainer, name: &str) -> ObjectMeta {
    objects::meta(hc, name, names::labels(&hc.name_any()))
}

pub fn with_labels(meta: &mut ObjectMeta, extra: BTreeMap<String, String>) {
    meta.labels.get_or_insert_with(BTreeMap::new).extend(extra);
}
