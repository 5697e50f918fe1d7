//! create, update, patch (JSON, merge, strategic, server-side apply), delete and deletecollection.

use axum::response::Response;
use serde_json::{Value, json};

use super::{Ctx, json_response, options, present};
use crate::admission::{self, FieldValidation, Managed, Write};
use crate::errors::ApiError;
use crate::lifecycle::{self, DeleteOptions, Deleted};
use crate::rbac::Attributes;
use crate::registry::StorageKey;
use crate::store::{meta_str, resource_version};

fn dry_run(ctx: &Ctx<'_>) -> bool {
    ctx.req.q("dryRun") == Some("All")
}

fn field_validation(ctx: &Ctx<'_>) -> Result<FieldValidation, ApiError> {
    FieldValidation::parse(ctx.req.q("fieldValidation"))
}

fn manager(ctx: &Ctx<'_>) -> String {
    ctx.req
        .q("fieldManager")
        .map(str::to_string)
        .unwrap_or_else(|| ctx.req.default_manager())
}

/// Checks the apiVersion and kind a client sent against the endpoint it sent them to.
fn check_type(ctx: &Ctx<'_>, obj: &Value) -> Result<(), ApiError> {
    let rt = ctx.rt;
    if let Some(v) = obj["apiVersion"].as_str().filter(|v| !v.is_empty())
        && v != rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(k) = obj["kind"].as_str().filter(|k| !k.is_empty())
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

/// Puts the URL's namespace on the object, or rejects a different one.
fn check_namespace(ctx: &Ctx<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !ctx.rt.namespaced {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        return Ok(());
    }
    match obj["metadata"]["namespace"].as_str() {
        None | Some("") => {
            obj["metadata"]["namespace"] = json!(ctx.p.namespace);
            Ok(())
        }
        Some(ns) if ns == ctx.p.namespace => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// Custom resources cannot be created while their CRD is being deleted.
fn check_crd_alive(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if let Some(crd) = &ctx.rt.crd {
        let name = meta_str(&crd.crd, "name");
        let live = ctx.core.get(
            &StorageKey::new("apiextensions.k8s.io", "customresourcedefinitions"),
            "",
            name,
        );
        if live.is_some_and(|c| c["metadata"]["deletionTimestamp"].is_string()) {
            let mut e = ApiError::method_not_supported(ctx.rt, "create");
            e.message = "create not allowed while custom resource definition is terminating".into();
            return Err(e);
        }
    }
    Ok(())
}

pub async fn create(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    options::write(ctx.req, "CreateOptions")?;
    let mut obj = ctx.req.json_body()?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    match (ctx.rt.plural.as_str(), ctx.p.subresource.as_str()) {
        ("pods", "binding") => return bind(ctx, &obj),
        ("pods", "eviction") => return evict(ctx, &obj),
        ("selfsubjectaccessreviews", _) => return access_review(ctx, obj),
        _ => {}
    }
    check_type(ctx, &obj)?;
    check_namespace(ctx, &mut obj)?;
    check_crd_alive(ctx)?;
    let validation = field_validation(ctx)?;
    let manager = manager(ctx);
    admission::namespace_lifecycle(ctx.core, ctx.rt, &obj)?;
    let _service_guard = lock_services(ctx).await;
    let write = Write {
        rt: ctx.rt,
        user: ctx.user,
        subresource: "",
        validation,
        manager: &manager,
        managed: Managed::Record,
    };
    // Storage refuses a create that names a resourceVersion (after admission, and not on a dry run,
    // which never reaches storage); the apiserver passes its plain error on as a 500.
    let rv_set = obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse::<u64>().ok())
        .is_some_and(|rv| rv != 0);
    let admitted = admission::admit(ctx.core, write, None, obj).await?;
    check_escalation(ctx, &admitted.object)?;
    if rv_set && !dry_run(ctx) {
        return Err(ApiError::internal_unknown(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if dry_run(ctx) {
        return Ok(json_response(
            201,
            &present(ctx.rt, &admitted.object),
            &admitted.warnings,
        ));
    }
    let stored = lifecycle::create(ctx.core, ctx.rt, admitted.object)?;
    Ok(json_response(
        201,
        &present(ctx.rt, &stored),
        &admitted.warnings,
    ))
}

/// RBAC escalation prevention on roles and bindings: a user can only grant what it holds, unless it may
/// `escalate` (roles) or `bind` (bindings).
fn check_escalation(ctx: &Ctx<'_>, obj: &Value) -> Result<(), ApiError> {
    if ctx.rt.group != "rbac.authorization.k8s.io" {
        return Ok(());
    }
    let policy = ctx.core.policy();
    let ns = meta_str(obj, "namespace");
    let name = meta_str(obj, "name");
    let allowed = |verb: &str, resource: &str, res_name: &str| {
        policy
            .authorize(
                ctx.user,
                &Attributes {
                    verb: verb.into(),
                    resource_request: true,
                    group: "rbac.authorization.k8s.io".into(),
                    resource: resource.into(),
                    namespace: ns.into(),
                    name: res_name.into(),
                    ..Default::default()
                },
            )
            .is_ok()
    };
    let forbid = |msg: String| {
        ApiError::forbidden(
            crate::rbac::forbidden_prefix(&ctx.rt.group, &ctx.rt.plural, name, &msg),
            Some(json!({"name": name, "group": ctx.rt.group, "kind": ctx.rt.plural})),
        )
    };
    let rules = match ctx.rt.kind.as_str() {
        "Role" | "ClusterRole" => {
            if allowed("escalate", &ctx.rt.plural, name) {
                return Ok(());
            }
            obj["rules"].as_array().cloned().unwrap_or_default()
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_ref = &obj["roleRef"];
            let role_resource = if role_ref["kind"] == "ClusterRole" {
                "clusterroles"
            } else {
                "roles"
            };
            if allowed(
                "bind",
                role_resource,
                role_ref["name"].as_str().unwrap_or_default(),
            ) {
                return Ok(());
            }
            policy.role_ref_rules(role_ref, ns).map_err(forbid)?
        }
        _ => return Ok(()),
    };
    policy
        .confirm_no_escalation(ctx.user, ns, &rules)
        .map_err(forbid)
}

/// Service writes are serialized, so that two services never get the same node port.
async fn lock_services<'a>(ctx: &'a Ctx<'_>) -> Option<tokio::sync::MutexGuard<'a, ()>> {
    if ctx.rt.plural == "services" && ctx.rt.group.is_empty() {
        Some(ctx.core.service_lock.lock().await)
    } else {
        None
    }
}

/// A PUT or PATCH result, stored with optimistic concurrency against `old`.
pub(super) async fn store_update(
    ctx: &Ctx<'_>,
    old: &Value,
    new: Value,
    managed: Managed,
    created: bool,
) -> Result<(Value, Vec<String>), ApiError> {
    let validation = field_validation(ctx)?;
    let manager = manager(ctx);
    let _service_guard = lock_services(ctx).await;
    let write = Write {
        rt: ctx.rt,
        user: ctx.user,
        subresource: &ctx.p.subresource,
        validation,
        manager: &manager,
        managed,
    };
    let admitted = admission::admit(ctx.core, write, (!created).then_some(old), new).await?;
    check_escalation(ctx, &admitted.object)?;
    if admission::unchanged(old, &admitted.object) || dry_run(ctx) {
        let shown = if dry_run(ctx) {
            admitted.object
        } else {
            old.clone()
        };
        return Ok((shown, admitted.warnings));
    }
    let stored = if created {
        lifecycle::create(ctx.core, ctx.rt, admitted.object)?
    } else {
        lifecycle::update(ctx.core, ctx.rt, admitted.object, resource_version(old))?
    };
    Ok((stored, admitted.warnings))
}

pub(super) fn current(ctx: &Ctx<'_>) -> Option<Value> {
    ctx.core.get(
        &ctx.rt.storage,
        &ctx.p.namespace_for_storage(ctx.rt),
        &ctx.p.name,
    )
}

pub async fn update(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    if ctx.p.subresource == "scale" {
        return super::scale::update(ctx).await;
    }
    options::write(ctx.req, "UpdateOptions")?;
    let mut obj = ctx.req.json_body()?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    check_type(ctx, &obj)?;
    check_namespace(ctx, &mut obj)?;
    let name = meta_str(&obj, "name");
    if name != ctx.p.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            ctx.p.name
        )));
    }
    let body_rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    // A uid in the body is a storage precondition of the update, as in the apiserver's PUT handler.
    let body_uid = obj["metadata"]["uid"]
        .as_str()
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    // The apiserver's storage retries an update that lost a race with another writer, unless the client
    // made it conditional on a resourceVersion.
    for _ in 0..UNCONDITIONAL_RETRIES {
        let old = current(ctx).ok_or_else(|| ApiError::not_found(ctx.rt, &ctx.p.name))?;
        if let Some(uid) = &body_uid {
            let have = meta_str(&old, "uid");
            if uid != have {
                let ns = ctx.p.namespace_for_storage(ctx.rt);
                return Err(lifecycle::precondition_failed(
                    ctx.rt,
                    &ns,
                    &ctx.p.name,
                    "UID",
                    uid,
                    have,
                ));
            }
        }
        match &body_rv {
            Some(rv) if Some(rv.as_str()) != old["metadata"]["resourceVersion"].as_str() => {
                return Err(ApiError::stale(ctx.rt, &ctx.p.name));
            }
            Some(_) => {}
            None if ctx.rt.crd.is_some() => {
                // Custom resources allow no unconditional update. The apiserver names the resource,
                // not the kind, in this one error.
                return Err(ApiError::invalid_kind(
                    &ctx.rt.group,
                    &ctx.rt.plural,
                    &ctx.p.name,
                    &[crate::errors::FieldError::invalid(
                        "metadata.resourceVersion",
                        json!(0),
                        "must be specified for an update",
                    )],
                ));
            }
            None => {}
        }
        let mut new = obj.clone();
        if ctx.p.subresource == "finalize" {
            new = present(ctx.rt, &old);
            new["spec"]["finalizers"] = obj["spec"]["finalizers"].clone();
        }
        match store_update(ctx, &old, new, Managed::Record, false).await {
            Err(e) if body_rv.is_none() && e == ApiError::stale(ctx.rt, &ctx.p.name) => continue,
            r => {
                let (stored, warnings) = r?;
                return Ok(json_response(200, &present(ctx.rt, &stored), &warnings));
            }
        }
    }
    Err(ApiError::stale(ctx.rt, &ctx.p.name))
}

/// How often an unconditional write is retried against a newer stored object before giving up (the
/// apiserver has no limit; kube-sim's controllers never write that often).
pub(super) const UNCONDITIONAL_RETRIES: usize = 100;

/// An apply failure as the apiserver reports it: 409 with one cause per conflicting field, 400 for a bad
/// configuration, 500 for what upstream passes through as a plain error.
fn apply_error(ctx: &Ctx<'_>, e: &kube_sim_patch::ApplyError) -> ApiError {
    let code = e.code();
    let reason = match code {
        409 => "Conflict",
        400 => "BadRequest",
        _ => "",
    };
    let causes: Vec<Value> = e
        .causes()
        .into_iter()
        .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
        .collect();
    let details = (!causes.is_empty()).then(|| {
        let mut d = json!({"name": ctx.p.name, "kind": ctx.rt.plural, "causes": causes});
        if !ctx.rt.group.is_empty() {
            d["group"] = json!(ctx.rt.group);
        }
        d
    });
    ApiError {
        code,
        reason,
        message: e.message(),
        details,
    }
}

/// The paths an apply on this endpoint may not set: status on a main resource, all but status on /status.
fn apply_config(ctx: &Ctx<'_>, config: &Value) -> Value {
    let mut c = config.clone();
    if ctx.p.subresource == "status" {
        let meta = json!({"name": config["metadata"]["name"], "namespace": config["metadata"]["namespace"]});
        c = json!({"apiVersion": config["apiVersion"], "kind": config["kind"], "metadata": meta, "status": config["status"]});
        if config.get("status").is_none() {
            c.as_object_mut().map(|m| m.remove("status"));
        }
    }
    c
}

/// The patch types an endpoint accepts: custom resources have no strategic merge patch.
fn patch_types(ctx: &Ctx<'_>) -> &'static [&'static str] {
    if ctx.rt.crd.is_some() {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
    } else {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    }
}

pub async fn patch(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let content_type = ctx
        .req
        .content_type()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let accepted = patch_types(ctx);
    if !accepted.contains(&content_type.as_str()) {
        // Built-in routes refuse other media types in the router, which words it tersely; the custom
        // resource handler checks for itself and lists what it accepts.
        return Err(if ctx.rt.crd.is_some() {
            ApiError::unsupported_media_type(accepted)
        } else {
            ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: "415: Unsupported Media Type".into(),
                details: Some(json!({})),
            }
        });
    }
    let is_apply = content_type == "application/apply-patch+yaml";
    options::patch(ctx.req, is_apply)?;
    let patch = ctx.req.json_body()?;
    if ctx.p.subresource == "scale" {
        return super::scale::patch(ctx, &content_type, &patch).await;
    }
    if is_apply {
        check_type(ctx, &patch)?;
    }
    let force = ctx.req.q("force") == Some("true");
    // The apiserver retries a patch on a conflicting concurrent write, unless the patch itself names a
    // resourceVersion.
    for _ in 0..UNCONDITIONAL_RETRIES {
        let old = current(ctx);
        let created = old.is_none();
        let old = match old {
            Some(o) => o,
            None if is_apply && ctx.p.subresource.is_empty() => {
                check_crd_alive(ctx)?;
                let mut skeleton = json!({"apiVersion": ctx.rt.api_version(), "kind": ctx.rt.kind, "metadata": {"name": ctx.p.name}});
                check_namespace(ctx, &mut skeleton)?;
                admission::namespace_lifecycle(ctx.core, ctx.rt, &skeleton)?;
                skeleton
            }
            None => return Err(ApiError::not_found(ctx.rt, &ctx.p.name)),
        };
        let old_view = present(ctx.rt, &old);
        let schema = admission::schema_of(ctx.rt);
        let (new, managed) = match content_type.as_str() {
            "application/json-patch+json" => {
                let p: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|_| {
                    // Worded as Go's decoder words a body that is not a list of operations.
                    let what = match &patch {
                        Value::Object(_) => "object",
                        Value::String(_) => "string",
                        Value::Number(_) => "number",
                        Value::Bool(_) => "bool",
                        _ => "array",
                    };
                    ApiError::bad_request(format!(
                        "json: cannot unmarshal {what} into Go value of type jsonpatch.Patch"
                    ))
                })?;
                let mut doc = old_view.clone();
                super::jsonpatch::apply(&mut doc, &p).map_err(|_| ApiError::unprocessable())?;
                (doc, Managed::Record)
            }
            "application/merge-patch+json" => {
                let mut doc = old_view.clone();
                json_patch::merge(&mut doc, &patch);
                (doc, Managed::Record)
            }
            "application/strategic-merge-patch+json" if ctx.rt.crd.is_none() => {
                let doc = kube_sim_patch::strategic_merge(&old_view, &patch, &schema)
                    .map_err(|e| patch_failed(e.code(), e.message()))?;
                (doc, Managed::Record)
            }
            _ if is_apply => {
                let previous: Vec<kube_sim_patch::ManagedFieldsEntry> =
                    serde_json::from_value(old["metadata"]["managedFields"].clone())
                        .unwrap_or_default();
                let api_version = ctx.rt.api_version();
                let now = crate::clock::now();
                let manager = manager(ctx);
                let req = kube_sim_patch::Request {
                    manager: &manager,
                    api_version: &api_version,
                    subresource: (!ctx.p.subresource.is_empty())
                        .then_some(ctx.p.subresource.as_str()),
                    time: &now,
                };
                let config = apply_config(ctx, &patch);
                let reset = admission::reset_paths(ctx.rt, &ctx.p.subresource, &config);
                let ignore: Vec<&[&str]> = reset.iter().map(|p| p.as_slice()).collect();
                let live = (!created).then_some(&old_view);
                let (merged, entries) =
                    kube_sim_patch::apply(live, &config, &previous, &req, force, &ignore, &schema)
                        .map_err(|e| apply_error(ctx, &e))?;
                (merged, Managed::Given(entries))
            }
            _ => return Err(ApiError::unsupported_media_type(accepted)),
        };
        let mut new = new;
        if !new.is_object() {
            return Err(ApiError::bad_request("the patch did not produce an object"));
        }
        let patched_rv = new["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        let precondition = patched_rv.is_some()
            && patched_rv.as_deref() != old["metadata"]["resourceVersion"].as_str();
        if precondition && !created {
            return Err(ApiError::stale(ctx.rt, &ctx.p.name));
        }
        if meta_str(&new, "name") != ctx.p.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                meta_str(&new, "name"),
                ctx.p.name
            )));
        }
        check_namespace(ctx, &mut new)?;
        match store_update(ctx, &old, new, managed, created).await {
            Ok((stored, warnings)) => {
                return Ok(json_response(
                    if created { 201 } else { 200 },
                    &present(ctx.rt, &stored),
                    &warnings,
                ));
            }
            Err(e) if e.code == 409 && e.reason == "Conflict" && !is_apply_conflict(&e) => continue,
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" && created => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale(ctx.rt, &ctx.p.name))
}

fn is_apply_conflict(e: &ApiError) -> bool {
    e.message.starts_with("Apply failed")
}

/// A strategic merge patch failure as the apiserver reports it: 400s keep their message, 422s get the
/// generic one, and anything else passes through as a plain 500 with no reason.
fn patch_failed(code: u16, msg: String) -> ApiError {
    match code {
        400 => ApiError::bad_request(msg),
        422 => ApiError::unprocessable(),
        _ => ApiError {
            code,
            reason: "",
            message: msg,
            details: None,
        },
    }
}

/// The Status a finished delete answers with, for types that do not return the deleted object.
fn success_status(ctx: &Ctx<'_>, obj: &Value) -> Value {
    let mut details =
        json!({"name": meta_str(obj, "name"), "kind": ctx.rt.plural, "uid": meta_str(obj, "uid")});
    if !ctx.rt.group.is_empty() {
        details["group"] = json!(ctx.rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Pods and custom resources return the deleted object; other types a Status.
fn returns_object(ctx: &Ctx<'_>) -> bool {
    ctx.rt.crd.is_some() || (ctx.rt.group.is_empty() && ctx.rt.plural == "pods")
}

const JOB_ORPHAN_WARNING: &str = "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning";

/// The request's DeleteOptions with the type's default propagation filled in: batch/v1 Jobs orphan their
/// pods unless told otherwise (kept for compatibility), with a warning; everything else is collected in
/// the background.
fn delete_options(ctx: &Ctx<'_>) -> Result<(DeleteOptions, Vec<String>), ApiError> {
    let body = ctx.req.json_body()?;
    let mut opts = DeleteOptions::from_request(&body, &|k| ctx.req.q(k).map(str::to_string))?;
    let mut warnings = Vec::new();
    if opts.propagation.is_none()
        && ctx.rt.group == "batch"
        && ctx.rt.version == "v1"
        && ctx.rt.plural == "jobs"
    {
        opts.propagation = Some(lifecycle::Propagation::Orphan);
        warnings.push(JOB_ORPHAN_WARNING.to_string());
    }
    Ok((opts, warnings))
}

pub fn delete(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let (opts, warnings) = delete_options(ctx)?;
    let ns = ctx.p.namespace_for_storage(ctx.rt);
    match lifecycle::delete(ctx.core, ctx.rt, &ns, &ctx.p.name, &opts)? {
        Deleted::Pending(obj) => Ok(json_response(200, &present(ctx.rt, &obj), &warnings)),
        Deleted::Gone(obj) if returns_object(ctx) => {
            Ok(json_response(200, &present(ctx.rt, &obj), &warnings))
        }
        Deleted::Gone(obj) => Ok(json_response(200, &success_status(ctx, &obj), &warnings)),
    }
}

pub fn delete_collection(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let (opts, warnings) = delete_options(ctx)?;
    let selection = super::reads::Selection::from(ctx)?;
    let ns = (ctx.rt.namespaced && !ctx.p.namespace.is_empty()).then_some(ctx.p.namespace.as_str());
    let (items, rv) = ctx.core.store.list(&ctx.rt.storage, ns);
    let mut deleted = Vec::new();
    for obj in items.iter().filter(|o| selection.matches(o)) {
        match lifecycle::delete(
            ctx.core,
            ctx.rt,
            meta_str(obj, "namespace"),
            meta_str(obj, "name"),
            &opts,
        ) {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => deleted.push(present(ctx.rt, &o)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": ctx.rt.list_kind, "apiVersion": ctx.rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
        &warnings,
    ))
}

/// POST pods/NAME/binding: what a scheduler does to place a pod.
fn bind(ctx: &Ctx<'_>, binding: &Value) -> Result<Response, ApiError> {
    let node = binding["target"]["name"].as_str().unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::bad_request("target.name: Required value"));
    }
    let pod = current(ctx).ok_or_else(|| ApiError::not_found(ctx.rt, &ctx.p.name))?;
    if pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ApiError::conflict(
            ctx.rt,
            &ctx.p.name,
            &format!(
                "pod {} is already assigned to node {:?}",
                ctx.p.name,
                pod["spec"]["nodeName"].as_str().unwrap_or_default()
            ),
        ));
    }
    crate::controllers::scheduler::bind(ctx.core, &pod, node)?;
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        &[],
    ))
}

/// POST pods/NAME/eviction: a graceful delete (no PodDisruptionBudgets are simulated).
fn evict(ctx: &Ctx<'_>, eviction: &Value) -> Result<Response, ApiError> {
    let opts = DeleteOptions::from_request(&eviction["deleteOptions"], &|_| None)?;
    lifecycle::delete(ctx.core, ctx.rt, &ctx.p.namespace, &ctx.p.name, &opts)?;
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        &[],
    ))
}

/// SelfSubjectAccessReview: what `kubectl auth can-i` asks.
fn access_review(ctx: &Ctx<'_>, mut review: Value) -> Result<Response, ApiError> {
    let spec = &review["spec"];
    let attrs = if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        Attributes {
            verb: s("verb"),
            resource_request: true,
            group: s("group"),
            resource: s("resource"),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
            path: String::new(),
        }
    } else {
        let r = &spec["nonResourceAttributes"];
        Attributes {
            verb: r["verb"].as_str().unwrap_or_default().into(),
            path: r["path"].as_str().unwrap_or_default().into(),
            ..Default::default()
        }
    };
    let allowed = ctx.core.policy().authorize(ctx.user, &attrs).is_ok();
    review["status"] = json!({"allowed": allowed});
    review["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_response(201, &review, &[]))
}
