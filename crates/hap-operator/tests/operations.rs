//! Operations: leader election (one instance reconciles; another takes over when it stops), watching
//! every namespace, and the metrics and health endpoints.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Harness, eventually, fast_config, within};
use hap_operator::config::{ProcessConfig, RunConfig};
use hap_operator::metrics::{self, Metrics};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use tower::ServiceExt;

fn process(lease_duration: Duration) -> ProcessConfig {
    ProcessConfig {
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        leader_election: true,
        lease_name: "hap-operator".into(),
        lease_namespace: Some("default".into()),
        lease_duration,
        json_logs: false,
    }
}

/// The controller's shutdown grace, the lease release, and time to spare.
const STOP_LIMIT: Duration = Duration::from_secs(40);

struct Instance {
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start_instance(h: &Harness, identity: &str) -> Instance {
    let config = RunConfig {
        instance: identity.into(),
        ..fast_config()
    };
    let metrics = Arc::new(Metrics::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let client = h.operator.clone();
    let m = metrics.clone();
    let task = tokio::spawn(async move {
        hap_operator::app::lead(client, config, &process(Duration::from_secs(2)), m, stop_rx).await
    });
    Instance {
        metrics,
        stop,
        task,
    }
}

fn leading(i: &Instance) -> bool {
    i.metrics
        .render()
        .lines()
        .any(|l| l == "hap_operator_leader 1")
}

#[tokio::test]
async fn one_instance_leads_and_another_takes_over_when_it_stops() {
    let h = Harness::start_idle().await;
    let a = start_instance(&h, "operator-a");
    let b = start_instance(&h, "operator-b");
    let first = eventually(Duration::from_secs(20), "a leader", || async {
        match (leading(&a), leading(&b)) {
            (true, false) => Ok("a"),
            (false, true) => Ok("b"),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    h.create("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: one}\nspec: {}\n").await;
    h.wait_phase("one", "Running").await;
    let (leader, standby) = if first == "a" { (a, b) } else { (b, a) };
    assert!(!leading(&standby), "only one instance leads");
    assert!(
        !standby
            .metrics
            .render()
            .contains("hap_operator_reconciles_total"),
        "the standby reconciles nothing"
    );

    // The leader stops (SIGTERM in a pod): it releases the Lease, and the standby takes over.
    leader.stop.send(true).unwrap();
    within(STOP_LIMIT, "the leader instance to stop", leader.task)
        .await
        .unwrap()
        .unwrap();
    eventually(Duration::from_secs(30), "the standby leading", || async {
        if leading(&standby) {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    h.create("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: two}\nspec: {}\n").await;
    h.wait_phase("two", "Running").await;
    standby.stop.send(true).unwrap();
    within(STOP_LIMIT, "the standby instance to stop", standby.task)
        .await
        .unwrap()
        .unwrap();
}

/// Stopped before it has listed anything (SIGTERM, or the Lease lost, right after start-up), the
/// controller still returns: its watches stop with it, so it cannot wait for their first lists.
#[tokio::test]
async fn a_controller_stopped_before_its_first_list_returns() {
    let h = Harness::start_idle().await;
    within(
        Duration::from_secs(10),
        "the controller, stopped before its first list, to return",
        hap_operator::controller::run(
            h.operator.clone(),
            fast_config(),
            Arc::new(Metrics::default()),
            std::future::ready(()),
        ),
    )
    .await;
}

/// The operator's pod, as its Deployment would create it.
async fn operator_pod(h: &Harness, name: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"name": "hap-operator"}},
        "spec": {"serviceAccountName": "hap-operator", "containers": [{"name": "hap-operator", "image": "hap-operator:0.1.0"}]}
    }))
    .unwrap();
    h.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rolling_update_hands_the_lease_to_the_new_pod() {
    let h = Harness::start_idle().await;
    operator_pod(&h, "hap-operator-old").await;
    let old = start_instance(&h, "hap-operator-old");
    eventually(Duration::from_secs(20), "the old pod leading", || async {
        if leading(&old) {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    operator_pod(&h, "hap-operator-new").await;
    let new = start_instance(&h, "hap-operator-new");
    // The rollout: the old pod gets SIGTERM and is deleted; the Lease, owned by the ServiceAccount,
    // outlives it.
    old.stop.send(true).unwrap();
    within(STOP_LIMIT, "the old instance to stop", old.task)
        .await
        .unwrap()
        .unwrap();
    h.api::<Pod>()
        .delete("hap-operator-old", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "the new pod leading", || async {
        if leading(&new) {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    h.create("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: after}\nspec: {}\n").await;
    h.wait_phase("after", "Running").await;
    let lease: Lease = h.api().get("hap-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("hap-operator-new")
    );
    new.stop.send(true).unwrap();
    within(STOP_LIMIT, "the new instance to stop", new.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn with_no_watch_namespace_every_namespace_is_reconciled() {
    let mut h = Harness::start_idle().await;
    // Watching all namespaces needs cluster-wide rights; the admin has them.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    kube::Api::<Namespace>::all(h.admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    h.operator = h.admin.clone();
    h.run_controller(RunConfig {
        watch_namespace: None,
        ..fast_config()
    });
    let hc: hap_api::HapContainer =
        serde_saphyr::from_str("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: ws, namespace: team-a}\nspec: {}\n").unwrap();
    let api: kube::Api<hap_api::HapContainer> = kube::Api::namespaced(h.admin.clone(), "team-a");
    api.create(&PostParams::default(), &hc).await.unwrap();
    eventually(
        Duration::from_secs(30),
        "the team-a workspace running",
        || async {
            let hc = api.get("ws").await.map_err(|e| e.to_string())?;
            match hc.status.as_ref().and_then(|s| s.phase).map(|p| p.as_str()) {
                Some("Running") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}

async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
    let resp = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn health_readiness_and_metrics_endpoints() {
    let m = Arc::new(Metrics::default());
    assert_eq!(
        get(metrics::router(m.clone()), "/healthz").await,
        (StatusCode::OK, "ok".into())
    );
    assert_eq!(
        get(metrics::router(m.clone()), "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    m.set_ready(true);
    assert_eq!(
        get(metrics::router(m.clone()), "/readyz").await.0,
        StatusCode::OK
    );
    m.observe(
        Duration::from_millis(2),
        &[metrics::FailureLabels {
            step: "read",
            reason: "Forbidden".into(),
        }],
    );
    let (status, text) = get(metrics::router(m), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(
            "hap_operator_reconcile_failures_total{step=\"read\",reason=\"Forbidden\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
}
