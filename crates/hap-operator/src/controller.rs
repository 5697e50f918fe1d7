//! Wires the controller: a watch on HapContainers, watches on their children (metadata-only where that
//! is enough), and on Secrets a HapContainer refers to, so that creating a missing Secret heals it.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use hap_api::HapContainer;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::config::{BuildConfig, RunConfig};
use crate::metrics::Metrics;
use crate::names;
use crate::reconcile::{self, Caches, Context};
use crate::resolve::resolve;

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={}", names::MANAGER))
}

/// A cached watch whose events also trigger reconciles.
fn full<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects();
    (store, stream)
}

/// The HapContainers a Secret matters to: those that own it, or name it in their spec.
fn referencing(
    hcs: &Store<HapContainer>,
    secret: &PartialObjectMeta<Secret>,
    cfg: &BuildConfig,
) -> Vec<ObjectRef<HapContainer>> {
    let name = secret.name_any();
    let namespace = secret.namespace();
    let owners: Vec<String> = secret
        .owner_references()
        .iter()
        .map(|r| r.uid.clone())
        .collect();
    hcs.state()
        .into_iter()
        .filter(|hc| hc.namespace() == namespace)
        .filter(|hc| {
            resolve(hc, cfg).refers_to(&name) || hc.uid().is_some_and(|u| owners.contains(&u))
        })
        .map(|hc| ObjectRef::from_obj(&*hc))
        .collect()
}

/// How long the watches may take to list everything once before each one still waiting is reported.
const FILL_PATIENCE: Duration = Duration::from_secs(30);

/// Reports, as warnings, the caches still without their first full list after [`FILL_PATIENCE`],
/// and again each period after, until they are all filled or the controller stops. No reconcile runs
/// before then, and the watches' own errors are retried quietly, so without this a watch that cannot
/// list (a permission missing, an API server that does not answer) would leave the operator idle and
/// silent.
async fn report_unfilled_caches(
    caches: Caches,
    hcs: Store<HapContainer>,
    mut stopping: watch::Receiver<bool>,
) {
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FILL_PATIENCE) => {}
            _ = stopping.wait_for(|v| *v) => return,
        }
        let mut unfilled = caches.unfilled();
        if hcs.wait_until_ready().now_or_never().is_none() {
            unfilled.insert(0, "hapcontainers");
        }
        if unfilled.is_empty() {
            return;
        }
        tracing::warn!(
            waited_seconds = started.elapsed().as_secs(),
            caches = unfilled.join(", "),
            "watches have not listed these resources yet: no reconcile runs until they have"
        );
    }
}

/// How long reconciles already running may take to finish once shutdown begins (within Kubernetes'
/// default 30 s termination grace period, leaving time to release the Lease).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs the controller until `shutdown` resolves, then lets the reconciles already running finish
/// (for at most [`SHUTDOWN_GRACE`]) and returns.
///
/// Shutdown stops the controller's watches: from then on no cache is filled any more. So nothing may
/// wait for a cache after it: a reconcile waiting for its caches gives up (see [`reconcile::reconcile`]),
/// and if the HapContainer cache itself had not been filled yet, no reconcile ever started (the
/// controller holds them until it is) and the controller, which would wait for it forever, is stopped at
/// once.
pub async fn run(
    client: Client,
    config: RunConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = config.watch_namespace.clone();
    let resync = config.resync;
    let (stopping_tx, stopping) = watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        tracing::info!("controller shutting down: no new reconciles");
        let _ = stopping_tx.send(true);
    };
    // Whole objects where their content is compared (status, drift); metadata only, through an Api
    // over PartialObjectMeta, where the hash annotation is all that is needed.
    let (pods, pod_events) = full(api::<Pod>(&client, &ns), managed());
    let (services, service_events) = full(api::<Service>(&client, &ns), managed());
    let (config_maps, config_map_events) = full(api::<ConfigMap>(&client, &ns), managed());
    let (roles, role_events) = full(api::<Role>(&client, &ns), managed());
    let (role_bindings, binding_events) = full(api::<RoleBinding>(&client, &ns), managed());
    let (claims, claim_events) = full(
        api::<PartialObjectMeta<PersistentVolumeClaim>>(&client, &ns),
        managed(),
    );
    let (service_accounts, sa_events) = full(
        api::<PartialObjectMeta<ServiceAccount>>(&client, &ns),
        managed(),
    );
    // All Secrets, not only ours: a HapContainer waits for the user's S3 and token Secrets too.
    let (secrets, secret_events) = full(
        api::<PartialObjectMeta<Secret>>(&client, &ns),
        watcher::Config::default(),
    );

    let caches = Caches {
        pods,
        services,
        config_maps,
        secrets,
        claims,
        service_accounts,
        roles,
        role_bindings,
    };
    let build_config = config.build.clone();
    let controller = Controller::new(
        api::<HapContainer>(&client, &ns),
        watcher::Config::default(),
    );
    let hcs = controller.store();
    let ctx = Arc::new(Context::new(
        client.clone(),
        config,
        caches,
        hcs.clone(),
        metrics,
        stopping.clone(),
    ));
    tokio::spawn(report_unfilled_caches(
        ctx.caches.clone(),
        hcs.clone(),
        stopping.clone(),
    ));
    let forced = {
        let (hcs, mut stopping) = (hcs.clone(), stopping);
        async move {
            if stopping.wait_for(|v| *v).await.is_err() {
                return std::future::pending().await;
            }
            if hcs.wait_until_ready().now_or_never().is_none() {
                tracing::info!("controller stopped before its first list of HapContainers");
                return;
            }
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "reconciles still running at the end of the shutdown grace period: abandoned"
            );
        }
    };
    // Every resync period, every HapContainer in the cache is queued for a reconcile, whatever else
    // triggered. Each reconcile also requeues itself, but only one that ran: on a real cluster, one of
    // three HapContainers created while the controller started was never reconciled, and a controller
    // taking over the Lease sat idle; this makes any lost trigger a delay of one period, not forever.
    let period = resync;
    let resyncs = futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(period).await;
        Some(((), ()))
    });
    controller
        .reconcile_all_on(resyncs)
        .owns_stream(pod_events)
        .owns_stream(service_events)
        .owns_stream(config_map_events)
        .owns_stream(claim_events)
        .owns_stream(sa_events)
        .owns_stream(role_events)
        .owns_stream(binding_events)
        .watches_stream(secret_events, move |s| referencing(&hcs, &s, &build_config))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .take_until(forced)
        .for_each(|result| async move {
            use kube::runtime::controller::Error as ControllerError;
            match result {
                // A watch that failed: retried with back-off, but worth seeing (a missing
                // permission, an API server that refuses).
                Err(ControllerError::QueueError(e)) => {
                    tracing::warn!(error = %e, "watch failed; retrying")
                }
                // Reconcile failures are logged by the reconcile itself; a trigger for an object
                // already gone is normal.
                Err(e) => tracing::debug!(error = %e, "controller event"),
                Ok(_) => {}
            }
        })
        .await;
}
