//! Idle culling on the local cluster, against real Jupyter in real workspace pods: with `idleAfter` of
//! a minute, an idle workspace is stopped (size 0, a `Culled` event and condition) and comes back with
//! its home volume; one with a busy kernel, one with a terminal in use and one running a Spark job are
//! not stopped. The activity is made inside the pods through Jupyter's own API
//! (tests/fixtures/activity.py), as a user's browser would make it.

mod common;

use std::time::Duration;

use common::{Harness, condition, eventually};
use hap_api::HapContainer;
use hap_operator::pipeline::config::RunConfig;
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
"
    )
}

/// Runs `mode` of the activity script in the pod and returns what it printed.
fn activity(h: &Harness, pod: &str, mode: &str) -> String {
    h.kubectl(&["exec", pod, "--", "python3", "-c", ACTIVITY, mode])
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
    // A resync far longer than the test: the operator looks at the workspaces on its own poll (a
    // quarter of idleAfter, 15 s) and on watch events alone.
    let h = Harness::start_with(|c| RunConfig {
        resync: Duration::from_secs(600),
        ..c
    })
    .await;
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
    let busy = activity(&h, "kernel-happod", "busy-kernel");
    assert!(busy.contains("busy"), "{busy}");
    start_in_background(&h, "terminal-happod", "typing");
    start_in_background(&h, "spark-happod", "spark-job");
    let running = activity(&h, "spark-happod", "spark-running");
    assert!(running.contains("running"), "{running}");

    // Culling on, from a last request to Jupyter in the idle and the Spark workspaces: from here
    // their Jupyter sees nothing, and only the Spark job can keep that one up past a minute.
    let touched = jiff::Timestamp::now();
    let quiet_from = std::time::Instant::now();
    activity(&h, "idle-happod", "touch");
    activity(&h, "spark-happod", "touch");
    let api = h.hapcontainers();
    for name in names {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"culling": {"idleAfter": "1m"}}})),
        )
        .await
        .unwrap();
    }

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
    // Not before a minute had passed since the last activity (the condition's time is whole seconds).
    let earliest = touched + jiff::SignedDuration::from_secs(59);
    assert!(
        culled_condition.last_transition_time.0 >= earliest,
        "culled at {} for activity at {touched}",
        culled_condition.last_transition_time.0
    );
    let events = h.events_for("idle").await;
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("Culled")
            && e.note.as_deref().is_some_and(|n| n.contains("home volume"))),
        "a Culled event: {events:#?}"
    );
    eventually(Duration::from_secs(60), "the idle pod gone", || async {
        match h
            .exists::<k8s_openapi::api::core::v1::Pod>("idle-happod")
            .await
        {
            false => Ok(()),
            true => Err("still there".to_string()),
        }
    })
    .await;

    // The others stay running a minute and two looks (15 s each) past their last request to
    // Jupyter, and more: what they do is seen as activity.
    let settled = Duration::from_secs(60 + 2 * 15 + 15);
    tokio::time::sleep(settled.saturating_sub(quiet_from.elapsed())).await;
    for name in ["kernel", "terminal", "spark"] {
        // A look that found the pod too slow to answer says ActivityUnknown until the next one.
        let hc = h
            .wait_status(name, "Culled false and Active", |hc| {
                hc.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Culled" && c.status == "False" && c.reason == "Active")
                })
            })
            .await;
        assert_eq!(size(&hc), 1, "{name}: {:?}", hc.status);
        let events = h.events_for(name).await;
        assert!(
            !events.iter().any(|e| e.reason.as_deref() == Some("Culled")),
            "{name} was never culled: {events:#?}"
        );
        let last = hc.status.as_ref().and_then(|s| s.last_activity.clone());
        let last = last.unwrap_or_else(|| panic!("{name} has a lastActivity"));
        let age = jiff::Timestamp::now().duration_since(last.0);
        assert!(
            age < jiff::SignedDuration::from_secs(120),
            "{name}: the last activity is {age:?} old"
        );
    }

    // Started again, it finds its home volume, and its activity is read again.
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
        .wait_status("idle", "Culled false and Active once running again", |hc| {
            hc.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Culled" && c.status == "False" && c.reason == "Active")
            })
        })
        .await;
    assert_eq!(size(&again), 1);
}
