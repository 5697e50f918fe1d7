//! One reconciliation of any resource: resolve -> read -> build -> plan -> apply -> status, the
//! steps each resource gives as a [`Reconciled`] implementation. Only the Secret reads, the apply, a
//! resource's own checks and the status write do I/O; everything else is its pure steps.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};
use tracing::Instrument;

use super::backoff::Retries;
use super::caches::Caches;
use super::conditions;
use super::context::Shared;
use super::error::{Error, chain};
use super::events::Note;
use super::problem::Problem;
use super::readiness::Readiness;
use super::{Planning, Reconciled, Seen, apply, generated, references, tenancy};

/// One controller's context: what all share, the caches, its own resources' store, and what it
/// keeps per object between reconciles (failures in a row, for back-off; the resource's memory).
pub struct Context<R: Reconciled> {
    pub shared: Arc<Shared>,
    pub caches: Caches,
    /// Whether the caches of the kinds R reads have had their first list.
    readiness: Readiness,
    /// The controller's objects: what is kept of those gone is dropped.
    owners: Store<R>,
    retries: Retries,
    memories: Mutex<HashMap<String, R::Memory>>,
}

impl<R: Reconciled> Context<R> {
    pub fn new(
        shared: Arc<Shared>,
        caches: Caches,
        owners: Store<R>,
        readiness: Readiness,
    ) -> Self {
        Context {
            shared,
            caches,
            readiness,
            owners,
            retries: Retries::default(),
            memories: Mutex::default(),
        }
    }

    /// Drops what is kept of objects no longer in the controller's store (deleted while failing,
    /// say). A scan of the store on each reconcile is cheap next to the API calls.
    fn forget_the_gone(&self) {
        let alive: HashSet<String> = self
            .owners
            .state()
            .iter()
            .map(|o| key(o.as_ref()))
            .collect();
        self.retries.retain(|k| alive.contains(k));
        self.memories
            .lock()
            .expect("memories")
            .retain(|k, _| alive.contains(k));
    }

    /// The wait before retrying `obj`: doubling per failure in a row up to the configured cap, or
    /// only up to [`UNAVAILABLE_RETRY_MAX`] when the API server itself was unavailable (so that what
    /// failed during an outage is done within seconds of its end, even if no watch event comes).
    fn next_backoff(&self, obj: &R, error: &Error) -> Duration {
        let c = &self.shared.config;
        let max = if error.api_unavailable() {
            c.backoff_max.min(UNAVAILABLE_RETRY_MAX)
        } else {
            c.backoff_max
        };
        self.retries.next(&key(obj), c.backoff_min, max)
    }
}

/// What is kept per object is kept by uid: an object deleted and made again under the same name
/// starts afresh.
pub fn key<K: Resource>(obj: &K) -> String {
    obj.uid()
        .unwrap_or_else(|| format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()))
}

async fn reconcile_inner<R: Reconciled>(obj: &R, ctx: &Context<R>) -> Result<Action, Error> {
    ctx.forget_the_gone();
    let shared = &ctx.shared;
    let cfg = &shared.config;
    // The profiles are read (parsed from their ConfigMap) only for an object that names one.
    let profiles = match obj.profile() {
        Some(_) => ctx.caches.profiles(),
        None => hap_api::profile::Catalog::Absent,
    };
    let resolved = obj.resolve(&cfg.build, &profiles);
    // The spec's problems, then the Secrets it names. A Secret that could not be read is retried
    // with back-off; meanwhile the plan holds back what must not start on what was not checked (see
    // `Reconciled::plan`), and the status is still reported.
    let secrets: Api<Secret> =
        Api::namespaced(shared.client.clone(), &obj.namespace().unwrap_or_default());
    let mut problems = R::problems(&resolved);
    let not_a_tenant = tenancy::problems(obj, &ctx.caches, cfg.tenancy);
    let writable = not_a_tenant.is_empty();
    problems.extend(not_a_tenant);
    let (missing, read_errors) =
        references::check(&secrets, &R::secrets(&resolved), cfg.tenancy).await;
    problems.extend(missing);
    problems.extend(obj.conflicts(&resolved, &ctx.caches));
    let runnable = problems.is_empty() && read_errors.is_empty();

    let desired = obj.build(&resolved, &cfg.build);
    let observed = obj.observe(&resolved, &ctx.caches);
    let key = key(obj);
    let mut memory = ctx
        .memories
        .lock()
        .expect("memories")
        .get(&key)
        .cloned()
        .unwrap_or_else(|| obj.memory());
    let mut plan = obj.plan(Planning {
        resolved: &resolved,
        observed: &observed,
        desired: &desired,
        runnable,
        memory: &mut memory,
        now: Timestamp::now(),
        config: cfg,
    });
    // A namespace that is not a tenant's gets nothing written into it; what is there stays.
    if !writable {
        plan.steps.clear();
    }
    generated::fill(&mut plan.steps);
    let outcome = apply::execute(
        &shared.client,
        &shared.events,
        shared.authority.as_deref(),
        obj,
        plan.steps,
    )
    .await;
    R::remember(&mut memory, &outcome);
    ctx.memories
        .lock()
        .expect("memories")
        .insert(key.clone(), memory.clone());

    // A child the API refused as it stands, or one the cluster has no room for, is a problem for
    // a person; other failures are retried.
    let mut errors = Vec::new();
    problems.extend(
        outcome
            .errors
            .iter()
            .filter_map(|(component, e)| Problem::from_write(e, *component)),
    );
    problems.extend(outcome.foreign.iter().map(|(component, kind, name)| {
        references::taken(R::kind(&()).as_ref(), kind, name, *component)
    }));
    let checked = obj
        .check(&shared.client, &resolved, &observed, runnable)
        .await;
    let changed = match obj.change(&resolved, &checked, Timestamp::now()) {
        Some(change) => {
            Some(apply::change_itself(&shared.client, &shared.events, obj, change).await)
        }
        None => None,
    };
    let (status, verdicts) = obj.status(Seen {
        resolved: &resolved,
        observed: &observed,
        desired: &desired,
        outcome: &outcome,
        problems: &problems,
        memory: &memory,
        checked: &checked,
        changed: changed.as_ref(),
        now: &Time(Timestamp::now()),
    });
    let previous = obj.status_now().map(R::conditions).unwrap_or_default();
    for (type_, v) in conditions::news(&verdicts, previous, R::ANNOUNCED) {
        let note = Note::warning(v.reason, format!("{type_}: {}", v.message));
        let note = match obj.about(type_) {
            Some(child) => note.about(child),
            None => note,
        };
        shared.events.publish(obj, &note).await;
    }
    let written = apply::write_status(&shared.client, obj, obj.status_now(), &status).await;
    errors.extend(
        outcome
            .errors
            .into_iter()
            .filter(|(component, e)| Problem::from_write(e, *component).is_none())
            .map(|(_, e)| e),
    );
    let failure = Error {
        read: read_errors,
        children: errors,
        status: written.err(),
    };
    if !failure.is_empty() {
        return Err(failure);
    }
    // A problem is fixed by the user (a watched Secret appearing triggers a reconcile too);
    // meanwhile look again at growing intervals.
    let fallback = if problems.is_empty() {
        ctx.retries.succeeded(&key);
        obj.poll(&resolved, &status)
            .map_or(cfg.resync, |p| p.min(cfg.resync))
    } else {
        ctx.next_backoff(obj, &failure).max(Duration::from_secs(5))
    };
    // The plan's own time (a back-off ending) if sooner.
    Ok(Action::requeue(
        plan.requeue.map_or(fallback, |r| r.min(fallback)),
    ))
}

/// Reconciles one object, as kube-runtime's controller calls it: waits for the caches, runs the
/// pipeline, and records the outcome in the metrics, the log and (for failures) events.
pub async fn reconcile<R: Reconciled>(obj: Arc<R>, ctx: Arc<Context<R>>) -> Result<Action, Error> {
    let (kind, namespace, name) = (
        R::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
    );
    if !ctx.shared.filled(&ctx.readiness).await {
        // Nothing was read or written: the next leader (or this one, started again) reconciles it.
        tracing::debug!(%kind, namespace, name, "shutting down before the caches were filled: not reconciled");
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let span = tracing::info_span!("reconcile", %kind, namespace, name);
    let result = reconcile_inner(&*obj, &ctx).instrument(span).await;
    ctx.shared.metrics.observe(
        started.elapsed(),
        &result
            .as_ref()
            .err()
            .map(Error::metric_labels)
            .unwrap_or_default(),
    );
    match &result {
        Ok(_) => tracing::debug!(%kind, namespace, name, "reconciled"),
        Err(e) => {
            tracing::warn!(%kind, namespace, name, error = chain(e), "reconcile failed");
            for note in e.notes() {
                ctx.shared.events.publish(&*obj, &note).await;
            }
        }
    }
    result
}

/// After a failure: retry with exponential back-off per object.
pub fn error_policy<R: Reconciled>(obj: Arc<R>, error: &Error, ctx: Arc<Context<R>>) -> Action {
    Action::requeue(ctx.next_backoff(&obj, error))
}

/// The longest wait before retrying a reconcile that failed only because the API server was
/// unavailable.
pub const UNAVAILABLE_RETRY_MAX: Duration = Duration::from_secs(4);
