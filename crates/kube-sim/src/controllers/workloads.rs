//! Workload controllers: Deployments make ReplicaSets (named by a pod-template hash), ReplicaSets make
//! pods with generated names, StatefulSets make ordinal pods one by one, Jobs run pods to completion.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Writer, controlled_by, controller_ref, pod_ready, record_event, run_loop, storage};
use crate::clock;
use crate::core::{Controller, Core};
use crate::lifecycle::DeleteOptions;
use crate::registry::ResourceType;
use crate::selectors::LabelSelector;
use crate::store::meta_str;

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a over the template's JSON, spelled in the apiserver's safe alphabet, as pod-template-hash is.
/// Written out because the real hash covers Go's in-memory form of the template, which no crate mimics;
/// what matters is the properties: stable for one template, different for another.
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h.to_string()
        .bytes()
        .map(|d| SAFE_ALPHABET[usize::from(d) % SAFE_ALPHABET.len()] as char)
        .collect()
}

fn is_active(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_string()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// A pod from a template, owned by `owner`.
fn pod_from_template(
    owner: &Value,
    template: &Value,
    name: Option<&str>,
    generate_prefix: &str,
) -> Value {
    let mut meta = json!({
        "namespace": meta_str(owner, "namespace"),
        "labels": template["metadata"]["labels"],
        "ownerReferences": [controller_ref(owner)],
    });
    match name {
        Some(n) => meta["name"] = json!(n),
        None => meta["generateName"] = json!(generate_prefix),
    }
    if template["metadata"]["annotations"].is_object() {
        meta["annotations"] = template["metadata"]["annotations"].clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
}

/// Creates a pod for a workload, recording the outcome on the workload as its controller does.
async fn create_pod(core: &Core, owner: &Value, pod: Value, component: &str) -> Option<Value> {
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    match writer.create(&core.built_in("", "pods"), pod).await {
        Ok(p) => {
            record_event(
                core,
                owner,
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {}", meta_str(&p, "name")),
                component,
            )
            .await;
            Some(p)
        }
        Err(e) => {
            record_event(
                core,
                owner,
                "Warning",
                "FailedCreate",
                &format!("Error creating: {}", e.message),
                component,
            )
            .await;
            None
        }
    }
}

async fn set_status(core: &Core, rt: &ResourceType, obj: &Value, status: Value) {
    let mut merged = obj["status"].clone();
    if !merged.is_object() {
        merged = json!({});
    }
    for (k, v) in status.as_object().into_iter().flatten() {
        merged[k] = v.clone();
    }
    if merged != obj["status"] {
        let writer = Writer {
            core,
            manager: "kube-controller-manager",
        };
        let _ = writer.update_status(rt, obj, merged).await;
    }
}

async fn replica_sets(core: &Core, pods: &[Value]) {
    let rt = core.built_in("apps", "replicasets");
    let (sets, _) = core.store.list(&rt.storage, None);
    for rs in sets.iter().filter(|r| !deleting(r)) {
        let uid = meta_str(rs, "uid");
        let owned: Vec<&Value> = pods
            .iter()
            .filter(|p| controlled_by(p, uid) && is_active(p))
            .collect();
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        if owned.len() < want {
            for _ in owned.len()..want {
                let pod = pod_from_template(
                    rs,
                    &rs["spec"]["template"],
                    None,
                    &format!("{}-", meta_str(rs, "name")),
                );
                create_pod(core, rs, pod, "replicaset-controller").await;
            }
        } else if owned.len() > want {
            let writer = Writer {
                core,
                manager: "kube-controller-manager",
            };
            let mut extra = owned.clone();
            // Not-ready pods go first, then the newest.
            extra.sort_by_key(|p| {
                (
                    pod_ready(p),
                    std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
                )
            });
            for p in extra.into_iter().take(owned.len() - want) {
                if writer
                    .delete(&core.built_in("", "pods"), p, &DeleteOptions::default())
                    .is_ok()
                {
                    record_event(
                        core,
                        rs,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("Deleted pod: {}", meta_str(p, "name")),
                        "replicaset-controller",
                    )
                    .await;
                }
            }
        }
        let ready = owned.iter().filter(|p| pod_ready(p)).count();
        set_status(core, &rt, rs, json!({
            "replicas": owned.len(), "fullyLabeledReplicas": owned.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"],
        }))
        .await;
    }
}

async fn deployments(core: &Core) {
    let rt = core.built_in("apps", "deployments");
    let rs_rt = core.built_in("apps", "replicasets");
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    let (deploys, _) = core.store.list(&rt.storage, None);
    let (sets, _) = core.store.list(&rs_rt.storage, None);
    for d in deploys.iter().filter(|d| !deleting(d)) {
        let (ns, name) = (meta_str(d, "namespace"), meta_str(d, "name"));
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let hash = template_hash(&d["spec"]["template"]);
        let rs_name = format!("{name}-{hash}");
        let owned: Vec<&Value> = sets
            .iter()
            .filter(|r| controlled_by(r, meta_str(d, "uid")))
            .collect();
        let revision = owned.len() + 1;
        let current = owned
            .iter()
            .find(|r| meta_str(r, "name") == rs_name)
            .copied();
        match current {
            None => {
                let mut template = d["spec"]["template"].clone();
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name, "namespace": ns, "labels": template["metadata"]["labels"],
                        "annotations": {"deployment.kubernetes.io/desired-replicas": want.to_string(), "deployment.kubernetes.io/max-replicas": (want + 1).to_string(), "deployment.kubernetes.io/revision": revision.to_string()},
                        "ownerReferences": [controller_ref(d)],
                    },
                    "spec": {"replicas": want, "selector": selector, "template": template},
                });
                if writer.create(&rs_rt, rs).await.is_ok() {
                    record_event(
                        core,
                        d,
                        "Normal",
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {rs_name} from 0 to {want}"),
                        "deployment-controller",
                    )
                    .await;
                }
            }
            Some(rs) if rs["spec"]["replicas"].as_i64() != Some(want) => {
                let from = rs["spec"]["replicas"].as_i64().unwrap_or(0);
                let mut updated = rs.clone();
                updated["spec"]["replicas"] = json!(want);
                if writer.update(&rs_rt, rs, updated).await.is_ok() {
                    let verb = if want > from { "up" } else { "down" };
                    record_event(
                        core,
                        d,
                        "Normal",
                        "ScalingReplicaSet",
                        &format!("Scaled {verb} replica set {rs_name} from {from} to {want}"),
                        "deployment-controller",
                    )
                    .await;
                }
            }
            Some(_) => {}
        }
        // A new template replaces the old ReplicaSets' pods.
        for old in owned
            .iter()
            .filter(|r| meta_str(r, "name") != rs_name && r["spec"]["replicas"].as_i64() != Some(0))
        {
            let mut updated = (*old).clone();
            let from = old["spec"]["replicas"].as_i64().unwrap_or(0);
            updated["spec"]["replicas"] = json!(0);
            if writer.update(&rs_rt, old, updated).await.is_ok() {
                record_event(
                    core,
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!(
                        "Scaled down replica set {} from {from} to 0",
                        meta_str(old, "name")
                    ),
                    "deployment-controller",
                )
                .await;
            }
        }
        let count = |field: &str| -> i64 {
            owned
                .iter()
                .map(|r| r["status"][field].as_i64().unwrap_or(0))
                .sum()
        };
        let updated_replicas = current
            .map(|r| r["status"]["replicas"].as_i64().unwrap_or(0))
            .unwrap_or(0);
        let available = count("availableReplicas");
        let now = clock::now();
        let progressing_reason = if current
            .is_some_and(|r| r["status"]["readyReplicas"].as_i64().unwrap_or(0) >= want)
        {
            (
                "NewReplicaSetAvailable",
                format!("ReplicaSet {rs_name:?} has successfully progressed."),
            )
        } else {
            (
                "ReplicaSetUpdated",
                format!("ReplicaSet {rs_name:?} is progressing."),
            )
        };
        let conditions = json!([
            {"type": "Available", "status": if available >= want { "True" } else { "False" },
             "reason": if available >= want { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
             "message": if available >= want { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
             "lastUpdateTime": now, "lastTransitionTime": now},
            {"type": "Progressing", "status": "True", "reason": progressing_reason.0, "message": progressing_reason.1, "lastUpdateTime": now, "lastTransitionTime": now}
        ]);
        let mut status = json!({
            "observedGeneration": d["metadata"]["generation"], "replicas": count("replicas"), "updatedReplicas": updated_replicas,
            "readyReplicas": count("readyReplicas"), "availableReplicas": available,
        });
        if available < want {
            status["unavailableReplicas"] = json!(want - available);
        }
        // Conditions are rewritten only when their status or reason changes, to keep their timestamps.
        let same_conditions = d["status"]["conditions"].as_array().is_some_and(|old| {
            old.len() == 2
                && old
                    .iter()
                    .zip(conditions.as_array().expect("array"))
                    .all(|(a, b)| a["status"] == b["status"] && a["reason"] == b["reason"])
        });
        status["conditions"] = if same_conditions {
            d["status"]["conditions"].clone()
        } else {
            conditions
        };
        set_status(core, &rt, d, status).await;
    }
}

async fn stateful_sets(core: &Core, pods: &[Value]) {
    let rt = core.built_in("apps", "statefulsets");
    let (sets, _) = core.store.list(&rt.storage, None);
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    for sts in sets.iter().filter(|s| !deleting(s)) {
        let (ns, name) = (meta_str(sts, "namespace"), meta_str(sts, "name"));
        let want = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let revision = format!("{name}-{}", template_hash(&sts["spec"]["template"]));
        let owned: Vec<&Value> = pods
            .iter()
            .filter(|p| controlled_by(p, meta_str(sts, "uid")))
            .collect();
        let by_ordinal = |i: usize| {
            owned
                .iter()
                .find(|p| meta_str(p, "name") == format!("{name}-{i}"))
                .copied()
        };
        for i in 0..want {
            if by_ordinal(i).is_some() {
                continue;
            }
            // OrderedReady: a pod is created once its predecessor is ready.
            let ordered = sts["spec"]["podManagementPolicy"].as_str() != Some("Parallel");
            if ordered && i > 0 && !by_ordinal(i - 1).is_some_and(pod_ready) {
                break;
            }
            let mut template = sts["spec"]["template"].clone();
            let pod_name = format!("{name}-{i}");
            template["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            template["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = json!(i.to_string());
            template["metadata"]["labels"]["controller-revision-hash"] = json!(revision);
            template["spec"]["hostname"] = json!(pod_name);
            if let Some(svc) = sts["spec"]["serviceName"].as_str() {
                template["spec"]["subdomain"] = json!(svc);
            }
            for claim in sts["spec"]["volumeClaimTemplates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let claim_name = format!("{}-{pod_name}", meta_str(claim, "name"));
                let pvc_rt = core.built_in("", "persistentvolumeclaims");
                if core.get(&pvc_rt.storage, ns, &claim_name).is_none() {
                    let mut pvc = claim.clone();
                    pvc["apiVersion"] = json!("v1");
                    pvc["kind"] = json!("PersistentVolumeClaim");
                    pvc["metadata"] = json!({"name": claim_name, "namespace": ns, "labels": sts["spec"]["selector"]["matchLabels"]});
                    let _ = writer.create(&pvc_rt, pvc).await;
                }
                let mut volumes = template["spec"]["volumes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                volumes.push(json!({"name": meta_str(claim, "name"), "persistentVolumeClaim": {"claimName": claim_name}}));
                template["spec"]["volumes"] = json!(volumes);
            }
            let pod = pod_from_template(sts, &template, Some(&pod_name), "");
            create_pod(core, sts, pod, "statefulset-controller").await;
            if ordered {
                break;
            }
        }
        for p in owned.iter().filter(|p| {
            meta_str(p, "name")
                .rsplit('-')
                .next()
                .and_then(|o| o.parse::<usize>().ok())
                .is_some_and(|o| o >= want)
                && !deleting(p)
        }) {
            if writer
                .delete(&core.built_in("", "pods"), p, &DeleteOptions::default())
                .is_ok()
            {
                record_event(
                    core,
                    sts,
                    "Normal",
                    "SuccessfulDelete",
                    &format!(
                        "delete Pod {} in StatefulSet {name} successful",
                        meta_str(p, "name")
                    ),
                    "statefulset-controller",
                )
                .await;
            }
        }
        let active: Vec<&&Value> = owned.iter().filter(|p| is_active(p)).collect();
        let ready = active.iter().filter(|p| pod_ready(p)).count();
        set_status(core, &rt, sts, json!({
            "observedGeneration": sts["metadata"]["generation"], "replicas": active.len(), "readyReplicas": ready,
            "currentReplicas": active.len(), "updatedReplicas": active.len(), "availableReplicas": ready,
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
        }))
        .await;
    }
}

async fn jobs(core: &Core, pods: &[Value]) {
    let rt = core.built_in("batch", "jobs");
    let (jobs, _) = core.store.list(&rt.storage, None);
    for job in jobs.iter().filter(|j| !deleting(j)) {
        let done = job["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True");
        if done || job["spec"]["suspend"].as_bool() == Some(true) {
            continue;
        }
        let selector = LabelSelector::from_object(&job["spec"]["selector"]);
        let owned: Vec<&Value> = pods
            .iter()
            .filter(|p| controlled_by(p, meta_str(job, "uid")) && selector.matches(p))
            .collect();
        let count = |phase: &str| {
            owned
                .iter()
                .filter(|p| p["status"]["phase"] == phase)
                .count() as i64
        };
        let (succeeded, failed) = (count("Succeeded"), count("Failed"));
        let active: Vec<&&Value> = owned.iter().filter(|p| is_active(p)).collect();
        let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
        let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
        let backoff = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
        let now = clock::now();
        let start = job["status"]["startTime"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| now.clone());
        let mut status = json!({"startTime": start, "active": active.len(), "succeeded": succeeded, "failed": failed,
            "ready": active.iter().filter(|p| pod_ready(p)).count(), "terminating": 0, "uncountedTerminatedPods": {}});
        // A finished Job: its two conditions, the completion time on success, and an event.
        let outcome = if succeeded >= completions {
            Some((
                "SuccessCriteriaMet",
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                "Normal",
                "Completed",
                "Job completed",
            ))
        } else if failed > backoff {
            Some((
                "FailureTarget",
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ))
        } else {
            None
        };
        if let Some((first, last, reason, message, event_type, event_reason, note)) = outcome {
            status["active"] = json!(0);
            if last == "Complete" {
                status["completionTime"] = json!(now);
            }
            let condition = |kind: &str| json!({"type": kind, "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now});
            status["conditions"] = json!([condition(first), condition(last)]);
            set_status(core, &rt, job, status).await;
            record_event(core, job, event_type, event_reason, note, "job-controller").await;
            continue;
        }
        let want_active = parallelism.min(completions - succeeded).max(0) as usize;
        for _ in active.len()..want_active {
            let pod = pod_from_template(
                job,
                &job["spec"]["template"],
                None,
                &format!("{}-", meta_str(job, "name")),
            );
            create_pod(core, job, pod, "job-controller").await;
        }
        set_status(core, &rt, job, status).await;
    }
}

pub async fn run(core: Arc<Core>) {
    run_loop(core, Duration::from_secs(1), |core, event| async move {
        if !core.switches.enabled(Controller::Workloads) {
            return;
        }
        let relevant = event.as_ref().is_none_or(|e| {
            (e.storage.group.is_empty() && e.storage.resource == "pods")
                || e.storage.group == "apps"
                || e.storage.group == "batch"
        });
        if !relevant {
            return;
        }
        deployments(&core).await;
        let (pods, _) = core.store.list(&storage("", "pods"), None);
        replica_sets(&core, &pods).await;
        stateful_sets(&core, &pods).await;
        jobs(&core, &pods).await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_and_safe() {
        let a = json!({"spec": {"containers": [{"name": "c", "image": "x:1"}]}});
        let b = json!({"spec": {"containers": [{"name": "c", "image": "x:2"}]}});
        assert_eq!(template_hash(&a), template_hash(&a));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert!(
            template_hash(&a)
                .bytes()
                .all(|c| SAFE_ALPHABET.contains(&c))
        );
    }
}
