//! One reconciliation of a HapContainer: resolve -> read -> build -> plan -> apply -> status.
//! Resolve, build, plan and status are pure; only `references` (read), `apply` and the status write
//! talk to the API.

pub mod children;
pub mod references;
pub mod shared;
pub mod status;

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
use kube::{Api, ResourceExt};
use tracing::Instrument;

use crate::apply;
use crate::build;
use crate::error::{Error, chain};
use crate::events::Note;
use crate::names;
use crate::plan::Backoff;
use crate::pod_memory::PodMemory;
use crate::resolve::resolve;
use shared::Shared;

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
    pub shared: Shared,
    pub caches: Caches,
    /// The controller's HapContainers: the in-memory state below is dropped for those gone.
    owners: Store<HapContainer>,
    pods: PodMemory,
}

impl Context {
    pub fn new(shared: Shared, caches: Caches, owners: Store<HapContainer>) -> Self {
        Context {
            shared,
            caches,
            owners,
            pods: PodMemory::default(),
        }
    }

    /// Drops what is remembered of HapContainers no longer in the controller's store (deleted while
    /// failing, say). A scan of the store on each reconcile is cheap next to the API calls.
    fn forget_the_gone(&self) {
        let alive = shared::alive(&self.owners);
        self.shared.forget_all_but(&alive);
        self.pods.retain(|k| alive.contains(k));
    }
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
        ctx.shared
            .events
            .publish(hc, &Note::warning(first.reason, c.message))
            .await;
    }
}

async fn reconcile_inner(hc: &HapContainer, ctx: &Context) -> Result<Action, Error> {
    ctx.forget_the_gone();
    let name = hc.name_any();
    let resolved = resolve(hc, &ctx.shared.config.build);
    let secrets: Api<Secret> = Api::namespaced(
        ctx.shared.client.clone(),
        &hc.namespace().unwrap_or_default(),
    );
    // A Secret that could not be read is retried with back-off; meanwhile the rest is still planned,
    // applied and reported, but no pod is created or replaced on what was not checked.
    let (mut problems, read_errors) = references::problems(&secrets, &resolved).await;
    let desired = build::build(hc, &resolved, &ctx.shared.config.build);
    let observed = children::observe(&ctx.caches, hc);
    let now = Timestamp::now();
    let from_status = hc
        .status
        .as_ref()
        .and_then(|s| s.failed_pod_replacements)
        .unwrap_or(0);
    let history = ctx
        .pods
        .history(&shared::key(hc), observed.pod.as_deref(), from_status, now);
    let backoff = Backoff {
        min: ctx.shared.config.replace_min,
        max: ctx.shared.config.replace_max,
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
    let outcome = apply::execute(&ctx.shared.client, &ctx.shared.events, hc, plan.steps).await;

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
    ctx.pods.record(&shared::key(hc), replacements, deleted);
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
    let status = apply::write_status(&ctx.shared.client, hc, hc.status.as_ref(), &new_status).await;
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
        ctx.shared.retries.succeeded(&shared::key(hc));
        ctx.shared.config.resync
    } else {
        ctx.shared.next_backoff(hc).max(Duration::from_secs(5))
    };
    Ok(Action::requeue(plan.requeue.unwrap_or(fallback)))
}

pub async fn reconcile(hc: Arc<HapContainer>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.shared.caches_ready().await {
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
    ctx.shared.metrics.observe(
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
                ctx.shared.events.publish(&*hc, &note).await;
            }
        }
    }
    result
}

/// After a failure: retry with exponential back-off per HapContainer.
pub fn error_policy(hc: Arc<HapContainer>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.shared.next_backoff(hc.as_ref()))
}
