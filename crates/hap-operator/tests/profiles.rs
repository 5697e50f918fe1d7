//! Workspace profiles on the local cluster: the administrator's ConfigMap `hap-profiles` in the
//! operator's namespace, read through the operator's watch. A workspace naming a profile waits, with a
//! condition that says so, until the profile exists; then runs with the profile's resources and home
//! volume size; one asking for more than its profile allows is refused field by field, and heals when
//! the administrator raises the profile's limit.

mod common;

use common::{Harness, condition};
use hap_api::HapContainer;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

/// A profile whose workspaces ask for little, so they fit beside other tests' on a two-core node.
fn profiles(memory_limit: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": "hap-profiles"},
        "data": {"profiles.yaml": format!("
- name: small
  displayName: Small
  resources:
    requests: {{cpu: 50m, memory: 256Mi}}
    limits: {{memory: {memory_limit}}}
  volume: {{size: 1Gi, maxSize: 2Gi}}
")}
    }))
    .unwrap()
}

/// Creates a HapContainer as written: no resources added, so that the profile's apply.
async fn create_as_written(h: &Harness, name: &str, spec: serde_json::Value) {
    let hc: HapContainer = serde_json::from_value(json!({
        "apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    h.hapcontainers()
        .create(&PostParams::default(), &hc)
        .await
        .unwrap();
}

/// Waits until the HapContainer's Configured condition has this reason, and returns it.
async fn configured_because(h: &Harness, name: &str, reason: &str) -> HapContainer {
    h.wait_status(name, &format!("Configured: {reason}"), |hc| {
        hc.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Configured" && c.reason == reason)
        })
    })
    .await
}

fn configured(hc: &HapContainer) -> (String, String, String) {
    let c = condition(hc, "Configured");
    (c.status, c.reason, c.message)
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_profile_shapes_workspaces_and_its_changes_reach_them() {
    let h = Harness::start().await;
    create_as_written(&h, "fits", json!({"profile": "small"})).await;
    let waiting = configured_because(&h, "fits", "ProfileNotFound").await;
    let (_, _, message) = configured(&waiting);
    assert!(message.contains("there are no profiles"), "{message}");
    assert!(!h.exists::<Pod>("fits-happod").await);

    h.api::<ConfigMap>()
        .create(&PostParams::default(), &profiles("1Gi"))
        .await
        .unwrap();
    h.wait_phase("fits", "Running").await;
    let pod: Pod = h.api().get("fits-happod").await.unwrap();
    let resources = pod.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(resources.limits.unwrap()["memory"].0, "1Gi");
    assert_eq!(resources.requests.unwrap()["cpu"].0, "50m");
    let claim: PersistentVolumeClaim = h.api().get("fits-workspace").await.unwrap();
    let size = claim.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].clone();
    assert_eq!(size.0, "1Gi");

    create_as_written(
        &h,
        "greedy",
        json!({"profile": "small", "resources": {"limits": {"memory": "2Gi"}}, "volume": {"size": "3Gi"}}),
    )
    .await;
    let refused = configured_because(&h, "greedy", "InvalidSpec").await;
    let (_, _, message) = configured(&refused);
    for says in [
        "spec.resources.limits.memory is 2Gi, more than the profile \"small\" allows (1Gi)",
        "spec.volume.size is 3Gi, more than the profile \"small\" allows (2Gi)",
    ] {
        assert!(message.contains(says), "{says}: {message}");
    }
    assert_eq!(
        refused
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .map(|p| p.as_str()),
        Some("Failed")
    );
    assert!(!h.exists::<Pod>("greedy-happod").await);

    // The administrator raises the limits: the watch brings the change, and the workspace runs.
    let raised = json!({"data": {"profiles.yaml": "
- name: small
  resources:
    requests: {cpu: 50m, memory: 256Mi}
    limits: {memory: 2Gi}
  volume: {size: 1Gi, maxSize: 4Gi}
"}});
    h.api::<ConfigMap>()
        .patch(
            "hap-profiles",
            &PatchParams::default(),
            &Patch::Merge(raised),
        )
        .await
        .unwrap();
    h.wait_phase("greedy", "Running").await;
    let (status, reason, _) = configured(&h.hapcontainers().get("greedy").await.unwrap());
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"));
}
