//! Shared by the operator's tests: a simulated cluster with the operator installed from `deploy/`, the
//! controller running as the operator's own ServiceAccount, and small helpers.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hap_api::{HapContainer, HapContainerStatus};
use hap_operator::config::RunConfig;
use hap_operator::metrics::Metrics;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiResource, Scope};
use kube::{Client, Discovery, ResourceExt};
use kube_sim::{Sim, SimConfig, Timings};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const NS: &str = "default";
pub const OPERATOR_USER: &str = "system:serviceaccount:default:hap-operator";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

pub fn deploy_file(rel: &str) -> String {
    let path = repo_root().join("deploy").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A tool scripts/setup.sh installs, from `$HAP_CACHE/bin` (default `~/.cache/hap/bin`).
pub fn tool(name: &str) -> PathBuf {
    let cache = std::env::var_os("HAP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hap")
        });
    let path = cache.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh first",
        path.display()
    );
    path
}

/// How long one test may run before the watchdog a [`Harness`] starts fails it: the last resort against
/// a wait this file's timeouts do not cover (a request the API never answers, say).
pub const TEST_LIMIT: Duration = Duration::from_secs(240);

/// Awaits `fut`, failing after `limit` with a message saying what was awaited.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Polls `check` until it returns Ok, or fails after `timeout` with the last observation. A check that
/// does not answer by then fails too.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(left.max(Duration::from_secs(1)), check()).await;
        match outcome {
            Ok(Ok(v)) => return v,
            Ok(Err(last)) if Instant::now() > deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => panic!(
                "timed out after {timeout:?} waiting for {what}; the last check did not answer"
            ),
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Fails the whole test process if the test that made it is still running after [`TEST_LIMIT`], so
/// that a hang fails with a message rather than stalling the run. Dropping it disarms it.
pub struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    pub fn arm(limit: Duration) -> Self {
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!(
                    "{test} still running after {limit:?}: it waits for something that does not come; failing the run"
                );
                std::process::exit(101);
            }
        });
        Watchdog { _disarm: tx }
    }
}

/// Applies every document of a manifest (server-side, as the admin), like `kubectl apply -f`.
pub async fn apply_manifest(client: &Client, yaml: &str) {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("manifest YAML");
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let obj: DynamicObject = serde_json::from_value(doc).expect("a Kubernetes object");
        let types = obj.types.clone().expect("apiVersion and kind");
        let gvk = kube::core::GroupVersionKind::try_from(&types).expect("group/version/kind");
        let (ar, caps): (ApiResource, _) = discovery.resolve_gvk(&gvk).expect("a served kind");
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                obj.namespace().as_deref().unwrap_or(NS),
                &ar,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        api.patch(
            &obj.name_any(),
            &PatchParams::apply("test").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {}: {e}", gvk.kind, obj.name_any()));
    }
}

/// Short simulated delays, so pods start and stop in tens of milliseconds.
pub fn fast_timings() -> Timings {
    Timings {
        container_start: Duration::from_millis(50),
        container_stop: Duration::from_millis(50),
        job_run: Duration::from_millis(200),
        bookmark_interval: Duration::from_secs(5),
        crash_backoff: Duration::from_millis(500),
    }
}

/// The operator's test settings: quick resyncs and back-offs.
pub fn fast_config() -> RunConfig {
    RunConfig {
        watch_namespace: Some(NS.into()),
        resync: Duration::from_secs(1),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        replace_min: Duration::from_millis(500),
        replace_max: Duration::from_secs(4),
        instance: "hap-operator-test".into(),
        ..RunConfig::default()
    }
}

/// A simulated cluster with the CRD and the operator's RBAC from `deploy/`, and the controller running
/// with the operator's ServiceAccount credentials (so `deploy/role.yaml` is what it may do).
pub struct Harness {
    pub sim: Sim,
    pub admin: Client,
    pub operator: Client,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _watchdog: Watchdog,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(fast_config()).await
    }

    pub async fn start_with(config: RunConfig) -> Self {
        let mut h = Self::start_idle().await;
        h.run_controller(config);
        h
    }

    /// The cluster and the operator's installation, with no controller running yet.
    pub async fn start_idle() -> Self {
        let watchdog = Watchdog::arm(TEST_LIMIT);
        let sim = Sim::start(SimConfig {
            timings: fast_timings(),
            ..SimConfig::default()
        })
        .await
        .expect("kube-sim starts (run scripts/setup.sh if crdcheck is missing)");
        let admin = sim.admin_client().await.expect("admin client");
        for file in [
            "crds/hap.cloudian.com_hapcontainers_crd.yaml",
            "service_account.yaml",
            "role.yaml",
            "role_binding.yaml",
        ] {
            apply_manifest(&admin, &deploy_file(file)).await;
        }
        let operator = sim
            .service_account_client(NS, "hap-operator")
            .await
            .expect("operator client");
        Harness {
            sim,
            admin,
            operator,
            metrics: Arc::new(Metrics::default()),
            stop: None,
            task: None,
            _watchdog: watchdog,
        }
    }

    pub fn run_controller(&mut self, config: RunConfig) {
        let (tx, rx) = oneshot::channel::<()>();
        let client = self.operator.clone();
        let metrics = self.metrics.clone();
        let shutdown = async move {
            let _ = rx.await;
        };
        self.task = Some(tokio::spawn(hap_operator::controller::run(
            client, config, metrics, shutdown,
        )));
        self.stop = Some(tx);
    }

    pub async fn stop_controller(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            within(Duration::from_secs(30), "the controller to stop", t)
                .await
                .expect("the controller task ends without panicking");
        }
    }

    pub fn hapcontainers(&self) -> Api<HapContainer> {
        Api::namespaced(self.admin.clone(), NS)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.admin.clone(), NS)
    }

    /// Whether an object of kind K with this name exists in the test namespace.
    pub async fn exists<K>(&self, name: &str) -> bool
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>()
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"))
            .is_some()
    }

    /// Creates a HapContainer from YAML (as the admin).
    pub async fn create(&self, yaml: &str) -> HapContainer {
        let hc: HapContainer = serde_saphyr::from_str(yaml).expect("HapContainer YAML");
        self.hapcontainers()
            .create(&Default::default(), &hc)
            .await
            .expect("HapContainer admitted")
    }

    /// Creates a Secret with these string values (as the admin).
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        let string_data: std::collections::BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let secret = k8s_openapi::api::core::v1::Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            string_data: Some(string_data),
            ..Default::default()
        };
        self.api::<k8s_openapi::api::core::v1::Secret>()
            .create(&Default::default(), &secret)
            .await
            .expect("Secret created");
    }

    /// Waits until the HapContainer's status satisfies `check`, returning it.
    pub async fn wait_status<F>(&self, name: &str, what: &str, check: F) -> HapContainer
    where
        F: Fn(&HapContainer) -> bool,
    {
        let api = self.hapcontainers();
        eventually(Duration::from_secs(30), what, || {
            let api = api.clone();
            let check = &check;
            async move {
                let hc = api.get(name).await.map_err(|e| e.to_string())?;
                if check(&hc) {
                    Ok(hc)
                } else {
                    Err(format!("{:?}", hc.status))
                }
            }
        })
        .await
    }

    pub async fn wait_phase(&self, name: &str, phase: &str) -> HapContainer {
        self.wait_status(name, &format!("phase {phase}"), |hc| {
            hc.status.as_ref().and_then(|s| s.phase).map(|p| p.as_str()) == Some(phase)
        })
        .await
    }

    /// Write requests the operator made since the log was last reset.
    pub fn operator_writes(&self) -> Vec<kube_sim::RequestRecord> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.user == OPERATOR_USER && r.is_write())
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// The status condition of the given type; a test that asks for one expects it to be there.
pub fn condition_in(status: &HapContainerStatus, type_: &str) -> Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", status.conditions))
}

/// [`condition_in`] for a HapContainer's status.
pub fn condition(hc: &HapContainer, type_: &str) -> Condition {
    condition_in(hc.status.as_ref().expect("status"), type_)
}
