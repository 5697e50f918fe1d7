//! What a pod's status says: whether it is ready, its phase, and why it failed. Read by both the plan
//! (when to replace a pod) and the status (what to report), so neither reaches into the other.

use k8s_openapi::api::core::v1::{Pod, PodCondition};

pub fn condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

pub fn ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Whether the pod has ended for good. A workspace's container restarts always, so a pod that ends was
/// stopped from outside: evicted, or its node shut down. The kubelet then calls it Failed, or Succeeded
/// when the container exited cleanly on the stop signal (as Jupyter does); both need a new pod.
pub fn failed(pod: &Pod) -> bool {
    matches!(phase(pod), "Failed" | "Succeeded")
}

/// Why a failed pod failed, as its status says (`Evicted`, ...), or `Failed`.
pub fn failure_reason(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_else(|| "Failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({"status": {"phase": phase, "reason": "Evicted"}}))
            .unwrap()
    }

    #[test]
    fn an_evicted_pod_has_ended_whichever_terminal_phase_the_kubelet_gave_it() {
        assert!(failed(&pod("Failed")));
        assert!(failed(&pod("Succeeded")));
        assert!(!failed(&pod("Running")));
        assert!(!failed(&pod("Pending")));
        assert_eq!(failure_reason(&pod("Succeeded")), "Evicted");
    }
}
