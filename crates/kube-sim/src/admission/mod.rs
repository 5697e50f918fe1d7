//! What happens to an object between a client's write and the store, in the apiserver's order:
//! system metadata, the status/spec split of subresources, decoding (unknown fields), defaulting,
//! admission plugins, validation, generation and managedFields.

pub mod decode;
pub mod defaults;
pub mod services;
pub mod validation;

use kube_sim_patch::{ManagedFieldsEntry, Schema};
use rand::Rng;
use serde_json::{Value, json};

use crate::clock;
use crate::core::Core;
use crate::crdcheck::Verdict;
use crate::errors::{ApiError, FieldError};
use crate::events_view;
use crate::rbac::{User, forbidden_prefix};
use crate::registry::{ResourceType, StorageKey, View};
use crate::store::meta_str;

/// The storage class the simulated cluster marks as its default, as kind's and minikube's `standard`.
pub const DEFAULT_STORAGE_CLASS: &str = "standard";

/// The `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}; valid values are Ignore, Warn and Strict"
            ))),
        }
    }
}

/// How the managedFields of the result are decided.
pub enum Managed {
    /// A create, update or non-apply patch: record what this manager changed.
    Record,
    /// A server-side apply: the field manager already computed them.
    Given(Vec<ManagedFieldsEntry>),
}

pub struct Write<'a> {
    pub rt: &'a ResourceType,
    pub user: &'a User,
    pub subresource: &'a str,
    pub validation: FieldValidation,
    pub manager: &'a str,
    pub managed: Managed,
}

pub struct Admitted {
    pub object: Value,
    pub warnings: Vec<String>,
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The random suffix of generateName, from the apiserver's alphabet (no vowels, no look-alikes).
pub fn random_suffix(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

pub fn new_uid() -> String {
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

/// Kinds whose metadata.generation tracks spec changes.
fn tracks_generation(rt: &ResourceType) -> bool {
    rt.crd.is_some()
        || matches!(
            (rt.group.as_str(), rt.kind.as_str()),
            ("", "Pod")
                | ("apps", _)
                | ("batch", "Job")
                | ("apiextensions.k8s.io", "CustomResourceDefinition")
        )
}

/// Whether an update changes what the kind's strategy bumps generation for: everything but metadata and
/// status; for a custom resource without a status subresource, everything but metadata (status is
/// then an ordinary field); for a Deployment, its annotations too (they are copied to its ReplicaSets).
fn spec_changed(w: &Write<'_>, old: &Value, new: &Value) -> bool {
    let rt = w.rt;
    let ignored: &[&str] = if rt.crd.is_some() && !rt.has_status() {
        &["metadata", "apiVersion", "kind"]
    } else {
        &["metadata", "status", "apiVersion", "kind"]
    };
    if without(old, ignored) != without(new, ignored) {
        return true;
    }
    let annotations = |o: &Value| {
        o["metadata"]["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    (rt.group.as_str(), rt.kind.as_str()) == ("apps", "Deployment")
        && w.subresource.is_empty()
        && annotations(old) != annotations(new)
}

/// The managedFields schema of a type.
pub fn schema_of(rt: &ResourceType) -> Schema {
    match rt.crd.as_ref().and_then(|c| c.schema.as_ref()) {
        Some(s) => Schema::from_openapi_v3(s),
        None if rt.crd.is_some() => Schema::untyped(),
        None => Schema::builtin(&rt.group, &rt.version, &rt.kind),
    }
}

fn without(v: &Value, fields: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for f in fields {
            o.remove(*f);
        }
    }
    v
}

fn status_of(v: &Value) -> Option<Value> {
    v.get("status").cloned()
}

fn set_status(obj: &mut Value, status: Option<Value>) {
    if let Some(o) = obj.as_object_mut() {
        match status {
            Some(s) => {
                o.insert("status".into(), s);
            }
            None => {
                o.remove("status");
            }
        }
    }
}

/// The status the apiserver gives a new object of some kinds.
fn initial_status(rt: &ResourceType, obj: &Value) -> Option<Value> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => Some(json!({"phase": "Pending", "qosClass": qos_class(&obj["spec"])})),
        ("", "Namespace") => Some(json!({"phase": "Active"})),
        ("", "PersistentVolumeClaim") => Some(json!({"phase": "Pending"})),
        ("", "Service") => Some(json!({"loadBalancer": {}})),
        ("apps", _) | ("batch", _) => Some(json!({})),
        _ => None,
    }
}

/// The pod's QoS class, from its containers' requests and limits.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let r = &c["resources"];
        for res in ["cpu", "memory"] {
            let req = r["requests"][res].as_str();
            let lim = r["limits"][res].as_str();
            any |= req.is_some() || lim.is_some();
            if lim.is_none() || (req.is_some() && req != lim) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn system_metadata(w: &Write<'_>, old: Option<&Value>, obj: &mut Value) -> Result<(), ApiError> {
    let meta = obj["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    match old {
        None => {
            if meta
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && let Some(prefix) = meta
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            {
                let name = format!("{prefix}{}", random_suffix(5));
                meta.insert("name".into(), json!(name));
            }
            meta.insert("uid".into(), json!(new_uid()));
            meta.insert("creationTimestamp".into(), json!(clock::now()));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(f);
            }
            // Strategies that track spec changes start at 1; the others keep what the client sent, as
            // the apiserver's do.
            if tracks_generation(w.rt) {
                meta.insert("generation".into(), json!(1));
            }
        }
        Some(old) => {
            let om = &old["metadata"];
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match om.get(f) {
                    Some(v) => {
                        meta.insert(f.into(), v.clone());
                    }
                    None => {
                        meta.remove(f);
                    }
                }
            }
            if om["deletionTimestamp"].is_string() {
                let before: Vec<&Value> =
                    om["finalizers"].as_array().into_iter().flatten().collect();
                let added: Vec<String> = meta
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|f| !before.contains(f))
                    .map(|f| format!("{f}"))
                    .collect();
                if !added.is_empty() {
                    return Err(ApiError::invalid(
                        w.rt,
                        meta_str(old, "name"),
                        &[FieldError::forbidden(
                            "metadata.finalizers",
                            format!(
                                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                                added.join(", ")
                            ),
                        )],
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Unknown fields, handled as `fieldValidation` says.
fn unknown_fields(
    w: &Write<'_>,
    unknown: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    match w.validation {
        FieldValidation::Ignore => Ok(()),
        FieldValidation::Warn => {
            warnings.extend(list);
            Ok(())
        }
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", "),
            kind = w.rt.kind,
            version = w.rt.version,
        ))),
    }
}

/// The ServiceAccount admission plugin: the pod's account must exist, and its token is mounted.
fn service_account(core: &Core, pod: &mut Value) -> Result<(), ApiError> {
    let ns = meta_str(pod, "namespace").to_string();
    let name = meta_str(pod, "name").to_string();
    let sa_name = pod["spec"]["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    pod["spec"]["serviceAccountName"] = json!(sa_name);
    pod["spec"]["serviceAccount"] = json!(sa_name);
    let Some(sa) = core.get(&StorageKey::new("", "serviceaccounts"), &ns, &sa_name) else {
        return Err(ApiError::forbidden(
            forbidden_prefix(
                "",
                "pods",
                &name,
                &format!(
                    "error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
                ),
            ),
            Some(json!({"name": name, "kind": "pods"})),
        ));
    };
    let automount = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or(sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    let already = pod["spec"]["volumes"].as_array().is_some_and(|vs| {
        vs.iter().any(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kube-api-access-"))
        })
    });
    if !automount || already {
        return Ok(());
    }
    let volume = format!("kube-api-access-{}", random_suffix(5));
    let mut volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    volumes.push(json!({
        "name": volume,
        "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}
    }));
    pod["spec"]["volumes"] = json!(volumes);
    for list in ["containers", "initContainers"] {
        // get_mut, not indexing: indexing would add an `initContainers: null` the client never sent.
        if let Some(cs) = pod["spec"].get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                let mut mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
                mounts.push(json!({"name": volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}));
                c["volumeMounts"] = json!(mounts);
            }
        }
    }
    Ok(())
}

/// The namespace of a new object must exist and not be terminating.
pub fn namespace_lifecycle(core: &Core, rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    let ns = meta_str(obj, "namespace");
    let Some(namespace) = core.get(&StorageKey::new("", "namespaces"), "", ns) else {
        return Err(ApiError::namespace_not_found(ns));
    };
    if namespace["metadata"]["deletionTimestamp"].is_string() {
        let name = meta_str(obj, "name");
        let mut details = json!({"name": name, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]});
        if !rt.group.is_empty() {
            details["group"] = json!(rt.group);
        }
        return Err(ApiError::forbidden(
            forbidden_prefix(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ),
            Some(details),
        ));
    }
    Ok(())
}

/// The status the CRD controllers would write: names accepted, established, stored versions.
fn crd_status(crd: &Value, old: Option<&Value>) -> Value {
    let names = &crd["spec"]["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let mut accepted = names.clone();
    if accepted["singular"].as_str().is_none_or(str::is_empty) {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted["listKind"].as_str().is_none_or(str::is_empty) {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let mut stored: Vec<Value> = old
        .and_then(|o| o["status"]["storedVersions"].as_array().cloned())
        .unwrap_or_default();
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        if v["storage"].as_bool() == Some(true) && !stored.contains(&v["name"]) {
            stored.push(v["name"].clone());
        }
    }
    let now = clock::now();
    let since = old
        .and_then(|o| {
            o["status"]["conditions"][0]["lastTransitionTime"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or(now);
    let mut status = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since}
        ],
        "storedVersions": stored
    });
    if crd["metadata"]["deletionTimestamp"].is_string() {
        status["conditions"].as_array_mut().expect("conditions").push(json!({
            "type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
            "message": "CustomResourceDefinition marked for deletion; instance deletion in progress", "lastTransitionTime": clock::now()
        }));
    }
    status
}

async fn custom_resource(
    core: &Core,
    w: &Write<'_>,
    old: Option<&Value>,
    obj: Value,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let (Some(check), Some(crd)) = (&core.crdcheck, &w.rt.crd) else {
        return Ok(obj);
    };
    match check
        .admit(&crd.crd, &obj, old)
        .await
        .map_err(ApiError::internal)?
    {
        Verdict::Allowed { object, pruned } => {
            unknown_fields(w, &pruned, warnings)?;
            Ok(object)
        }
        Verdict::Denied(status) => Err(ApiError::from_status(&status)),
    }
}

/// The fields an endpoint resets, which no manager comes to own through it: status on the main resource
/// of a kind with a status subresource; everything but status on the status subresource.
pub fn reset_paths<'a>(rt: &ResourceType, subresource: &str, obj: &'a Value) -> Vec<Vec<&'a str>> {
    match subresource {
        "status" => obj
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .filter(|k| !matches!(*k, "status" | "apiVersion" | "kind"))
            .map(|k| vec![k])
            .collect(),
        "" if rt.has_status() => vec![vec!["status"]],
        _ => Vec::new(),
    }
}

fn managed_fields(
    w: &Write<'_>,
    old: Option<&Value>,
    obj: &Value,
) -> Result<Vec<ManagedFieldsEntry>, ApiError> {
    let previous: Vec<ManagedFieldsEntry> = old
        .and_then(|o| serde_json::from_value(o["metadata"]["managedFields"].clone()).ok())
        .unwrap_or_default();
    match &w.managed {
        Managed::Given(entries) => Ok(entries.clone()),
        Managed::Record => {
            let api_version = w.rt.api_version();
            let now = clock::now();
            let req = kube_sim_patch::Request {
                manager: w.manager,
                api_version: &api_version,
                subresource: (!w.subresource.is_empty()).then_some(w.subresource),
                time: &now,
            };
            if let (Some(paths), "scale") = (w.rt.scale_paths(), w.subresource) {
                let path: Vec<&str> = paths.spec_replicas.iter().map(String::as_str).collect();
                return Ok(kube_sim_patch::record_scale_update(
                    old, obj, &previous, &req, &path,
                ));
            }
            let ignore = reset_paths(w.rt, w.subresource, obj);
            let ignore: Vec<&[&str]> = ignore.iter().map(|p| p.as_slice()).collect();
            kube_sim_patch::record_update_ignoring(
                old,
                obj,
                &previous,
                &req,
                &ignore,
                &schema_of(w.rt),
            )
            .map_err(|e| ApiError::bad_request(e.to_string()))
        }
    }
}

/// Equal apart from resourceVersion and the times in managedFields: then the write changes nothing.
pub fn unchanged(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            if let Some(entries) = m.get_mut("managedFields").and_then(Value::as_array_mut) {
                for e in entries {
                    e.as_object_mut().map(|e| e.remove("time"));
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

/// Runs a write through admission. `new` is the object the client wants (already merged for patches);
/// `old` is the stored object on update. The result is what to store.
pub async fn admit(
    core: &Core,
    w: Write<'_>,
    old: Option<&Value>,
    new: Value,
) -> Result<Admitted, ApiError> {
    let mut warnings = Vec::new();
    let rt = w.rt;
    let mut obj = new;
    obj["apiVersion"] = json!(rt.api_version());
    obj["kind"] = json!(rt.kind);
    if !obj["metadata"].is_object() {
        return Err(ApiError::bad_request(
            "Object 'metadata' is missing or not an object",
        ));
    }
    // An empty uid means "the stored one"; any other must be it (a PUT has already checked it as a
    // precondition, so this catches patches).
    if let Some(old) = old {
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
        if !uid.is_empty() && uid != meta_str(old, "uid") {
            return Err(ApiError::invalid(
                rt,
                meta_str(old, "name"),
                &[FieldError::invalid(
                    "metadata.uid",
                    json!(uid),
                    "field is immutable",
                )],
            ));
        }
    }

    // The status subresource splits writes: the main endpoint cannot change status, /status only status.
    if w.subresource == "status" {
        let old = old.ok_or_else(|| ApiError::not_found(rt, meta_str(&obj, "name")))?;
        let status = status_of(&obj);
        let managed = obj["metadata"].get("managedFields").cloned();
        obj = old.clone();
        set_status(&mut obj, status);
        if let Some(m) = managed {
            obj["metadata"]["managedFields"] = m;
        }
    } else if rt.has_status() {
        match old {
            Some(old) => set_status(&mut obj, status_of(old)),
            None => set_status(&mut obj, None),
        }
    }

    system_metadata(&w, old, &mut obj)?;

    if rt.crd.is_some() {
        obj = custom_resource(core, &w, old, obj, &mut warnings).await?;
    } else {
        let (group, kind) = match rt.view {
            View::EventsV1 => ("events.k8s.io", "Event"),
            View::Plain => (rt.group.as_str(), rt.kind.as_str()),
        };
        let decoded = decode::decode(group, kind, &obj).map_err(|e| {
            ApiError::bad_request(format!(
                "{kind} in version {:?} cannot be handled as a {kind}: {e}",
                rt.version
            ))
        })?;
        unknown_fields(&w, &decoded.unknown, &mut warnings)?;
        obj = decoded.object;
        if rt.view == View::EventsV1 {
            obj = events_view::to_core(&obj);
        }
        let (group, kind) = (rt.group.as_str(), rt.kind.as_str());
        // A scale write changes the parent's spec, so the parent's defaults and validation apply.
        if w.subresource.is_empty() || w.subresource == "scale" {
            defaults::apply(group, kind, &mut obj);
        }
        if old.is_none()
            && let Some(status) = initial_status(rt, &obj)
        {
            obj["status"] = status;
        }
        match (group, kind) {
            ("", "Pod") if old.is_none() => service_account(core, &mut obj)?,
            ("batch", "Job") if old.is_none() => defaults::job_selector(&mut obj),
            // The DefaultStorageClass plugin: claims that name no class get the default one. An
            // explicit "" asks for no class and is left alone.
            ("", "PersistentVolumeClaim")
                if old.is_none() && obj["spec"]["storageClassName"].is_null() =>
            {
                obj["spec"]["storageClassName"] = json!(DEFAULT_STORAGE_CLASS);
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                if let Some(check) = &core.crdcheck
                    && let Err(msg) = check.validate_crd(&obj).await.map_err(ApiError::internal)?
                {
                    let text = format!(
                        "CustomResourceDefinition.apiextensions.k8s.io {:?} is invalid: {msg}",
                        meta_str(&obj, "name")
                    );
                    return Err(ApiError::invalid(
                        rt,
                        meta_str(&obj, "name"),
                        &[FieldError::invalid("spec", Value::Null, msg)],
                    )
                    .with_message(text));
                }
                if old.is_none() {
                    obj["metadata"]["finalizers"] =
                        json!(["customresourcecleanup.apiextensions.k8s.io"]);
                }
                obj["status"] = crd_status(&obj, old);
            }
            _ => {}
        }
        // A scale write changes the parent's spec, so the parent's defaults and validation apply.
        if w.subresource.is_empty() || w.subresource == "scale" {
            let errs = if kind == "Service" && group.is_empty() {
                let (others, _) = core.store.list(&rt.storage, None);
                let mut errs = services::allocate(&mut obj, old, &others);
                errs.extend(validation::validate(group, kind, &obj, old));
                errs
            } else {
                validation::validate(group, kind, &obj, old)
            };
            if !errs.is_empty() {
                return Err(ApiError::invalid(rt, meta_str(&obj, "name"), &errs));
            }
        }
    }

    if let Some(old) = old
        && tracks_generation(rt)
        && spec_changed(&w, old, &obj)
    {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
        obj["metadata"]["generation"] = json!(g + 1);
    }

    let entries = managed_fields(&w, old, &obj)?;
    if entries.is_empty() {
        obj["metadata"]
            .as_object_mut()
            .map(|m| m.remove("managedFields"));
    } else {
        obj["metadata"]["managedFields"] =
            serde_json::to_value(entries).map_err(|e| ApiError::internal(e.to_string()))?;
    }
    Ok(Admitted {
        object: obj,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_look_like_uuids() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uid(), u);
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"containers": [{"name": "a"}]})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}]})
            ),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]})),
            "Burstable"
        );
    }

    #[test]
    fn writes_that_change_only_timestamps_are_no_ops() {
        let a = json!({"metadata": {"resourceVersion": "1", "managedFields": [{"manager": "m", "time": "t1"}]}, "spec": {"x": 1}});
        let mut b = a.clone();
        b["metadata"]["resourceVersion"] = json!("2");
        b["metadata"]["managedFields"][0]["time"] = json!("t2");
        assert!(unchanged(&a, &b));
        b["spec"]["x"] = json!(2);
        assert!(!unchanged(&a, &b));
    }
}
