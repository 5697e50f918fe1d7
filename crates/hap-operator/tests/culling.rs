//! Idle culling on the local cluster, against real Jupyter in real workspace pods: with `idleAfter` of
//! a minute, an idle workspace is stopped (size 0, a `Culled` event and condition) and comes back with
//! its home volume; one with a busy kernel, one with a terminal in use and one running a Spark job are
//! not stopped. The activity is made inside the pods through Jupyter's own API
//! (tests/fixtures/activity.py), as a user's browser would make it.

mod common;

use std::time::Duration;

use common::{Harness, condition, eventually};
use hap_api::HapContainer;
use kube::api::{Patch, PatchParams};
use serde_json::json;

const ACTIVITY: &str = include_str!("fixtures/activity.py");

fn workspace(name: &str) -> String {
    format!(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: {name}
spec:
  volume: {{size: 1Gi}}
  culling: {{idleAfter: 1m}}
"
    )
}

/// Starts `mode` of the activity script in the pod, in the background, and returns.
fn start_in_background(h: &Harness, pod: &str, mode: &str) {
    h.kubectl(&[
        "exec",
        pod,
        "--",
        "bash",
        "-c",
        &format!("setsid nohup python3 -c \"$0\" {mode} > /tmp/{mode}.log 2>&1 < /dev/null &"),
        ACTIVITY,
    ]);
}

fn size(hc: &HapContainer) -> i32 {
    hc.spec.size
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn an_idle_workspace_is_stopped_and_kept_and_active_ones_are_not() {
    let h = Harness::start().await;
    let names = ["idle", "kernel", "terminal", "spark"];
    for name in names {
        h.create(&workspace(name)).await;
    }
    for name in names {
        h.wait_phase(name, "Running").await;
    }
    h.kubectl(&[
        "exec",
        "idle-happod",
        "--",
        "bash",
        "-c",
        "echo kept > ~/notes.txt",
    ]);
    // The kernel is left busy with its connection closed; the terminal is typed into and the
    // Spark job runs in the background.
    let busy = h.kubectl(&[
        "exec",
        "kernel-happod",
        "--",
        "python3",
        "-c",
        ACTIVITY,
        "busy-kernel",
    ]);
    assert!(busy.contains("busy"), "{busy}");
    start_in_background(&h, "terminal-happod", "typing");
    start_in_background(&h, "spark-happod", "spark-job");

    // A minute after Jupyter started, and within a look (15 s) after that.
    let api = h.hapcontainers();
    let culled = eventually(Duration::from_secs(240), "idle culled", || {
        let api = api.clone();
        async move {
            let hc = api.get("idle").await.map_err(|e| e.to_string())?;
            let phase = hc.status.as_ref().and_then(|s| s.phase);
            let culled = hc.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Culled" && c.status == "True")
            });
            let stopped =
                size(&hc) == 0 && phase.map(|p| p.as_str()) == Some("Suspended") && culled;
            if stopped {
                Ok(hc)
            } else {
                Err(format!("size {} {:?}", size(&hc), hc.status))
            }
        }
    })
    .await;
    let culled_condition = condition(&culled, "Culled");
    assert_eq!(culled_condition.reason, "Culled");
    assert!(
        culled_condition.message.contains("after 1m"),
        "{}",
        culled_condition.message
    );
    let events = h.events_for("idle").await;
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("Culled")
            && e.note.as_deref().is_some_and(|n| n.contains("home volume"))),
        "a Culled event: {events:#?}"
    );
    assert!(
        !h.exists::<k8s_openapi::api::core::v1::Pod>("idle-happod")
            .await
    );

    // The others have been running as long as the idle one, and stay running through two more
    // looks: what they do is seen as activity.
    tokio::time::sleep(Duration::from_secs(40)).await;
    for name in ["kernel", "terminal", "spark"] {
        let hc = api.get(name).await.unwrap();
        let c = condition(&hc, "Culled");
        assert_eq!(
            (size(&hc), c.status.as_str(), c.reason.as_str()),
            (1, "False", "Active"),
            "{name}: {:?}",
            hc.status
        );
        let last = hc.status.as_ref().and_then(|s| s.last_activity.clone());
        let last = last.unwrap_or_else(|| panic!("{name} has a lastActivity"));
        let age = jiff::Timestamp::now().duration_since(last.0);
        assert!(
            age < jiff::SignedDuration::from_secs(120),
            "{name}: the last activity is {age:?} old"
        );
    }

    // Started again, it finds its home volume.
    api.patch(
        "idle",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 1}})),
    )
    .await
    .unwrap();
    h.wait_phase("idle", "Running").await;
    let kept = h.kubectl(&["exec", "idle-happod", "--", "cat", "/home/jovyan/notes.txt"]);
    assert_eq!(kept.trim(), "kept");
    let again = h
        .wait_status("idle", "Culled false once running again", |hc| {
            hc.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Culled" && c.status == "False")
            })
        })
        .await;
    assert_eq!(size(&again), 1);
}
