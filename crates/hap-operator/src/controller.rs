//! Wires the controllers: one for HapContainers and one for HapQueries (when the API serves them),
//! each a `Reconciled` resource run by the one generic wiring below, over watches shared by both (one
//! per kind of child, `crate::watches`). Each controller also watches its own resource. Both run while
//! this instance leads, and stop together.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hap_api::profile::Catalog;
use hap_api::{HapContainer, HapQuery};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::pipeline::authority;
use crate::pipeline::config::{BuildConfig, RunConfig, Tenancy};
use crate::pipeline::context::Shared;
use crate::pipeline::kinds::Kind;
use crate::pipeline::metrics::Metrics;
use crate::pipeline::readiness::{self, Readiness};
use crate::pipeline::reconcile::{self, Context};
use crate::pipeline::{MANAGED_BY, MANAGER, Reconciled};
use crate::shutdown::when_true;
use crate::watches::{Watch, Watches};

/// How long the watches may take to list everything once before each one still waiting is reported.
const FILL_PATIENCE: Duration = Duration::from_secs(30);

/// Reports, as warnings, the caches still without their first full list after [`FILL_PATIENCE`],
/// and again each period after, until they are all filled or the controller stops. No reconcile runs
/// before then, and the watches' own errors are retried with back-off, so without this a watch that
/// cannot list (a permission missing, an API server that does not answer) would leave the operator
/// idle and silent.
async fn report_unfilled_caches(
    what: String,
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
            controller = %what,
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
async fn forced_stop(kind: String, own: readiness::Flag, mut stopping: watch::Receiver<bool>) {
    if stopping.wait_for(|v| *v).await.is_err() {
        return std::future::pending().await;
    }
    if !own.is_set() {
        tracing::info!(%kind, "controller stopped before its first list");
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
    kind: String,
    own: readiness::Flag,
    children: Readiness,
    stopping: &watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut everything = vec![own.clone()];
    everything.extend(children.flags());
    tokio::spawn(report_unfilled_caches(
        kind.clone(),
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
        Err(ControllerError::QueueError(e)) => {
            tracing::warn!(error = %e, "trigger failed; retrying")
        }
        Err(e) => tracing::debug!(error = %e, "controller event"),
        Ok(_) => {}
    }
}

/// Whether the API serves HapQueries here (their CRD is installed, and the Role lets this operator
/// list them). Without, the HapQuery controller stays off and HapContainers are served alone.
async fn hapqueries_served(client: &Client, ns: &Option<String>) -> bool {
    let lp = kube::api::ListParams::default().limit(1);
    let api: Api<HapQuery> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list_metadata(&lp).await {
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
/// Shutdown stops the watches: from then on no cache is filled any more. So nothing may wait for a
/// cache after it: a reconcile waiting for its caches gives up (see [`reconcile::reconcile`]), and a
/// controller whose own resource's cache had not been filled yet is stopped at once.
pub async fn run(
    client: Client,
    mut config: RunConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (stopping_tx, stopping) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("controllers shutting down: no new reconciles");
        let _ = stopping_tx.send(true);
    };
    // The CA first: the HapQueries' plans need it to sign Trino's certificate. The operator's
    // namespace also holds the workspace profiles.
    let ca_namespace = config
        .operator_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let mut signal = Box::pin(signal);
    let authority = tokio::select! {
        ca = authority::ensure_until(&client, &ca_namespace) => Arc::new(ca),
        _ = &mut signal => return,
    };
    config.build.trust = Some(authority.trust().clone());
    let queries = hapqueries_served(&client, &config.watch_namespace).await;
    // The kinds the served resources read: no watch (and no permission) for the others.
    let mut kinds = HapContainer::CHILDREN.to_vec();
    if queries {
        kinds.extend(HapQuery::CHILDREN);
    }
    let namespaces = config.tenancy == Tenancy::Namespaces;
    let mut watches = Watches::new(
        &client,
        &config.watch_namespace,
        &kinds,
        namespaces,
        Some(&ca_namespace),
        &metrics.freshness(),
    );
    let shared = Arc::new(Shared::new(
        client.clone(),
        config,
        metrics,
        Some(authority),
        stopping.clone(),
    ));
    // Boxed: each controller's future is large, and the caller may run this on a small stack.
    let workspaces = Box::pin(controller::<HapContainer>(&shared, &mut watches, &stopping));
    let hapqueries =
        queries.then(|| Box::pin(controller::<HapQuery>(&shared, &mut watches, &stopping)));
    let hapqueries = async {
        if let Some(c) = hapqueries {
            c.await;
        }
    };
    // The signal ends with shutdown; the watches with it, the controllers after.
    futures::join!(
        workspaces,
        hapqueries,
        Box::pin(watches.run(stopping)),
        signal
    );
}

/// The objects of kind R a Secret matters to: those that own it, or name it in their spec.
///
/// A Secret the operator made (its `managed-by` label) matters only to its owners, found by their
/// owner references: a spec names only Secrets its user supplies (`Reconciled::secrets`). The
/// others are matched against every resource of their namespace, which costs a resolve of each
/// spec: done for each of a thousand generated Secrets, that scan took most of the operator's CPU
/// at a thousand workspaces.
fn referring<R: Reconciled>(
    owners: &Store<R>,
    secret: &PartialObjectMeta<Secret>,
    cfg: &BuildConfig,
) -> Vec<ObjectRef<R>> {
    let name = secret.name_any();
    let namespace = secret.namespace();
    if secret.labels().get(MANAGED_BY).map(String::as_str) == Some(MANAGER) {
        return secret
            .owner_references()
            .iter()
            .filter(|r| r.kind == R::kind(&()) && r.api_version == R::api_version(&()))
            .map(|r| ObjectRef::<R>::new(&r.name).within(namespace.as_deref().unwrap_or_default()))
            .collect();
    }
    let secret_owners: Vec<&str> = secret
        .owner_references()
        .iter()
        .map(|r| r.uid.as_str())
        .collect();
    owners
        .state()
        .into_iter()
        .filter(|o| o.namespace() == namespace)
        .filter(|o| {
            o.uid().is_some_and(|u| secret_owners.contains(&u.as_str()))
                || R::secrets(&o.resolve(cfg, &Catalog::Absent))
                    .iter()
                    .any(|s| s.name == name)
        })
        .map(|o| ObjectRef::from_obj(&*o))
        .collect()
}

/// Every object of kind R that names a workspace profile.
fn naming_a_profile<R: Reconciled>(owners: &Store<R>) -> Vec<ObjectRef<R>> {
    owners
        .state()
        .into_iter()
        .filter(|o| o.profile().is_some())
        .map(|o| ObjectRef::from_obj(&*o))
        .collect()
}

/// Every object of kind R in `namespace`.
fn in_namespace<R: Reconciled>(owners: &Store<R>, namespace: &str) -> Vec<ObjectRef<R>> {
    owners
        .state()
        .into_iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace))
        .map(|o| ObjectRef::from_obj(&*o))
        .collect()
}

/// The object of kind R a pod belongs to, by its labels: a component's pods are not the resource's
/// own (their ReplicaSet's, their Job's), and a workspace pod carries the same labels.
fn labelled<R: Reconciled>(pod: &Pod) -> Option<ObjectRef<R>> {
    let labels = pod.labels();
    let instance = labels.get("app.kubernetes.io/instance")?;
    let namespace = pod.namespace()?;
    (labels.get("app.kubernetes.io/name").map(String::as_str) == Some(R::APP))
        .then(|| ObjectRef::<R>::new(instance).within(&namespace))
}

/// One controller for resource R, over the shared watches (its subscriptions are made now, before
/// the watches run), as a future that runs it until shutdown.
fn controller<R: Reconciled>(
    shared: &Arc<Shared>,
    watches: &mut Watches,
    stopping: &watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static
where
    R::DynamicType: Default,
{
    let kind = R::kind(&()).to_string();
    let api: Api<R> = crate::watches::api(&shared.client, &shared.config.watch_namespace);
    let mut own = Watch::new(
        R::PLURAL,
        api,
        watcher::Config::default(),
        shared.metrics.freshness(),
    );
    let owners = own.store();
    let run_config = &shared.config;
    let mut controller = Controller::for_shared_stream(own.subscribe(), owners.clone())
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(run_config.concurrency)
                .debounce(run_config.debounce),
        );
    controller = watches.owned(controller, R::CHILDREN);
    if let Some(pods) = watches
        .pods
        .as_mut()
        .filter(|_| R::CHILDREN.contains(&Kind::Pod))
    {
        controller = controller.watches_shared_stream(pods.subscribe(), |pod| labelled::<R>(&pod));
    }
    if let Some(secrets) = watches
        .secrets
        .as_mut()
        .filter(|_| R::CHILDREN.contains(&Kind::Secret))
    {
        let (mapped, cfg) = (owners.clone(), shared.config.build.clone());
        controller = controller
            .watches_shared_stream(secrets.subscribe(), move |s| referring(&mapped, &s, &cfg));
    }
    // A namespace labelled (or unlabelled) for Pod Security changes whether its resources may run.
    if let Some(namespaces) = watches.namespaces.as_mut() {
        let mapped = owners.clone();
        controller = controller.watches_shared_stream(namespaces.subscribe(), move |ns| {
            in_namespace(&mapped, &ns.name_any())
        });
    }
    // A change to the profiles reaches every object that names one.
    if let Some(profiles) = watches.profiles.as_mut() {
        let mapped = owners.clone();
        controller = controller
            .watches_shared_stream(profiles.subscribe(), move |_| naming_a_profile(&mapped));
    }
    let readiness = watches.readiness(R::CHILDREN);
    let ctx = Arc::new(Context::<R>::new(
        shared.clone(),
        watches.caches(),
        owners,
        readiness.clone(),
    ));
    let forced = supervise(kind, own.flag(), readiness, stopping);
    let stopping = stopping.clone();
    async move {
        let run = controller
            .graceful_shutdown_on(when_true(stopping.clone()))
            .run(reconcile::reconcile::<R>, reconcile::error_policy::<R>, ctx)
            .take_until(forced)
            .for_each(|result| async move { log_controller_event(result) });
        futures::join!(run, own.run(stopping));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::caches::testing::store;

    fn workspace(name: &str, uid: &str, s3_secret: &str) -> HapContainer {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer",
            "metadata": {"name": name, "namespace": "ns", "uid": uid},
            "spec": {"s3": {"endpoint": "http://s3:9", "bucket": "b", "credentialsSecret": {"name": s3_secret}}}
        }))
        .unwrap()
    }

    fn secret(name: &str, managed: bool, owner: Option<(&str, &str)>) -> PartialObjectMeta<Secret> {
        let mut meta = kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..Default::default()
        };
        if managed {
            meta.labels = Some([(MANAGED_BY.to_string(), MANAGER.to_string())].into());
        }
        meta.owner_references = owner.map(|(name, uid)| {
            vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "hap.cloudian.com/v1alpha1".into(),
                    kind: "HapContainer".into(),
                    name: name.into(),
                    uid: uid.into(),
                    controller: Some(true),
                    ..Default::default()
                },
            ]
        });
        PartialObjectMeta {
            types: None,
            metadata: meta,
            _phantom: Default::default(),
        }
    }

    #[test]
    fn a_secret_matters_to_its_owner_or_to_those_naming_it() {
        let owners = store(vec![
            workspace("a", "uid-a", "keys"),
            workspace("b", "uid-b", "keys"),
            workspace("c", "uid-c", "other-keys"),
        ]);
        let cfg = BuildConfig::default();
        let names = |refs: Vec<ObjectRef<HapContainer>>| {
            let mut n: Vec<String> = refs.into_iter().map(|r| r.name).collect();
            n.sort();
            n
        };
        let generated = secret("c-token", true, Some(("c", "uid-c")));
        assert_eq!(names(referring(&owners, &generated, &cfg)), ["c"]);
        let users = secret("keys", false, None);
        assert_eq!(names(referring(&owners, &users, &cfg)), ["a", "b"]);
        // A user's Secret owned by a resource (set by hand) still reaches it, and those naming it.
        let owned_by_hand = secret("other-keys", false, Some(("a", "uid-a")));
        assert_eq!(names(referring(&owners, &owned_by_hand, &cfg)), ["a", "c"]);
    }
}
