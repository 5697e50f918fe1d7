//! A HapQuery's children: read from the caches, and planned (pure) with the same plan functions as a
//! workspace's. The order lets each child find what it needs: Secrets and ConfigMaps before what
//! reads them, the database before the Jobs that fill it, each Job before the server it prepares.

use std::sync::Arc;

use hap_api::HapQuery;
use hap_api::hapquery::DashboardKind;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::reconcile::Caches;
use crate::build::query::dashboard::{REDASH_GENERATED_KEYS, SUPERSET_GENERATED_KEYS};
use crate::build::query::{Children, names};
use crate::kinds::{Desired, Observed};
use crate::plan::{self, Step};
use crate::query::resolve::MARIADB_GENERATED_KEYS;

fn cached<L: kube::Resource<DynamicType = ()> + Clone>(
    store: &Store<L>,
    namespace: &str,
    name: &str,
) -> Option<Arc<L>> {
    store.get(&ObjectRef::new(name).within(namespace))
}

/// Whether a cached child is this HapQuery's, as it is now: owned by its uid and not being deleted. A
/// HapQuery deleted and made again under the same name finds its predecessor's children going away
/// under the same names; they are neither its status nor in its place (the next apply takes over one
/// of the same name that someone else made).
fn current<L: kube::Resource>(obj: Arc<L>, uid: Option<&str>) -> Option<Arc<L>> {
    let meta = obj.meta();
    let owned = uid.is_none_or(|uid| meta.owner_references.iter().flatten().any(|r| r.uid == uid));
    (owned && meta.deletion_timestamp.is_none()).then_some(obj)
}

/// What the caches hold of the HapQuery's children. The generated Secrets are looked up by name
/// alone: the database's outlives its HapQuery on purpose (see `build::query::database`).
pub fn observe(caches: &Caches, hq: &HapQuery) -> Children<Observed> {
    let (namespace, name) = (hq.namespace().unwrap_or_default(), hq.name_any());
    let ns = namespace.as_str();
    let uid = hq.uid();
    let uid = uid.as_deref();
    let cm = |n: String| cached(&caches.config_maps, ns, &n).and_then(|o| current(o, uid));
    let svc = |n: String| cached(&caches.services, ns, &n).and_then(|o| current(o, uid));
    let deployment = |n: String| cached(&caches.deployments, ns, &n).and_then(|o| current(o, uid));
    let job = |n: String| cached(&caches.jobs, ns, &n).and_then(|o| current(o, uid));
    let secret = |n: String| cached(&caches.secrets, ns, &n);
    let (mariadb, metastore, superset_or_redash) = (
        names::mariadb(&name),
        names::metastore(&name),
        match hq.spec.dashboard.kind {
            DashboardKind::Redash => names::redash(&name),
            _ => names::superset(&name),
        },
    );
    let init = match hq.spec.dashboard.kind {
        DashboardKind::Redash => names::redash_init(&name),
        _ => names::superset_init(&name),
    };
    Children {
        database_secret: secret(mariadb.clone()),
        database_config: cm(mariadb.clone()),
        database_service: svc(mariadb.clone()),
        database: cached(&caches.stateful_sets, ns, &mariadb).and_then(|o| current(o, uid)),
        metastore_config: cm(metastore.clone()),
        metastore_schema: job(names::metastore_schema(&name)),
        metastore_service: svc(metastore.clone()),
        metastore: deployment(metastore),
        trino_catalog: cm(names::trino_catalog(&name)),
        trino_coordinator_config: cm(names::trino_coordinator(&name)),
        trino_worker_config: cm(names::trino_worker(&name)),
        trino_coordinator_service: svc(names::trino_coordinator(&name)),
        trino_worker_service: svc(names::trino_worker(&name)),
        trino_coordinator: deployment(names::trino_coordinator(&name)),
        trino_worker: deployment(names::trino_worker(&name)),
        dashboard_secret: secret(superset_or_redash.clone()),
        dashboard_config: cm(superset_or_redash.clone()),
        dashboard_init: job(init),
        dashboard_service: svc(superset_or_redash.clone()),
        dashboard: deployment(superset_or_redash),
        dashboard_worker: deployment(names::redash_worker(&name)),
    }
}

/// The HapQuery's pods of one component (`database`, `trino-worker`, ...), as cached, except those
/// going away.
pub fn pods_of(caches: &Caches, hq: &HapQuery, component: &str) -> Vec<Arc<Pod>> {
    let name = hq.name_any();
    caches
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == hq.namespace() && p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let labels = p.labels();
            labels.get("app.kubernetes.io/instance") == Some(&name)
                && labels
                    .get("app.kubernetes.io/component")
                    .map(String::as_str)
                    == Some(component)
        })
        .collect()
}

/// Whether a Job ran to completion, in the version the spec wants now (same hash).
pub fn succeeded(live: Option<&Job>, desired: Option<&Job>) -> bool {
    let (Some(live), Some(desired)) = (live, desired) else {
        return false;
    };
    crate::hash::hash_on(live) == crate::hash::hash_on(desired)
        && live.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0
}

/// Whether the database takes connections: the operator's MariaDB has a ready pod, or the database
/// is someone else's (it is checked by connecting, elsewhere).
pub fn database_ready(observed: &Children<Observed>, managed: bool) -> bool {
    if !managed {
        return true;
    }
    observed
        .database
        .as_ref()
        .and_then(|s| s.status.as_ref()?.ready_replicas)
        .unwrap_or(0)
        > 0
}

/// A server that waits for its Job while the spec wants it, and goes when it does not.
fn held_until<K: crate::kinds::Child>(
    live: Option<&K::Live>,
    desired: Option<K>,
    ready: bool,
    owner_uid: Option<&str>,
) -> Step {
    match desired {
        Some(d) => plan::ensure_when(live, Some(d), ready),
        None => plan::ensure_or_remove::<K>(live, None, owner_uid),
    }
}

/// Plans every child (pure). `owner_uid` is the HapQuery's. Jobs wait for the database; the
/// metastore and the dashboard wait for their Jobs, so that no server starts on an empty schema and
/// crash-loops until it is filled.
pub fn plan(
    observed: &Children<Observed>,
    desired: Children<Desired>,
    owner_uid: Option<&str>,
    dashboard: DashboardKind,
) -> Vec<Step> {
    let db_ready = database_ready(observed, desired.database.is_some());
    let schema_done = succeeded(
        observed.metastore_schema.as_deref(),
        desired.metastore_schema.as_ref(),
    );
    let init_done = succeeded(
        observed.dashboard_init.as_deref(),
        desired.dashboard_init.as_ref(),
    );
    let Children {
        database_secret,
        database_config,
        database_service,
        database,
        metastore_config,
        metastore_schema,
        metastore_service,
        metastore,
        trino_catalog,
        trino_coordinator_config,
        trino_worker_config,
        trino_coordinator_service,
        trino_worker_service,
        trino_coordinator,
        trino_worker,
        dashboard_secret,
        dashboard_config,
        dashboard_init,
        dashboard_service,
        dashboard: dashboard_server,
        dashboard_worker,
    } = desired;
    let o = observed;
    let generated_keys: &[&str] = match dashboard {
        DashboardKind::Redash => &REDASH_GENERATED_KEYS,
        _ => &SUPERSET_GENERATED_KEYS,
    };
    let in_apply_order = vec![
        plan::create_once(
            o.database_secret.as_deref(),
            database_secret,
            &MARIADB_GENERATED_KEYS,
            "generated database passwords",
        ),
        plan::ensure_or_remove(o.database_config.as_deref(), database_config, owner_uid),
        plan::ensure_or_remove(o.database_service.as_deref(), database_service, owner_uid),
        plan::ensure_or_remove(o.database.as_deref(), database, owner_uid),
        plan::ensure_if_desired(o.metastore_config.as_deref(), metastore_config),
        if db_ready {
            plan::job(o.metastore_schema.as_deref(), metastore_schema, owner_uid)
        } else {
            Step::keep()
        },
        plan::ensure_if_desired(o.metastore_service.as_deref(), metastore_service),
        held_until(o.metastore.as_deref(), metastore, schema_done, owner_uid),
        plan::ensure_if_desired(o.trino_catalog.as_deref(), trino_catalog),
        plan::ensure_if_desired(
            o.trino_coordinator_config.as_deref(),
            trino_coordinator_config,
        ),
        plan::ensure_if_desired(o.trino_worker_config.as_deref(), trino_worker_config),
        plan::ensure_if_desired(
            o.trino_coordinator_service.as_deref(),
            trino_coordinator_service,
        ),
        plan::ensure_if_desired(o.trino_worker_service.as_deref(), trino_worker_service),
        plan::ensure_if_desired(o.trino_coordinator.as_deref(), trino_coordinator),
        plan::ensure_if_desired(o.trino_worker.as_deref(), trino_worker),
        plan::create_once(
            o.dashboard_secret.as_deref(),
            dashboard_secret,
            generated_keys,
            "a generated admin password and secret key",
        ),
        plan::ensure_or_remove(o.dashboard_config.as_deref(), dashboard_config, owner_uid),
        if db_ready || dashboard_init.is_none() {
            plan::job(o.dashboard_init.as_deref(), dashboard_init, owner_uid)
        } else {
            Step::keep()
        },
        plan::ensure_or_remove(o.dashboard_service.as_deref(), dashboard_service, owner_uid),
        held_until(
            o.dashboard.as_deref(),
            dashboard_server,
            init_done,
            owner_uid,
        ),
        held_until(
            o.dashboard_worker.as_deref(),
            dashboard_worker,
            init_done,
            owner_uid,
        ),
    ];
    // Deletions go last, in reverse apply order: a server goes before the files it reads.
    let (mut deletes, mut steps): (Vec<_>, Vec<_>) = in_apply_order
        .into_iter()
        .partition(|s| matches!(s.action, plan::Action::Delete(_)));
    deletes.reverse();
    steps.extend(deletes);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::query::build;
    use crate::plan::Action;
    use crate::query::resolve::resolve;
    use crate::testing::hapquery;
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
                    Action::Apply(o) => ("apply", serde_json::to_value(o).unwrap()),
                    Action::CreateOnce(o, _) => ("create", serde_json::to_value(o).unwrap()),
                    Action::Delete(o) => ("delete", serde_json::to_value(o).unwrap()),
                    Action::Replace(o) => ("replace", serde_json::to_value(o).unwrap()),
                    Action::Keep | Action::Wait(_) => return None,
                };
                Some(format!(
                    "{verb} {} {}",
                    obj["kind"].as_str().unwrap_or("?"),
                    obj["metadata"]["name"].as_str().unwrap()
                ))
            })
            .collect()
    }

    fn with_status<T: serde::de::DeserializeOwned + serde::Serialize>(
        obj: &T,
        status: serde_json::Value,
    ) -> Arc<T> {
        let mut v = serde_json::to_value(obj).unwrap();
        v["status"] = status;
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn jobs_wait_for_the_database_and_servers_for_their_jobs() {
        let hq = hapquery(SPEC);
        let steps = plan(
            &Children::default(),
            desired(&hq),
            Some("u-2"),
            DashboardKind::Superset,
        );
        let done = actions(&steps);
        assert!(
            done.contains(&"apply StatefulSet q-mariadb".to_string()),
            "{done:?}"
        );
        assert!(done.contains(&"apply Deployment q-trino-coordinator".to_string()));
        for held in [
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

        // MariaDB ready: both Jobs start; their servers still wait for them.
        let d = desired(&hq);
        let observed = Children::<Observed> {
            database: Some(with_status(
                d.database.as_ref().unwrap(),
                json!({"replicas": 1, "readyReplicas": 1}),
            )),
            ..Default::default()
        };
        let done = actions(&plan(
            &observed,
            desired(&hq),
            Some("u-2"),
            DashboardKind::Superset,
        ));
        assert!(
            done.contains(&"apply Job q-metastore-schema".to_string()),
            "{done:?}"
        );
        assert!(done.contains(&"apply Job q-superset-init".to_string()));
        assert!(
            !done
                .iter()
                .any(|d| d.ends_with("Deployment q-metastore")
                    || d.ends_with("Deployment q-superset"))
        );

        // The schema Job done, in the version wanted: the metastore starts.
        let observed = Children::<Observed> {
            database: observed.database.clone(),
            metastore_schema: Some(with_status(
                d.metastore_schema.as_ref().unwrap(),
                json!({"succeeded": 1}),
            )),
            ..Default::default()
        };
        let done = actions(&plan(
            &observed,
            desired(&hq),
            Some("u-2"),
            DashboardKind::Superset,
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
            database: Some(with_status(
                old.database.as_ref().unwrap(),
                json!({"readyReplicas": 1}),
            )),
            metastore_schema: Some(with_status(
                old.metastore_schema.as_ref().unwrap(),
                json!({"succeeded": 1}),
            )),
            metastore: old.metastore.clone().map(Arc::new),
            ..Default::default()
        };
        let steps = plan(
            &observed,
            desired(&after),
            Some("u-2"),
            DashboardKind::Superset,
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
        let mut server = d.dashboard.take().unwrap();
        server.metadata = owned(server.metadata);
        let mut job = d.dashboard_init.take().unwrap();
        job.metadata = owned(job.metadata);
        let observed = Children::<Observed> {
            dashboard: Some(Arc::new(server)),
            dashboard_init: Some(Arc::new(job)),
            ..Default::default()
        };
        let none = hapquery(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, schema: air, dashboard: {kind: none}}",
        );
        let done = actions(&plan(
            &observed,
            desired(&none),
            Some("u-2"),
            DashboardKind::None,
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
}

#[cfg(test)]
mod observe_tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    fn store_of<K>(objects: Vec<K>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone,
    {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for o in objects {
            writer.apply_watcher_event(&watcher::Event::InitApply(o));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        store
    }

    fn caches(stateful_sets: Vec<StatefulSet>) -> Caches {
        Caches {
            pods: store_of(vec![]),
            services: store_of(vec![]),
            config_maps: store_of(vec![]),
            secrets: store_of(vec![]),
            stateful_sets: store_of(stateful_sets),
            deployments: store_of(vec![]),
            jobs: store_of(vec![]),
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
        let old = observe(&caches(vec![mariadb("u-1", true)]), &hq);
        assert!(old.database.is_none());
        assert!(
            !database_ready(&old, true),
            "its ready pod is not this database's"
        );
        let deleting = observe(&caches(vec![mariadb("u-2", true)]), &hq);
        assert!(deleting.database.is_none());
        let own = observe(&caches(vec![mariadb("u-2", false)]), &hq);
        assert!(database_ready(&own, true));
    }
}
