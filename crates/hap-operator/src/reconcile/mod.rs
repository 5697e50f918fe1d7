//! One reconciliation of a HapContainer: read -> validate -> build -> apply -> report status.
//! Only `references` (read) and `children` (apply) and the status write talk to the API.

pub mod children;
pub mod drift;
pub mod references;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hap_api::HapContainer;
use hap_api::hapcontainer::HapContainerStatus;
use k8s_openapi::api::core::v1::{
    ConfigMap, ObjectReference, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::Instrument;

use crate::build;
use crate::config::RunConfig;
use crate::metrics::Metrics;
use crate::names;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} {kind} {name}: {source}")]
    Api {
        action: &'static str,
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    pub fn api(action: &'static str, kind: String, name: &str, source: kube::Error) -> Self {
        Error::Api {
            action,
            kind,
            name: name.to_string(),
            source,
        }
    }

    /// Whether the API refused the request as it stands (400, 422): retrying it unchanged cannot
    /// succeed, so it is a problem for the user rather than an error to retry.
    pub fn is_rejection(&self) -> bool {
        let Error::Api { source, .. } = self;
        matches!(source, kube::Error::Api(s) if s.code == 400 || s.code == 422)
    }

    /// The event reason: what failed. Distinct reasons keep different failures from being folded into
    /// one event series (the recorder groups events by reason, not by message).
    pub fn event_reason(&self) -> &'static str {
        let Error::Api { action, .. } = self;
        match *action {
            "apply" => "ApplyFailed",
            "create" => "CreateFailed",
            "delete" => "DeleteFailed",
            "read" => "ReadFailed",
            _ => "StatusUpdateFailed",
        }
    }

    /// A short label for metrics: the API's reason, or what kind of failure it was.
    pub fn reason(&self) -> String {
        let Error::Api { source, .. } = self;
        match source {
            kube::Error::Api(s) if !s.reason.is_empty() => s.reason.clone(),
            kube::Error::Api(s) => format!("HTTP{}", s.code),
            _ => "Transport".into(),
        }
    }
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

impl Caches {
    /// Waits until every cache has its first full list, so that a reconcile right after start-up does
    /// not take children it has not seen yet for missing ones.
    pub async fn ready(&self) {
        let _ = futures::join!(
            self.pods.wait_until_ready(),
            self.services.wait_until_ready(),
            self.config_maps.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.claims.wait_until_ready(),
            self.service_accounts.wait_until_ready(),
            self.roles.wait_until_ready(),
            self.role_bindings.wait_until_ready(),
        );
    }
}

pub struct Context {
    pub client: Client,
    pub config: RunConfig,
    pub caches: Caches,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per HapContainer, for exponential back-off.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, config: RunConfig, caches: Caches, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: names::MANAGER.into(),
                instance: Some(config.instance.clone()),
            },
        );
        Context {
            client,
            config,
            caches,
            recorder,
            metrics,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event on the HapContainer. A failure to record is logged, never fatal.
    pub async fn event(&self, hc: &HapContainer, kind: EventType, reason: &str, note: &str) {
        self.event_about(hc, None, kind, reason, note).await;
    }

    /// Records an event on the HapContainer about one of its children. Naming the child as the related
    /// object also keeps events about different children from being folded into one series.
    pub async fn event_about(
        &self,
        hc: &HapContainer,
        related: Option<ObjectReference>,
        kind: EventType,
        reason: &str,
        note: &str,
    ) {
        // Every event is a log line too, so the operator's own log tells what it did to whom.
        match kind {
            EventType::Normal => tracing::info!(reason, note, "event"),
            EventType::Warning => tracing::warn!(reason, note, "event"),
        }
        let event = Event {
            type_: kind,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: related,
        };
        if let Err(e) = self.recorder.publish(&event, &hc.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not record event");
        }
    }

    fn key(hc: &HapContainer) -> String {
        format!("{}/{}", hc.namespace().unwrap_or_default(), hc.name_any())
    }

    /// The back-off after another failure of `hc`: doubling from the minimum to the maximum.
    fn next_backoff(&self, hc: &HapContainer) -> Duration {
        let mut failures = self.failures.lock().expect("failure counts");
        let n = failures.entry(Self::key(hc)).or_insert(0);
        *n += 1;
        let factor = 2u32.saturating_pow((*n - 1).min(16));
        self.config
            .backoff_min
            .saturating_mul(factor)
            .min(self.config.backoff_max)
    }

    fn succeeded(&self, hc: &HapContainer) {
        self.failures
            .lock()
            .expect("failure counts")
            .remove(&Self::key(hc));
    }
}

/// Writes the status through the status subresource, unless it is what the object already says.
async fn write_status(
    ctx: &Context,
    hc: &HapContainer,
    status: &HapContainerStatus,
) -> Result<(), Error> {
    if hc.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<HapContainer> =
        Api::namespaced(ctx.client.clone(), &hc.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": HapContainer::api_version(&()),
        "kind": HapContainer::kind(&()),
        "status": status,
    });
    api.patch_status(
        &hc.name_any(),
        &PatchParams::apply(names::MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::api("update status of", "HapContainer".into(), &hc.name_any(), e))?;
    Ok(())
}

/// Announces configuration problems once, when they appear or change, not on every resync.
async fn report_problems(ctx: &Context, hc: &HapContainer, status: &HapContainerStatus) {
    let configured = |s: &HapContainerStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Configured")
            .cloned()
    };
    let now = configured(status);
    let before = hc.status.as_ref().and_then(configured);
    if let Some(c) = now.filter(|c| c.status == "False")
        && before.as_ref().map(|b| (&b.status, &b.message)) != Some((&c.status, &c.message))
    {
        ctx.event(hc, EventType::Warning, &c.reason, &c.message)
            .await;
    }
}

async fn reconcile_inner(hc: &HapContainer, ctx: &Context) -> Result<Action, Error> {
    ctx.caches.ready().await;
    let namespace = hc.namespace().unwrap_or_default();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(ctx.client.clone(), &namespace);
    let mut problems = references::problems(&secrets, hc)
        .await
        .map_err(|e| Error::api("read", "Secret".into(), "referenced by the spec", e))?;
    let desired = build::build(hc, &ctx.config.build);
    let mut applied = children::sync(ctx, hc, &desired, problems.is_empty()).await;
    problems.append(&mut applied.rejected);
    let observed = status::Observed {
        pod: applied.pod.as_ref(),
        service: applied.service.as_ref(),
        problems: &problems,
        replacements: applied.replacements,
    };
    let new_status = status::compute(hc, &observed, Time(jiff::Timestamp::now()));
    report_problems(ctx, hc, &new_status).await;
    write_status(ctx, hc, &new_status).await?;
    // A child that failed for a reason other than a refusal is retried with back-off, once the pod and
    // the status have had their turn.
    if let Some(e) = applied.errors.into_iter().next() {
        return Err(e);
    }
    // A configuration problem is fixed by the user (a watched Secret appearing triggers a reconcile
    // too); meanwhile look again at growing intervals.
    let fallback = if problems.is_empty() {
        ctx.succeeded(hc);
        ctx.config.resync
    } else {
        ctx.next_backoff(hc).max(Duration::from_secs(5))
    };
    Ok(Action::requeue(applied.requeue.unwrap_or(fallback)))
}

pub async fn reconcile(hc: Arc<HapContainer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = hc.namespace().unwrap_or_default(),
        name = hc.name_any()
    );
    let result = reconcile_inner(&hc, &ctx).instrument(span).await;
    ctx.metrics.observe(
        started.elapsed(),
        result.as_ref().err().map(Error::reason).as_deref(),
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
            tracing::warn!(namespace = hc.namespace().unwrap_or_default(), name = hc.name_any(), error = %e, "reconcile failed");
            ctx.event(&hc, EventType::Warning, e.event_reason(), &e.to_string())
                .await;
        }
    }
    result
}

/// After a failure: retry with exponential back-off per HapContainer.
pub fn error_policy(hc: Arc<HapContainer>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.next_backoff(&hc))
}
