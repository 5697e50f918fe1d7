//! The PersistentVolumeClaim `<name>-workspace` that holds the home directory (notebooks, and the
//! packages `pip install --user` puts there) across pod replacements, spec changes and upgrades. Kept
//! when the HapContainer is deleted unless the spec says otherwise: it then has no owner, and a
//! HapContainer made again under the same name finds it.

use std::collections::BTreeMap;

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};

use super::parts::meta;
use crate::hapcontainer::resolve::HomeClaim;

pub fn build(hc: &HapContainer, claim: &HomeClaim) -> PersistentVolumeClaim {
    let mut metadata = meta(hc, &claim.name);
    if claim.keep_on_delete {
        metadata.owner_references = None;
    }
    PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: claim.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    claim.size.clone(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}
