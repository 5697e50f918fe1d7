//! Shared by the operator's tests: the real local Kubernetes cluster (`scripts/cluster.sh`), a fresh
//! namespace per test with the operator installed from `deploy/`, the controller running in the test
//! as the operator's own ServiceAccount behind a fault-injecting layer, and small helpers.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hap_api::{HapContainer, HapContainerStatus};
use hap_operator::pipeline::config::RunConfig;
use hap_operator::pipeline::metrics::Metrics;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiResource, Scope};
use kube::{Client, Discovery, ResourceExt};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod faults;
pub mod render;
pub use faults::{Call, Faults};

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
pub const TEST_LIMIT: Duration = Duration::from_secs(600);

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

/// Applies every document of a manifest (server-side, as the admin) in namespace `ns` unless a
/// document names its own, like `kubectl apply -n NS -f`.
pub async fn apply_manifest(client: &Client, ns: &str, yaml: &str) {
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
                obj.namespace().as_deref().unwrap_or(ns),
                &ar,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        api.patch(
            &obj.name_any(),
            &PatchParams::apply("hap-operator-tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {}: {e}", gvk.kind, obj.name_any()));
    }
}

/// The image the tests' workspaces run: the real one, loaded into the node.
pub const WORKSPACE_IMAGE: &str = "hap-workspace:0.1.0";
/// The image the tests' HapQueries run MariaDB from, loaded into the node too.
pub const MARIADB_IMAGE: &str = "hap-mariadb:0.1.0";

/// The Kubernetes cluster the tests run on.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// The API server's audit log (one JSON event per request), when the cluster is the local one.
    pub audit_log: Option<PathBuf>,
}

/// The cluster, found once per test binary: the one `HAP_TEST_KUBECONFIG` names (with its audit
/// log in `HAP_TEST_AUDIT_LOG`, if any), or else the local cluster, which `scripts/cluster.sh up`
/// starts or finds running, with the workspace and MariaDB images loaded into its node.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        if let Some(kubeconfig) = std::env::var_os("HAP_TEST_KUBECONFIG") {
            return Cluster {
                kubeconfig: kubeconfig.into(),
                audit_log: std::env::var_os("HAP_TEST_AUDIT_LOG").map(PathBuf::from),
            };
        }
        let script = repo_root().join("scripts/cluster.sh");
        let up = Command::new(&script)
            .arg("up")
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/cluster.sh up");
        assert!(
            up.status.success(),
            "scripts/cluster.sh up failed (it needs root; see docs/local-cluster.md)"
        );
        let stdout = String::from_utf8_lossy(&up.stdout);
        let kubeconfig = PathBuf::from(stdout.lines().last().expect("a kubeconfig path").trim());
        let load = Command::new(&script)
            .args(["load", WORKSPACE_IMAGE, MARIADB_IMAGE])
            .status()
            .expect("running scripts/cluster.sh load");
        assert!(
            load.success(),
            "cannot load {WORKSPACE_IMAGE} and {MARIADB_IMAGE} into the node: build them with scripts/images.sh"
        );
        let state = kubeconfig.parent().expect("the cluster's state directory");
        Cluster {
            audit_log: Some(state.join("logs/audit.log")),
            kubeconfig,
        }
    })
}

async fn admin_config() -> kube::Config {
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster().kubeconfig)
        .expect("the cluster's kubeconfig");
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client configuration from the kubeconfig")
}

/// The CRDs from `deploy/`, applied and established once per test binary.
async fn install_crds(admin: &Client) {
    static CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CRDS.get_or_init(|| async {
        for (file, name) in [
            (
                "crds/hap.cloudian.com_hapcontainers_crd.yaml",
                "hapcontainers.hap.cloudian.com",
            ),
            (
                "crds/hap.cloudian.com_hapqueries_crd.yaml",
                "hapqueries.hap.cloudian.com",
            ),
        ] {
            apply_manifest(admin, "default", &deploy_file(file)).await;
            let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
            eventually(Duration::from_secs(30), "the CRD established", || async {
                let crd = crds.get(name).await.map_err(|e| e.to_string())?;
                let established = crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
                established.then_some(()).ok_or("not yet".to_string())
            })
            .await;
        }
    })
    .await;
}

/// The operator's test settings for namespace `ns`: quick resyncs and back-offs.
pub fn fast_config(ns: &str) -> RunConfig {
    RunConfig {
        watch_namespace: Some(ns.into()),
        resync: Duration::from_secs(1),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        replace_min: Duration::from_millis(500),
        replace_max: Duration::from_secs(4),
        instance: "hap-operator-test".into(),
        // The CA is kept beside the operator, whose Role covers this namespace only.
        operator_namespace: Some(ns.into()),
        ..RunConfig::default()
    }
}

/// One test's corner of the cluster: a fresh namespace with the CRD and the operator's
/// ServiceAccount, Role and RoleBinding from `deploy/`, and the controller running in the test with
/// that ServiceAccount's token (so `deploy/role.yaml` is what it may do), through [`Faults`].
pub struct Harness {
    pub ns: String,
    pub admin: Client,
    pub operator: Client,
    /// The operator client's configuration (its ServiceAccount token), for more clients like it.
    pub operator_config: kube::Config,
    pub faults: Faults,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _watchdog: Watchdog,
}

impl Harness {
    pub async fn start() -> Self {
        let mut h = Self::start_idle().await;
        h.run_controller(h.fast_config());
        h
    }

    pub async fn start_with(config: impl FnOnce(RunConfig) -> RunConfig) -> Self {
        let mut h = Self::start_idle().await;
        h.run_controller(config(h.fast_config()));
        h
    }

    /// The namespace and the operator's installation, with no controller running yet.
    pub async fn start_idle() -> Self {
        // The operator's logs in the test's output, filtered by RUST_LOG (default: warnings).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        // Armed once the cluster is there: a cold `up` compiles Kubernetes first.
        cluster();
        let watchdog = Watchdog::arm(TEST_LIMIT);
        let config = admin_config().await;
        let admin = Client::try_from(config.clone()).expect("admin client");
        install_crds(&admin).await;
        let ns = format!("hap-test-{:08x}", rand::random::<u32>());
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": ns, "labels": {"hap.cloudian.com/test": "operator"}}
        }))
        .unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&Default::default(), &namespace)
            .await
            .expect("the test's namespace");
        for file in ["service_account.yaml", "role.yaml", "role_binding.yaml"] {
            apply_manifest(&admin, &ns, &deploy_file(file)).await;
        }
        let operator_config = service_account_config(&admin, &ns, config).await;
        let faults = Faults::default();
        let operator = kube::client::ClientBuilder::try_from(operator_config.clone())
            .expect("operator client")
            .with_layer(&faults)
            .build();
        Harness {
            ns,
            admin,
            operator,
            operator_config,
            faults,
            metrics: Arc::new(Metrics::default()),
            stop: None,
            task: None,
            _watchdog: watchdog,
        }
    }

    pub fn fast_config(&self) -> RunConfig {
        fast_config(&self.ns)
    }

    /// The operator's user name, as the API server authenticates it.
    pub fn operator_user(&self) -> String {
        format!("system:serviceaccount:{}:hap-operator", self.ns)
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
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.admin.clone(), &self.ns)
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

    /// Creates a HapContainer from YAML (as the admin). A spec with no resources asks for little
    /// (50m CPU, 256Mi), so that the workspaces of tests running side by side fit on a two-core node.
    pub async fn create(&self, yaml: &str) -> HapContainer {
        let mut hc: HapContainer = serde_saphyr::from_str(yaml).expect("HapContainer YAML");
        if hc.spec.resources.is_none() {
            hc.spec.resources = Some(
                serde_json::from_value(
                    serde_json::json!({"requests": {"cpu": "50m", "memory": "256Mi"}}),
                )
                .unwrap(),
            );
        }
        self.hapcontainers()
            .create(&Default::default(), &hc)
            .await
            .expect("HapContainer admitted")
    }

    /// Creates a Secret with these string values (as the admin), shared with the namespace's HAP
    /// resources (labelled hap.cloudian.com/allow-reference=true, as a user does in the
    /// shared-namespace install the tests run).
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        self.create_secret_labelled(name, data, true).await
    }

    /// The same, shared or not.
    pub async fn create_secret_labelled(&self, name: &str, data: &[(&str, &str)], shared: bool) {
        let string_data: std::collections::BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let labels = shared.then(|| {
            [(
                "hap.cloudian.com/allow-reference".to_string(),
                "true".to_string(),
            )]
            .into()
        });
        let secret = k8s_openapi::api::core::v1::Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                labels,
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

    /// Waits until the HapContainer's status satisfies `check`, returning it. Real pods start in
    /// seconds to tens of seconds (Jupyter's readiness probe runs every 10 s).
    pub async fn wait_status<F>(&self, name: &str, what: &str, check: F) -> HapContainer
    where
        F: Fn(&HapContainer) -> bool,
    {
        let api = self.hapcontainers();
        eventually(Duration::from_secs(120), what, || {
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

    /// Asks the API server to admit each object of kind K in `yaml` (a multi-document YAML) into the
    /// test's namespace, without storing it: each one's name, and Ok or the server's error message.
    /// The objects stay untyped, so that invalid ones reach the server as written.
    pub async fn admit<K>(&self, yaml: &str) -> Vec<(String, Result<(), String>)>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.admin.clone(), &self.ns, &ApiResource::erase::<K>(&()));
        let dry_run = kube::api::PostParams {
            dry_run: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        for doc in serde_saphyr::from_multiple::<Value>(yaml).expect("YAML") {
            let mut obj: DynamicObject = serde_json::from_value(doc).expect("a Kubernetes object");
            obj.metadata.namespace = None;
            let verdict = match api.create(&dry_run, &obj).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) => Err(status.message),
                Err(other) => panic!("the API server did not answer: {other}"),
            };
            out.push((obj.name_any(), verdict));
        }
        out
    }

    /// The events (events.k8s.io) about the object `name` of the test's namespace.
    pub async fn events_for(&self, name: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.admin.clone(), &self.ns);
        events
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    /// `kubectl ARGS...` as the admin in the test's namespace: stdout, or a panic with stderr.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new(tool("kubectl"))
            .arg("--kubeconfig")
            .arg(&cluster().kubeconfig)
            .args(["--namespace", &self.ns])
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Reconciles the controller completed without an error, from its metrics.
    pub fn successful_reconciles(&self) -> u64 {
        self.metrics
            .render()
            .lines()
            .find(|l| l.starts_with("hap_operator_reconciles_total{result=\"success\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Write requests the operator's client made since the record was last reset.
    pub fn operator_writes(&self) -> Vec<Call> {
        self.faults.writes()
    }

    /// What the API server's audit log says the operator's ServiceAccount asked of this namespace
    /// (and cluster-wide), as (API group, resource[/subresource], verb, response code).
    pub fn audited_operator_requests(&self) -> Vec<(String, String, String, u16)> {
        let path = cluster()
            .audit_log
            .as_ref()
            .expect("the cluster's audit log (HAP_TEST_AUDIT_LOG for a cluster of your own)");
        let user = self.operator_user();
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["user"]["username"] == user.as_str())
            .map(|e| {
                let object = &e["objectRef"];
                let resource = match object["subresource"].as_str() {
                    Some(sub) => format!("{}/{sub}", object["resource"].as_str().unwrap_or("")),
                    None => object["resource"].as_str().unwrap_or("").to_string(),
                };
                (
                    object["apiGroup"].as_str().unwrap_or("").to_string(),
                    resource,
                    e["verb"].as_str().unwrap_or("").to_string(),
                    e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                )
            })
            .collect()
    }
}

/// A configuration like `admin`'s, authenticated with a fresh token of ServiceAccount
/// `hap-operator` in `ns`: what the operator's pod gets.
async fn service_account_config(
    admin: &Client,
    ns: &str,
    mut config: kube::Config,
) -> kube::Config {
    let request: TokenRequest = serde_json::from_value(serde_json::json!({
        "spec": {"audiences": [], "expirationSeconds": 600}
    }))
    .unwrap();
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_token_request("hap-operator", &Default::default(), &request)
        .await
        .expect("a token for the operator's ServiceAccount")
        .status
        .expect("a token")
        .token;
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    config.default_namespace = ns.to_string();
    config
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        // The namespace and everything in it go, in the background; a failed test's namespace is
        // kept for a look (HAP_TEST_KEEP_FAILED=1).
        let keep = std::thread::panicking() && std::env::var_os("HAP_TEST_KEEP_FAILED").is_some();
        if !keep {
            let _ = Command::new(tool("kubectl"))
                .arg("--kubeconfig")
                .arg(&cluster().kubeconfig)
                .args(["delete", "namespace", &self.ns, "--wait=false"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
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
