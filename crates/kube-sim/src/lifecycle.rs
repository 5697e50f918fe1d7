//! Storing and deleting objects with the apiserver's lifecycle rules: optimistic concurrency, finalizers
//! and deletionTimestamp, graceful pod deletion, propagation policies, and CRDs coming and going.

use serde_json::{Value, json};

use crate::clock;
use crate::core::{Controller, Core};
use crate::errors::ApiError;
use crate::registry::ResourceType;
use crate::store::{StoreError, meta_str, resource_version};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl Propagation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Orphan" => Ok(Propagation::Orphan),
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a DeleteOptions body, then lets query parameters override it, as the apiserver does.
    pub fn from_request(body: &Value, query: &dyn Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let mut o = DeleteOptions {
            grace_period: body["gracePeriodSeconds"].as_i64(),
            propagation: body["propagationPolicy"].as_str().map(Propagation::parse).transpose()?,
            precondition_uid: body["preconditions"]["uid"].as_str().map(str::to_string),
            precondition_rv: body["preconditions"]["resourceVersion"].as_str().map(str::to_string),
            dry_run: body["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All")),
        };
        if o.propagation.is_none() {
            if let Some(orphan) = body["orphanDependents"].as_bool() {
                o.propagation = Some(if orphan { Propagation::Orphan } else { Propagation::Background });
            }
        }
        if let Some(g) = query("gracePeriodSeconds") {
            o.grace_period = Some(g.parse().map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?);
        }
        if let Some(p) = query("propagationPolicy") {
            o.propagation = Some(Propagation::parse(&p)?);
        }
        if let Some(orphan) = query("orphanDependents") {
            o.propagation = Some(if orphan == "true" { Propagation::Orphan } else { Propagation::Background });
        }
        if query("dryRun").as_deref() == Some("All") {
            o.dry_run = true;
        }
        Ok(o)
    }
}

/// How a delete ended.
#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; its last state.
    Gone(Value),
    /// The object is marked for deletion and waits for finalizers or a kubelet.
    Pending(Value),
}

fn store_error(rt: &ResourceType, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(rt, name),
        StoreError::AlreadyExists => ApiError::already_exists(rt, name),
        StoreError::Conflict => ApiError::stale(rt, name),
        StoreError::Gone { requested, oldest } => ApiError::gone(requested, oldest),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

fn finalizers(obj: &Value) -> Vec<String> {
    strings(&obj["metadata"]["finalizers"])
}

/// A namespace also waits for its spec.finalizers, which the namespace controller clears once empty.
fn is_namespace(obj: &Value) -> bool {
    obj["kind"] == "Namespace" && obj["apiVersion"] == "v1"
}

/// Whether a deleted object has nothing left to wait for.
fn deletion_done(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
        && finalizers(obj).is_empty()
        && (!is_namespace(obj) || strings(&obj["spec"]["finalizers"]).is_empty())
        && obj["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
}

/// What follows a CRD write: its types are served while it exists.
fn after_write(core: &Core, rt: &ResourceType, obj: &Value, removed: bool) {
    if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
        if removed {
            core.registry.unserve_crd(meta_str(obj, "name"));
        } else {
            core.registry.serve_crd(obj);
        }
    }
}

pub fn create(core: &Core, rt: &ResourceType, obj: Value) -> Result<Value, ApiError> {
    let name = meta_str(&obj, "name").to_string();
    let stored = core
        .store
        .create(&rt.storage, obj)
        .map_err(|e| store_error(rt, &name, e))?;
    after_write(core, rt, &stored, false);
    Ok(stored)
}

/// Stores an update, checking `expected_rv` if given. An update that leaves a deleted object without
/// finalizers completes its deletion.
pub fn update(core: &Core, rt: &ResourceType, obj: Value, expected_rv: Option<u64>) -> Result<Value, ApiError> {
    let name = meta_str(&obj, "name").to_string();
    let ns = meta_str(&obj, "namespace").to_string();
    if deletion_done(&obj) {
        let gone = core
            .store
            .delete(&rt.storage, &ns, &name, expected_rv)
            .map_err(|e| store_error(rt, &name, e))?;
        after_write(core, rt, &gone, true);
        return Ok(gone);
    }
    let stored = core
        .store
        .update(&rt.storage, obj, expected_rv)
        .map_err(|e| store_error(rt, &name, e))?;
    after_write(core, rt, &stored, false);
    Ok(stored)
}

fn precondition_failed(rt: &ResourceType, name: &str, what: &str, want: &str, have: &str) -> ApiError {
    ApiError::conflict(
        rt,
        name,
        &format!("Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"),
    )
}

/// Deletes an object as DELETE does.
pub fn delete(core: &Core, rt: &ResourceType, ns: &str, name: &str, opts: &DeleteOptions) -> Result<Deleted, ApiError> {
    let current = core
        .store
        .get(&rt.storage, ns, name)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    if let Some(uid) = &opts.precondition_uid {
        let have = meta_str(&current, "uid");
        if uid != have {
            return Err(precondition_failed(rt, name, "UID", uid, have));
        }
    }
    if let Some(rv) = &opts.precondition_rv {
        let have = meta_str(&current, "resourceVersion");
        if rv != have {
            return Err(precondition_failed(rt, name, "ResourceVersion", rv, have));
        }
    }
    let rv = resource_version(&current);
    if opts.dry_run {
        return Ok(Deleted::Pending(current));
    }
    let is_pod = rt.group.is_empty() && rt.plural == "pods";
    let mut marked = current.clone();
    let meta = &mut marked["metadata"];
    let mut fins = finalizers(&current);
    match opts.propagation {
        Some(Propagation::Foreground) if !fins.iter().any(|f| f == "foregroundDeletion") => {
            fins.push("foregroundDeletion".into())
        }
        Some(Propagation::Orphan) if !fins.iter().any(|f| f == "orphan") => fins.push("orphan".into()),
        _ => {}
    }

    // Graceful pod deletion: a pod on a node waits for its kubelet to stop the containers.
    let phase = current["status"]["phase"].as_str().unwrap_or_default();
    let terminal = phase == "Succeeded" || phase == "Failed";
    let on_node = current["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let default_grace = current["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    let mut grace = if is_pod && on_node && !terminal && core.switches.enabled(Controller::Kubelet) {
        opts.grace_period.unwrap_or(default_grace).max(0)
    } else {
        0
    };
    if let Some(existing) = current["metadata"]["deletionGracePeriodSeconds"].as_i64() {
        // A second delete may shorten the grace period, never lengthen it.
        grace = grace.min(existing);
    }

    let namespace_waits = is_namespace(&current) && !strings(&current["spec"]["finalizers"]).is_empty();
    if fins.is_empty() && grace == 0 && !namespace_waits {
        let gone = core
            .store
            .delete(&rt.storage, ns, name, rv)
            .map_err(|e| store_error(rt, name, e))?;
        after_write(core, rt, &gone, true);
        return Ok(Deleted::Gone(gone));
    }
    let already = current["metadata"]["deletionTimestamp"].is_string();
    if !already || meta["deletionGracePeriodSeconds"].as_i64() != Some(grace) {
        let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
        meta["deletionTimestamp"] = json!(clock::format_seconds(when));
        meta["deletionGracePeriodSeconds"] = json!(grace);
    }
    if !fins.is_empty() {
        meta["finalizers"] = json!(fins);
    }
    if namespace_waits {
        marked["status"]["phase"] = json!("Terminating");
    }
    if rt.group == "apiextensions.k8s.io" {
        // The CRD reports that its instances are being deleted.
        let mut conds = marked["status"]["conditions"].as_array().cloned().unwrap_or_default();
        if !conds.iter().any(|c| c["type"] == "Terminating") {
            conds.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
                "message": "CustomResourceDefinition marked for deletion; instance deletion in progress",
                "lastTransitionTime": clock::now()}));
            marked["status"]["conditions"] = json!(conds);
        }
    }
    let stored = core
        .store
        .update(&rt.storage, marked, rv)
        .map_err(|e| store_error(rt, name, e))?;
    Ok(Deleted::Pending(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_options_from_body_and_query() {
        let body = json!({"kind": "DeleteOptions", "propagationPolicy": "Foreground", "preconditions": {"uid": "u"}});
        let o = DeleteOptions::from_request(&body, &|k| (k == "gracePeriodSeconds").then(|| "0".to_string())).unwrap();
        assert_eq!(o.propagation, Some(Propagation::Foreground));
        assert_eq!(o.grace_period, Some(0));
        assert_eq!(o.precondition_uid.as_deref(), Some("u"));
        assert!(DeleteOptions::from_request(&json!({"propagationPolicy": "Later"}), &|_| None).is_err());
        let orphan = DeleteOptions::from_request(&json!({"orphanDependents": true}), &|_| None).unwrap();
        assert_eq!(orphan.propagation, Some(Propagation::Orphan));
    }

    #[test]
    fn deletion_completes_without_finalizers_or_grace() {
        let pending = json!({"metadata": {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0, "finalizers": ["x"]}});
        assert!(!deletion_done(&pending));
        let done = json!({"metadata": {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0}});
        assert!(deletion_done(&done));
        let graceful = json!({"metadata": {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 30}});
        assert!(!deletion_done(&graceful));
    }
}
