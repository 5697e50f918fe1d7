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

pub fn failed(pod: &Pod) -> bool {
    phase(pod) == "Failed"
}

/// Why a failed pod failed, as its status says (`Evicted`, ...), or `Failed`.
pub fn failure_reason(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_else(|| "Failed".into())
}
