//! Operations on the real local cluster: leader election across two `hap-operator run` processes (one
//! reconciles; the other takes over when the first gets SIGTERM), a rolling update handing the Lease
//! on, watching every namespace, and the metrics and health endpoints.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Harness, eventually, within};
use hap_operator::endpoints;
use hap_operator::pipeline::config::{ProcessConfig, RunConfig};
use hap_operator::pipeline::metrics::{self, Metrics};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use tower::ServiceExt;

fn process(ns: &str, lease_duration: Duration) -> ProcessConfig {
    ProcessConfig {
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        leader_election: true,
        lease_name: "hap-operator".into(),
        lease_namespace: Some(ns.into()),
        lease_duration,
        json_logs: false,
    }
}

/// The controller's shutdown grace, the lease release, and time to spare.
const STOP_LIMIT: Duration = Duration::from_secs(40);

/// Only one of these tests runs an operator that watches every namespace of the shared cluster, and
/// it runs alone; the others share.
static CLUSTER_WIDE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// An operator instance in this process, with its own metrics.
struct Instance {
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start_instance(h: &Harness, identity: &str) -> Instance {
    let config = RunConfig {
        instance: identity.into(),
        ..h.fast_config()
    };
    let metrics = Arc::new(Metrics::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let client = h.operator.clone();
    let m = metrics.clone();
    let process = process(&h.ns, Duration::from_secs(2));
    let task =
        tokio::spawn(
            async move { hap_operator::app::lead(client, config, &process, m, stop_rx).await },
        );
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

/// A `hap-operator run` process, as its pod runs it: the ServiceAccount's token in a kubeconfig, the
/// pod's name and namespace in the environment.
struct OperatorProcess {
    child: Child,
    metrics_port: u16,
    /// Its log (debug for the controller and kube-runtime), printed if the test fails.
    log: PathBuf,
}

impl OperatorProcess {
    fn start(h: &Harness, kubeconfig: &Path, pod_name: &str) -> Self {
        // A free port for the metrics endpoint: bound, read and released.
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = kubeconfig.with_file_name(format!("{pod_name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_hap-operator"))
            .arg("run")
            .env("KUBECONFIG", kubeconfig)
            .env("WATCH_NAMESPACE", &h.ns)
            .env("POD_NAMESPACE", &h.ns)
            .env("POD_NAME", pod_name)
            .env("HAP_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("HAP_LEASE_DURATION_SECONDS", "3")
            .env("HAP_RESYNC_SECONDS", "5")
            .env("RUST_LOG", "info,hap_operator=debug,kube_runtime=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("hap-operator run starts");
        OperatorProcess {
            child,
            metrics_port,
            log,
        }
    }

    /// Whether its metrics say it leads (false while it cannot be asked).
    async fn leading(&self) -> bool {
        scrape(self.metrics_port)
            .await
            .is_some_and(|text| text.lines().any(|l| l == "hap_operator_leader 1"))
    }

    /// SIGTERM, as the kubelet stops a pod, and waits for the process to exit.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        within(STOP_LIMIT, "the operator process to exit", async {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- log of {}:\n{log}--- end of log", self.log.display());
        }
    }
}

/// GET /metrics on loopback. A bare HTTP/1.0 request: a plain-text scrape of a local endpoint does
/// not need an HTTP client crate.
async fn scrape(port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// The operator ServiceAccount's kubeconfig: the cluster's address and CA, and the token.
fn write_operator_kubeconfig(h: &Harness, dir: &Path) -> PathBuf {
    let mut kubeconfig =
        kube::config::Kubeconfig::read_from(&common::cluster().kubeconfig).unwrap();
    let token = h
        .operator_config
        .auth_info
        .token
        .clone()
        .expect("the operator's token");
    let user = kube::config::NamedAuthInfo {
        name: "hap-operator".into(),
        auth_info: Some(kube::config::AuthInfo {
            token: Some(token),
            ..Default::default()
        }),
        other: Default::default(),
    };
    kubeconfig.auth_infos = vec![user];
    for context in &mut kubeconfig.contexts {
        if let Some(c) = context.context.as_mut() {
            c.user = Some("hap-operator".into());
            c.namespace = Some(h.ns.clone());
        }
    }
    let path = dir.join("operator.kubeconfig");
    // Serialized with the token in it (kube-rs writes a kubeconfig's secrets out as they are).
    let value = serde_json::to_value(&kubeconfig).unwrap();
    // The token's file is the owner's alone, as a kubeconfig should be.
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, serde_json::to_string(&value).unwrap().as_bytes())
        .unwrap();
    path
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn two_operator_processes_one_leads_and_the_other_takes_over_on_sigterm() {
    let _shared = CLUSTER_WIDE.read().await;
    let h = Harness::start_idle().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_operator_kubeconfig(&h, dir.path());
    let a = OperatorProcess::start(&h, &kubeconfig, "operator-a");
    let b = OperatorProcess::start(&h, &kubeconfig, "operator-b");
    let first = eventually(Duration::from_secs(60), "a leader", || async {
        match (a.leading().await, b.leading().await) {
            (true, false) => Ok("a"),
            (false, true) => Ok("b"),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    h.create("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: one}\nspec: {}\n").await;
    h.wait_phase("one", "Running").await;
    let (mut leader, mut standby) = if first == "a" { (a, b) } else { (b, a) };
    assert!(!standby.leading().await, "only one instance leads");
    let standby_metrics = scrape(standby.metrics_port)
        .await
        .expect("the standby answers on its metrics port");
    assert!(
        !standby_metrics.contains("hap_operator_reconciles_total{"),
        "the standby reconciles nothing: {standby_metrics}"
    );
    let lease: Lease = h.api().get("hap-operator").await.unwrap();
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(
        holder.as_deref(),
        Some(if first == "a" {
            "operator-a"
        } else {
            "operator-b"
        })
    );

    // The leader gets SIGTERM (its pod stops): it releases the Lease and exits cleanly, and the
    // standby takes over.
    let status = leader.terminate().await;
    assert!(status.success(), "the leader exits cleanly: {status}");
    eventually(Duration::from_secs(30), "the standby leading", || async {
        if standby.leading().await {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    h.create("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: two}\nspec: {}\n").await;
    h.wait_phase("two", "Running").await;
    let status = standby.terminate().await;
    assert!(status.success(), "the standby exits cleanly: {status}");
}

/// Stopped before it has listed anything (SIGTERM, or the Lease lost, right after start-up), the
/// controller still returns: its watches stop with it, so it cannot wait for their first lists.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_controller_stopped_before_its_first_list_returns() {
    let _shared = CLUSTER_WIDE.read().await;
    let h = Harness::start_idle().await;
    within(
        Duration::from_secs(10),
        "the controller, stopped before its first list, to return",
        hap_operator::controller::run(
            h.operator.clone(),
            h.fast_config(),
            Arc::new(Metrics::default()),
            std::future::ready(()),
        ),
    )
    .await;
}

/// The operator's pod, as its Deployment would create it: here a pause container (the operator
/// itself runs in the test), with the operator's ServiceAccount.
async fn operator_pod(h: &Harness, name: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"name": "hap-operator"}},
        "spec": {"serviceAccountName": "hap-operator", "containers": [{
            "name": "hap-operator", "image": "hap.local/pause:1", "imagePullPolicy": "Never"
        }]}
    }))
    .unwrap();
    h.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_rolling_update_hands_the_lease_to_the_new_pod() {
    let _shared = CLUSTER_WIDE.read().await;
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
    let owners = lease.metadata.owner_references.unwrap_or_default();
    assert_eq!(
        owners.first().map(|o| (o.kind.as_str(), o.name.as_str())),
        Some(("ServiceAccount", "hap-operator")),
        "the Lease outlives the pods: its owner is the ServiceAccount"
    );
    new.stop.send(true).unwrap();
    within(STOP_LIMIT, "the new instance to stop", new.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn with_no_watch_namespace_every_namespace_is_reconciled() {
    // This operator sees every test's workspaces: it runs while no other test here does.
    let _alone = CLUSTER_WIDE.write().await;
    let mut h = Harness::start_idle().await;
    // Watching all namespaces needs cluster-wide rights; the admin has them.
    let team = format!("{}-team-a", h.ns);
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": team, "labels": {"hap.cloudian.com/test": "operator"}}}),
    )
    .unwrap();
    let namespaces = kube::Api::<Namespace>::all(h.admin.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    h.operator = h.admin.clone();
    h.run_controller(RunConfig {
        watch_namespace: None,
        instance: "hap-operator-all-namespaces".into(),
        ..h.fast_config()
    });
    let hc: hap_api::HapContainer = serde_saphyr::from_str(
        "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: ws}\nspec: {resources: {requests: {cpu: 50m, memory: 256Mi}}}\n",
    )
    .unwrap();
    let api: kube::Api<hap_api::HapContainer> = kube::Api::namespaced(h.admin.clone(), &team);
    api.create(&PostParams::default(), &hc).await.unwrap();
    eventually(
        Duration::from_secs(120),
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
    h.stop_controller().await;
    namespaces
        .delete(&team, &DeleteParams::background())
        .await
        .unwrap();
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
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn health_readiness_and_metrics_endpoints() {
    let m = Arc::new(Metrics::default());
    assert_eq!(
        get(endpoints::router(m.clone()), "/healthz").await,
        (StatusCode::OK, "ok".into())
    );
    assert_eq!(
        get(endpoints::router(m.clone()), "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    m.set_ready(true);
    assert_eq!(
        get(endpoints::router(m.clone()), "/readyz").await.0,
        StatusCode::OK
    );
    m.observe(
        Duration::from_millis(2),
        &[metrics::FailureLabels {
            step: "read",
            reason: "Forbidden".into(),
        }],
    );
    let (status, text) = get(endpoints::router(m), "/metrics").await;
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
