//! The pure half of reconciliation: what a HapContainer's children should look like. Nothing here talks
//! to the API; everything is unit-tested from YAML.

pub mod pod;
pub mod rbac;
pub mod service;
pub mod spark;
pub mod token;
pub mod volume;

use std::collections::BTreeMap;

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::BuildConfig;
use crate::names;

/// Every child a HapContainer should have. Optional ones are absent when the spec does not call for them.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    /// The generated Jupyter token's Secret (absent when the user supplies one).
    pub token_secret: Option<Secret>,
    pub spark_conf: ConfigMap,
    pub service: Service,
    pub volume: Option<PersistentVolumeClaim>,
    pub spark_service_account: Option<ServiceAccount>,
    pub spark_role: Option<Role>,
    pub spark_role_binding: Option<RoleBinding>,
    pub spark_driver_service: Option<Service>,
    /// Absent when the workspace is suspended (size 0).
    pub pod: Option<Pod>,
}

/// Metadata of a child: its name, the HapContainer's namespace, the common labels, and a controller
/// owner reference when the HapContainer has a uid (it has none when rendered from a file).
pub fn meta(hc: &HapContainer, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: hc.namespace(),
        labels: Some(names::labels(&hc.name_any())),
        owner_references: hc.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

pub fn with_labels(meta: &mut ObjectMeta, extra: BTreeMap<String, String>) {
    meta.labels.get_or_insert_with(BTreeMap::new).extend(extra);
}

/// The hash of an object's desired state, over its JSON.
pub fn hash_of<T: Serialize>(obj: &T) -> String {
    let json = serde_json::to_vec(obj).expect("built objects serialize");
    Sha256::digest(&json)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stamps an object with the hash of its content, so a later reconcile can tell it is unchanged.
pub fn hashed<T: Serialize + Resource>(mut obj: T) -> T {
    let hash = hash_of(&obj);
    obj.meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(names::SPEC_HASH.into(), hash);
    obj
}

/// The hash a live object carries, if any.
pub fn hash_on<T: Resource>(obj: &T) -> Option<&str> {
    obj.meta()
        .annotations
        .as_ref()?
        .get(names::SPEC_HASH)
        .map(String::as_str)
}

pub fn spark_conf(hc: &HapContainer, cfg: &BuildConfig) -> ConfigMap {
    ConfigMap {
        metadata: meta(hc, &names::spark_conf(&hc.name_any())),
        data: Some(BTreeMap::from([(
            "spark-defaults.conf".to_string(),
            spark::defaults_conf(hc, cfg),
        )])),
        ..Default::default()
    }
}

pub fn build(hc: &HapContainer, cfg: &BuildConfig) -> Desired {
    let generated_token = hc
        .spec
        .jupyter
        .as_ref()
        .and_then(|j| j.token_secret.as_ref())
        .is_none();
    let executors = hc.spec.spark.as_ref().is_some_and(|s| s.executors > 0);
    Desired {
        token_secret: generated_token.then(|| hashed(token::build(hc))),
        spark_conf: hashed(spark_conf(hc, cfg)),
        service: hashed(service::workspace(hc)),
        volume: hc
            .spec
            .volume
            .as_ref()
            .map(|v| hashed(volume::build(hc, v))),
        spark_service_account: executors.then(|| hashed(rbac::service_account(hc))),
        spark_role: executors.then(|| hashed(rbac::role(hc))),
        spark_role_binding: executors.then(|| hashed(rbac::role_binding(hc))),
        spark_driver_service: executors.then(|| hashed(service::spark_driver(hc))),
        pod: (hc.spec.size > 0).then(|| hashed(pod::build(hc, cfg))),
    }
}
