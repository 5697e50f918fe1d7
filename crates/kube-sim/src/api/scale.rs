//! The `scale` subresource (`kubectl scale`, autoscalers): an autoscaling/v1 Scale view of a
//! workload's replicas, for Deployments, ReplicaSets, StatefulSets and custom resources whose CRD
//! declares one. Reads build the Scale from the parent; writes change only the parent's replicas.

use axum::response::Response;
use serde_json::{Value, json};

use super::writes::{UNCONDITIONAL_RETRIES, current, store_update};
use super::{Ctx, json_response, options};
use crate::admission::Managed;
use crate::errors::{ApiError, FieldError};
use crate::registry::ScalePaths;
use crate::selectors::selector_text;

fn at<'a>(obj: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(obj, |v, k| &v[k.as_str()])
}

fn set_at(obj: &mut Value, path: &[String], value: Value) {
    let mut target = obj;
    for k in path {
        if !target.get(k.as_str()).is_some_and(Value::is_object) {
            target[k.as_str()] = json!({});
        }
        target = &mut target[k.as_str()];
    }
    *target = value;
}

/// The Scale of `parent`, as the apiserver builds it.
fn scale_of(paths: &ScalePaths, parent: &Value) -> Value {
    let meta = &parent["metadata"];
    let selector = match &paths.label_selector {
        Some(path) => at(parent, path).as_str().unwrap_or_default().to_string(),
        None => selector_text(&parent["spec"]["selector"]),
    };
    let mut spec = json!({});
    // ScaleSpec.replicas is omitted when zero, as Go's omitempty does.
    if let Some(n) = at(parent, &paths.spec_replicas)
        .as_i64()
        .filter(|n| *n != 0)
    {
        spec["replicas"] = json!(n);
    }
    let mut status = json!({"replicas": at(parent, &paths.status_replicas).as_i64().unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": spec,
        "status": status,
    })
}

fn paths(ctx: &Ctx<'_>) -> Result<ScalePaths, ApiError> {
    ctx.rt.scale_paths().ok_or_else(ApiError::no_route)
}

fn parent(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    current(ctx).ok_or_else(|| ApiError::not_found(ctx.rt, &ctx.p.name))
}

pub fn get(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let paths = paths(ctx)?;
    Ok(json_response(200, &scale_of(&paths, &parent(ctx)?), &[]))
}

/// Writes a Scale: its replicas go to the parent, under optimistic concurrency when it names a
/// resourceVersion.
async fn write(
    ctx: &Ctx<'_>,
    paths: &ScalePaths,
    parent: Value,
    scale: &Value,
) -> Result<Response, ApiError> {
    let replicas = &scale["spec"]["replicas"];
    let n = match replicas {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Scale in version \"v1\" cannot be handled as a Scale: invalid replicas {v}"
            ))
        })?,
    };
    if n < 0 {
        return Err(ApiError::invalid_kind(
            "autoscaling",
            "Scale",
            &ctx.p.name,
            &[FieldError::invalid(
                "spec.replicas",
                json!(n),
                "must be greater than or equal to 0",
            )],
        ));
    }
    if let Some(rv) = scale["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
        && Some(rv) != parent["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::stale(ctx.rt, &ctx.p.name));
    }
    let mut updated = parent.clone();
    set_at(&mut updated, &paths.spec_replicas, json!(n));
    let (stored, warnings) = store_update(ctx, &parent, updated, Managed::Record, false).await?;
    Ok(json_response(200, &scale_of(paths, &stored), &warnings))
}

pub async fn update(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    options::write(ctx.req, "UpdateOptions")?;
    let paths = paths(ctx)?;
    let scale = ctx.req.json_body()?;
    // As any update the client did not make conditional, one that loses a race is tried again.
    for _ in 0..UNCONDITIONAL_RETRIES {
        let parent = parent(ctx)?;
        match write(ctx, &paths, parent, &scale).await {
            Err(e) if lost_race(ctx, names_rv(&scale), &e) => continue,
            r => return r,
        }
    }
    Err(ApiError::stale(ctx.rt, &ctx.p.name))
}

fn names_rv(scale: &Value) -> bool {
    scale["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| !rv.is_empty())
}

/// A conflict that only says another write came first, which a client that named no resourceVersion
/// is not told.
fn lost_race(ctx: &Ctx<'_>, conditional: bool, e: &ApiError) -> bool {
    !conditional && *e == ApiError::stale(ctx.rt, &ctx.p.name)
}

/// A patch to a Scale: JSON, merge or strategic merge patch (a Scale has no lists, so the last two
/// agree). Server-side apply on /scale is not simulated.
pub async fn patch(ctx: &Ctx<'_>, content_type: &str, patch: &Value) -> Result<Response, ApiError> {
    let paths = paths(ctx)?;
    for _ in 0..UNCONDITIONAL_RETRIES {
        let parent = parent(ctx)?;
        let scale = patched_scale(&paths, &parent, content_type, patch)?;
        // The Scale patched carries the parent's resourceVersion; only one the patch sets is a
        // precondition.
        let conditional = names_rv(patch)
            || patch.as_array().is_some_and(|ops| {
                ops.iter()
                    .any(|op| op["path"] == "/metadata/resourceVersion")
            });
        match write(ctx, &paths, parent, &scale).await {
            Err(e) if lost_race(ctx, conditional, &e) => continue,
            r => return r,
        }
    }
    Err(ApiError::stale(ctx.rt, &ctx.p.name))
}

fn patched_scale(
    paths: &ScalePaths,
    parent: &Value,
    content_type: &str,
    patch: &Value,
) -> Result<Value, ApiError> {
    let mut scale = scale_of(paths, parent);
    match content_type {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            super::jsonpatch::apply(&mut scale, &p).map_err(|_| ApiError::unprocessable())?;
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            json_patch::merge(&mut scale, patch)
        }
        _ => {
            return Err(ApiError::bad_request(
                "kube-sim does not simulate server-side apply on the scale subresource",
            ));
        }
    }
    Ok(scale)
}
