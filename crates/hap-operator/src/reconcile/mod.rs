//! One reconciliation of a HapContainer: resolve -> read -> build -> plan -> apply -> status.
//! Resolve, build, plan and status are pure; only `references` (read), `apply` and the status write
//! talk to the API.

pub mod children;
pub mod references;
pub mod status;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hap_api::HapContainer;
use hap_api::hapcontainer::HapContainerStatus;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tracing::Instrument;

use crate::apply;
use crate::backoff::Retries;
use crate::build;
use crate::config::RunConfig;
use crate::error::{Error, chain};
use crate::events::{Events, Note};
use crate::metrics::Metrics;
use crate::names;
use crate::plan::Backoff;
use crate::pod_memory::PodMemory;
use crate::readiness::Readiness;
use crate::resolve::resolve;

/// Something the user must fix before the workspace can run, or before its last change applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The Configured condition's reason.
    pub reason: &'static str,
    pub message: String,
    /// Whether it stops the workspace from running (a missing Secret) or only keeps the last change
    /// from being applied (a child the API refused), while the workspace runs as it was.
    pub blocking: bool,
}

/// The cached children of every HapContainer, kept by the controller's watches. The pod and service are
/// cached whole (their status matters), and so are the ConfigMaps, Roles and RoleBindings (edits to their
/// content are undone); the rest as metadata only, which is all a hash check needs, so no Secret data
/// is held in memory.
#[derive(Clone)]
pub struct Caches {
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub secrets: Store<PartialObjectMeta<Secret>>,
    pub claims: Store<PartialObjectMeta<PersistentVolumeClaim>>,
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    pub roles: Store<Role>,
    pub role_bindings: Store<RoleBinding>,
}

pub struct Context {
    pub client: Client,
    pub config: RunConfig,
    pub caches: Caches,
    /// Whether each cache has had its first list (see `readiness`).
    readiness: Readiness,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    /// The controller's HapContainers: the in-memory state below is dropped for those gone.
    owners: Store<HapContainer>,
    /// Turns true when the controller shuts down: its watches stop, so caches not filled by then never
    /// will be.
    stopping: watch::Receiver<bool>,
    /// Consecutive failures per HapContainer, for exponential back-off.
    retries: Retries,
    pods: PodMemory,
}

impl Context {
    pub fn new(
        client: Client,
        config: RunConfig,
        caches: Caches,
        readiness: Readiness,
        owners: Store<HapContainer>,
        metrics: Arc<Metrics>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let events = Events::new(client.clone(), &config.instance);
        Context {
            client,
            config,
            caches,
            readiness,
            events,
            metrics,
            owners,
            stopping,
            retries: Retries::default(),
            pods: PodMemory::default(),
        }
    }

    /// Waits until every cache has its first full list (so that a reconcile right after start-up
    /// does not take children it has not seen yet for missing ones), unless the controller is
    /// shutting down: its watches no longer run then, and a cache not yet filled never will be.
    /// False if it is shutting down first.
    async fn caches_ready(&self) -> bool {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            biased;
            _ = self.readiness.all() => true,
            _ = stopping.wait_for(|v| *v) => false,
        }
    }

    fn next_backoff(&self, hc: &HapContainer) -> Duration {
        let (min, max) = (self.config.backoff_min, self.config.backoff_max);
        self.retries.next(&key(hc), min, max)
    }

    /// Drops what is remembered of HapContainers no longer in the controller's store (deleted while
    /// failing, say). A scan of the store on each reconcile is cheap next to the API calls.
    fn forget_the_gone(&self) {
        let alive: HashSet<String> = self.owners.state().iter().filter_map(|h| h.uid()).collect();
        self.retries.retain(|k| alive.contains(k));
        self.pods.retain(|k| alive.contains(k));
    }
}

/// In-memory state is kept by uid: a HapContainer deleted and made again under the same name starts
/// with no failures or replacements behind it.
fn key(hc: &HapContainer) -> String {
    hc.uid()
        .unwrap_or_else(|| format!("{}/{}", hc.namespace().unwrap_or_default(), hc.name_any()))
}

/// Announces configuration problems once, when they appear or change, not on every resync.
async fn report_problems(
    ctx: &Context,
    hc: &HapContainer,
    problems: &[Problem],
    status: &HapContainerStatus,
) {
    let configured = |s: &HapContainerStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Configured")
            .cloned()
    };
    let now = configured(status);
    let before = hc.status.as_ref().and_then(configured);
    // The condition's reason is the first problem's.
    if let Some(c) = now.filter(|c| c.status == "False")
        && let Some(first) = problems.first()
        && before.as_ref().map(|b| (&b.status, &b.message)) != Some((&c.status, &c.message))
    {
        ctx.events
            .publish(hc, &Note::warning(first.reason, c.message))
            .await;
    }
}

async fn reconcile_inner(hc: &HapContainer, ctx: &Context) -> Result<Action, Error> {
    ctx.forget_the_gone();
    let name = hc.name_any();
    let resolved = resolve(hc, &ctx.config.build);
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &hc.namespace().unwrap_or_default());
    // A Secret that could not be read is retried with back-off; meanwhile the rest is still planned,
    // applied and reported, but no pod is created or replaced on what was not checked.
    let (mut problems, read_errors) = references::problems(&secrets, &resolved).await;
    let desired = build::build(hc, &resolved, &ctx.config.build);
    let observed = children::observe(&ctx.caches, hc);
    let now = Timestamp::now();
    let from_status = hc
        .status
        .as_ref()
        .and_then(|s| s.failed_pod_replacements)
        .unwrap_or(0);
    let history = ctx
        .pods
        .history(&key(hc), observed.pod.as_deref(), from_status, now);
    let backoff = Backoff {
        min: ctx.config.replace_min,
        max: ctx.config.replace_max,
    };
    let uid = hc.uid();
    let plan = children::plan(
        &observed,
        desired,
        uid.as_deref(),
        problems.is_empty() && read_errors.is_empty(),
        history,
        now,
        backoff,
    );
    let outcome = apply::execute(&ctx.client, &ctx.events, hc, plan.steps).await;

    // What the status sees: the pod and service as written now, or as observed.
    let (pod_name, service_name) = (names::pod(&name), names::service(&name));
    let pod = match outcome.written::<Pod>(&pod_name) {
        Some(p) => Some(p.clone()),
        None if outcome.removed::<Pod>(&pod_name) => None,
        None => observed.pod.as_deref().cloned(),
    };
    let service = match outcome.written::<Service>(&service_name) {
        Some(s) => Some(s.clone()),
        None if outcome.failed::<Service>(&service_name) => None,
        None => observed.service.as_deref().cloned(),
    };
    // A pod step that failed, or whose delete found the pod gone already, replaced nothing.
    let pod_step_took_effect = outcome.took_effect::<Pod>(&pod_name);
    let replacements = if pod_step_took_effect {
        plan.replacements
    } else {
        plan.replacements_if_pod_step_undone
    };
    let deleted = (pod_step_took_effect && outcome.removed::<Pod>(&pod_name))
        .then(|| observed.pod.as_ref().and_then(|p| p.uid()))
        .flatten();
    ctx.pods.record(&key(hc), replacements, deleted);
    let (rejected, errors): (Vec<_>, Vec<_>) =
        outcome.errors.into_iter().partition(|e| e.is_rejection());
    problems.extend(rejected.iter().map(|e| Problem {
        reason: "ChildRejected",
        message: chain(e),
        blocking: false,
    }));
    let observed_status = status::Observed {
        pod: pod.as_ref(),
        service: service.as_ref(),
        problems: &problems,
        replacements,
    };
    let new_status = status::compute(hc, &observed_status, Time(Timestamp::now()));
    report_problems(ctx, hc, &problems, &new_status).await;
    let status = apply::write_status(&ctx.client, hc, hc.status.as_ref(), &new_status).await;
    // A read, a child that failed for a reason other than a refusal, or the status write is retried
    // with back-off, once the pod and the status have had their turn.
    let failure = Error {
        read: read_errors,
        children: errors,
        status: status.err(),
    };
    if !failure.is_empty() {
        return Err(failure);
    }
    // A configuration problem is fixed by the user (a watched Secret appearing triggers a reconcile
    // too); meanwhile look again at growing intervals.
    let fallback = if problems.is_empty() {
        ctx.retries.succeeded(&key(hc));
        ctx.config.resync
    } else {
        ctx.next_backoff(hc).max(Duration::from_secs(5))
    };
    Ok(Action::requeue(plan.requeue.unwrap_or(fallback)))
}

pub async fn reconcile(hc: Arc<HapContainer>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches_ready().await {
        // Nothing was read or written: the next leader (or this one, started again) reconciles it.
        tracing::debug!(
            namespace = hc.namespace().unwrap_or_default(),
            name = hc.name_any(),
            "shutting down before the caches were filled: not reconciled"
        );
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = hc.namespace().unwrap_or_default(),
        name = hc.name_any()
    );
    let result = reconcile_inner(&hc, &ctx).instrument(span).await;
    ctx.metrics.observe(
        started.elapsed(),
        &result
            .as_ref()
            .err()
            .map(Error::metric_labels)
            .unwrap_or_default(),
    );
    match &result {
        Ok(_) => {
            tracing::debug!(
                namespace = hc.namespace().unwrap_or_default(),
                name = hc.name_any(),
                "reconciled"
            );
        }
        Err(e) => {
            tracing::warn!(
                namespace = hc.namespace().unwrap_or_default(),
                name = hc.name_any(),
                error = chain(e),
                "reconcile failed"
            );
            for note in e.notes() {
                ctx.events.publish(&*hc, &note).await;
            }
        }
    }
    result
}

/// After a failure: retry with exponential back-off per HapContainer.
pub fn error_policy(hc: Arc<HapContainer>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.next_backoff(&hc))
}
