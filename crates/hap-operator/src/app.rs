//! The operator process: signals, the metrics server, leader election, and the controller run while
//! this instance leads. Losing the lease stops the controller and waits to lead again; SIGTERM stops
//! everything gracefully and releases the lease.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::{oneshot, watch};

use crate::controller;
use crate::endpoints;
use crate::lease::{Elector, stop_grace};
use crate::pipeline::MANAGER;
use crate::pipeline::config::{ProcessConfig, RunConfig};
use crate::pipeline::metrics::Metrics;

/// Resolves on SIGTERM or SIGINT.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Makes the operator's ServiceAccount the Lease's owner, so that uninstalling the operator removes the
/// Lease (the garbage collector deletes it with the account), while a rolling update, which replaces
/// pods but keeps the account, keeps it. The account is found through this instance's pod; outside a
/// pod (POD_NAME names no pod) the Lease is left as is.
async fn tie_lease_to_service_account(
    client: &Client,
    namespace: &str,
    lease: &str,
    pod_name: &str,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = match pods.get_opt(pod_name).await {
        Ok(Some(pod)) => pod,
        Ok(None) => {
            tracing::info!(
                pod = pod_name,
                "no such pod: the lease is not tied to a ServiceAccount"
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read this operator's pod; the lease is not tied to its ServiceAccount");
            return;
        }
    };
    let account = pod
        .spec
        .and_then(|s| s.service_account_name)
        .unwrap_or_else(|| "default".into());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let uid = match accounts.get(&account).await {
        Ok(sa) => sa.uid(),
        Err(e) => {
            tracing::warn!(error = %e, account, "could not read this operator's ServiceAccount; the lease is not tied to it");
            return;
        }
    };
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ServiceAccount", "name": account, "uid": uid}],
        },
    });
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    if let Err(e) = leases
        .patch(lease, &PatchParams::apply(MANAGER), &Patch::Apply(&body))
        .await
    {
        tracing::warn!(error = %e, "could not tie the lease to this operator's ServiceAccount");
    }
}

/// Runs the operator until SIGTERM. `metrics` are those whose watch freshness the client notes.
pub async fn run(
    client: Client,
    config: RunConfig,
    process: ProcessConfig,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        terminated().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let server = tokio::spawn(endpoints::serve(
        process.metrics_addr,
        metrics.clone(),
        crate::shutdown::when_true(stop_rx.clone()),
    ));
    metrics.set_ready(true);
    lead(client, config, &process, metrics, stop_rx).await?;
    server.await??;
    Ok(())
}

/// Runs the controller until `stop` turns true: directly, or with leader election only while this
/// instance holds the Lease.
pub async fn lead(
    client: Client,
    config: RunConfig,
    process: &ProcessConfig,
    metrics: Arc<Metrics>,
    stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if !process.leader_election {
        metrics.set_leader(true);
        controller::run(
            client,
            config,
            metrics.clone(),
            crate::shutdown::when_true(stop_rx.clone()),
        )
        .await;
        return Ok(());
    }
    let namespace = process
        .lease_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let elector = Elector::new(
        Api::namespaced(client.clone(), &namespace),
        &process.lease_name,
        &config.instance,
        process.lease_duration,
    );
    // The election runs until told to release, which is only once the controller has stopped.
    let (leading_tx, mut leading) = watch::channel(false);
    let (release_tx, release_rx) = watch::channel(false);
    let election = tokio::spawn(elector.run(leading_tx, release_rx, metrics.freshness()));
    tracing::info!(lease = %process.lease_name, %namespace, identity = %config.instance, "waiting for leadership");
    'lead: loop {
        while !*leading.borrow_and_update() {
            let mut stop = stop_rx.clone();
            tokio::select! {
                changed = leading.changed() => if changed.is_err() { break 'lead },
                _ = stop.wait_for(|v| *v) => break 'lead,
            }
        }
        tracing::info!("leading: starting the controller");
        metrics.set_leader(true);
        // Bounded: it is not worth delaying the controller for (it is tried again on leading again).
        let tie = tie_lease_to_service_account(
            &client,
            &namespace,
            &process.lease_name,
            &config.instance,
        );
        if tokio::time::timeout(Duration::from_secs(5), tie)
            .await
            .is_err()
        {
            tracing::warn!(
                "no answer in 5 s: the lease is not tied to this operator's ServiceAccount"
            );
        }
        // Stop the controller when leading ends (the Lease lost, or not renewed in time) or the
        // process stops.
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (mut lost, mut stop) = (leading.clone(), stop_rx.clone());
        let leader_gauge = metrics.clone();
        let watcher = tokio::spawn(async move {
            tokio::select! {
                _ = lost.wait_for(|v| !*v) => leader_gauge.set_leader(false),
                _ = stop.wait_for(|v| *v) => {}
            }
            let _ = shutdown_tx.send(());
        });
        let controller = controller::run(
            client.clone(),
            config.clone(),
            metrics.clone(),
            shutdown_rx.map(|_| ()),
        );
        // A graceful stop waits for reconciles in flight; after a lost lease those may hang on the
        // same dead connection, so they get a short grace and are then dropped, so that none is
        // still running when another instance may lead. (A request already sent cannot be
        // recalled: the API server may still apply it, as with client-go's leader election.)
        let grace = stop_grace(process.lease_duration);
        let mut lost = leading.clone();
        let lost_for_grace = async move {
            let _ = lost.wait_for(|v| !*v).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            _ = controller => {}
            _ = lost_for_grace => tracing::warn!(
                grace_ms = grace.as_millis(),
                "reconciles in flight did not finish after leading ended; dropped"
            ),
        }
        watcher.abort();
        metrics.set_leader(false);
        if *stop_rx.borrow() {
            break;
        }
        tracing::warn!(
            "leading ended (the lease lost or not renewed in time): controller stopped until leading again"
        );
    }
    let _ = release_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(10), election)
        .await
        .is_err()
    {
        tracing::warn!("the lease was not released in time");
    }
    Ok(())
}
