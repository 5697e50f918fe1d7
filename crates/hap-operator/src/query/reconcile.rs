//! One reconciliation of a HapQuery: resolve -> read -> build -> plan -> apply -> status, with the
//! steps a HapContainer goes through (`plan`, `apply`, `events`, `backoff`). Only the Secret reads,
//! the external database's connection check, the apply and the status write do I/O.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hap_api::HapQuery;
use hap_api::hapquery::HapQueryStatus;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use tracing::Instrument;

use super::children;
use super::resolve::{Database, resolve};
use super::status::{self, ComponentProblem, DASHBOARD, DATABASE, METASTORE, Pods, TRINO};
use crate::apply;
use crate::build::query::{self as build, dashboard, database, metastore, trino};
use crate::error::{Error, chain};
use crate::events::Note;
use crate::reconcile::Problem;
use crate::reconcile::references;
use crate::reconcile::shared::{self, Shared};
use crate::reconcile::status::BROKEN;

/// The caches of a HapQuery's children. Workloads are cached whole (their status is the
/// components' status); Secrets as metadata only.
#[derive(Clone)]
pub struct Caches {
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub secrets: Store<PartialObjectMeta<Secret>>,
    pub stateful_sets: Store<StatefulSet>,
    pub deployments: Store<Deployment>,
    pub jobs: Store<Job>,
}

pub struct Context {
    pub shared: Shared,
    pub caches: Caches,
    /// The controller's HapQueries: failure counts of those gone are dropped.
    owners: Store<HapQuery>,
}

impl Context {
    pub fn new(shared: Shared, caches: Caches, owners: Store<HapQuery>) -> Self {
        Context {
            shared,
            caches,
            owners,
        }
    }

    fn forget_the_gone(&self) {
        self.shared.forget_all_but(&shared::alive(&self.owners));
    }
}

/// How long the external database may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How soon to look again while something is on its way (a database starting, a Job running).
const PROGRESS_POLL: Duration = Duration::from_secs(30);

/// Whether the external database accepts TCP connections from the operator. Credentials are the
/// metastore's to try: a wrong password shows as its schema Job failing.
async fn reachable(db: &Database) -> Result<(), String> {
    let address = format!("{}:{}", db.host, db.port);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the external database at {address} refused or failed the connection ({e}): check spec.database.external.host and port, and that the server runs"
        )),
        Err(_) => Err(format!(
            "the external database at {address} did not answer within {}s: check spec.database.external.host and port, and the network between the operator and it",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// The component a spec problem belongs to, from the field it names.
fn component_of_field(message: &str) -> &'static str {
    if message.contains("spec.dashboard") {
        DASHBOARD
    } else if message.contains("spec.trino") {
        TRINO
    } else if message.contains("spec.s3") || message.contains("spec.metastore") {
        METASTORE
    } else {
        DATABASE
    }
}

/// The component a child belongs to, from its name.
fn component_of_child(hq: &HapQuery, child: &str) -> &'static str {
    let name = hq.name_any();
    let is = |prefix: String| child.starts_with(&prefix);
    if is(build::names::mariadb(&name)) {
        DATABASE
    } else if is(build::names::metastore(&name)) {
        METASTORE
    } else if is(format!("{name}-trino")) {
        TRINO
    } else {
        DASHBOARD
    }
}

/// A warning event for each condition that turned False for a problem or a failure, once (not on
/// every resync).
async fn report(ctx: &Context, hq: &HapQuery, new: &HapQueryStatus) {
    let before = hq
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    for c in &new.conditions {
        let worth_telling = c.status == "False"
            && !matches!(
                c.reason.as_str(),
                "Creating"
                    | "Starting"
                    | "WaitingForDatabase"
                    | "InitializingSchema"
                    | "Initializing"
                    | "WorkersStarting"
            );
        let unchanged = before.iter().any(|b| {
            b.type_ == c.type_
                && b.status == c.status
                && b.reason == c.reason
                && b.message == c.message
        });
        if worth_telling && !unchanged {
            let reason: &'static str = reason_of(&c.reason);
            let note = Note::warning(reason, format!("{}: {}", c.type_, c.message))
                .about(component_object(hq, &c.type_));
            ctx.shared.events.publish(hq, &note).await;
        }
    }
}

/// The object a component's events are about: naming it keeps two components' events of the same
/// reason apart (the recorder folds events with one reason and one related object into a series).
fn component_object(hq: &HapQuery, component: &str) -> ObjectReference {
    let name = hq.name_any();
    let (kind, object) = match component {
        DATABASE => ("StatefulSet", build::names::mariadb(&name)),
        METASTORE => ("Deployment", build::names::metastore(&name)),
        TRINO => ("Deployment", build::names::trino_coordinator(&name)),
        _ => match hq.spec.dashboard.kind {
            hap_api::hapquery::DashboardKind::Redash => ("Deployment", build::names::redash(&name)),
            _ => ("Deployment", build::names::superset(&name)),
        },
    };
    ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some(kind.into()),
        name: Some(object),
        namespace: hq.namespace(),
        ..Default::default()
    }
}

/// Event reasons are static: the condition reasons this module gives, or a generic one.
fn reason_of(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "SchemaInitFailed",
        "InitFailed",
        "Unreachable",
        "ChildRejected",
        "ContainerNotRunning",
        "CrashLoopBackOff",
        "InvalidSpec",
        "DatabaseSecretNotFound",
        "DatabaseSecretKeyMissing",
        "S3CredentialsSecretNotFound",
        "S3CredentialsKeyMissing",
        "RedashSecretNotFound",
        "RedashSecretKeyMissing",
    ];
    KNOWN
        .iter()
        .chain(BROKEN)
        .find(|k| **k == reason)
        .copied()
        .unwrap_or("ComponentFailed")
}

async fn reconcile_inner(hq: &HapQuery, ctx: &Context) -> Result<Action, Error> {
    ctx.forget_the_gone();
    let resolved = resolve(hq);
    let secrets: Api<Secret> = Api::namespaced(
        ctx.shared.client.clone(),
        &hq.namespace().unwrap_or_default(),
    );
    let mut problems: Vec<ComponentProblem> = references::spec_problems(&resolved.problems)
        .into_iter()
        .map(|p| ComponentProblem {
            component: component_of_field(&p.message),
            problem: p,
        })
        .collect();
    let wanted = resolved.user_secrets(hq);
    let references: Vec<_> = wanted.iter().map(|(_, r)| r.clone()).collect();
    let (found, read_errors) = references::secret_problems(&secrets, &references).await;
    for ((component, _), found) in wanted.iter().zip(found) {
        for p in found {
            // The S3 keys are Trino's too.
            if *component == METASTORE {
                problems.push(ComponentProblem {
                    component: TRINO,
                    problem: p.clone(),
                });
            }
            problems.push(ComponentProblem {
                component,
                problem: p,
            });
        }
    }
    let desired = build::build(hq, &resolved);
    let observed = children::observe(&ctx.caches, hq);
    // Nothing is created or changed on a spec whose Secrets are missing or were not checked.
    let runnable = problems.is_empty() && read_errors.is_empty();
    let outcome = if runnable {
        // Built again: the plan consumes what it is given, and the status reads the Jobs' hashes.
        let steps = children::plan(
            &observed,
            build::build(hq, &resolved),
            hq.uid().as_deref(),
            hq.spec.dashboard.kind,
        );
        apply::execute(&ctx.shared.client, &ctx.shared.events, hq, steps).await
    } else {
        apply::Outcome::default()
    };
    let (rejected, errors): (Vec<_>, Vec<_>) =
        outcome.errors.into_iter().partition(|e| e.is_rejection());
    problems.extend(rejected.iter().map(|e| ComponentProblem {
        component: component_of_child(hq, e.child_name()),
        problem: Problem {
            reason: "ChildRejected",
            message: chain(e),
            blocking: false,
        },
    }));
    let external = match resolved.database.managed {
        None if runnable => Some(reachable(&resolved.database).await),
        _ => None,
    };
    let pods = Pods {
        database: children::pods_of(&ctx.caches, hq, database::COMPONENT),
        metastore: children::pods_of(&ctx.caches, hq, metastore::COMPONENT),
        trino: [trino::COORDINATOR, trino::WORKER]
            .iter()
            .flat_map(|c| children::pods_of(&ctx.caches, hq, c))
            .collect(),
        dashboard: children::pods_of(&ctx.caches, hq, dashboard::COMPONENT),
    };
    let new_status = status::compute(
        hq,
        &status::Observed {
            children: &observed,
            desired: &desired,
            pods: &pods,
            problems: &problems,
            external_database: external.as_ref(),
        },
        Time(jiff::Timestamp::now()),
    );
    report(ctx, hq, &new_status).await;
    let status = apply::write_status(&ctx.shared.client, hq, hq.status.as_ref(), &new_status).await;
    let failure = Error {
        read: read_errors,
        children: errors,
        status: status.err(),
    };
    if !failure.is_empty() {
        return Err(failure);
    }
    let settled = new_status.conditions.iter().all(|c| c.status == "True");
    let next = if !problems.is_empty() {
        ctx.shared.next_backoff(hq).max(Duration::from_secs(5))
    } else {
        ctx.shared.retries.succeeded(&shared::key(hq));
        if settled {
            ctx.shared.config.resync
        } else {
            // The children's watches bring most changes; this catches what they cannot (the
            // external database coming up).
            PROGRESS_POLL.min(ctx.shared.config.resync)
        }
    };
    Ok(Action::requeue(next))
}

pub async fn reconcile(hq: Arc<HapQuery>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.shared.caches_ready().await {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        kind = "HapQuery",
        namespace = hq.namespace().unwrap_or_default(),
        name = hq.name_any()
    );
    let result = reconcile_inner(&hq, &ctx).instrument(span).await;
    ctx.shared.metrics.observe(
        started.elapsed(),
        &result
            .as_ref()
            .err()
            .map(Error::metric_labels)
            .unwrap_or_default(),
    );
    if let Err(e) = &result {
        tracing::warn!(
            namespace = hq.namespace().unwrap_or_default(),
            name = hq.name_any(),
            error = chain(e),
            "HapQuery reconcile failed"
        );
        for note in e.notes() {
            ctx.shared.events.publish(&*hq, &note).await;
        }
    }
    result
}

pub fn error_policy(hq: Arc<HapQuery>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.shared.next_backoff(hq.as_ref()))
}
