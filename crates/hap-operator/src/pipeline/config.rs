//! The operator's settings: command-line flags and environment variables (the original operator.yaml
//! sets WATCH_NAMESPACE, POD_NAME and OPERATOR_NAME), with defaults for everything.

use std::net::SocketAddr;
use std::time::Duration;

use super::authority::Trust;

/// What the resolve and build steps need to know about the installation (pure data, no I/O).
#[derive(Clone, Debug, PartialEq)]
pub struct BuildConfig {
    /// The workspace image when a HapContainer sets none.
    pub default_image: String,
    /// The API server URL Spark's driver uses to create executors (from inside the cluster).
    pub kubernetes_api: String,
    /// The cluster's DNS domain, for the Spark driver's address.
    pub cluster_domain: String,
    /// How much one workspace or SQL stack may ask for.
    pub limits: Limits,
    /// The operator's CA as clients see it; None where nothing runs (`render`).
    pub trust: Option<Trust>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            default_image: hap_api::hapcontainer::DEFAULT_IMAGE.to_string(),
            kubernetes_api: "https://kubernetes.default.svc:443".to_string(),
            cluster_domain: "cluster.local".to_string(),
            limits: Limits::default(),
            trust: None,
        }
    }
}

/// The most one resource may ask for, below the CRDs' own bounds: a spec above a limit is refused
/// with a condition that names the limit and the flag that sets it.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Spark executors per workspace application (`--max-executors`).
    pub executors: i32,
    /// Cores per executor (`--max-executor-cores`).
    pub executor_cores: i32,
    /// Memory per executor, in mebibytes (`--max-executor-memory`).
    pub executor_memory_mib: u64,
    /// GPUs per workspace (`--max-gpus`).
    pub gpus: i32,
    /// Trino workers per HapQuery (`--max-trino-workers`).
    pub trino_workers: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            executors: 16,
            executor_cores: 8,
            executor_memory_mib: 64 * 1024,
            gpus: 4,
            trino_workers: 16,
        }
    }
}

/// How the operator is installed, which decides what a namespace shares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tenancy {
    /// The original's install: the operator and its users in one namespace. A user's resource may
    /// name only the Secrets labelled `hap.cloudian.com/allow-reference=true`.
    #[default]
    SharedNamespace,
    /// Each tenant in a namespace of its own, which enforces the `restricted` Pod Security Standard;
    /// the operator serves them all from its own namespace.
    Namespaces,
}

/// The controller's run-time settings.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub build: BuildConfig,
    /// Only this namespace, or every namespace when None (WATCH_NAMESPACE="" or unset).
    pub watch_namespace: Option<String>,
    pub tenancy: Tenancy,
    /// How often a converged HapContainer is checked again.
    pub resync: Duration,
    /// Error backoff: first delay and cap.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Back-off before replacing a failed workspace pod: first delay and cap.
    pub replace_min: Duration,
    pub replace_max: Duration,
    /// A workspace pod ready this long ends a run of failed-pod replacements (the next failure
    /// waits the first delay again), as the kubelet forgets a container's crash back-off after it
    /// has run 10 minutes.
    pub replace_reset: Duration,
    /// The reporting instance in events (the operator pod's name).
    pub instance: String,
    /// Where the operator's CA is kept (default: the client's namespace).
    pub operator_namespace: Option<String>,
    /// Reconciles running at once, per kind of resource. Unbounded, a thousand new resources
    /// start a thousand reconciles at once, whose requests the API server then throttles (429) or
    /// times out (504), the Lease's renewals among them.
    pub concurrency: u16,
    /// Triggers of one resource within this long of each other are one reconcile: a new child's
    /// watch events come in a burst, each a trigger.
    pub debounce: Duration,
}

/// The default of [`RunConfig::concurrency`], chosen from bench/scale.sh's figures (docs/scale.md).
pub const DEFAULT_CONCURRENCY: u16 = 8;
/// The default of [`RunConfig::debounce`].
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            build: BuildConfig::default(),
            watch_namespace: None,
            tenancy: Tenancy::default(),
            resync: Duration::from_secs(300),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            replace_min: Duration::from_secs(10),
            replace_max: Duration::from_secs(300),
            replace_reset: Duration::from_secs(600),
            instance: "hap-operator".to_string(),
            operator_namespace: None,
            concurrency: DEFAULT_CONCURRENCY,
            debounce: DEFAULT_DEBOUNCE,
        }
    }
}

/// Leader election, metrics and logging: what only the binary needs.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    pub metrics_addr: SocketAddr,
    pub leader_election: bool,
    pub lease_name: String,
    pub lease_namespace: Option<String>,
    pub lease_duration: Duration,
    pub json_logs: bool,
}

/// WATCH_NAMESPACE as operator-sdk read it: empty means all namespaces.
pub fn watch_namespace(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_watch_namespace_means_all() {
        assert_eq!(watch_namespace(None), None);
        assert_eq!(watch_namespace(Some(" ".into())), None);
        assert_eq!(
            watch_namespace(Some("team-a".into())).as_deref(),
            Some("team-a")
        );
    }
}
