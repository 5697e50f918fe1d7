//! The small controllers: each namespace gets its `default` ServiceAccount and `kube-root-ca.crt`
//! ConfigMap; a deleted namespace is emptied, then removed; a deleted CRD's instances are deleted before
//! it goes; claims are bound by a simulated provisioner.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Writer, run_loop, storage};
use crate::core::{Controller, Core};
use crate::lifecycle::DeleteOptions;
use crate::registry::StorageKey;
use crate::store::meta_str;

async fn namespace_defaults(core: &Core, ns: &Value) {
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    let name = meta_str(ns, "name");
    let sa_rt = core.built_in("", "serviceaccounts");
    if core.get(&sa_rt.storage, name, "default").is_none() {
        let _ = writer
            .create(&sa_rt, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}))
            .await;
    }
    let cm_rt = core.built_in("", "configmaps");
    if core.get(&cm_rt.storage, name, "kube-root-ca.crt").is_none() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": name, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": core.ca_pem}});
        let _ = writer.create(&cm_rt, cm).await;
    }
}

/// Empties a terminating namespace, then clears its `kubernetes` finalizer.
async fn terminate_namespace(core: &Core, ns: &Value) {
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    let name = meta_str(ns, "name");
    let mut remaining = 0;
    for rt in core
        .registry
        .all()
        .into_iter()
        .filter(|t| t.namespaced && t.view == crate::registry::View::Plain)
    {
        let (items, _) = core.store.list(&rt.storage, Some(name));
        for obj in &items {
            remaining += 1;
            if !obj["metadata"]["deletionTimestamp"].is_string() {
                let _ = writer.delete(&rt, obj, &DeleteOptions::default());
            }
        }
    }
    if remaining == 0 {
        let rt = core.built_in("", "namespaces");
        let mut finalized = ns.clone();
        finalized["spec"]["finalizers"] = json!([]);
        let _ = crate::lifecycle::update(core, &rt, finalized, crate::store::resource_version(ns));
    }
}

/// Deletes a terminating CRD's custom resources, then lets the CRD go.
async fn clean_up_crd(core: &Core, crd: &Value) {
    let writer = Writer {
        core,
        manager: "apiextensions-apiserver",
    };
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
    let key = StorageKey::new(group, plural);
    let (items, _) = core.store.list(&key, None);
    if let Some(rt) = core.registry.by_storage(&key) {
        for obj in items
            .iter()
            .filter(|o| !o["metadata"]["deletionTimestamp"].is_string())
        {
            let _ = writer.delete(&rt, obj, &DeleteOptions::default());
        }
    }
    if items.is_empty() {
        let rt = core.built_in("apiextensions.k8s.io", "customresourcedefinitions");
        let mut done = crd.clone();
        let rest: Vec<Value> = crd["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| *f != "customresourcecleanup.apiextensions.k8s.io")
            .cloned()
            .collect();
        done["metadata"]["finalizers"] = json!(rest);
        let _ = crate::lifecycle::update(core, &rt, done, crate::store::resource_version(crd));
    }
}

/// Binds a pending claim to a volume of the size it asks for, as a dynamic provisioner would. Every
/// named storage class is provisioned; a claim that asks for no class ("") waits, as it would for a
/// statically created volume that never comes.
async fn bind_claim(core: &Core, pvc: &Value) {
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    let rt = core.built_in("", "persistentvolumeclaims");
    let mut bound = pvc.clone();
    bound["spec"]["volumeName"] = json!(format!("pvc-{}", meta_str(pvc, "uid")));
    bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
    bound["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
    let Ok(updated) = writer.update(&rt, pvc, bound).await else {
        return;
    };
    let status = json!({
        "phase": "Bound",
        "accessModes": pvc["spec"]["accessModes"],
        "capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
    });
    let _ = writer.update_status(&rt, &updated, status).await;
}

async fn sync(core: &Core) {
    let (namespaces, _) = core.store.list(&storage("", "namespaces"), None);
    for ns in &namespaces {
        if ns["metadata"]["deletionTimestamp"].is_string() {
            terminate_namespace(core, ns).await;
        } else {
            namespace_defaults(core, ns).await;
        }
    }
    let (crds, _) = core.store.list(
        &storage("apiextensions.k8s.io", "customresourcedefinitions"),
        None,
    );
    for crd in crds
        .iter()
        .filter(|c| c["metadata"]["deletionTimestamp"].is_string())
    {
        clean_up_crd(core, crd).await;
    }
    let (claims, _) = core
        .store
        .list(&storage("", "persistentvolumeclaims"), None);
    for pvc in claims.iter().filter(|c| {
        c["status"]["phase"] == "Pending"
            && !c["metadata"]["deletionTimestamp"].is_string()
            && c["spec"]["storageClassName"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
    }) {
        bind_claim(core, pvc).await;
    }
}

pub async fn run(core: Arc<Core>) {
    run_loop(core, Duration::from_millis(500), |core, event| async move {
        if !core.switches.enabled(Controller::Namespaces) {
            return;
        }
        let relevant = event.as_ref().is_none_or(|e| {
            (e.storage.group.is_empty()
                && matches!(
                    e.storage.resource.as_str(),
                    "namespaces" | "persistentvolumeclaims"
                ))
                || e.storage.group == "apiextensions.k8s.io"
                || e.object["metadata"]["deletionTimestamp"].is_string()
                || e.kind == crate::store::EventType::Deleted
        });
        if relevant {
            sync(&core).await;
        }
    })
    .await;
}
