//! The spec-hash annotation: the plan stamps every child it writes with the hash of its content as
//! built, so a later plan can tell a live child built from the same desired state (not written again)
//! from one built from another (applied, or replaced where the kind is immutable: pods, Jobs).

use std::collections::BTreeMap;

use kube::Resource;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::SPEC_HASH;

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
        .insert(SPEC_HASH.into(), hash);
    obj
}

/// Whether a live object carries the hash of `desired` (as built, not yet stamped).
pub fn same_hash<L: Resource, T: Serialize>(live: &L, desired: &T) -> bool {
    hash_on(live) == Some(hash_of(desired).as_str())
}

/// The hash a live object carries, if any.
pub fn hash_on<T: Resource>(obj: &T) -> Option<&str> {
    obj.meta()
        .annotations
        .as_ref()?
        .get(SPEC_HASH)
        .map(String::as_str)
}
