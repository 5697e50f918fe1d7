//! The spec-hash annotation: a child whose hash matches was built from the same desired state and is
//! not written again; a pod whose hash differs is replaced (pods are immutable).

use std::collections::BTreeMap;

use kube::Resource;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::names;

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
