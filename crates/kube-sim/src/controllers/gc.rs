//! The garbage collector: objects whose owners are all gone are deleted; foreground deletion waits for
//! blocking dependents; orphaning strips the owner reference from dependents.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Writer, run_loop};
use crate::core::{Controller, Core};
use crate::lifecycle::DeleteOptions;
use crate::registry::StorageKey;
use crate::store::{EventType, meta_str};

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_finalizer(obj: &Value, name: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == name))
}

fn without_finalizer(obj: &Value, name: &str) -> Value {
    let mut o = obj.clone();
    let rest: Vec<Value> = obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| *f != name)
        .cloned()
        .collect();
    o["metadata"]["finalizers"] = json!(rest);
    o
}

fn without_owner(obj: &Value, uid: &str) -> Value {
    let mut o = obj.clone();
    let rest: Vec<Value> = owner_refs(obj)
        .into_iter()
        .filter(|r| r["uid"] != uid)
        .collect();
    if rest.is_empty() {
        o["metadata"]
            .as_object_mut()
            .map(|m| m.remove("ownerReferences"));
    } else {
        o["metadata"]["ownerReferences"] = json!(rest);
    }
    o
}

async fn collect(core: &Core) {
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    let all = core.store.snapshot();
    let by_uid: HashMap<&str, (&StorageKey, &Value)> = all
        .iter()
        .map(|(k, o)| (meta_str(o, "uid"), (k, o)))
        .collect();
    let dependents_of = |uid: &str| -> Vec<&(StorageKey, Value)> {
        all.iter()
            .filter(|(_, o)| owner_refs(o).iter().any(|r| r["uid"] == uid))
            .collect()
    };
    let type_of = |k: &StorageKey| core.registry.by_storage(k);

    // Owners that are being deleted and wait on their dependents.
    for (key, owner) in all
        .iter()
        .filter(|(_, o)| o["metadata"]["deletionTimestamp"].is_string())
    {
        let uid = meta_str(owner, "uid");
        let Some(owner_rt) = type_of(key) else {
            continue;
        };
        if has_finalizer(owner, "orphan") {
            for (dk, dep) in dependents_of(uid) {
                if let Some(rt) = type_of(dk) {
                    let _ = writer.update(&rt, dep, without_owner(dep, uid)).await;
                }
            }
            let _ = writer
                .update(&owner_rt, owner, without_finalizer(owner, "orphan"))
                .await;
            continue;
        }
        if has_finalizer(owner, "foregroundDeletion") {
            let deps = dependents_of(uid);
            for (dk, dep) in &deps {
                if let (Some(rt), false) = (
                    type_of(dk),
                    dep["metadata"]["deletionTimestamp"].is_string(),
                ) {
                    let opts = DeleteOptions {
                        propagation: Some(crate::lifecycle::Propagation::Foreground),
                        ..Default::default()
                    };
                    let _ = writer.delete(&rt, dep, &opts);
                }
            }
            let blocking = deps.iter().any(|(_, d)| {
                owner_refs(d)
                    .iter()
                    .any(|r| r["uid"] == uid && r["blockOwnerDeletion"].as_bool() == Some(true))
            });
            if !blocking {
                let _ = writer
                    .update(
                        &owner_rt,
                        owner,
                        without_finalizer(owner, "foregroundDeletion"),
                    )
                    .await;
            }
        }
    }

    // Dependents whose owners are gone.
    for (key, obj) in all.iter().filter(|(_, o)| {
        !owner_refs(o).is_empty() && !o["metadata"]["deletionTimestamp"].is_string()
    }) {
        let refs = owner_refs(obj);
        let ns = meta_str(obj, "namespace");
        let alive = |r: &Value| {
            by_uid
                .get(r["uid"].as_str().unwrap_or_default())
                .is_some_and(|(_, owner)| {
                    // A namespaced dependent's owner is in its namespace, or cluster-scoped.
                    let owner_ns = meta_str(owner, "namespace");
                    owner_ns.is_empty() || owner_ns == ns
                })
        };
        let dangling: Vec<&Value> = refs.iter().filter(|r| !alive(r)).collect();
        if dangling.is_empty() {
            continue;
        }
        let Some(rt) = type_of(key) else { continue };
        if dangling.len() == refs.len() {
            let _ = writer.delete(&rt, obj, &DeleteOptions::default());
        } else {
            let mut cleaned = obj.clone();
            for r in dangling {
                cleaned = without_owner(&cleaned, r["uid"].as_str().unwrap_or_default());
            }
            let _ = writer.update(&rt, obj, cleaned).await;
        }
    }
}

pub async fn run(core: Arc<Core>) {
    run_loop(core, Duration::from_secs(2), |core, event| async move {
        if !core.switches.enabled(Controller::GarbageCollector) {
            return;
        }
        let relevant = event.as_ref().is_none_or(|e| {
            e.kind == EventType::Deleted
                || e.object["metadata"]["deletionTimestamp"].is_string()
                || (e.kind == EventType::Added
                    && e.object["metadata"]["ownerReferences"].is_array())
        });
        if relevant {
            collect(&core).await;
        }
    })
    .await;
}
