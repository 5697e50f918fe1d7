//! Starting and stopping a simulated cluster, and handing out clients and kubeconfigs for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::Identity;
use crate::controllers::{self, Writer};
use crate::core::{Controller, Core, FaultRule, PodFault, Timings};
use crate::crdcheck::{self, CrdCheck};
use crate::faults::{Faults, RequestRecord};

/// Where custom resource admission comes from.
#[derive(Clone, Debug, Default)]
pub enum CrdValidation {
    /// `crdcheck` from `$KUBE_SIM_CRDCHECK` or the set-up script's cache; starting fails without it.
    #[default]
    Required,
    /// This `crdcheck` binary.
    Binary(PathBuf),
    /// No admission: custom resources are stored as sent (neither pruned, defaulted nor validated).
    Off,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub crd_validation: CrdValidation,
    pub timings: Timings,
    /// How many watch events stay resumable.
    pub history: usize,
    pub nodes: usize,
    /// `nvidia.com/gpu` allocatable on each node.
    pub gpus_per_node: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            crd_validation: CrdValidation::Required,
            timings: Timings::default(),
            history: 10_000,
            nodes: 1,
            gpus_per_node: 0,
        }
    }
}

/// A running simulated cluster.
pub struct Sim {
    core: Arc<Core>,
    addr: SocketAddr,
    admin_token: String,
    ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    controllers: Vec<JoinHandle<()>>,
}

fn rbac_defaults() -> Vec<(&'static str, Value)> {
    let labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let annotations = json!({"rbac.authorization.kubernetes.io/autoupdate": "true"});
    let role = |name: &str, rules: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels, "annotations": annotations}, "rules": rules})
    };
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
            .collect();
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subjects})
    };
    vec![
        (
            "clusterroles",
            role(
                "cluster-admin",
                json!([
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]}
                ]),
            ),
        ),
        (
            "clusterroles",
            role(
                "system:discovery",
                json!([{"nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"
        ], "verbs": ["get"]}]),
            ),
        ),
        (
            "clusterroles",
            role(
                "system:public-info-viewer",
                json!([{"nonResourceURLs": [
            "/healthz", "/livez", "/readyz", "/version", "/version/"
        ], "verbs": ["get"]}]),
            ),
        ),
        (
            "clusterroles",
            role(
                "system:basic-user",
                json!([
                    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}
                ]),
            ),
        ),
        (
            "clusterrolebindings",
            binding("cluster-admin", &["system:masters"]),
        ),
        (
            "clusterrolebindings",
            binding("system:discovery", &["system:authenticated"]),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
        ),
        (
            "clusterrolebindings",
            binding("system:basic-user", &["system:authenticated"]),
        ),
    ]
}

fn node(name: &str, ip: &str, gpus: u32) -> (Value, Value) {
    let obj = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"
    }}, "spec": {"podCIDR": "10.244.0.0/24"}});
    let mut resources =
        json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    // Nodes without GPUs do not list the extended resource at all, as with a real device plugin.
    if gpus > 0 {
        resources["nvidia.com/gpu"] = json!(gpus.to_string());
    }
    let now = crate::clock::now();
    let status = json!({
        "capacity": resources, "allocatable": resources,
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status (simulated by kube-sim; no containers run)", "lastHeartbeatTime": now, "lastTransitionTime": now}
        ],
        "nodeInfo": {"kubeletVersion": crate::api::discovery::GIT_VERSION, "kubeProxyVersion": "", "osImage": "kube-sim", "kernelVersion": "simulated",
            "containerRuntimeVersion": "simulated://0", "operatingSystem": "linux", "architecture": "amd64",
            "machineID": "", "systemUUID": "", "bootID": ""}
    });
    (obj, status)
}

/// The objects a fresh cluster has: namespaces, nodes, default RBAC, the `kubernetes` service.
async fn bootstrap(core: &Core, gpus: u32) -> anyhow::Result<()> {
    let writer = Writer {
        core,
        manager: "kube-apiserver",
    };
    let ns_rt = core.built_in("", "namespaces");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        writer
            .create(
                &ns_rt,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let node_rt = core.built_in("", "nodes");
    for (name, ip) in &core.nodes {
        let (obj, status) = node(name, ip, gpus);
        let created = writer
            .create(&node_rt, obj)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        writer
            .update_status(&node_rt, &created, status)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    for (resource, obj) in rbac_defaults() {
        let rt = core.built_in("rbac.authorization.k8s.io", resource);
        writer
            .create(&rt, obj)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let svc_rt = core.built_in("", "services");
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
    writer
        .create(&svc_rt, svc)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let ep_rt = core.built_in("", "endpoints");
    let api_ip = core.nodes[0].1.clone();
    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": api_ip}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]});
    writer
        .create(&ep_rt, ep)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(())
}

/// A kubeconfig that trusts `ca_pem` and authenticates with `token`, in YAML.
pub fn kubeconfig_yaml(server: &str, ca_pem: &str, user: &str, token: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: {user}@kube-sim\n  context:\n    cluster: kube-sim\n    user: {user}\n    namespace: default\ncurrent-context: {user}@kube-sim\n"
    )
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Kubeconfigs hold bearer tokens: readable by their owner only.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

impl Sim {
    pub async fn start(config: SimConfig) -> anyhow::Result<Sim> {
        let crdcheck = match &config.crd_validation {
            CrdValidation::Off => None,
            CrdValidation::Binary(p) => Some(CrdCheck::new(p.clone())),
            CrdValidation::Required => Some(CrdCheck::new(crdcheck::locate().context(
                "crdcheck not found: run scripts/setup.sh (it builds ../shared/tools/crdcheck), set KUBE_SIM_CRDCHECK, or turn custom resource validation off explicitly",
            )?)),
        };
        let certs = crate::tls::generate()?;
        let core = Core::new(
            crdcheck,
            config.timings.clone(),
            config.history,
            config.nodes,
            certs.ca_pem.clone(),
        );
        bootstrap(&core, config.gpus_per_node).await?;
        let tcp = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = tcp.local_addr()?;
        let listener = crate::tls::TlsListener::new(tcp, certs.server.clone())?;
        *core.address.write().expect("address") = addr.to_string();
        let admin_token = core.tokens.issue(Identity::Admin);
        let (tx, rx) = oneshot::channel::<()>();
        let app = crate::api::router(core.clone());
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "kube-sim server stopped");
            }
        });
        let controllers = controllers::spawn_all(&core);
        Ok(Sim {
            core,
            addr,
            admin_token,
            ca_pem: certs.ca_pem,
            shutdown: Some(tx),
            server: Some(server),
            controllers,
        })
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) the server's certificate chains to.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    pub fn admin_kubeconfig(&self) -> String {
        kubeconfig_yaml(&self.url(), &self.ca_pem, "admin", &self.admin_token)
    }

    /// A kubeconfig that authenticates as ServiceAccount `namespace/name`. The token works while the
    /// ServiceAccount exists, which it need not yet.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> String {
        let token = self.core.tokens.issue(Identity::ServiceAccount {
            namespace: namespace.into(),
            name: name.into(),
        });
        kubeconfig_yaml(
            &self.url(),
            &self.ca_pem,
            &format!("system:serviceaccount:{namespace}:{name}"),
            &token,
        )
    }

    pub fn write_kubeconfig(path: &Path, yaml: &str) -> anyhow::Result<()> {
        write_private(path, yaml)
    }

    async fn client_from(yaml: &str) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    pub async fn admin_client(&self) -> anyhow::Result<kube::Client> {
        Self::client_from(&self.admin_kubeconfig()).await
    }

    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<kube::Client> {
        Self::client_from(&self.service_account_kubeconfig(namespace, name)).await
    }

    pub fn faults(&self) -> &Faults {
        &self.core.faults
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.core.faults.requests()
    }

    pub fn reset_requests(&self) {
        self.core.faults.reset_requests();
    }

    pub fn close_watches(&self) {
        self.core.close_watches();
    }

    /// Drops the watch history: resuming from any earlier resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        self.core.store.compact();
    }

    pub fn set_controller(&self, controller: Controller, enabled: bool) {
        self.core.switches.set(controller, enabled);
    }

    /// Makes the kubelet treat pods whose image contains `image_contains` as `fault` says.
    pub fn add_pod_fault(&self, image_contains: &str, fault: PodFault) {
        self.core
            .pod_faults
            .write()
            .expect("pod faults")
            .push(FaultRule {
                image_contains: image_contains.into(),
                fault,
            });
    }

    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        for c in self.controllers.drain(..) {
            c.abort();
        }
        self.core.close_watches();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for c in &self.controllers {
            c.abort();
        }
        if let Some(s) = &self.server {
            s.abort();
        }
    }
}
