//! What a pod's status says: whether it is ready, its phase, why it failed, why a container waits.
//! Read by both the plan (when to replace a pod) and the status (what to report), so neither reaches
//! into the other.

use std::time::Duration;

use jiff::Timestamp;
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

/// How long the pod has been ready as of `now`, by its Ready condition's transition time (the
/// kubelet's clock, in whole seconds): zero when it is not ready, or when that time lies ahead.
pub fn ready_for(pod: &Pod, now: Timestamp) -> Duration {
    condition(pod, "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .and_then(|since| Duration::try_from(now.duration_since(since.0)).ok())
        .unwrap_or(Duration::ZERO)
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// The first reason a container gives for not running, with its message.
pub fn waiting_reason(pod: &Pod) -> Option<(String, String)> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|c| {
        let w = c.state.as_ref()?.waiting.as_ref()?;
        Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))
    })
}

/// Whether the pod has ended for good. A workspace's container restarts always, so a pod that ends was
/// stopped from outside: evicted, or its node shut down. The kubelet then calls it Failed, or Succeeded
/// when the container exited cleanly on the stop signal (as Jupyter does); both need a new pod.
pub fn ended(pod: &Pod) -> bool {
    matches!(phase(pod), "Failed" | "Succeeded")
}

/// Why a failed pod failed: its status's reason (`Evicted`, ...) when the kubelet gave one, else its
/// phase and how its container ended (an eviction whose container exited cleanly on the stop signal
/// leaves only `Succeeded` and exit code 0; the eviction itself is a Kubernetes event on the pod).
pub fn failure_reason(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    if let Some(reason) = status.and_then(|s| s.reason.clone()) {
        return reason;
    }
    let exit = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .find_map(|c| {
            let t = c.state.as_ref()?.terminated.as_ref()?;
            Some(format!(
                "container {} exited with code {}",
                c.name, t.exit_code
            ))
        });
    match exit {
        Some(how) => format!("{}, {how}", phase(pod)),
        None => phase(pod).to_string(),
    }
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
        assert!(ended(&pod("Failed")));
        assert!(ended(&pod("Succeeded")));
        assert!(!ended(&pod("Running")));
        assert!(!ended(&pod("Pending")));
        assert_eq!(failure_reason(&pod("Succeeded")), "Evicted");
    }

    #[test]
    fn a_pod_ended_without_a_reason_says_how_its_container_ended() {
        let ended: Pod = serde_json::from_value(serde_json::json!({"status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "workspace", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
        }}))
        .unwrap();
        assert_eq!(
            failure_reason(&ended),
            "Succeeded, container workspace exited with code 0"
        );
        let bare: Pod =
            serde_json::from_value(serde_json::json!({"status": {"phase": "Failed"}})).unwrap();
        assert_eq!(failure_reason(&bare), "Failed");
    }
}
