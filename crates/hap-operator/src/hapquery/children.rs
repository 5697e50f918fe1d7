//! A HapQuery's children: the one typed set of them, grouped by component, read from the caches and
//! planned (pure) with the shared plan steps. The plan is the one apply order, and `render` prints it
//! made against nothing observed: each component in the order it comes up (the database, the
//! metastore, Trino, the dashboard), and within one, Secrets and ConfigMaps before what reads them,
//! each Job before the server it prepares.

use std::sync::Arc;

use hap_api::hapquery::DashboardKind;
use hap_api::{Component, HapQuery};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;

use super::build::database::DASHBOARD_PASSWORD_KEY;
use super::build::trino;
use super::names::{self, REDASH_GENERATED_KEYS, SUPERSET_GENERATED_KEYS};
use super::resolve::{MARIADB_GENERATED_KEYS, Resolved};
use crate::pipeline::caches::{Cached, Caches};
use crate::pipeline::hash::same_hash;
use crate::pipeline::kinds::{Child, Desired, Observed, Stage};
use crate::pipeline::plan::{self, CopyFrom, CopyValues, Step};

/// Every child a HapQuery can have, at one stage, by component: as the spec wants it (`Desired`, None
/// where it does not call for it) or as the caches hold it (`Observed`). Taken apart without `..`
/// wherever it is used, so a new child does not compile until it is planned, applied and rendered.
#[derive(Default)]
pub struct Children<S: Stage> {
    pub database: Database<S>,
    pub metastore: Metastore<S>,
    pub trino: Trino<S>,
    pub dashboard: Dashboard<S>,
    /// The children of the dashboard the spec does not ask for (Redash's, after a switch to
    /// Superset, say): never desired, so they are removed if they are the HapQuery's.
    pub other_dashboard: Dashboard<S>,
}

/// The metastore's database: MariaDB, when the operator runs it.
#[derive(Default)]
pub struct Database<S: Stage> {
    /// Who may connect to it (see `build::network`), applied before the server starts.
    pub policy: S::Of<NetworkPolicy>,
    /// Its generated passwords.
    pub secret: S::Of<Secret>,
    /// The generated password of the dashboard's own user, with Superset.
    pub dashboard_secret: S::Of<Secret>,
    pub config: S::Of<ConfigMap>,
    pub service: S::Of<Service>,
    pub server: S::Of<StatefulSet>,
}

#[derive(Default)]
pub struct Metastore<S: Stage> {
    pub policy: S::Of<NetworkPolicy>,
    pub config: S::Of<ConfigMap>,
    /// Creates the schema before the server starts.
    pub schema: S::Of<Job>,
    pub service: S::Of<Service>,
    pub server: S::Of<Deployment>,
}

#[derive(Default)]
pub struct Trino<S: Stage> {
    /// The users' generated passwords, and the password file Trino reads, made from them.
    pub users: S::Of<Secret>,
    pub password_file: S::Of<Secret>,
    /// The nodes' generated shared secret.
    pub internal: S::Of<Secret>,
    /// The coordinator's certificate, and the CA bundle clients trust it by.
    pub certificate: S::Of<Secret>,
    pub ca: S::Of<ConfigMap>,
    pub coordinator_policy: S::Of<NetworkPolicy>,
    pub worker_policy: S::Of<NetworkPolicy>,
    pub catalog: S::Of<ConfigMap>,
    pub coordinator_config: S::Of<ConfigMap>,
    pub worker_config: S::Of<ConfigMap>,
    pub coordinator_service: S::Of<Service>,
    pub worker_service: S::Of<Service>,
    pub coordinator: S::Of<Deployment>,
    pub worker: S::Of<Deployment>,
}

/// Superset or Redash, when there is a dashboard.
#[derive(Default)]
pub struct Dashboard<S: Stage> {
    pub policy: S::Of<NetworkPolicy>,
    /// Its generated admin password and secret key.
    pub secret: S::Of<Secret>,
    pub config: S::Of<ConfigMap>,
    /// Prepares its database before the server starts.
    pub init: S::Of<Job>,
    pub service: S::Of<Service>,
    pub server: S::Of<Deployment>,
    /// Redash's background worker.
    pub worker: S::Of<Deployment>,
}

/// The pods of each component, as cached (their ReplicaSets', StatefulSet's and Jobs' pods, which
/// the HapQuery does not own itself).
#[derive(Default)]
pub struct Pods {
    pub database: Vec<Arc<Pod>>,
    pub metastore: Vec<Arc<Pod>>,
    pub trino: Vec<Arc<Pod>>,
    pub dashboard: Vec<Arc<Pod>>,
}

/// What the caches hold of a HapQuery: its children and its components' pods.
#[derive(Default)]
pub struct Live {
    pub children: Children<Observed>,
    pub pods: Pods,
}

/// The dashboard that is not `kind`: Redash's children for Superset or none, Superset's for Redash.
fn other_dashboard(kind: DashboardKind) -> DashboardKind {
    match kind {
        DashboardKind::Redash => DashboardKind::Superset,
        DashboardKind::Superset | DashboardKind::None => DashboardKind::Redash,
    }
}

/// What the caches hold of a dashboard's children, Superset's (for `none` too) or Redash's.
fn dashboard(
    caches: &Caches,
    ns: &str,
    name: &str,
    kind: DashboardKind,
    uid: Option<&str>,
) -> Dashboard<Observed> {
    let (server, init, worker) = match kind {
        DashboardKind::Redash => (
            names::redash(name),
            names::redash_init(name),
            Some(names::redash_worker(name)),
        ),
        DashboardKind::Superset | DashboardKind::None => {
            (names::superset(name), names::superset_init(name), None)
        }
    };
    Dashboard {
        policy: caches.owned::<NetworkPolicy>(ns, &names::policy(&server), uid),
        secret: caches.get::<Secret>(ns, &server),
        config: caches.owned::<ConfigMap>(ns, &server, uid),
        init: caches.owned::<Job>(ns, &init, uid),
        service: caches.owned::<Service>(ns, &server, uid),
        server: caches.owned::<Deployment>(ns, &server, uid),
        worker: worker.and_then(|w| caches.owned::<Deployment>(ns, &w, uid)),
    }
}

/// What the caches hold of the HapQuery's children: each only if it is this HapQuery's as it is now
/// (see `Caches::owned`). The generated Secrets are looked up by name alone: the database's outlives
/// its HapQuery on purpose (see `build::database`).
pub fn observe(caches: &Caches, hq: &HapQuery, r: &Resolved) -> Live {
    let (namespace, name) = (hq.namespace().unwrap_or_default(), hq.name_any());
    let ns = namespace.as_str();
    let uid = hq.uid();
    let uid = uid.as_deref();
    fn own<K: Cached>(c: &Caches, ns: &str, name: &str, uid: Option<&str>) -> Option<Arc<K::Live>> {
        c.owned::<K>(ns, name, uid)
    }
    let (mariadb, metastore_name) = (names::mariadb(&name), names::metastore(&name));
    let children = Children {
        database: Database {
            policy: own::<NetworkPolicy>(caches, ns, &names::policy(&mariadb), uid),
            secret: caches.get::<Secret>(ns, &mariadb),
            dashboard_secret: caches.get::<Secret>(ns, &names::mariadb_superset(&name)),
            config: own::<ConfigMap>(caches, ns, &mariadb, uid),
            service: own::<Service>(caches, ns, &mariadb, uid),
            server: own::<StatefulSet>(caches, ns, &mariadb, uid),
        },
        metastore: Metastore {
            policy: own::<NetworkPolicy>(caches, ns, &names::policy(&metastore_name), uid),
            config: own::<ConfigMap>(caches, ns, &metastore_name, uid),
            schema: own::<Job>(caches, ns, &names::metastore_schema(&name), uid),
            service: own::<Service>(caches, ns, &metastore_name, uid),
            server: own::<Deployment>(caches, ns, &metastore_name, uid),
        },
        trino: Trino {
            users: caches.get::<Secret>(ns, &names::trino_users(&name)),
            password_file: caches.get::<Secret>(ns, &names::trino_password_file(&name)),
            internal: caches.get::<Secret>(ns, &names::trino_internal(&name)),
            certificate: caches.get::<Secret>(ns, &names::trino_tls(&name)),
            ca: own::<ConfigMap>(caches, ns, &names::ca(&name), uid),
            coordinator_policy: own::<NetworkPolicy>(
                caches,
                ns,
                &names::policy(&names::trino_coordinator(&name)),
                uid,
            ),
            worker_policy: own::<NetworkPolicy>(
                caches,
                ns,
                &names::policy(&names::trino_worker(&name)),
                uid,
            ),
            catalog: own::<ConfigMap>(caches, ns, &names::trino_catalog(&name), uid),
            coordinator_config: own::<ConfigMap>(caches, ns, &names::trino_coordinator(&name), uid),
            worker_config: own::<ConfigMap>(caches, ns, &names::trino_worker(&name), uid),
            coordinator_service: own::<Service>(caches, ns, &names::trino_coordinator(&name), uid),
            worker_service: own::<Service>(caches, ns, &names::trino_worker(&name), uid),
            coordinator: own::<Deployment>(caches, ns, &names::trino_coordinator(&name), uid),
            worker: own::<Deployment>(caches, ns, &names::trino_worker(&name), uid),
        },
        dashboard: dashboard(caches, ns, &name, r.dashboard, uid),
        other_dashboard: dashboard(caches, ns, &name, other_dashboard(r.dashboard), uid),
    };
    let pods_of = |component: &str| caches.pods_of(ns, names::APP, &name, component);
    let pods = Pods {
        database: pods_of(names::DATABASE),
        metastore: pods_of(names::METASTORE),
        trino: [names::TRINO_COORDINATOR, names::TRINO_WORKER]
            .into_iter()
            .flat_map(pods_of)
            .collect(),
        dashboard: pods_of(names::DASHBOARD),
    };
    Live { children, pods }
}

/// Whether a Job ran to completion, in the version the spec wants now (same hash).
pub fn succeeded(live: Option<&Job>, desired: Option<&Job>) -> bool {
    let (Some(live), Some(desired)) = (live, desired) else {
        return false;
    };
    same_hash(live, desired) && live.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0
}

/// Whether the database takes connections: the operator's MariaDB has a ready pod, or the database
/// is someone else's (it is checked by connecting, elsewhere).
pub fn database_ready(live: &Database<Observed>, managed: bool) -> bool {
    !managed
        || live
            .server
            .as_ref()
            .and_then(|s| s.status.as_ref()?.ready_replicas)
            .unwrap_or(0)
            > 0
}

/// A server that waits for its Job while the spec wants it, and goes when it does not.
fn held_until<K: Child>(
    live: Option<&K::Live>,
    desired: Option<&K>,
    ready: bool,
    owner_uid: Option<&str>,
) -> Step {
    let step = plan::ensure_or_remove(live, desired, owner_uid);
    if desired.is_some() {
        plan::after(ready, step)
    } else {
        step
    }
}

/// Plans every child (pure), nothing when the HapQuery is not `runnable`. `owner_uid` is the
/// HapQuery's. Jobs wait for the database; the metastore and the dashboard wait for their Jobs, so
/// that no server starts on an empty schema and crash-loops until it is filled.
pub fn plan(
    live: &Children<Observed>,
    desired: &Children<Desired>,
    r: &Resolved,
    owner_uid: Option<&str>,
    now: Timestamp,
) -> Vec<Step> {
    let db_ready = database_ready(&live.database, desired.database.server.is_some());
    let mut steps = plan_database(&live.database, &desired.database, owner_uid);
    steps.extend(plan_metastore(
        &live.metastore,
        &desired.metastore,
        owner_uid,
        db_ready,
    ));
    steps.extend(plan_trino(&live.trino, &desired.trino, r, owner_uid, now));
    steps.extend(plan_dashboard(
        &live.dashboard,
        &desired.dashboard,
        r,
        owner_uid,
        db_ready,
    ));
    steps.extend(plan_dashboard(
        &live.other_dashboard,
        &desired.other_dashboard,
        r,
        owner_uid,
        db_ready,
    ));
    plan::in_order(steps)
}

fn plan_database(
    live: &Database<Observed>,
    desired: &Database<Desired>,
    owner_uid: Option<&str>,
) -> Vec<Step> {
    let Database {
        policy,
        secret,
        dashboard_secret,
        config,
        service,
        server,
    } = desired;
    vec![
        plan::ensure_or_remove(live.policy.as_deref(), policy.as_ref(), owner_uid),
        plan::create_once(
            live.secret.as_deref(),
            secret.as_ref(),
            &MARIADB_GENERATED_KEYS,
            "generated database passwords",
        ),
        plan::create_once(
            live.dashboard_secret.as_deref(),
            dashboard_secret.as_ref(),
            &[DASHBOARD_PASSWORD_KEY],
            "a generated password for the dashboard's database user",
        ),
        plan::ensure_or_remove(live.config.as_deref(), config.as_ref(), owner_uid),
        plan::ensure_or_remove(live.service.as_deref(), service.as_ref(), owner_uid),
        plan::ensure_or_remove(live.server.as_deref(), server.as_ref(), owner_uid),
    ]
    .into_iter()
    .map(|s| s.of(Component::Database))
    .collect()
}

fn plan_metastore(
    live: &Metastore<Observed>,
    desired: &Metastore<Desired>,
    owner_uid: Option<&str>,
    db_ready: bool,
) -> Vec<Step> {
    let Metastore {
        policy,
        config,
        schema,
        service,
        server,
    } = desired;
    let schema_done = succeeded(live.schema.as_deref(), schema.as_ref());
    vec![
        plan::ensure_if_desired(live.policy.as_deref(), policy.as_ref()),
        plan::ensure_if_desired(live.config.as_deref(), config.as_ref()),
        plan::after(
            db_ready,
            plan::job(live.schema.as_deref(), schema.as_ref(), owner_uid),
        ),
        plan::ensure_if_desired(live.service.as_deref(), service.as_ref()),
        held_until(
            live.server.as_deref(),
            server.as_ref(),
            schema_done,
            owner_uid,
        ),
    ]
    .into_iter()
    .map(|s| s.of(Component::Metastore))
    .collect()
}

fn plan_trino(
    live: &Trino<Observed>,
    desired: &Trino<Desired>,
    r: &Resolved,
    owner_uid: Option<&str>,
    now: Timestamp,
) -> Vec<Step> {
    let Trino {
        users,
        password_file,
        internal,
        certificate,
        ca,
        coordinator_policy,
        worker_policy,
        catalog,
        coordinator_config,
        worker_config,
        coordinator_service,
        worker_service,
        coordinator,
        worker,
    } = desired;
    let users_name = users.as_ref().map(|u| u.name_any()).unwrap_or_default();
    let password_source = CopyFrom {
        secret: users_name,
        values: CopyValues::PasswordFile(trino::PASSWORD_FILE_KEY.into()),
    };
    let mut steps = vec![
        plan::create_once(
            live.users.as_deref(),
            users.as_ref(),
            &trino::USERS,
            "generated Trino passwords",
        ),
        // Made again whenever the users' Secret changes (its resourceVersion is in the copy's hash).
        plan::copy(
            live.password_file.as_deref(),
            password_file.as_ref().map(|p| (p, &password_source)),
            live.users.as_deref().map(|u| &u.metadata),
            live.users.is_some(),
            owner_uid,
        ),
        plan::create_once(
            live.internal.as_deref(),
            internal.as_ref(),
            &[trino::SHARED_SECRET_KEY],
            "a generated secret for Trino's nodes",
        ),
    ];
    if let Some(c) = certificate {
        steps.push(plan::certificate(
            live.certificate.as_deref(),
            c,
            &r.trino_hosts,
            now,
        ));
    }
    steps.extend([
        plan::ensure_if_desired(live.ca.as_deref(), ca.as_ref()),
        plan::ensure_if_desired(
            live.coordinator_policy.as_deref(),
            coordinator_policy.as_ref(),
        ),
        plan::ensure_if_desired(live.worker_policy.as_deref(), worker_policy.as_ref()),
        plan::ensure_if_desired(live.catalog.as_deref(), catalog.as_ref()),
        plan::ensure_if_desired(
            live.coordinator_config.as_deref(),
            coordinator_config.as_ref(),
        ),
        plan::ensure_if_desired(live.worker_config.as_deref(), worker_config.as_ref()),
        plan::ensure_if_desired(
            live.coordinator_service.as_deref(),
            coordinator_service.as_ref(),
        ),
        plan::ensure_if_desired(live.worker_service.as_deref(), worker_service.as_ref()),
        // The password file is made from the users' Secret once the cache holds it, a reconcile
        // after: a pod started before would wait for its volume on the kubelet's back-off.
        plan::after(
            live.password_file.is_some(),
            plan::ensure_if_desired(live.coordinator.as_deref(), coordinator.as_ref()),
        ),
        plan::after(
            live.password_file.is_some(),
            plan::ensure_if_desired(live.worker.as_deref(), worker.as_ref()),
        ),
    ]);
    steps.into_iter().map(|s| s.of(Component::Trino)).collect()
}

fn plan_dashboard(
    live: &Dashboard<Observed>,
    desired: &Dashboard<Desired>,
    r: &Resolved,
    owner_uid: Option<&str>,
    db_ready: bool,
) -> Vec<Step> {
    let Dashboard {
        policy,
        secret,
        config,
        init,
        service,
        server,
        worker,
    } = desired;
    let generated_keys: &[&str] = match r.dashboard {
        DashboardKind::Redash => &REDASH_GENERATED_KEYS,
        _ => &SUPERSET_GENERATED_KEYS,
    };
    let init_done = succeeded(live.init.as_deref(), init.as_ref());
    vec![
        plan::ensure_or_remove(live.policy.as_deref(), policy.as_ref(), owner_uid),
        plan::create_once(
            live.secret.as_deref(),
            secret.as_ref(),
            generated_keys,
            "a generated admin password and secret key",
        ),
        plan::ensure_or_remove(live.config.as_deref(), config.as_ref(), owner_uid),
        plan::after(
            db_ready || init.is_none(),
            plan::job(live.init.as_deref(), init.as_ref(), owner_uid),
        ),
        plan::ensure_or_remove(live.service.as_deref(), service.as_ref(), owner_uid),
        held_until(
            live.server.as_deref(),
            server.as_ref(),
            init_done,
            owner_uid,
        ),
        held_until(
            live.worker.as_deref(),
            worker.as_ref(),
            init_done,
            owner_uid,
        ),
    ]
    .into_iter()
    .map(|s| s.of(Component::Dashboard))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hapquery::build::build;
    use crate::pipeline::plan::Action;
    use crate::testing::resolve_hapquery as resolve;
    use crate::testing::{applied, hapquery};
    use serde_json::json;

    const SPEC: &str = "{s3: {endpoint: 'http://s3:80', bucket: b}, schema: air}";

    fn desired(hq: &HapQuery) -> Children<Desired> {
        build(hq, &resolve(hq))
    }

    /// What each step does, as "verb Kind name".
    fn actions(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| {
                let (verb, obj) = match &s.action {
                    Action::Apply(o) | Action::Create(o) => {
                        ("apply", serde_json::to_value(o).unwrap())
                    }
                    Action::CreateOnce(o, _)
                    | Action::Issue(o, _)
                    | Action::Copy { secret: o, .. } => {
                        ("create", serde_json::to_value(o).unwrap())
                    }
                    Action::Delete(o) => ("delete", serde_json::to_value(o).unwrap()),
                    Action::Replace(o) => ("replace", serde_json::to_value(o).unwrap()),
                    Action::Keep | Action::Wait(_) | Action::Later(_) | Action::Foreign(_) => {
                        return None;
                    }
                };
                Some(format!(
                    "{verb} {} {}",
                    obj["kind"].as_str().unwrap_or("?"),
                    obj["metadata"]["name"].as_str().unwrap()
                ))
            })
            .collect()
    }

    #[test]
    fn jobs_wait_for_the_database_and_servers_for_their_jobs() {
        let hq = hapquery(SPEC);
        let steps = plan(
            &Children::default(),
            &desired(&hq),
            &resolve(&hq),
            Some("u-2"),
            Timestamp::UNIX_EPOCH,
        );
        let done = actions(&steps);
        assert!(
            done.contains(&"apply StatefulSet q-mariadb".to_string()),
            "{done:?}"
        );
        // Trino waits for its password file, which is made once the users' Secret is cached.
        assert!(done.contains(&"create Secret q-trino-users".to_string()));
        for held in [
            "Deployment q-trino-coordinator",
            "Deployment q-trino-worker",
            "Job q-metastore-schema",
            "Job q-superset-init",
            "Deployment q-metastore",
            "Deployment q-superset",
        ] {
            assert!(
                !done.iter().any(|d| d.ends_with(held)),
                "{held} waits: {done:?}"
            );
        }

        // MariaDB ready: both Jobs start; their servers still wait for them. The password file
        // there: Trino starts.
        let d = desired(&hq);
        let observed = Children::<Observed> {
            database: Database {
                server: Some(applied(
                    d.database.server.as_ref().unwrap(),
                    json!({"replicas": 1, "readyReplicas": 1}),
                )),
                ..Default::default()
            },
            trino: Trino {
                password_file: Some(Arc::new(
                    serde_json::from_value(json!({
                        "apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "q-trino-password-file", "namespace": "ns"}
                    }))
                    .unwrap(),
                )),
                ..Default::default()
            },
            ..Default::default()
        };
        let done = actions(&plan(
            &observed,
            &desired(&hq),
            &resolve(&hq),
            Some("u-2"),
            Timestamp::UNIX_EPOCH,
        ));
        assert!(
            done.contains(&"apply Job q-metastore-schema".to_string()),
            "{done:?}"
        );
        assert!(done.contains(&"apply Job q-superset-init".to_string()));
        assert!(done.contains(&"apply Deployment q-trino-coordinator".to_string()));
        assert!(
            !done
                .iter()
                .any(|d| d.ends_with("Deployment q-metastore")
                    || d.ends_with("Deployment q-superset"))
        );

        // The schema Job done, in the version wanted: the metastore starts.
        let observed = Children::<Observed> {
            database: Database {
                server: observed.database.server.clone(),
                ..Default::default()
            },
            metastore: Metastore {
                schema: Some(applied(
                    d.metastore.schema.as_ref().unwrap(),
                    json!({"succeeded": 1}),
                )),
                ..Default::default()
            },
            ..Default::default()
        };
        let done = actions(&plan(
            &observed,
            &desired(&hq),
            &resolve(&hq),
            Some("u-2"),
            Timestamp::UNIX_EPOCH,
        ));
        assert!(
            done.contains(&"apply Deployment q-metastore".to_string()),
            "{done:?}"
        );
        assert!(
            !done.iter().any(|d| d.contains("q-metastore-schema")),
            "a finished Job is kept: {done:?}"
        );
    }

    #[test]
    fn a_job_whose_template_changed_is_replaced_and_its_server_keeps_the_old_version_meanwhile() {
        let before = hapquery(SPEC);
        let after = hapquery(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, schema: air, metastore: {image: 'metastore:2'}}",
        );
        let old = desired(&before);
        let observed = Children::<Observed> {
            database: Database {
                server: Some(applied(
                    old.database.server.as_ref().unwrap(),
                    json!({"readyReplicas": 1}),
                )),
                ..Default::default()
            },
            metastore: Metastore {
                schema: Some(applied(
                    old.metastore.schema.as_ref().unwrap(),
                    json!({"succeeded": 1}),
                )),
                server: old.metastore.server.clone().map(Arc::new),
                ..Default::default()
            },
            ..Default::default()
        };
        let steps = plan(
            &observed,
            &desired(&after),
            &resolve(&after),
            Some("u-2"),
            Timestamp::UNIX_EPOCH,
        );
        let done = actions(&steps);
        assert!(
            done.contains(&"replace Job q-metastore-schema".to_string()),
            "{done:?}"
        );
        assert!(
            !done.iter().any(|d| d.ends_with("Deployment q-metastore")),
            "held until the new schema Job succeeds: {done:?}"
        );
    }

    #[test]
    fn no_dashboard_removes_the_dashboards_children() {
        let hq = hapquery(SPEC);
        let mut d = desired(&hq);
        let owned = |mut meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            meta.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    uid: "u-2".into(),
                    ..Default::default()
                },
            ]);
            meta
        };
        let mut server = d.dashboard.server.take().unwrap();
        server.metadata = owned(server.metadata);
        let mut job = d.dashboard.init.take().unwrap();
        job.metadata = owned(job.metadata);
        let observed = Children::<Observed> {
            dashboard: Dashboard {
                server: Some(Arc::new(server)),
                init: Some(Arc::new(job)),
                ..Default::default()
            },
            ..Default::default()
        };
        let none = hapquery(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, schema: air, dashboard: {kind: none}}",
        );
        let done = actions(&plan(
            &observed,
            &desired(&none),
            &resolve(&none),
            Some("u-2"),
            Timestamp::UNIX_EPOCH,
        ));
        assert!(
            done.contains(&"delete Deployment q-superset".to_string()),
            "{done:?}"
        );
        assert!(
            done.contains(&"delete Job q-superset-init".to_string()),
            "{done:?}"
        );
        // Deletions last, the server before its Job.
        let server_at = done
            .iter()
            .position(|d| d == "delete Deployment q-superset")
            .unwrap();
        let job_at = done
            .iter()
            .position(|d| d == "delete Job q-superset-init")
            .unwrap();
        assert!(server_at < job_at && done[..server_at].iter().all(|d| !d.starts_with("delete")));
    }

    #[test]
    fn a_switch_of_dashboard_removes_the_former_ones_children() {
        let redash = hapquery(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, dashboard: {kind: redash, redash: {connectionSecret: {name: r}}}}",
        );
        let owned = |mut meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            meta.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    uid: "u-2".into(),
                    ..Default::default()
                },
            ]);
            meta
        };
        let before = desired(&redash).dashboard;
        let live = |o: Option<Deployment>| {
            o.map(|mut d| {
                d.metadata = owned(d.metadata);
                Arc::new(d)
            })
        };
        let observed = Children::<Observed> {
            other_dashboard: Dashboard {
                server: live(before.server),
                worker: live(before.worker),
                ..Default::default()
            },
            ..Default::default()
        };
        let superset = hapquery(SPEC);
        let done = actions(&plan(
            &observed,
            &desired(&superset),
            &resolve(&superset),
            Some("u-2"),
            Timestamp::UNIX_EPOCH,
        ));
        for gone in [
            "delete Deployment q-redash",
            "delete Deployment q-redash-worker",
        ] {
            assert!(done.contains(&gone.to_string()), "{gone}: {done:?}");
        }
    }
}

#[cfg(test)]
mod observe_tests {
    use super::*;
    use crate::pipeline::caches::testing;
    use crate::testing::resolve_hapquery as resolve;
    use serde_json::json;

    fn caches(stateful_sets: Vec<StatefulSet>) -> Caches {
        Caches {
            stateful_sets: testing::store(stateful_sets),
            ..testing::empty()
        }
    }

    fn mariadb(owner: &str, deleting: bool) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "q-mariadb", "namespace": "ns",
                "ownerReferences": [{"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapQuery", "name": "q", "uid": owner}],
                "deletionTimestamp": deleting.then_some("2026-12-03T10:00:00Z")},
            "status": {"replicas": 1, "readyReplicas": 1}
        }))
        .unwrap()
    }

    #[test]
    fn a_predecessors_children_going_away_are_not_this_hapquerys() {
        let hq = crate::testing::hapquery("{s3: {endpoint: 'http://s3:80', bucket: b}}");
        // The HapQuery of the same name deleted before this one (uid u-1) still has its MariaDB.
        let r = resolve(&hq);
        let old = observe(&caches(vec![mariadb("u-1", true)]), &hq, &r).children;
        assert!(old.database.server.is_none());
        assert!(
            !database_ready(&old.database, true),
            "its ready pod is not this database's"
        );
        let deleting = observe(&caches(vec![mariadb("u-2", true)]), &hq, &r).children;
        assert!(deleting.database.server.is_none());
        let own = observe(&caches(vec![mariadb("u-2", false)]), &hq, &r).children;
        assert!(database_ready(&own.database, true));
    }
}
