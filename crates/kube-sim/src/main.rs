//! `kube-sim serve`: runs a simulated cluster until SIGTERM or SIGINT.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use kube_sim::control::parse_pod_fault;
use kube_sim::{CrdValidation, Sim, SimConfig};

#[derive(Parser)]
#[command(
    name = "kube-sim",
    version,
    about = "A simulated Kubernetes control plane for tests and demos. No containers run."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Kubernetes API on a loopback address.
    Serve(Serve),
}

#[derive(clap::Args)]
struct Serve {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write an admin (cluster-admin) kubeconfig here.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Write a kubeconfig that authenticates as a ServiceAccount: NAMESPACE/NAME=PATH. Repeatable.
    #[arg(long = "sa-kubeconfig", value_name = "NAMESPACE/NAME=PATH")]
    sa_kubeconfigs: Vec<String>,
    /// The crdcheck binary for custom resource admission (default: KUBE_SIM_CRDCHECK or the set-up cache).
    #[arg(long, conflicts_with = "no_crd_validation")]
    crdcheck: Option<PathBuf>,
    /// Store custom resources without pruning, defaulting or validating them.
    #[arg(long)]
    no_crd_validation: bool,
    /// Number of simulated nodes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// nvidia.com/gpu allocatable on each node.
    #[arg(long, default_value_t = 0)]
    gpus_per_node: u32,
    /// Make pods whose image contains PATTERN fail: PATTERN=ImagePull|Crash|Evict. Repeatable.
    #[arg(long = "pod-fault", value_name = "PATTERN=FAULT")]
    pod_faults: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBE_SIM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve(args) = Cli::parse().command;
    let crd_validation = match (args.crdcheck, args.no_crd_validation) {
        (_, true) => CrdValidation::Off,
        (Some(p), false) => CrdValidation::Binary(p),
        (None, false) => CrdValidation::Required,
    };
    let config = SimConfig {
        listen: args.listen,
        crd_validation,
        nodes: args.nodes,
        gpus_per_node: args.gpus_per_node,
        ..SimConfig::default()
    };
    let sim = Sim::start(config).await?;
    for rule in &args.pod_faults {
        let (pattern, fault) = rule
            .split_once('=')
            .context("--pod-fault takes PATTERN=FAULT")?;
        let Some(fault) = parse_pod_fault(fault) else {
            bail!("--pod-fault {rule}: the fault must be ImagePull, Crash or Evict");
        };
        sim.add_pod_fault(pattern, fault);
    }
    Sim::write_kubeconfig(&args.kubeconfig, &sim.admin_kubeconfig())?;
    for spec in &args.sa_kubeconfigs {
        let (account, path) = spec
            .split_once('=')
            .context("--sa-kubeconfig takes NAMESPACE/NAME=PATH")?;
        let (ns, name) = account
            .split_once('/')
            .context("--sa-kubeconfig takes NAMESPACE/NAME=PATH")?;
        Sim::write_kubeconfig(
            &PathBuf::from(path),
            &sim.service_account_kubeconfig(ns, name),
        )?;
    }
    // Signal handlers go in before the address is printed: whoever waits for that line may signal
    // at once, and an unhandled SIGINT or SIGTERM would kill the process instead of stopping it.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    println!(
        "kube-sim serving on {} (simulated cluster: no containers run)",
        sim.url()
    );
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
