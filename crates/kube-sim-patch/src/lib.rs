//! Strategic merge patch, server-side apply and `metadata.managedFields` bookkeeping, done the
//! way kube-apiserver does them (k8s.io/apimachinery `strategicpatch` and `managedfields`,
//! sigs.k8s.io/structured-merge-diff).
//!
//! The crate is pure: callers pass objects as `serde_json::Value` and store what comes back.
//!
//! * [`strategic_merge`] — `application/strategic-merge-patch+json`.
//! * [`apply`] — `application/apply-patch+yaml` (server-side apply).
//! * [`record_update`] / [`record_update_ignoring`] — managed fields after create, update and
//!   the other patch types.
//! * [`Schema`] — how an object's lists and maps merge: built in for the kinds kube-sim
//!   serves, converted from a CRD's `openAPIV3Schema`, or untyped.
//!
//! Module map, in reading order for apply: `apply` (the steps, top to bottom), `updater`
//! (merge, prune and conflicts), `typed` (schema-guided walks over objects: validate, field
//! set, compare, merge, remove), [`fieldpath`] and [`fieldsv1`] (field sets and their wire
//! form), `managed` (entries and manager identifiers), `pipeline` (the steps updates and
//! applies share: strip, cap, timestamps). `update` is the same story for create/update/patch,
//! `smp` is strategic merge patch, `builtin` and `openapi` build schemas, `lastapplied` and
//! `scale` are the client-side-apply migration and the scale subresource.

#![forbid(unsafe_code)]

mod apply;
mod builtin;
mod error;
pub mod fieldpath;
pub mod fieldsv1;
mod gofmt;
mod gosort;
mod lastapplied;
mod managed;
mod openapi;
mod pipeline;
mod rfc3339;
mod scale;
mod schema;
mod smp;
mod typed;
mod update;
mod updater;
mod values;

pub use apply::apply;
pub use error::{ApplyError, Cause, Conflict, PatchError};
pub use managed::ManagedFieldsEntry;
pub use schema::Schema;
pub use smp::strategic_merge;
pub use update::{record_update, record_update_ignoring};

/// After an update through the `scale` subresource of a type whose replicas live at
/// `replicas_path` (`["spec", "replicas"]` for the built-in workloads, a CRD's
/// `specReplicasPath` for custom resources): the parent's new `managedFields`. `old` and `new`
/// are the parent objects before and after.
pub fn record_scale_update(
    old: Option<&serde_json::Value>,
    new: &serde_json::Value,
    managed: &[ManagedFieldsEntry],
    req: &Request,
    replicas_path: &[&str],
) -> Vec<ManagedFieldsEntry> {
    scale::record_scale_update(old, new, managed, req, replicas_path)
}

/// Who is writing, and how.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The field manager (`?fieldManager=`, or for non-apply requests the user-agent-derived
    /// default the apiserver picks). Empty becomes "unknown".
    pub manager: &'a str,
    /// The API version of the endpoint, e.g. "v1", "apps/v1", "hap.cloudian.com/v1alpha1".
    pub api_version: &'a str,
    /// `None`, `Some("status")` or `Some("scale")`.
    pub subresource: Option<&'a str>,
    /// RFC 3339 timestamp to record, e.g. "2026-11-24T10:00:00Z".
    pub time: &'a str,
}

#[cfg(test)]
mod tests;
