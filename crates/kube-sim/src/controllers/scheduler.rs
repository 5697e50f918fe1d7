//! The scheduler: binds pending pods to a node that fits their nodeSelector, tolerations and resource
//! requests, or reports why none does, in the default scheduler's words.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{record_event, run_loop, storage};
use crate::clock;
use crate::core::{Controller, Core};
use crate::errors::ApiError;
use crate::quantity;
use crate::selectors::labels_of;
use crate::store::{meta_str, resource_version};

fn requests(pod: &Value) -> BTreeMap<String, f64> {
    let mut total = BTreeMap::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let res = &c["resources"];
        // Extended resources are requested through limits alone.
        let limits = res["limits"].as_object().cloned().unwrap_or_default();
        let mut reqs = res["requests"].as_object().cloned().unwrap_or_default();
        for (k, v) in limits {
            reqs.entry(k).or_insert(v);
        }
        for (k, v) in reqs {
            if let Some(n) = v.as_str().and_then(quantity::parse).or(v.as_f64()) {
                *total.entry(k).or_insert(0.0) += n;
            }
        }
    }
    total
}

fn tolerates(pod: &Value, taint: &Value) -> bool {
    pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            let key_ok = t["key"].as_str().is_none_or(str::is_empty) || t["key"] == taint["key"];
            let effect_ok =
                t["effect"].as_str().is_none_or(str::is_empty) || t["effect"] == taint["effect"];
            let value_ok = t["operator"] == "Exists"
                || t["value"] == taint["value"]
                || (t["value"].is_null() && taint["value"].is_null());
            key_ok && effect_ok && value_ok
        })
}

/// Why `node` cannot take `pod`, in the scheduler's words, or None if it can.
fn misfit(pod: &Value, node: &Value, bound: &[Value]) -> Option<String> {
    let labels = labels_of(node);
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    if !selector_ok {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    // A cordoned node takes only pods that tolerate its unschedulable taint.
    let cordon = json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"});
    if node["spec"]["unschedulable"].as_bool() == Some(true) && !tolerates(pod, &cordon) {
        return Some("node(s) were unschedulable".into());
    }
    for taint in node["spec"]["taints"].as_array().into_iter().flatten() {
        if matches!(taint["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
            && !tolerates(pod, taint)
        {
            return Some(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint["key"].as_str().unwrap_or_default(),
                taint["value"].as_str().unwrap_or_default()
            ));
        }
    }
    let wanted = requests(pod);
    let node_name = meta_str(node, "name");
    for (resource, amount) in &wanted {
        let allocatable = node["status"]["allocatable"][resource]
            .as_str()
            .and_then(quantity::parse)
            .unwrap_or(0.0);
        let used: f64 = bound
            .iter()
            .filter(|p| p["spec"]["nodeName"].as_str() == Some(node_name))
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .map(|p| requests(p).get(resource).copied().unwrap_or(0.0))
            .sum();
        if used + amount > allocatable + 1e-9 {
            return Some(format!("Insufficient {resource}"));
        }
    }
    None
}

/// `pod` with its PodScheduled condition replaced by `condition`.
fn with_scheduled_condition(pod: &Value, condition: Value) -> Value {
    let mut updated = pod.clone();
    let mut conds: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] != "PodScheduled")
        .cloned()
        .collect();
    conds.push(condition);
    updated["status"]["conditions"] = json!(conds);
    updated
}

/// Binds `pod` to `node`: sets spec.nodeName, which only a binding may do.
pub fn bind(core: &Core, pod: &Value, node: &str) -> Result<(), ApiError> {
    let mut bound = with_scheduled_condition(
        pod,
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": clock::now()}),
    );
    bound["spec"]["nodeName"] = json!(node);
    core.store
        .update(&storage("", "pods"), bound, resource_version(pod))
        .map(|_| ())
        .map_err(|e| ApiError::internal(format!("binding {}: {e:?}", meta_str(pod, "name"))))
}

async fn schedule(core: &Core) {
    let (pods, _) = core.store.list(&storage("", "pods"), None);
    let (nodes, _) = core.store.list(&storage("", "nodes"), None);
    for pod in pods.iter().filter(|p| {
        p["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
            && !p["metadata"]["deletionTimestamp"].is_string()
            && p["spec"]["schedulerName"]
                .as_str()
                .is_none_or(|s| s == "default-scheduler")
    }) {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let fit = nodes.iter().find(|n| match misfit(pod, n, &pods) {
            None => true,
            Some(why) => {
                *reasons.entry(why).or_default() += 1;
                false
            }
        });
        match fit {
            Some(node) => {
                let node_name = meta_str(node, "name");
                if bind(core, pod, node_name).is_ok() {
                    let msg = format!(
                        "Successfully assigned {}/{} to {node_name}",
                        meta_str(pod, "namespace"),
                        meta_str(pod, "name")
                    );
                    record_event(core, pod, "Normal", "Scheduled", &msg, "default-scheduler").await;
                }
            }
            None => {
                let parts: Vec<String> = reasons
                    .iter()
                    .map(|(why, n)| format!("{n} {why}"))
                    .collect();
                let message = format!(
                    "0/{} nodes are available: {}. preemption: 0/{} nodes are available: {} Preemption is not helpful for scheduling.",
                    nodes.len(),
                    parts.join(", "),
                    nodes.len(),
                    nodes.len()
                );
                let already = pod["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "PodScheduled" && c["message"] == json!(message));
                if already {
                    continue;
                }
                let updated = with_scheduled_condition(
                    pod,
                    json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastProbeTime": null, "lastTransitionTime": clock::now()}),
                );
                if core
                    .store
                    .update(&storage("", "pods"), updated, resource_version(pod))
                    .is_ok()
                {
                    record_event(
                        core,
                        pod,
                        "Warning",
                        "FailedScheduling",
                        &message,
                        "default-scheduler",
                    )
                    .await;
                }
            }
        }
    }
}

pub async fn run(core: Arc<Core>) {
    run_loop(core, Duration::from_secs(2), |core, event| async move {
        if !core.switches.enabled(Controller::Scheduler) {
            return;
        }
        let relevant = event.as_ref().is_none_or(|e| {
            e.storage.group.is_empty()
                && (e.storage.resource == "pods" || e.storage.resource == "nodes")
        });
        if relevant {
            schedule(&core).await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: Value, gpus: &str) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels}, "spec": {},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": gpus, "pods": "110"}}})
    }

    #[test]
    fn node_selector_and_resources() {
        let n = node(json!({"disk": "ssd"}), "0");
        let pod = json!({"spec": {"nodeSelector": {"disk": "hdd"}, "containers": []}});
        assert_eq!(
            misfit(&pod, &n, &[]).unwrap(),
            "node(s) didn't match Pod's node affinity/selector"
        );
        let gpu =
            json!({"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}});
        assert_eq!(
            misfit(&gpu, &n, &[]).unwrap(),
            "Insufficient nvidia.com/gpu"
        );
        assert!(misfit(&gpu, &node(json!({}), "1"), &[]).is_none());
        let big = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "3"}}}]}});
        let mut running = big.clone();
        running["spec"]["nodeName"] = json!("n1");
        assert!(misfit(&big, &n, &[]).is_none());
        assert_eq!(misfit(&big, &n, &[running]).unwrap(), "Insufficient cpu");
    }

    #[test]
    fn cordoned_nodes_take_no_new_pods() {
        let mut n = node(json!({}), "0");
        n["spec"]["unschedulable"] = json!(true);
        let pod = json!({"spec": {"containers": []}});
        assert_eq!(misfit(&pod, &n, &[]).unwrap(), "node(s) were unschedulable");
        let tolerant = json!({"spec": {"containers": [], "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}});
        assert!(misfit(&tolerant, &n, &[]).is_none());
    }

    #[test]
    fn taints_need_tolerations() {
        let mut n = node(json!({}), "0");
        n["spec"]["taints"] = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        let pod = json!({"spec": {"containers": []}});
        assert!(misfit(&pod, &n, &[]).unwrap().contains("untolerated taint"));
        let tolerant = json!({"spec": {"containers": [], "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}});
        assert!(misfit(&tolerant, &n, &[]).is_none());
    }
}
