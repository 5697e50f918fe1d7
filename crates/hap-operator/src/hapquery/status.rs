//! A HapQuery's status, computed from what was observed (pure): one condition per component, the
//! phase they add up to, and the URLs. Messages say what is wrong and where to look; no Secret value
//! or log line ever reaches them.

use std::sync::Arc;

use hap_api::hapquery::{DashboardKind, HapQueryStatus, QueryPhase};
use hap_api::{Component, HapQuery};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::build::trino;
use super::children::{Children, Pods, database_ready, succeeded};
use crate::pipeline::conditions::{self, Verdict, Verdicts};
use crate::pipeline::kinds::{self, Desired};
use crate::pipeline::objects::node_port;
use crate::pipeline::problem::Problem;
use crate::pipeline::reason::Reason;

/// What the status is computed from.
pub struct Observed<'a> {
    pub children: &'a Children<kinds::Observed>,
    pub pods: &'a Pods,
    /// What the spec wants (for the Jobs' hashes, the worker count, whether MariaDB is run).
    pub desired: &'a Children<Desired>,
    pub problems: &'a [Problem],
    /// Which dashboard the spec asks for.
    pub dashboard: DashboardKind,
    /// For a database the operator does not run: whether it answered a connection.
    pub external_database: Option<&'a Result<(), String>>,
}

fn available(d: Option<&Deployment>) -> (i32, i32) {
    let ready = d
        .and_then(|d| d.status.as_ref()?.available_replicas)
        .unwrap_or(0);
    let wanted = d.and_then(|d| d.spec.as_ref()?.replicas).unwrap_or(1);
    (ready, wanted)
}

/// The first broken container of these pods, as (reason, message): one the kubelet will not start
/// (its image, its configuration), or one that exited with an error and waits to be restarted. The
/// kubelet shows the latter as `terminated` for part of each back-off and as `CrashLoopBackOff` for
/// the rest; both are said as `CrashLoopBackOff`, with one message, so the condition does not flap.
fn broken(pods: &[Arc<Pod>]) -> Option<(Reason, String)> {
    pods.iter().find_map(|pod| {
        let status = pod.status.as_ref()?;
        // A pod being deleted stops its containers, with whatever exit code they give then.
        let restarted = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("Never")
            && !matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"))
            && pod.metadata.deletion_timestamp.is_none();
        status.container_statuses.as_ref()?.iter().find_map(|c| {
            let state = c.state.as_ref()?;
            let last_exit = || c.last_state.as_ref()?.terminated.as_ref().map(|t| t.exit_code);
            let (reason, exit) = match (&state.waiting, &state.terminated) {
                (Some(w), _) => {
                    let reason = Reason::broken_container(w.reason.as_deref()?)?;
                    // The kubelet alternates ErrImagePull and ImagePullBackOff while it retries:
                    // one reason, so that the condition does not change with each attempt.
                    let reason = match reason {
                        Reason::ErrImagePull => Reason::ImagePullBackOff,
                        _ => reason,
                    };
                    (reason, last_exit())
                }
                (None, Some(t)) if t.exit_code != 0 && restarted => {
                    (Reason::CrashLoopBackOff, Some(t.exit_code))
                }
                _ => return None,
            };
            let exit = exit
                .map(|code| format!(", last exit code {code}"))
                .unwrap_or_default();
            Some((
                reason,
                format!(
                    "container {} of pod {} is not running ({reason}{exit}): kubectl logs -n {} {} -c {}",
                    c.name,
                    pod.name_any(),
                    pod.namespace().unwrap_or_default(),
                    pod.name_any(),
                    c.name
                ),
            ))
        })
    })
}

/// A pod of `job` (this very Job: a replaced one's pods may linger until the garbage collector
/// takes them) whose container has exited with an error and is restarted by the kubelet, as a
/// message: the same while the container waits, runs again or has just exited (the exit code comes
/// from its current or its previous run), so the condition stays put through the retries.
fn failed_attempt(job: Option<&Job>, pods: &[Arc<Pod>]) -> Option<String> {
    let uid = job?.metadata.uid.as_deref()?;
    pods.iter()
        .filter(|pod| {
            pod.metadata.deletion_timestamp.is_none()
                && pod
                    .owner_references()
                    .iter()
                    .any(|o| o.kind == "Job" && o.uid == uid)
        })
        .find_map(|pod| {
            let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
            statuses.iter().find_map(|c| {
                let now = c.state.as_ref().and_then(|s| s.terminated.as_ref());
                let before = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let code = [now, before]
                    .into_iter()
                    .flatten()
                    .map(|t| t.exit_code)
                    .find(|code| *code != 0)?;
                Some(format!(
                    "container {} of pod {} exited with code {code}: kubectl logs -n {} {} -c {}",
                    c.name,
                    pod.name_any(),
                    pod.namespace().unwrap_or_default(),
                    pod.name_any(),
                    c.name
                ))
            })
        })
}

/// A Job's failure, as its Failed condition gives it.
fn job_failure(job: Option<&Job>) -> Option<String> {
    let job = job?;
    let failed = job
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")?;
    Some(format!(
        "Job {} failed ({}): kubectl logs -n {} job/{}",
        job.name_any(),
        failed
            .message
            .clone()
            .or(failed.reason.clone())
            .unwrap_or_default(),
        job.namespace().unwrap_or_default(),
        job.name_any()
    ))
}

/// A problem of this component, if any: it comes first.
fn problem_of(o: &Observed<'_>, component: Component) -> Option<Verdict> {
    o.problems
        .iter()
        .find(|p| p.component == Some(component))
        .map(|p| Verdict::not(p.reason, p.message.clone()))
}

/// A server behind a Deployment: ready, broken, or starting.
fn server(deployment: Option<&Deployment>, pods: &[Arc<Pod>], what: &str) -> Verdict {
    let (ready, wanted) = available(deployment);
    if deployment.is_some() && ready >= wanted {
        return Verdict::ok(Reason::Ready, format!("{what} is ready"));
    }
    not_ready(pods, what)
}

/// A component whose pods are not ready yet: broken (crash loop, image, configuration), or starting.
fn not_ready(pods: &[Arc<Pod>], what: &str) -> Verdict {
    match broken(pods) {
        Some((Reason::CrashLoopBackOff, message)) => {
            Verdict::not(Reason::CrashLoopBackOff, message)
        }
        Some((_, message)) => Verdict::not(Reason::ContainerNotRunning, message),
        None => Verdict::not(Reason::Starting, format!("waiting for {what} to be ready")),
    }
}

fn database(o: &Observed<'_>) -> Verdict {
    if let Some(v) = problem_of(o, Component::Database) {
        return v;
    }
    if let Some(reachable) = o.external_database {
        return match reachable {
            Ok(()) => Verdict::ok(
                Reason::Reachable,
                "the external database answers connections",
            ),
            Err(e) => Verdict::not(Reason::Unreachable, e.clone()),
        };
    }
    let database = &o.children.database;
    if database_ready(database, true) {
        return Verdict::ok(Reason::Ready, "MariaDB is ready");
    }
    if database.server.is_none() {
        return Verdict::not(Reason::Creating, "the MariaDB StatefulSet is being created");
    }
    not_ready(&o.pods.database, "MariaDB")
}

/// A component prepared by a Job and then served by a Deployment.
fn initialised_server(
    o: &Observed<'_>,
    job: (Option<&Job>, Option<&Job>),
    deployment: Option<&Deployment>,
    pods: &[Arc<Pod>],
    names: (Reason, Reason, &str),
) -> Verdict {
    let (job, desired_job) = job;
    let (failed_reason, running_reason, what) = names;
    let managed = o.desired.database.server.is_some();
    if !database_ready(&o.children.database, managed) {
        return Verdict::not(
            Reason::WaitingForDatabase,
            format!("{what} starts once the database is ready"),
        );
    }
    if !succeeded(job, desired_job) {
        if let Some(message) = job_failure(job) {
            return Verdict::not(failed_reason, message);
        }
        // An attempt failed and the Job retries it: said at once, not after the back-off limit's
        // minutes, and for as long as the retries last; an attempt that succeeds ends it.
        if let Some(m) = failed_attempt(job, pods) {
            return Verdict::not(
                failed_reason,
                format!("{what}'s initialisation failed and is being retried: {m}"),
            );
        }
        return match broken(pods) {
            Some((_, m)) => Verdict::not(Reason::ContainerNotRunning, m),
            None => Verdict::not(
                running_reason,
                format!("{what}'s initialisation Job is running"),
            ),
        };
    }
    server(deployment, pods, what)
}

fn metastore(o: &Observed<'_>) -> Verdict {
    if let Some(v) = problem_of(o, Component::Metastore) {
        return v;
    }
    let live = &o.children.metastore;
    initialised_server(
        o,
        (live.schema.as_deref(), o.desired.metastore.schema.as_ref()),
        live.server.as_deref(),
        &o.pods.metastore,
        (
            Reason::SchemaInitFailed,
            Reason::InitializingSchema,
            "the metastore",
        ),
    )
}

fn trino(o: &Observed<'_>) -> Verdict {
    if let Some(v) = problem_of(o, Component::Trino) {
        return v;
    }
    let live = &o.children.trino;
    let pods = &o.pods.trino;
    let coordinator = server(live.coordinator.as_deref(), pods, "the Trino coordinator");
    if !coordinator.ok {
        return coordinator;
    }
    let (ready, wanted) = available(live.worker.as_deref());
    if ready < wanted {
        let workers = server(live.worker.as_deref(), pods, "the Trino workers");
        if workers.reason != Reason::Starting {
            return workers;
        }
        return Verdict::not(
            Reason::WorkersStarting,
            format!("the coordinator is ready; {ready} of {wanted} workers are"),
        );
    }
    Verdict::ok(
        Reason::Ready,
        format!("the coordinator and {wanted} workers are ready"),
    )
}

fn dashboard(o: &Observed<'_>, kind: DashboardKind) -> Verdict {
    if kind == DashboardKind::None {
        return Verdict::ok(Reason::NotRequested, "spec.dashboard.kind is none");
    }
    if let Some(v) = problem_of(o, Component::Dashboard) {
        return v;
    }
    let what = match kind {
        DashboardKind::Redash => "Redash",
        _ => "Superset",
    };
    let live = &o.children.dashboard;
    initialised_server(
        o,
        (live.init.as_deref(), o.desired.dashboard.init.as_ref()),
        live.server.as_deref(),
        &o.pods.dashboard,
        (Reason::InitFailed, Reason::Initializing, what),
    )
}

/// The dashboard's address at a node: a dashboard pod's node and the Service's node port.
fn dashboard_url(o: &Observed<'_>) -> Option<String> {
    let port = node_port(o.children.dashboard.service.as_deref()?, "http")?;
    let host = o
        .pods
        .dashboard
        .iter()
        .find_map(|p| p.status.as_ref()?.host_ip.clone())?;
    Some(format!("http://{host}:{port}/"))
}

pub fn compute(hq: &HapQuery, o: &Observed<'_>, now: &Time) -> (HapQueryStatus, Verdicts) {
    let verdicts: Verdicts = vec![
        (Component::Database.as_str(), database(o)),
        (Component::Metastore.as_str(), metastore(o)),
        (Component::Trino.as_str(), trino(o)),
        (Component::Dashboard.as_str(), dashboard(o, o.dashboard)),
    ];
    let blocked = o.problems.iter().any(|p| p.blocking);
    let phase = if blocked {
        QueryPhase::Failed
    } else if verdicts.iter().all(|(_, v)| v.ok) {
        QueryPhase::Running
    } else if verdicts
        .iter()
        .any(|(_, v)| !v.ok && v.reason.is_breakage())
    {
        QueryPhase::Degraded
    } else {
        QueryPhase::Pending
    };
    let previous = hq
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let status = HapQueryStatus {
        phase: Some(phase),
        observed_generation: hq.metadata.generation,
        conditions: conditions::conditions(&verdicts, hq.metadata.generation, now, previous),
        trino_url: o
            .children
            .trino
            .coordinator_service
            .as_ref()
            .map(|_| trino::url(hq)),
        trino_users_secret: o.children.trino.users.as_ref().map(|s| s.name_any()),
        ca_config_map: o.children.trino.ca.as_ref().map(|c| c.name_any()),
        dashboard_url: dashboard_url(o),
    };
    (status, verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hapquery::build::build;
    use crate::hapquery::children;
    use crate::testing::resolve_hapquery as resolve;
    use crate::testing::{applied, hapquery};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use serde_json::json;

    const DATABASE: &str = "Database";
    const METASTORE: &str = "Metastore";
    const TRINO: &str = "Trino";

    const SPEC: &str = "{s3: {endpoint: 'http://s3:80', bucket: b}, schema: air}";

    fn compute_with(
        hq: &HapQuery,
        children: &Children<kinds::Observed>,
        pods: &Pods,
        problems: &[Problem],
    ) -> HapQueryStatus {
        let desired = build(hq, &resolve(hq));
        compute(
            hq,
            &Observed {
                children,
                pods,
                desired: &desired,
                problems,
                dashboard: hq.spec.dashboard.kind,
                external_database: None,
            },
            &Time(jiff::Timestamp::UNIX_EPOCH),
        )
        .0
    }

    fn condition<'a>(s: &'a HapQueryStatus, kind: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    /// Every component up: MariaDB ready, both Jobs done, every Deployment available, and a
    /// dashboard pod on a node.
    fn all_up(hq: &HapQuery) -> (Children<kinds::Observed>, Pods) {
        let d = build(hq, &resolve(hq));
        let available = json!({"availableReplicas": 2});
        let children = Children::<kinds::Observed> {
            database: children::Database {
                server: Some(applied(
                    d.database.server.as_ref().unwrap(),
                    json!({"readyReplicas": 1}),
                )),
                ..Default::default()
            },
            metastore: children::Metastore {
                schema: Some(applied(
                    d.metastore.schema.as_ref().unwrap(),
                    json!({"succeeded": 1}),
                )),
                server: Some(applied(
                    d.metastore.server.as_ref().unwrap(),
                    available.clone(),
                )),
                ..Default::default()
            },
            trino: children::Trino {
                coordinator_service: d.trino.coordinator_service.clone().map(Arc::new),
                coordinator: Some(applied(
                    d.trino.coordinator.as_ref().unwrap(),
                    available.clone(),
                )),
                worker: Some(applied(d.trino.worker.as_ref().unwrap(), available.clone())),
                ..Default::default()
            },
            dashboard: children::Dashboard {
                init: Some(applied(
                    d.dashboard.init.as_ref().unwrap(),
                    json!({"succeeded": 1}),
                )),
                server: Some(applied(d.dashboard.server.as_ref().unwrap(), available)),
                service: Some(applied(d.dashboard.service.as_ref().unwrap(), json!({}))).map(|s| {
                    let mut s = (*s).clone();
                    s.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(30088);
                    Arc::new(s)
                }),
                ..Default::default()
            },
            other_dashboard: Default::default(),
        };
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"name": "q-superset-x"}, "status": {"hostIP": "10.0.0.5"}}),
        )
        .unwrap();
        let pods = Pods {
            dashboard: vec![Arc::new(pod)],
            ..Default::default()
        };
        (children, pods)
    }

    #[test]
    fn every_component_ready_is_running_with_both_urls() {
        let hq = hapquery(SPEC);
        let (children, pods) = all_up(&hq);
        let s = compute_with(&hq, &children, &pods, &[]);
        assert_eq!(s.phase, Some(QueryPhase::Running), "{s:#?}");
        assert!(s.conditions.iter().all(|c| c.status == "True"));
        assert_eq!(
            s.trino_url.as_deref(),
            Some("https://q-trino-coordinator.ns.svc:8443")
        );
        assert_eq!(s.dashboard_url.as_deref(), Some("http://10.0.0.5:30088/"));
    }

    #[test]
    fn a_failed_schema_job_degrades_the_metastore_and_says_where_to_look() {
        let hq = hapquery(SPEC);
        let (mut children, pods) = all_up(&hq);
        let d = build(&hq, &resolve(&hq));
        children.metastore.schema = Some(applied(
            d.metastore.schema.as_ref().unwrap(),
            json!({"failed": 7, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
        ));
        let s = compute_with(&hq, &children, &pods, &[]);
        assert_eq!(s.phase, Some(QueryPhase::Degraded));
        let m = condition(&s, METASTORE);
        assert_eq!(
            (m.status.as_str(), m.reason.as_str()),
            ("False", "SchemaInitFailed")
        );
        assert!(
            m.message
                .contains("kubectl logs -n ns job/q-metastore-schema"),
            "{}",
            m.message
        );
        assert_eq!(
            condition(&s, TRINO).status,
            "True",
            "Trino is not the metastore"
        );
    }

    #[test]
    fn a_missing_secret_fails_the_components_that_read_it_and_nothing_else() {
        let hq = hapquery(SPEC);
        let problems = [Component::Metastore, Component::Trino].map(|component| Problem {
            reason: Reason::S3CredentialsSecretNotFound,
            message: "Secret \"keys\" (spec.s3.credentialsSecret) was not found".into(),
            blocking: true,
            component: Some(component),
        });
        let s = compute_with(&hq, &Children::default(), &Pods::default(), &problems);
        assert_eq!(s.phase, Some(QueryPhase::Failed));
        for kind in [METASTORE, TRINO] {
            assert_eq!(condition(&s, kind).reason, "S3CredentialsSecretNotFound");
        }
        assert_eq!(condition(&s, DATABASE).reason, "Creating");
    }

    /// A pod whose one container exited with `exit` and waits to be restarted.
    fn crash_looping(pod: &str, container: &str, exit: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": pod, "namespace": "ns"},
                "status": {"containerStatuses": [{
                    "name": container, "image": "i", "imageID": "", "ready": false, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                    "lastState": {"terminated": {"exitCode": exit}}
                }]}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn a_schema_attempt_that_failed_is_said_at_once_while_the_job_retries() {
        let hq = hapquery(SPEC);
        let (mut children, mut pods) = all_up(&hq);
        let d = build(&hq, &resolve(&hq));
        let mut job =
            (*applied(d.metastore.schema.as_ref().unwrap(), json!({"active": 1}))).clone();
        job.metadata.uid = Some("this-job".into());
        children.metastore.schema = Some(Arc::new(job));
        children.metastore.server = None;
        let pod_of = |job_uid: &str, state: serde_json::Value| -> Arc<Pod> {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": "q-metastore-schema-x", "namespace": "ns",
                                 "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "q-metastore-schema", "uid": job_uid}]},
                    "spec": {"restartPolicy": "OnFailure", "containers": []},
                    "status": {"phase": "Running", "containerStatuses": [{
                        "name": "schema", "image": "i", "imageID": "", "ready": false, "restartCount": 2,
                        "state": state, "lastState": {"terminated": {"exitCode": 1}}
                    }]}
                }))
                .unwrap(),
            )
        };
        let schema_pod = |state| pod_of("this-job", state);
        // A replaced Job's pod, not yet collected, is not this Job's attempt.
        pods.metastore = vec![pod_of(
            "replaced-job",
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}),
        )];
        let s = compute_with(&hq, &children, &pods, &[]);
        assert_ne!(condition(&s, METASTORE).reason, "SchemaInitFailed");
        pods.metastore = vec![schema_pod(
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}),
        )];
        let s = compute_with(&hq, &children, &pods, &[]);
        let m = condition(&s, METASTORE);
        assert_eq!(
            (m.status.as_str(), m.reason.as_str()),
            ("False", "SchemaInitFailed")
        );
        assert_eq!(
            m.message,
            "the metastore's initialisation failed and is being retried: container schema of pod q-metastore-schema-x exited with code 1: kubectl logs -n ns q-metastore-schema-x -c schema"
        );
        assert_eq!(s.phase, Some(QueryPhase::Degraded));
        // The kubelet runs the next attempt, and shows it terminated before the next back-off:
        // the same condition all along, so no new event and no flapping phase.
        for state in [
            json!({"running": {}}),
            json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
        ] {
            pods.metastore = vec![schema_pod(state)];
            let again = compute_with(&hq, &children, &pods, &[]);
            assert_eq!(condition(&again, METASTORE), m);
            assert_eq!(again.phase, Some(QueryPhase::Degraded));
        }
        pods.metastore.clear();
        let s = compute_with(&hq, &children, &pods, &[]);
        assert_eq!(condition(&s, METASTORE).reason, "InitializingSchema");
    }

    /// A pod whose one container has exited with `exit` (and is being deleted, if `deleting`).
    fn exited(pod: &str, container: &str, exit: i32, deleting: bool) -> Arc<Pod> {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": pod, "namespace": "ns"},
            "spec": {"restartPolicy": "OnFailure", "containers": []},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": container, "image": "i", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"terminated": {"exitCode": exit, "reason": "Error"}},
                "lastState": {"terminated": {"exitCode": exit}}
            }]}
        }))
        .unwrap();
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        }
        Arc::new(p)
    }

    #[test]
    fn a_container_stopped_by_its_pods_deletion_is_not_broken() {
        let hq = hapquery(SPEC);
        let (mut children, mut pods) = all_up(&hq);
        let d = build(&hq, &resolve(&hq));
        children.trino.coordinator =
            Some(applied(d.trino.coordinator.as_ref().unwrap(), json!({})));
        pods.trino = vec![exited("q-trino-coordinator-old", "trino", 143, true)];
        let s = compute_with(&hq, &children, &pods, &[]);
        assert_eq!(condition(&s, TRINO).reason, "Starting");
        pods.trino = vec![exited("q-trino-coordinator-old", "trino", 143, false)];
        let s = compute_with(&hq, &children, &pods, &[]);
        assert_eq!(condition(&s, TRINO).reason, "CrashLoopBackOff");
    }

    #[test]
    fn a_crash_looping_trino_says_which_container_and_how_it_exited() {
        let hq = hapquery(SPEC);
        let (mut children, _) = all_up(&hq);
        let d = build(&hq, &resolve(&hq));
        children.trino.coordinator =
            Some(applied(d.trino.coordinator.as_ref().unwrap(), json!({})));
        let pods = Pods {
            trino: vec![crash_looping("q-trino-coordinator-abc", "trino", 100)],
            ..Default::default()
        };
        let s = compute_with(&hq, &children, &pods, &[]);
        let t = condition(&s, TRINO);
        assert_eq!(t.reason, "CrashLoopBackOff");
        assert_eq!(
            t.message,
            "container trino of pod q-trino-coordinator-abc is not running (CrashLoopBackOff, last exit code 100): kubectl logs -n ns q-trino-coordinator-abc -c trino"
        );
        assert_eq!(s.phase, Some(QueryPhase::Degraded));
    }
}
