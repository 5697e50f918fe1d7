//! `hap-operator`: with no subcommand or `run`, the controller (as the original deploy/operator.yaml
//! runs it); `crd` prints the CRDs; `render -f FILE` prints the children of the HapContainers and
//! HapQueries in FILE.
#![forbid(unsafe_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hap_operator::pipeline::config::{
    BuildConfig, Limits, ProcessConfig, RunConfig, Tenancy, watch_namespace,
};
use hap_operator::pipeline::metrics::Metrics;

#[derive(Parser)]
#[command(
    name = "hap-operator",
    version,
    about = "Runs HapContainer analytics workspaces on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default).
    Run(Box<RunArgs>),
    /// Print every CRD as YAML.
    Crd,
    /// Print the children of the HapContainers and HapQueries in a file as YAML, with no cluster.
    Render {
        /// The file to read; `-` for standard input.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// The workspace image used when a HapContainer sets none.
        #[arg(long, env = "HAP_WORKSPACE_IMAGE")]
        workspace_image: Option<String>,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Only this namespace; empty or unset watches every namespace.
    #[arg(long, env = "WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// How the operator is installed: shared-namespace (the original's: it and its users in one
    /// namespace, where a resource names only Secrets labelled hap.cloudian.com/allow-reference=true)
    /// or namespaces (each tenant in a namespace of its own that enforces the restricted Pod
    /// Security Standard).
    #[arg(long, env = "HAP_TENANCY", default_value = "shared-namespace", value_parser = ["shared-namespace", "namespaces"])]
    tenancy: String,
    #[command(flatten)]
    limits: LimitArgs,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "HAP_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Take a coordination.k8s.io Lease before reconciling, so one replica acts at a time.
    #[arg(long, env = "HAP_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// The Lease's name.
    #[arg(long, env = "HAP_LEASE_NAME", default_value = "hap-operator")]
    lease_name: String,
    /// The operator's namespace, where its Lease and its CA (the Secret hap-ca) are kept (default:
    /// the client's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// How long a Lease stays valid without renewal, in seconds.
    #[arg(long, env = "HAP_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// This instance's identity in the Lease and in events.
    #[arg(long, env = "POD_NAME", default_value = "hap-operator")]
    pod_name: String,
    /// The workspace image used when a HapContainer sets none.
    #[arg(long, env = "HAP_WORKSPACE_IMAGE")]
    workspace_image: Option<String>,
    /// Seconds between checks of a converged HapContainer.
    #[arg(long, env = "HAP_RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
    /// First back-off before replacing a failed workspace pod, in seconds (it doubles up to 300).
    #[arg(long, env = "HAP_REPLACE_BACKOFF_SECONDS", default_value_t = 10)]
    replace_backoff_seconds: u64,
    /// Reconciles running at once, per kind of resource (HapContainers, HapQueries).
    #[arg(long, env = "HAP_RECONCILE_CONCURRENCY", default_value_t = hap_operator::pipeline::config::DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    reconcile_concurrency: u16,
    /// Triggers of one resource within this many milliseconds of each other make one reconcile.
    #[arg(long, env = "HAP_RECONCILE_DEBOUNCE_MS", default_value_t = hap_operator::pipeline::config::DEFAULT_DEBOUNCE.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    reconcile_debounce_ms: u64,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

/// The most one resource may ask for (see `Limits`).
#[derive(clap::Args, Clone)]
struct LimitArgs {
    /// Spark executors per workspace application.
    #[arg(long, env = "HAP_MAX_EXECUTORS", default_value_t = Limits::default().executors)]
    max_executors: i32,
    /// Cores per Spark executor.
    #[arg(long, env = "HAP_MAX_EXECUTOR_CORES", default_value_t = Limits::default().executor_cores)]
    max_executor_cores: i32,
    /// Memory per Spark executor, as a Kubernetes quantity.
    #[arg(long, env = "HAP_MAX_EXECUTOR_MEMORY", default_value = "64Gi")]
    max_executor_memory: String,
    /// GPUs per workspace.
    #[arg(long, env = "HAP_MAX_GPUS", default_value_t = Limits::default().gpus)]
    max_gpus: i32,
    /// Trino workers per HapQuery.
    #[arg(long, env = "HAP_MAX_TRINO_WORKERS", default_value_t = Limits::default().trino_workers)]
    max_trino_workers: i32,
}

impl LimitArgs {
    fn limits(&self) -> anyhow::Result<Limits> {
        let memory =
            hap_api::quantity::mebibytes(&self.max_executor_memory).with_context(|| {
                format!(
                    "--max-executor-memory {:?} is not a memory quantity such as 64Gi",
                    self.max_executor_memory
                )
            })?;
        Ok(Limits {
            executors: self.max_executors,
            executor_cores: self.max_executor_cores,
            executor_memory_mib: memory,
            gpus: self.max_gpus,
            trino_workers: self.max_trino_workers,
        })
    }
}

fn build_config(image: Option<String>, limits: Limits) -> BuildConfig {
    let mut b = BuildConfig {
        limits,
        ..BuildConfig::default()
    };
    if let Some(i) = image.filter(|i| !i.is_empty()) {
        b.default_image = i;
    }
    b
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    hap_operator::telemetry::init(args.log_format == "json");
    let metrics = Arc::new(Metrics::default());
    let kubeconfig = kube::Config::infer()
        .await
        .context("finding the Kubernetes API (in-cluster, or KUBECONFIG)")?;
    let client = hap_operator::connection::client(kubeconfig, metrics.clone())
        .context("connecting to the Kubernetes API")?;
    let config = RunConfig {
        build: build_config(args.workspace_image, args.limits.limits()?),
        watch_namespace: watch_namespace(args.watch_namespace),
        tenancy: match args.tenancy.as_str() {
            "namespaces" => Tenancy::Namespaces,
            _ => Tenancy::SharedNamespace,
        },
        resync: Duration::from_secs(args.resync_seconds.max(1)),
        replace_min: Duration::from_secs(args.replace_backoff_seconds.max(1)),
        instance: args.pod_name,
        operator_namespace: args.lease_namespace.clone().filter(|n| !n.is_empty()),
        concurrency: args.reconcile_concurrency,
        debounce: Duration::from_millis(args.reconcile_debounce_ms),
        ..RunConfig::default()
    };
    let process = ProcessConfig {
        metrics_addr: args.metrics_addr,
        leader_election: args.leader_elect,
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace.filter(|n| !n.is_empty()),
        lease_duration: Duration::from_secs(args.lease_duration_seconds.max(2)),
        json_logs: args.log_format == "json",
    };
    tracing::info!(
        namespace = config.watch_namespace.as_deref().unwrap_or("<all>"),
        tenancy = ?config.tenancy,
        leader_election = process.leader_election,
        "hap-operator starting"
    );
    hap_operator::app::run(client, config, process, metrics).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            // No subcommand: run with flags taken from the environment, as the original image did.
            let Cli {
                command: Some(Command::Run(args)),
            } = Cli::parse_from(["hap-operator", "run"])
            else {
                unreachable!("`run` parses into the Run command")
            };
            run(*args).await
        }
        Some(Command::Run(args)) => run(*args).await,
        Some(Command::Crd) => {
            print!("{}", hap_operator::crds_yaml()?);
            Ok(())
        }
        Some(Command::Render {
            file,
            workspace_image,
        }) => {
            let input = if file == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
            };
            let (yaml, warnings) = hap_operator::render::render(
                &input,
                &build_config(workspace_image, Limits::default()),
            )?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            print!("{yaml}");
            Ok(())
        }
    }
}
