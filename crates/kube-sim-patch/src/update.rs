//! Managed fields after a create, update (PUT) or non-apply patch, as the apiserver's field
//! manager computes them:
//!
//! 1. start from the managed fields the client sent, if it sent usable ones (`[]` resets them),
//!    otherwise from the live object's; subresource requests always use the live ones;
//! 2. an existing object without managed fields stays untracked;
//! 3. the manager gains what changed, others lose it, removed fields are owned by nobody;
//! 4. any failure leaves the live managed fields as they were.

use crate::Request;
use crate::error::PatchError;
use crate::managed::{Managed, ManagedFieldsEntry};
use crate::pipeline;
use crate::scale;
use crate::schema::Schema;
use serde_json::Value;

/// After a create, update (PUT) or non-apply patch: the new `managedFields` for `new`.
///
/// Same as [`record_update_ignoring`] with no ignored paths.
pub fn record_update(
    old: Option<&Value>,
    new: &Value,
    managed: &[ManagedFieldsEntry],
    req: &Request,
    schema: &Schema,
) -> Result<Vec<ManagedFieldsEntry>, PatchError> {
    record_update_ignoring(old, new, managed, req, &[], schema)
}

/// [`record_update`] for an endpoint that resets some fields (e.g. `[["status"]]` on the main
/// resource of a kind with a status subresource): changes there are owned by nobody.
///
/// `old` is `None` on create. `managed` is the live object's `managedFields`. For a request to
/// the `scale` subresource pass the parent objects; the `.spec.replicas` ownership is mapped as
/// the apiserver maps it between the parent and its Scale.
pub fn record_update_ignoring(
    old: Option<&Value>,
    new: &Value,
    managed: &[ManagedFieldsEntry],
    req: &Request,
    ignore: &[&[&str]],
    schema: &Schema,
) -> Result<Vec<ManagedFieldsEntry>, PatchError> {
    if !new.is_object() {
        return Err(PatchError::BadRequest(
            "the object to record is not a JSON object".into(),
        ));
    }
    if req.subresource == Some("scale") {
        return Ok(scale::record_scale_update(
            old,
            new,
            managed,
            req,
            &["spec", "replicas"],
        ));
    }
    let Some(mut tracked) = starting_managed_fields(new, managed, req) else {
        return Ok(managed.to_vec());
    };
    // An object that exists but has no managed fields is not tracked until someone applies.
    let is_create = old.is_none_or(|o| {
        o.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    });
    if tracked.fields.is_empty() && !is_create {
        return Ok(vec![]);
    }
    let old_obj = match old {
        Some(o) => pipeline::without_managed_fields(o),
        None => schema.empty_object(),
    };
    let new_obj = pipeline::without_managed_fields(new);
    let ignored = pipeline::ignored_set(ignore);
    if pipeline::record_update_layers(
        schema,
        &ignored,
        &old_obj,
        &new_obj,
        &mut tracked,
        req.manager,
        req,
    )
    .is_err()
    {
        // The apiserver never fails a write over managed fields; it keeps the live ones.
        return Ok(managed.to_vec());
    }
    let mut entries = tracked.encode();
    if let Some(old) = old {
        pipeline::revert_noop_timestamps(old, new, managed, &mut entries);
    }
    Ok(entries)
}

/// Which managed fields an update starts from (upstream `decodeLiveOrNew`); `None` when even
/// the live ones cannot be decoded and the request must leave them untouched.
fn starting_managed_fields(
    new: &Value,
    live: &[ManagedFieldsEntry],
    req: &Request,
) -> Option<Managed> {
    let decode_live = || {
        Managed::decode(live)
            .ok()
            .or_else(|| Some(Managed::default()))
    };
    if req.subresource.is_some() {
        return decode_live();
    }
    if pipeline::is_reset_request(new) {
        return Some(Managed::default());
    }
    match pipeline::requested_managed_fields(new).map(|e| Managed::decode(&e)) {
        Some(Ok(sent)) if !sent.fields.is_empty() => Some(sent),
        _ => decode_live(),
    }
}
