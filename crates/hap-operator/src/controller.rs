//! Wires the controllers: for HapContainers and for HapQueries, each a watch on its resource, watches
//! on its children (metadata-only where that is enough), and on the Secrets it refers to, so that
//! creating a missing Secret heals it. Both run while this instance leads, and stop together.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use hap_api::{HapContainer, HapQuery};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
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
use crate::query;
use crate::readiness::{self, Readiness};
use crate::reconcile::shared::Shared;
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

/// A cached watch: its store, the flag set once its first list is in the store, and its events
/// (logged at trace level: what the cache was told, when one seems to miss something).
fn cached<K>(
    resource: &'static str,
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    readiness::Flag,
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let (filled, flag) = readiness::flag(resource);
    // After the reflector, so that the flag is set once the list is in the store.
    let events = reflector::reflector(writer, watcher(api, config))
        .inspect(move |e| {
            if let Ok(watcher::Event::InitDone) = e {
                filled.set();
            }
            trace_event(e);
        })
        .default_backoff();
    (store, flag, events)
}

/// A cached watch whose events also trigger reconciles.
fn full<K>(
    resource: &'static str,
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    readiness::Flag,
    impl Stream<Item = Result<K, watcher::Error>>,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, flag, events) = cached(resource, api, config);
    (store, flag, events.touched_objects())
}

fn trace_event<K: Resource<DynamicType = ()>>(e: &Result<watcher::Event<K>, watcher::Error>) {
    if !tracing::enabled!(tracing::Level::TRACE) {
        return;
    }
    let (what, obj) = match e {
        Ok(watcher::Event::Init) => ("init", None),
        Ok(watcher::Event::InitApply(o)) => ("init-apply", Some(o)),
        Ok(watcher::Event::InitDone) => ("init-done", None),
        Ok(watcher::Event::Apply(o)) => ("apply", Some(o)),
        Ok(watcher::Event::Delete(o)) => ("delete", Some(o)),
        Err(_) => ("error", None),
    };
    tracing::trace!(
        kind = %K::kind(&()),
        event = what,
        name = obj.map(|o| o.meta().name.clone().unwrap_or_default()),
        version = obj.and_then(|o| o.meta().resource_version.clone()),
        "watch event"
    );
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

/// Resolves once `rx` holds true. Built on a oneshot so it is Send + Sync, as the controller's
/// graceful shutdown requires.
pub(crate) fn when_true(
    mut rx: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + Sync + 'static {
    let (tx, done) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = rx.wait_for(|v| *v).await;
        let _ = tx.send(());
    });
    done.map(|_| ())
}

/// How long the watches may take to list everything once before each one still waiting is reported.
const FILL_PATIENCE: Duration = Duration::from_secs(30);

/// Reports, as warnings, the caches still without their first full list after [`FILL_PATIENCE`],
/// and again each period after, until they are all filled or the controller stops. No reconcile runs
/// before then, and the watches' own errors are retried with back-off, so without this a watch that
/// cannot list (a permission missing, an API server that does not answer) would leave the operator
/// idle and silent.
async fn report_unfilled_caches(
    what: &'static str,
    readiness: Readiness,
    mut stopping: watch::Receiver<bool>,
) {
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FILL_PATIENCE) => {}
            _ = stopping.wait_for(|v| *v) => return,
        }
        let waiting = readiness.waiting();
        if waiting.is_empty() {
            return;
        }
        tracing::warn!(
            controller = what,
            waited_seconds = started.elapsed().as_secs(),
            caches = waiting.join(", "),
            "watches have not listed these resources yet: no reconcile runs until they have"
        );
    }
}

/// How long reconciles already running may take to finish once shutdown begins (within Kubernetes'
/// default 30 s termination grace period, leaving time to release the Lease).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Ends a controller's run after shutdown: at once if its resource's cache was never filled (no
/// reconcile started, and the controller would wait for that cache forever), or after
/// [`SHUTDOWN_GRACE`], abandoning reconciles still running.
async fn forced_stop(
    kind: &'static str,
    own: readiness::Flag,
    mut stopping: watch::Receiver<bool>,
) {
    if stopping.wait_for(|v| *v).await.is_err() {
        return std::future::pending().await;
    }
    if !own.is_set() {
        tracing::info!(kind, "controller stopped before its first list");
        return;
    }
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    tracing::warn!(
        grace = ?SHUTDOWN_GRACE,
        "reconciles still running at the end of the shutdown grace period: abandoned"
    );
}

/// What watches a controller's start and stop: a warning while caches stay unlisted, and the future
/// that ends its run after shutdown (see [`forced_stop`]).
fn supervise(
    kind: &'static str,
    own: readiness::Flag,
    children: &Readiness,
    stopping: &watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut everything = vec![own.clone()];
    everything.extend(children.flags());
    tokio::spawn(report_unfilled_caches(
        kind,
        Readiness::new(everything),
        stopping.clone(),
    ));
    forced_stop(kind, own, stopping.clone())
}

/// Logs what a controller's run yields: watch failures as warnings (retried with back-off, but worth
/// seeing), the rest at debug (reconcile failures are logged by the reconcile itself, and a trigger
/// for an object already gone is normal).
fn log_controller_event<T, E1, E2>(result: Result<T, kube::runtime::controller::Error<E1, E2>>)
where
    E1: std::error::Error + 'static,
    E2: std::error::Error + 'static,
{
    use kube::runtime::controller::Error as ControllerError;
    match result {
        Err(ControllerError::QueueError(e)) => tracing::warn!(error = %e, "watch failed; retrying"),
        Err(e) => tracing::debug!(error = %e, "controller event"),
        Ok(_) => {}
    }
}

/// Whether the API serves HapQueries here (their CRD is installed, and the Role lets this operator
/// list them). Without, the HapQuery controller stays off and HapContainers are served alone.
async fn hapqueries_served(client: &Client, ns: &Option<String>) -> bool {
    let lp = kube::api::ListParams::default().limit(1);
    match api::<HapQuery>(client, ns).list_metadata(&lp).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => {
            tracing::info!(
                code = s.code,
                "HapQueries are not served (CRD not installed, or not granted in the Role): only HapContainers are reconciled; restart the operator after installing them"
            );
            false
        }
        // Anything else may pass: the watch retries it.
        Err(e) => {
            tracing::warn!(error = %e, "could not tell whether HapQueries are served; watching them anyway");
            true
        }
    }
}

/// Runs the controllers until `shutdown` resolves, then lets the reconciles already running finish
/// (for at most [`SHUTDOWN_GRACE`]) and returns.
///
/// Shutdown stops the controllers' watches: from then on no cache is filled any more. So nothing may
/// wait for a cache after it: a reconcile waiting for its caches gives up (see [`reconcile::reconcile`]),
/// and a controller whose own resource's cache had not been filled yet is stopped at once.
pub async fn run(
    client: Client,
    config: RunConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (stopping_tx, stopping) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("controllers shutting down: no new reconciles");
        let _ = stopping_tx.send(true);
    };
    let queries = hapqueries_served(&client, &config.watch_namespace).await;
    let workspaces = run_workspaces(
        client.clone(),
        config.clone(),
        metrics.clone(),
        stopping.clone(),
    );
    let hapqueries = async {
        if queries {
            run_queries(client, config, metrics, stopping).await;
        }
    };
    // The signal ends with shutdown; the controllers end after it.
    futures::join!(workspaces, hapqueries, signal.map(|_| ()).boxed());
}

async fn run_workspaces(
    client: Client,
    config: RunConfig,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<bool>,
) {
    let ns = config.watch_namespace.clone();
    // Whole objects where their content is compared (status, drift); metadata only, through an Api
    // over PartialObjectMeta, where the hash annotation is all that is needed.
    let (pods, pods_filled, pod_events) = full("pods", api::<Pod>(&client, &ns), managed());
    let (services, services_filled, service_events) =
        full("services", api::<Service>(&client, &ns), managed());
    let (config_maps, config_maps_filled, config_map_events) =
        full("configmaps", api::<ConfigMap>(&client, &ns), managed());
    let (roles, roles_filled, role_events) = full("roles", api::<Role>(&client, &ns), managed());
    let (role_bindings, bindings_filled, binding_events) =
        full("rolebindings", api::<RoleBinding>(&client, &ns), managed());
    let (claims, claims_filled, claim_events) = full(
        "persistentvolumeclaims",
        api::<PartialObjectMeta<PersistentVolumeClaim>>(&client, &ns),
        managed(),
    );
    let (service_accounts, accounts_filled, sa_events) = full(
        "serviceaccounts",
        api::<PartialObjectMeta<ServiceAccount>>(&client, &ns),
        managed(),
    );
    // All Secrets, not only ours: a HapContainer waits for the user's S3 and token Secrets too.
    let (secrets, secrets_filled, secret_events) = full(
        "secrets",
        api::<PartialObjectMeta<Secret>>(&client, &ns),
        watcher::Config::default(),
    );
    let children = Readiness::new(vec![
        pods_filled,
        services_filled,
        config_maps_filled,
        roles_filled,
        bindings_filled,
        claims_filled,
        accounts_filled,
        secrets_filled,
    ]);
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
    let (hcs, own_filled, hc_events) = cached(
        "hapcontainers",
        api::<HapContainer>(&client, &ns),
        watcher::Config::default(),
    );
    let controller = Controller::for_stream(hc_events.applied_objects(), hcs.clone());
    let shared = Shared::new(
        client.clone(),
        config,
        children.clone(),
        metrics,
        stopping.clone(),
    );
    let ctx = Arc::new(Context::new(shared, caches, hcs.clone()));
    let forced = supervise("HapContainer", own_filled, &children, &stopping);
    controller
        .owns_stream(pod_events)
        .owns_stream(service_events)
        .owns_stream(config_map_events)
        .owns_stream(claim_events)
        .owns_stream(sa_events)
        .owns_stream(role_events)
        .owns_stream(binding_events)
        .watches_stream(secret_events, move |s| referencing(&hcs, &s, &build_config))
        .graceful_shutdown_on(when_true(stopping))
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .take_until(forced)
        .for_each(|result| async move { log_controller_event(result) })
        .await;
}

/// The HapQueries a Secret matters to: those that own it, or name it in their spec.
fn querying(hqs: &Store<HapQuery>, secret: &PartialObjectMeta<Secret>) -> Vec<ObjectRef<HapQuery>> {
    let name = secret.name_any();
    let namespace = secret.namespace();
    let owners: Vec<String> = secret
        .owner_references()
        .iter()
        .map(|r| r.uid.clone())
        .collect();
    hqs.state()
        .into_iter()
        .filter(|hq| hq.namespace() == namespace)
        .filter(|hq| {
            let resolved = query::resolve::resolve(hq);
            resolved
                .user_secrets(hq)
                .iter()
                .any(|(_, r)| r.name == name)
                || hq.uid().is_some_and(|u| owners.contains(&u))
        })
        .map(|hq| ObjectRef::from_obj(&*hq))
        .collect()
}

async fn run_queries(
    client: Client,
    config: RunConfig,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<bool>,
) {
    let ns = config.watch_namespace.clone();
    // Separate watches from the HapContainer controller's: a watch's events feed one controller.
    let (pods, pods_filled, pod_events) = full("pods", api::<Pod>(&client, &ns), managed());
    let (services, services_filled, service_events) =
        full("services", api::<Service>(&client, &ns), managed());
    let (config_maps, config_maps_filled, config_map_events) =
        full("configmaps", api::<ConfigMap>(&client, &ns), managed());
    let (stateful_sets, sts_filled, sts_events) =
        full("statefulsets", api::<StatefulSet>(&client, &ns), managed());
    let (deployments, deployments_filled, deployment_events) =
        full("deployments", api::<Deployment>(&client, &ns), managed());
    let (jobs, jobs_filled, job_events) = full("jobs", api::<Job>(&client, &ns), managed());
    let (secrets, secrets_filled, secret_events) = full(
        "secrets",
        api::<PartialObjectMeta<Secret>>(&client, &ns),
        watcher::Config::default(),
    );
    let children = Readiness::new(vec![
        pods_filled,
        services_filled,
        config_maps_filled,
        sts_filled,
        deployments_filled,
        jobs_filled,
        secrets_filled,
    ]);
    let caches = query::reconcile::Caches {
        pods,
        services,
        config_maps,
        secrets,
        stateful_sets,
        deployments,
        jobs,
    };
    let (hqs, own_filled, hq_events) = cached(
        "hapqueries",
        api::<HapQuery>(&client, &ns),
        watcher::Config::default(),
    );
    let controller = Controller::for_stream(hq_events.applied_objects(), hqs.clone());
    let shared = Shared::new(
        client.clone(),
        config,
        children.clone(),
        metrics,
        stopping.clone(),
    );
    let ctx = Arc::new(query::reconcile::Context::new(shared, caches, hqs.clone()));
    let forced = supervise("HapQuery", own_filled, &children, &stopping);
    // A component's pods are not the HapQuery's own (their ReplicaSet's, or their Job's): they map to
    // it by the instance label.
    let pod_owner = |pod: Pod| {
        let labels = pod.labels();
        let instance = labels.get("app.kubernetes.io/instance")?;
        let namespace = pod.namespace()?;
        (labels.get("app.kubernetes.io/name").map(String::as_str) == Some("hap-query"))
            .then(|| ObjectRef::<HapQuery>::new(instance).within(&namespace))
    };
    controller
        .watches_stream(pod_events, pod_owner)
        .owns_stream(service_events)
        .owns_stream(config_map_events)
        .owns_stream(sts_events)
        .owns_stream(deployment_events)
        .owns_stream(job_events)
        .watches_stream(secret_events, move |s| querying(&hqs, &s))
        .graceful_shutdown_on(when_true(stopping))
        .run(
            query::reconcile::reconcile,
            query::reconcile::error_policy,
            ctx,
        )
        .take_until(forced)
        .for_each(|result| async move { log_controller_event(result) })
        .await;
}
