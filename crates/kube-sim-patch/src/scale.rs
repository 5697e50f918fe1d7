//! Updates through the `scale` subresource (upstream `ScaleHandler`): the parent's ownership of
//! the replicas field is translated to a Scale object's `.spec.replicas`, the update is
//! recorded on the Scale, and the result translated back onto the parent's entries.
//!
//! Entries created this way carry no timestamp: upstream copies times from the parent's
//! entries, and a new scale manager has none there.

use crate::Request;
use crate::fieldpath::{Path, Set};
use crate::managed::{Managed, ManagedFieldsEntry, VersionedSet};
use crate::pipeline;
use crate::schema::Schema;
use serde_json::{Value, json};

const SCALE_API_VERSION: &str = "autoscaling/v1";

pub(crate) fn record_scale_update(
    old: Option<&Value>,
    new: &Value,
    managed: &[ManagedFieldsEntry],
    req: &Request,
    replicas_path: &[&str],
) -> Vec<ManagedFieldsEntry> {
    let Ok(parent) = Managed::decode(managed) else {
        return managed.to_vec();
    };
    let replicas = Path::fields(replicas_path);
    let scale_replicas = Path::fields(&["spec", "replicas"]);

    // The parent's replicas owners, as owners of the Scale's replicas.
    let mut scale = Managed::default();
    for (id, vs) in &parent.fields {
        if vs.set.has(&replicas.0) {
            scale.fields.insert(
                id.clone(),
                VersionedSet {
                    set: Set::from_paths(std::slice::from_ref(&scale_replicas)),
                    api_version: SCALE_API_VERSION.into(),
                    applied: vs.applied,
                },
            );
            if let Some(t) = parent.times.get(id) {
                scale.times.insert(id.clone(), t.clone());
            }
        }
    }
    // A Scale whose replicas nobody owns is not tracked (it exists, so no tracking starts).
    if !scale.fields.is_empty() {
        let as_scale = |obj: Option<&Value>| {
            let r = obj.and_then(|o| replicas_path.iter().try_fold(o, |v, k| v.get(*k)));
            match r {
                Some(r) if r != &json!(0) => json!({"spec": {"replicas": r}}),
                _ => json!({"spec": {}}),
            }
        };
        let scale_req = Request {
            manager: req.manager,
            api_version: SCALE_API_VERSION,
            subresource: Some("scale"),
            time: req.time,
        };
        let schema = Schema::builtin("autoscaling", "v1", "Scale");
        let mut updated = scale.clone();
        if pipeline::record_update_layers(
            &schema,
            &Set::new(),
            &as_scale(old),
            &as_scale(Some(new)),
            &mut updated,
            req.manager,
            &scale_req,
        )
        .is_ok()
        {
            scale = updated;
        }
    }

    // Back onto the parent: owners that lost the Scale's replicas lose the parent's.
    let mut result = Managed::default();
    for (id, vs) in &parent.fields {
        let keep_as_is = !vs.set.has(&replicas.0) || scale.fields.remove(id).is_some();
        let set = if keep_as_is {
            vs.set.clone()
        } else {
            vs.set
                .difference(&Set::from_paths(std::slice::from_ref(&replicas)))
        };
        if set.is_empty() {
            continue;
        }
        result
            .fields
            .insert(id.clone(), VersionedSet { set, ..vs.clone() });
        if let Some(t) = parent.times.get(id) {
            result.times.insert(id.clone(), t.clone());
        }
    }
    for (id, vs) in scale.fields {
        if vs.set.has(&scale_replicas.0) {
            result.fields.insert(
                id.clone(),
                VersionedSet {
                    set: Set::from_paths(std::slice::from_ref(&replicas)),
                    api_version: req.api_version.to_string(),
                    applied: vs.applied,
                },
            );
            if let Some(t) = parent.times.get(&id) {
                result.times.insert(id, t.clone());
            }
        }
    }
    result.encode()
}
