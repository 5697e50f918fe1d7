//! The kubelets of the simulated nodes. No container runs: a bound pod goes Pending -> Running with the
//! status a kubelet reports (IPs, conditions, container statuses), or fails the way its image's fault
//! rule says; pods that do not restart finish as Succeeded; deleted pods stop and are removed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Writer, record_event, storage};
use crate::clock;
use crate::core::{Controller, Core, PodFault};
use crate::lifecycle::DeleteOptions;
use crate::store::meta_str;

#[derive(Default)]
struct State {
    /// When each pod (by uid) was first seen bound, and when first seen deleting.
    bound_at: HashMap<String, Instant>,
    deleting_at: HashMap<String, Instant>,
    /// The last crash time of crash-looping pods.
    crashed_at: HashMap<String, Instant>,
    next_ip: HashMap<String, u32>,
}

fn hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:x}", rand::random::<u8>() & 0xf))
        .collect()
}

fn condition(kind: &str, status: bool, now: &str) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now})
}

fn container_statuses(pod: &Value, state: Value, ready: bool, restarts: i64, last: Value) -> Value {
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let image = c["image"].as_str().unwrap_or_default();
            json!({
                "name": c["name"],
                "image": image,
                "imageID": format!("{image}@sha256:{}", hex(64)),
                "containerID": format!("containerd://{}", hex(64)),
                "ready": ready,
                "started": state.get("running").is_some(),
                "restartCount": restarts,
                "state": state,
                "lastState": last,
            })
        })
        .collect();
    json!(statuses)
}

fn node_ip(core: &Core, node: &str) -> String {
    core.nodes
        .iter()
        .find(|(n, _)| n == node)
        .map(|(_, ip)| ip.clone())
        .unwrap_or_else(|| "172.18.0.2".into())
}

fn pod_ip(core: &Core, state: &Mutex<State>, node: &str) -> String {
    let index = core.nodes.iter().position(|(n, _)| n == node).unwrap_or(0);
    let mut s = state.lock().expect("kubelet state");
    let n = s.next_ip.entry(node.to_string()).or_insert(1);
    *n += 1;
    format!("10.244.{index}.{}", *n % 254 + 1)
}

fn container_names(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The first start of a bound pod.
async fn start(core: &Core, state: &Mutex<State>, pod: &Value) {
    let writer = Writer {
        core,
        manager: "kubelet",
    };
    let rt = core.built_in("", "pods");
    let node = pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = clock::now();
    let host_ip = node_ip(core, &node);
    let ip = pod_ip(core, state, &node);
    let mut status = pod["status"].clone();
    status["hostIP"] = json!(host_ip);
    status["hostIPs"] = json!([{"ip": host_ip}]);
    status["startTime"] = json!(now);
    let scheduled = condition("PodScheduled", true, &now);
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match core.pod_fault(pod) {
        Some(PodFault::ImagePull) => {
            status["phase"] = json!("Pending");
            status["conditions"] = json!([
                condition("PodReadyToStartContainers", true, &now),
                condition("Initialized", true, &now),
                condition("Ready", false, &now),
                condition("ContainersReady", false, &now),
                scheduled
            ]);
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
            let msg = format!(
                "Failed to pull image {image:?}: rpc error: code = NotFound desc = failed to pull and unpack image {image:?}: not found"
            );
            status["containerStatuses"] = container_statuses(
                pod,
                json!({"waiting": {"reason": "ErrImagePull", "message": msg}}),
                false,
                0,
                json!({}),
            );
            if writer.update_status(&rt, pod, status).await.is_ok() {
                record_event(
                    core,
                    pod,
                    "Normal",
                    "Pulling",
                    &format!("Pulling image {image:?}"),
                    "kubelet",
                )
                .await;
                record_event(core, pod, "Warning", "Failed", &msg, "kubelet").await;
                record_event(
                    core,
                    pod,
                    "Warning",
                    "Failed",
                    "Error: ErrImagePull",
                    "kubelet",
                )
                .await;
            }
        }
        Some(PodFault::Evict) => {
            status["phase"] = json!("Failed");
            status["reason"] = json!("Evicted");
            status["message"] = json!("The node was low on resource: memory. ");
            status["conditions"] = json!([condition("Ready", false, &now), scheduled]);
            status["containerStatuses"] = container_statuses(
                pod,
                json!({"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "startedAt": now, "finishedAt": now}}),
                false,
                0,
                json!({}),
            );
            if writer.update_status(&rt, pod, status).await.is_ok() {
                record_event(
                    core,
                    pod,
                    "Warning",
                    "Evicted",
                    "The node was low on resource: memory.",
                    "kubelet",
                )
                .await;
            }
        }
        // A container that never restarts and exits with an error fails its pod.
        Some(PodFault::Crash) if pod["spec"]["restartPolicy"] == "Never" => {
            status["phase"] = json!("Failed");
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
            status["conditions"] = json!([
                condition("PodReadyToStartContainers", false, &now),
                condition("Initialized", true, &now),
                condition("Ready", false, &now),
                condition("ContainersReady", false, &now),
                scheduled
            ]);
            status["containerStatuses"] = container_statuses(
                pod,
                json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}),
                false,
                0,
                json!({}),
            );
            let _ = writer.update_status(&rt, pod, status).await;
        }
        fault => {
            status["phase"] = json!("Running");
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
            let (state_json, ready, last) = if fault == Some(PodFault::Crash) {
                (
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}}),
                    false,
                    json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}),
                )
            } else {
                (json!({"running": {"startedAt": now}}), true, json!({}))
            };
            status["conditions"] = json!([
                condition("PodReadyToStartContainers", true, &now),
                condition("Initialized", true, &now),
                condition("Ready", ready, &now),
                condition("ContainersReady", ready, &now),
                scheduled
            ]);
            status["containerStatuses"] =
                container_statuses(pod, state_json, ready, i64::from(!ready), last);
            if writer.update_status(&rt, pod, status).await.is_ok() {
                for c in container_names(pod) {
                    record_event(
                        core,
                        pod,
                        "Normal",
                        "Pulled",
                        &format!("Container image {image:?} already present on machine"),
                        "kubelet",
                    )
                    .await;
                    record_event(
                        core,
                        pod,
                        "Normal",
                        "Created",
                        &format!("Created container: {c}"),
                        "kubelet",
                    )
                    .await;
                    record_event(
                        core,
                        pod,
                        "Normal",
                        "Started",
                        &format!("Started container {c}"),
                        "kubelet",
                    )
                    .await;
                }
                if !ready {
                    record_event(
                        core,
                        pod,
                        "Warning",
                        "BackOff",
                        "Back-off restarting failed container",
                        "kubelet",
                    )
                    .await;
                    state
                        .lock()
                        .expect("kubelet state")
                        .crashed_at
                        .insert(meta_str(pod, "uid").into(), Instant::now());
                }
            }
        }
    }
}

/// A pod that does not restart (a Job's, an executor's) finishes successfully after it has run.
async fn complete(core: &Core, pod: &Value) {
    let writer = Writer {
        core,
        manager: "kubelet",
    };
    let now = clock::now();
    let mut status = pod["status"].clone();
    status["phase"] = json!("Succeeded");
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", false, &now),
        condition("Initialized", true, &now),
        condition("Ready", false, &now),
        condition("ContainersReady", false, &now),
        condition("PodScheduled", true, &now)
    ]);
    let started = pod["status"]["startTime"].clone();
    status["containerStatuses"] = container_statuses(
        pod,
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now}}),
        false,
        0,
        json!({}),
    );
    let _ = writer
        .update_status(&core.built_in("", "pods"), pod, status)
        .await;
}

/// One more restart of a crash-looping container.
async fn crash_again(core: &Core, pod: &Value) {
    let writer = Writer {
        core,
        manager: "kubelet",
    };
    let mut status = pod["status"].clone();
    if let Some(cs) = status
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for c in cs {
            let n = c["restartCount"].as_i64().unwrap_or(0);
            c["restartCount"] = json!(n + 1);
            c["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": clock::now(), "finishedAt": clock::now()}});
        }
    }
    let _ = writer
        .update_status(&core.built_in("", "pods"), pod, status)
        .await;
}

/// Stops a deleted pod's containers and removes it.
async fn stop(core: &Core, pod: &Value) {
    let writer = Writer {
        core,
        manager: "kubelet",
    };
    let rt = core.built_in("", "pods");
    for c in container_names(pod) {
        record_event(
            core,
            pod,
            "Normal",
            "Killing",
            &format!("Stopping container {c}"),
            "kubelet",
        )
        .await;
    }
    let opts = DeleteOptions {
        grace_period: Some(0),
        precondition_uid: Some(meta_str(pod, "uid").to_string()),
        ..Default::default()
    };
    let _ = writer.delete(&rt, pod, &opts);
}

async fn sync(core: &Core, state: &Mutex<State>) {
    let (pods, _) = core.store.list(&storage("", "pods"), None);
    let node_names: Vec<&str> = core.nodes.iter().map(|(n, _)| n.as_str()).collect();
    let now = Instant::now();
    let timings = &core.timings;
    let mut live = std::collections::HashSet::new();
    for pod in &pods {
        let uid = meta_str(pod, "uid").to_string();
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        if !node_names.contains(&node) {
            continue;
        }
        live.insert(uid.clone());
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        if pod["metadata"]["deletionTimestamp"].is_string() {
            let since = *state
                .lock()
                .expect("kubelet state")
                .deleting_at
                .entry(uid.clone())
                .or_insert(now);
            if now.duration_since(since) >= timings.container_stop || phase == "Pending" {
                stop(core, pod).await;
            }
            continue;
        }
        let since = *state
            .lock()
            .expect("kubelet state")
            .bound_at
            .entry(uid.clone())
            .or_insert(now);
        let started = pod["status"]["startTime"].is_string();
        if !started {
            if now.duration_since(since) >= timings.container_start {
                start(core, state, pod).await;
            }
            continue;
        }
        let restarts = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") == "Always";
        if phase == "Running"
            && !restarts
            && core.pod_fault(pod).is_none()
            && now.duration_since(since) >= timings.container_start + timings.job_run
        {
            complete(core, pod).await;
        }
        if phase == "Running" && core.pod_fault(pod) == Some(PodFault::Crash) {
            let last = state
                .lock()
                .expect("kubelet state")
                .crashed_at
                .get(&uid)
                .copied();
            if last.is_none_or(|t| now.duration_since(t) >= timings.crash_backoff) {
                crash_again(core, pod).await;
                state
                    .lock()
                    .expect("kubelet state")
                    .crashed_at
                    .insert(uid, now);
            }
        }
    }
    let mut s = state.lock().expect("kubelet state");
    s.bound_at.retain(|uid, _| live.contains(uid));
    s.deleting_at.retain(|uid, _| live.contains(uid));
    s.crashed_at.retain(|uid, _| live.contains(uid));
}

pub async fn run(core: Arc<Core>) {
    let state = Arc::new(Mutex::new(State::default()));
    // Timers matter here (start and stop delays), so the kubelet also syncs on a short tick.
    let tick = (core
        .timings
        .container_start
        .min(core.timings.container_stop)
        / 2)
    .max(Duration::from_millis(20));
    super::run_loop(core, tick, move |core, event| {
        let state = state.clone();
        async move {
            if !core.switches.enabled(Controller::Kubelet) {
                return;
            }
            if event
                .as_ref()
                .is_none_or(|e| e.storage.group.is_empty() && e.storage.resource == "pods")
            {
                sync(&core, &state).await;
            }
        }
    })
    .await;
}
