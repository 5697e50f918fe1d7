//! Server-side apply, in the order the apiserver's field manager runs it:
//!
//! 1. reject configurations of another kind or version, or carrying `managedFields`;
//! 2. if nothing is tracked yet, attribute the live object's fields to "before-first-apply";
//! 3. merge the configuration into the live object, make the applier own exactly what it
//!    applied, prune what it applied before and dropped (unless someone else owns it), and
//!    take changed fields from other managers — refusing with a conflict unless forced;
//! 4. for "kubectl", force conflicts its last client-side apply explains, and refresh the
//!    last-applied annotation;
//! 5. do what the endpoint does before storing: reset ignored fields, drop nulls, keep
//!    timestamps when nothing really changed.

use crate::Request;
use crate::error::{ApplyError, conflicts_from_sets};
use crate::fieldpath::Set;
use crate::lastapplied;
use crate::managed::{self, Managed, ManagedFieldsEntry};
use crate::pipeline::{self, object_gvknn};
use crate::rfc3339;
use crate::schema::Schema;
use crate::typed;
use crate::updater::{ApplyFailure, Updater};
use serde_json::Value;

/// Server-side apply (Content-Type `application/apply-patch+yaml`).
///
/// `live` is `None` when the object does not exist yet. `ignore` lists the field paths the
/// endpoint resets (e.g. `[["status"]]` on the main resource): they are neither applied nor
/// owned. Returns the object to store (without `managedFields`) and its new managed fields.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    managed: &[ManagedFieldsEntry],
    req: &Request,
    force: bool,
    ignore: &[&[&str]],
    schema: &Schema,
) -> Result<(Value, Vec<ManagedFieldsEntry>), ApplyError> {
    let tracked = Managed::decode(managed)
        .map_err(|e| ApplyError::Internal(format!("failed to decode managed fields: {e}")))?;
    check_request(live, config, req, schema)?;

    let live_obj = match live {
        Some(obj) => pipeline::without_managed_fields(obj),
        None => schema.empty_object(),
    };
    let ignored = pipeline::ignored_set(ignore);
    let step = Step {
        schema,
        ignored: &ignored,
        live: &live_obj,
        config,
        req,
    };

    let mut outcome = step.apply_tracking_existing_fields(tracked.clone(), force);
    if req.manager == lastapplied::KUBECTL {
        outcome = step.force_conflicts_explained_by_last_applied(outcome, &tracked);
    }
    let (mut result, owners) = outcome.map_err(|failure| match failure {
        ApplyFailure::Conflicts(sets) => ApplyError::Conflicts(conflicts_from_sets(&sets)),
        ApplyFailure::Internal(message) => ApplyError::Internal(message),
    })?;
    if req.manager == lastapplied::KUBECTL {
        lastapplied::update_annotation(&mut result, config);
    }

    pipeline::reset_paths(&mut result, &live_obj, ignore);
    pipeline::drop_nulls(schema, &mut result);
    let mut entries = owners.encode();
    if let Some(live) = live {
        pipeline::revert_noop_timestamps(live, &result, managed, &mut entries);
    }
    Ok((result, entries))
}

/// The checks upstream answers with 400 Bad Request.
fn check_request(
    live: Option<&Value>,
    config: &Value,
    req: &Request,
    schema: &Schema,
) -> Result<(), ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::Invalid(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(config)
        )));
    }
    let expected_kind = live
        .and_then(|l| l.get("kind"))
        .and_then(Value::as_str)
        .or(schema.kind.as_deref());
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let same_version = pipeline::split_api_version(api_version).is_some()
        && pipeline::split_api_version(api_version) == pipeline::split_api_version(req.api_version);
    if !same_version || expected_kind.is_some_and(|k| k != kind) || kind.is_empty() {
        return Err(ApplyError::Invalid(format!(
            "invalid object type: {}",
            pipeline::gvk_string(config)
        )));
    }
    if config
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(Value::is_array)
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "null",
    }
}

/// One apply attempt's inputs.
struct Step<'a> {
    schema: &'a Schema,
    ignored: &'a Set,
    live: &'a Value,
    config: &'a Value,
    req: &'a Request<'a>,
}

impl Step<'_> {
    /// "kubectl" taking over from client-side apply: conflicts on fields the live object still
    /// holds as the last-applied annotation set them are forced; others are reported.
    fn force_conflicts_explained_by_last_applied(
        &self,
        outcome: Result<(Value, Managed), ApplyFailure>,
        tracked: &Managed,
    ) -> Result<(Value, Managed), ApplyFailure> {
        let Err(ApplyFailure::Conflicts(conflicts)) = &outcome else {
            return outcome;
        };
        let Some(allowed) =
            lastapplied::allowed_conflicts(self.schema, self.live, self.req.api_version)
        else {
            return outcome;
        };
        let mut remaining = conflicts.clone();
        for vs in remaining.values_mut() {
            vs.set = vs.set.difference(&allowed);
        }
        remaining.retain(|_, vs| !vs.set.is_empty());
        if remaining.is_empty() {
            self.apply_tracking_existing_fields(tracked.clone(), true)
        } else {
            Err(ApplyFailure::Conflicts(remaining))
        }
    }

    /// An object nobody owns fields of yet is first attributed, as it is, to
    /// "before-first-apply", so the first applier conflicts with values it would change.
    fn apply_tracking_existing_fields(
        &self,
        mut managed: Managed,
        force: bool,
    ) -> Result<(Value, Managed), ApplyFailure> {
        if managed.fields.is_empty() {
            let zero = self.schema.empty_object();
            pipeline::record_update_layers(
                self.schema,
                self.ignored,
                &zero,
                self.live,
                &mut managed,
                "before-first-apply",
                self.req,
            )
            .map_err(|e| {
                ApplyFailure::Internal(format!("failed to create manager for existing fields: {e}"))
            })?;
        }
        self.apply_as_manager(managed, force)
    }

    /// The applier's own entry: merged, pruned, stripped, and timestamped if the object changed.
    fn apply_as_manager(
        &self,
        mut managed: Managed,
        force: bool,
    ) -> Result<(Value, Managed), ApplyFailure> {
        let name = if self.req.manager.is_empty() {
            "unknown"
        } else {
            self.req.manager
        };
        let id = managed::identifier(name, managed::APPLY, "", self.req.subresource.unwrap_or(""));

        let errs = typed::validate(self.schema, &self.schema.root, self.config, false);
        if !errs.is_empty() {
            return Err(ApplyFailure::Internal(format!(
                "failed to create typed patch object ({}): {errs}",
                object_gvknn(self.config)
            )));
        }
        let errs = typed::validate(self.schema, &self.schema.root, self.live, true);
        if !errs.is_empty() {
            return Err(ApplyFailure::Internal(format!(
                "failed to create typed live object ({}): {errs}",
                object_gvknn(self.live)
            )));
        }

        let updater = Updater {
            schema: self.schema,
            ignored: self.ignored.clone(),
        };
        let changed = updater.apply(
            self.live,
            self.config,
            self.req.api_version,
            &mut managed.fields,
            &id,
            force,
        )?;
        pipeline::strip(&mut managed, &id);
        let result = match changed {
            Some(obj) => {
                managed.times.insert(id, rfc3339::normalize(self.req.time));
                obj
            }
            // An apply that changes nothing keeps the applier's previous timestamp.
            None => self.live.clone(),
        };
        Ok((result, managed))
    }
}
