//! Storing and deleting objects with the apiserver's lifecycle rules: optimistic concurrency, finalizers
//! and deletionTimestamp, graceful pod deletion, propagation policies, and CRDs coming and going.

use serde_json::{Value, json};

use crate::clock;
use crate::core::Core;
use crate::errors::{ApiError, FieldError};
use crate::registry::ResourceType;
use crate::store::{StoreError, meta_str, resource_version};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl Propagation {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
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
    /// Reads DeleteOptions from the body or, when there is none, from the query, as the apiserver does
    /// (it never merges the two), and validates them with apimachinery's wording.
    pub fn from_request(
        body: &Value,
        query: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ApiError> {
        let from_body = body.is_object();
        let get = |key: &str| -> Option<Value> {
            if from_body {
                body.get(key).filter(|v| !v.is_null()).cloned()
            } else {
                query(key).map(Value::String)
            }
        };
        let grace_period = match get("gracePeriodSeconds") {
            None => None,
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => Some(s.parse().map_err(|_| {
                ApiError::bad_request(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
            })?),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "gracePeriodSeconds: invalid value {other}"
                )));
            }
        };
        let orphan = match get("orphanDependents") {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(Value::String(s)) => Some(s == "true"),
            Some(_) => None,
        };
        let policy = get("propagationPolicy").map(|v| v.as_str().unwrap_or_default().to_string());
        let dry_run: Vec<String> = if from_body {
            body["dryRun"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        } else {
            query("dryRun").into_iter().collect()
        };
        let mut errs = Vec::new();
        if orphan.is_some() && policy.is_some() {
            errs.push(FieldError::invalid(
                "propagationPolicy",
                json!(policy),
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        let propagation = match &policy {
            None => orphan.map(|o| {
                if o {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                }
            }),
            Some(p) => match Propagation::parse(p) {
                Some(p) => Some(p),
                None => {
                    errs.push(FieldError::not_supported(
                        "propagationPolicy",
                        json!(p),
                        &["Foreground", "Background", "Orphan", "nil"],
                    ));
                    None
                }
            },
        };
        if dry_run.iter().any(|v| v != "All") {
            errs.push(FieldError::not_supported(
                "dryRun",
                json!(dry_run),
                &["All"],
            ));
        }
        if !errs.is_empty() {
            return Err(ApiError::invalid_options("DeleteOptions", &errs));
        }
        let preconditions = if from_body {
            body["preconditions"].clone()
        } else {
            Value::Null
        };
        Ok(DeleteOptions {
            grace_period,
            propagation,
            precondition_uid: preconditions["uid"].as_str().map(str::to_string),
            precondition_rv: preconditions["resourceVersion"]
                .as_str()
                .map(str::to_string),
            dry_run: !dry_run.is_empty(),
        })
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
        && obj["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0)
            == 0
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
pub fn update(
    core: &Core,
    rt: &ResourceType,
    obj: Value,
    expected_rv: Option<u64>,
) -> Result<Value, ApiError> {
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

/// A failed delete precondition, worded as the apiserver passes on its storage layer's error.
pub fn precondition_failed(
    rt: &ResourceType,
    ns: &str,
    name: &str,
    what: &str,
    want: &str,
    have: &str,
) -> ApiError {
    let key = rt.etcd_key(ns, name);
    ApiError::conflict(
        rt,
        name,
        &format!(
            "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
        ),
    )
}

/// Deletes an object as DELETE does. As the apiserver's storage does, a delete that loses a race with
/// another writer is tried again on the newer object (its preconditions checked again), not refused.
pub fn delete(
    core: &Core,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    for _ in 0..RETRIES {
        if let Some(done) = delete_once(core, rt, ns, name, opts)? {
            return Ok(done);
        }
    }
    Err(ApiError::stale(rt, name))
}

/// How often a write that lost a race is tried again before giving up (the apiserver has no limit).
const RETRIES: usize = 100;

/// One attempt at a delete; None when another write came between the read and the write.
fn delete_once(
    core: &Core,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Option<Deleted>, ApiError> {
    let lost_race = |e: &StoreError| *e == StoreError::Conflict;
    let current = core
        .store
        .get(&rt.storage, ns, name)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    if let Some(uid) = &opts.precondition_uid {
        let have = meta_str(&current, "uid");
        if uid != have {
            return Err(precondition_failed(rt, ns, name, "UID", uid, have));
        }
    }
    if let Some(rv) = &opts.precondition_rv {
        let have = meta_str(&current, "resourceVersion");
        if rv != have {
            return Err(precondition_failed(
                rt,
                ns,
                name,
                "ResourceVersion",
                rv,
                have,
            ));
        }
    }
    let rv = resource_version(&current);
    if opts.dry_run {
        return Ok(Some(Deleted::Pending(current)));
    }
    let is_pod = rt.group.is_empty() && rt.plural == "pods";
    let mut marked = current.clone();
    let meta = &mut marked["metadata"];
    let mut fins = finalizers(&current);
    match opts.propagation {
        Some(Propagation::Foreground) if !fins.iter().any(|f| f == "foregroundDeletion") => {
            fins.push("foregroundDeletion".into())
        }
        Some(Propagation::Orphan) if !fins.iter().any(|f| f == "orphan") => {
            fins.push("orphan".into())
        }
        _ => {}
    }

    // Graceful pod deletion: a pod on a node waits for its kubelet to stop the containers.
    let phase = current["status"]["phase"].as_str().unwrap_or_default();
    let terminal = phase == "Succeeded" || phase == "Failed";
    let on_node = current["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let default_grace = current["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30);
    // Decided by the apiserver alone: with its kubelet gone, a pod waits in Terminating, as it would on a
    // dead node.
    let mut grace = if is_pod && on_node && !terminal {
        opts.grace_period.unwrap_or(default_grace).max(0)
    } else {
        0
    };
    if let Some(existing) = current["metadata"]["deletionGracePeriodSeconds"].as_i64() {
        // A second delete may shorten the grace period, never lengthen it.
        grace = grace.min(existing);
    }

    let namespace_waits =
        is_namespace(&current) && !strings(&current["spec"]["finalizers"]).is_empty();
    if fins.is_empty() && grace == 0 && !namespace_waits {
        let gone = match core.store.delete(&rt.storage, ns, name, rv) {
            Err(e) if lost_race(&e) => return Ok(None),
            r => r.map_err(|e| store_error(rt, name, e))?,
        };
        after_write(core, rt, &gone, true);
        return Ok(Some(Deleted::Gone(gone)));
    }
    let already = current["metadata"]["deletionTimestamp"].is_string();
    // Marking an object for deletion bumps a tracked generation (the generic store's BeforeDelete and
    // markAsDeleting); namespaces and CRDs are marked by storage of their own, which does not.
    let own_marking = is_namespace(&current) || rt.group == "apiextensions.k8s.io";
    if !already
        && !own_marking
        && let Some(g) = meta["generation"].as_i64().filter(|g| *g > 0)
    {
        meta["generation"] = json!(g + 1);
    }
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
        let mut conds = marked["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !conds.iter().any(|c| c["type"] == "Terminating") {
            conds.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
                "message": "CustomResourceDefinition marked for deletion; instance deletion in progress",
                "lastTransitionTime": clock::now()}));
            marked["status"]["conditions"] = json!(conds);
        }
    }
    let stored = match core.store.update(&rt.storage, marked, rv) {
        Err(e) if lost_race(&e) => return Ok(None),
        r => r.map_err(|e| store_error(rt, name, e))?,
    };
    Ok(Some(Deleted::Pending(stored)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_options_from_body_and_query() {
        let body = json!({"kind": "DeleteOptions", "propagationPolicy": "Foreground", "preconditions": {"uid": "u"}, "gracePeriodSeconds": 0});
        // With a body, the query is not read.
        let o = DeleteOptions::from_request(&body, &|k| {
            (k == "gracePeriodSeconds").then(|| "9".to_string())
        })
        .unwrap();
        assert_eq!(o.propagation, Some(Propagation::Foreground));
        assert_eq!(o.grace_period, Some(0));
        assert_eq!(o.precondition_uid.as_deref(), Some("u"));
        let q = DeleteOptions::from_request(&Value::Null, &|k| {
            (k == "gracePeriodSeconds").then(|| "9".to_string())
        })
        .unwrap();
        assert_eq!(q.grace_period, Some(9));
        let e = DeleteOptions::from_request(&json!({"propagationPolicy": "Later"}), &|_| None)
            .unwrap_err();
        assert_eq!(e.code, 422);
        let both = DeleteOptions::from_request(
            &json!({"propagationPolicy": "Orphan", "orphanDependents": true}),
            &|_| None,
        )
        .unwrap_err();
        assert!(
            both.message
                .ends_with("orphanDependents and deletionPropagation cannot be both set"),
            "{}",
            both.message
        );
        let orphan =
            DeleteOptions::from_request(&json!({"orphanDependents": true}), &|_| None).unwrap();
        assert_eq!(orphan.propagation, Some(Propagation::Orphan));
    }

    #[test]
    fn deletion_completes_without_finalizers_or_grace() {
        let pending = json!({"metadata": {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0, "finalizers": ["x"]}});
        assert!(!deletion_done(&pending));
        let done = json!({"metadata": {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0}});
        assert!(deletion_done(&done));
        let graceful =
            json!({"metadata": {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 30}});
        assert!(!deletion_done(&graceful));
    }
}
