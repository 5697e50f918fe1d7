//! The PersistentVolumeClaim `<name>-workspace` that keeps notebooks across pod replacements.

use std::collections::BTreeMap;

use hap_api::HapContainer;
use hap_api::hapcontainer::VolumeSpec;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use kube::ResourceExt;

use super::parts::meta;
use crate::hapcontainer::names;

pub fn build(hc: &HapContainer, v: &VolumeSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(hc, &names::volume(&hc.name_any())),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: v.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), v.size.clone())])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}
