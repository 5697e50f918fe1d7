//! The shared state of one simulated cluster: served types, stored objects, credentials, faults and the
//! knobs of the simulated controllers. The HTTP layer and the controllers both work on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::auth::Tokens;
use crate::crdcheck::CrdCheck;
use crate::faults::Faults;
use crate::rbac::Policy;
use crate::registry::{Registry, ResourceType, StorageKey};
use crate::store::Store;

/// How a kubelet treats pods whose image matches a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodFault {
    /// The image cannot be pulled: the container waits in ErrImagePull / ImagePullBackOff.
    ImagePull,
    /// The container exits with code 1 and restarts with back-off (CrashLoopBackOff).
    Crash,
    /// The pod is evicted: phase Failed, reason Evicted.
    Evict,
}

#[derive(Clone, Debug)]
pub struct FaultRule {
    /// A substring of the container image.
    pub image_contains: String,
    pub fault: PodFault,
}

/// The simulated controllers, each of which can be switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Controller {
    Scheduler,
    Kubelet,
    Endpoints,
    Workloads,
    GarbageCollector,
    Namespaces,
}

pub struct Switches {
    scheduler: AtomicBool,
    kubelet: AtomicBool,
    endpoints: AtomicBool,
    workloads: AtomicBool,
    gc: AtomicBool,
    namespaces: AtomicBool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            scheduler: AtomicBool::new(true),
            kubelet: AtomicBool::new(true),
            endpoints: AtomicBool::new(true),
            workloads: AtomicBool::new(true),
            gc: AtomicBool::new(true),
            namespaces: AtomicBool::new(true),
        }
    }
}

impl Switches {
    fn flag(&self, c: Controller) -> &AtomicBool {
        match c {
            Controller::Scheduler => &self.scheduler,
            Controller::Kubelet => &self.kubelet,
            Controller::Endpoints => &self.endpoints,
            Controller::Workloads => &self.workloads,
            Controller::GarbageCollector => &self.gc,
            Controller::Namespaces => &self.namespaces,
        }
    }

    pub fn enabled(&self, c: Controller) -> bool {
        self.flag(c).load(Ordering::Relaxed)
    }

    pub fn set(&self, c: Controller, on: bool) {
        self.flag(c).store(on, Ordering::Relaxed);
    }
}

/// Timings of the simulation. Real clusters take seconds; tests want milliseconds.
#[derive(Clone, Debug)]
pub struct Timings {
    /// From scheduled to running.
    pub container_start: Duration,
    /// From deletion request to the kubelet confirming the containers stopped.
    pub container_stop: Duration,
    /// How long a Job's pod runs before it succeeds.
    pub job_run: Duration,
    /// Between watch bookmarks.
    pub bookmark_interval: Duration,
    /// Between restarts of a crashing container.
    pub crash_backoff: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            container_start: Duration::from_millis(300),
            container_stop: Duration::from_millis(200),
            job_run: Duration::from_secs(1),
            bookmark_interval: Duration::from_secs(10),
            crash_backoff: Duration::from_secs(2),
        }
    }
}

pub struct Core {
    pub registry: Registry,
    pub store: Store,
    pub tokens: Tokens,
    pub faults: Faults,
    pub crdcheck: Option<CrdCheck>,
    pub switches: Switches,
    pub timings: Timings,
    pub pod_faults: RwLock<Vec<FaultRule>>,
    /// Serializes Service writes, so that two services never get the same node port.
    pub service_lock: tokio::sync::Mutex<()>,
    /// Bumped to end every open watch (fault injection: "close all watches").
    pub watch_epoch: tokio::sync::watch::Sender<u64>,
    /// `host:port` clients use, for discovery's serverAddressByClientCIDRs.
    pub address: RwLock<String>,
    /// The simulated nodes' names and InternalIPs.
    pub nodes: Vec<(String, String)>,
    /// The CA of the serving certificate, published in every namespace as `kube-root-ca.crt`.
    pub ca_pem: String,
}

impl Core {
    pub fn new(
        crdcheck: Option<CrdCheck>,
        timings: Timings,
        history: usize,
        nodes: usize,
        ca_pem: String,
    ) -> Arc<Self> {
        let (watch_epoch, _) = tokio::sync::watch::channel(0);
        Arc::new(Core {
            registry: Registry::default(),
            store: Store::new(history),
            tokens: Tokens::default(),
            faults: Faults::default(),
            crdcheck,
            switches: Switches::default(),
            timings,
            pod_faults: RwLock::new(Vec::new()),
            service_lock: tokio::sync::Mutex::new(()),
            watch_epoch,
            address: RwLock::new(String::new()),
            nodes: (1..=nodes.max(1))
                .map(|i| (format!("kube-sim-node-{i}"), format!("172.18.0.{}", i + 1)))
                .collect(),
            ca_pem,
        })
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.registry.find(group, version, plural)
    }

    /// The type of a built-in resource, which always exists.
    pub fn built_in(&self, group: &str, plural: &str) -> ResourceType {
        let version = "v1";
        self.registry
            .find(group, version, plural)
            .unwrap_or_else(|| panic!("built-in {plural}.{group} is served"))
    }

    pub fn get(&self, key: &StorageKey, namespace: &str, name: &str) -> Option<Value> {
        self.store.get(key, namespace, name)
    }

    /// The stored RBAC objects, for the authorizer.
    pub fn policy(&self) -> Policy {
        let list = |r: &str| {
            self.store
                .list(&StorageKey::new("rbac.authorization.k8s.io", r), None)
                .0
        };
        Policy {
            roles: list("roles"),
            cluster_roles: list("clusterroles"),
            role_bindings: list("rolebindings"),
            cluster_role_bindings: list("clusterrolebindings"),
        }
    }

    pub fn pod_fault(&self, pod: &Value) -> Option<PodFault> {
        let rules = self.pod_faults.read().expect("pod faults");
        let images: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["image"].as_str())
            .collect();
        rules
            .iter()
            .find(|r| images.iter().any(|i| i.contains(&r.image_contains)))
            .map(|r| r.fault.clone())
    }

    /// Ends every open watch; clients re-establish them.
    pub fn close_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }
}
