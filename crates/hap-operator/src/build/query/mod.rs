//! The build step (pure) for a HapQuery: its children, one builder per component (`database`,
//! `metastore`, `trino`, `dashboard`) and one function per configuration file. Credentials never
//! enter a built object: containers read them from Secrets as environment variables at start, and
//! the generated Secrets are built as shapes whose values are drawn when they are first created.

pub mod dashboard;
pub mod database;
pub mod metastore;
pub mod trino;

use std::collections::BTreeMap;

use hap_api::HapQuery;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, HTTPGetAction, KeyToPath, PodSpec,
    PodTemplateSpec, Probe, Secret, Service, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde_json::Value;

use super::pod::security_as;
use crate::hash::{hash_of, hashed};
use crate::kinds::{Desired, Observed, Stage};
use crate::names::MANAGER;
use crate::query::resolve::Resolved;

/// The annotation on a pod template holding the hash of the configuration files its pods mount: a
/// changed file changes the template, so the Deployment rolls its pods.
pub const CONFIG_HASH: &str = "hap.cloudian.com/config-hash";

/// Children are `<name>-<component>[-<role>]`.
pub mod names {
    pub fn mariadb(name: &str) -> String {
        format!("{name}-mariadb")
    }
    /// The claim a StatefulSet creates from its `data` template for its only pod.
    pub fn mariadb_volume(name: &str) -> String {
        format!("data-{name}-mariadb-0")
    }
    pub fn metastore(name: &str) -> String {
        format!("{name}-metastore")
    }
    pub fn metastore_schema(name: &str) -> String {
        format!("{name}-metastore-schema")
    }
    pub fn trino_coordinator(name: &str) -> String {
        format!("{name}-trino-coordinator")
    }
    pub fn trino_worker(name: &str) -> String {
        format!("{name}-trino-worker")
    }
    pub fn trino_catalog(name: &str) -> String {
        format!("{name}-trino-catalog")
    }
    pub fn superset(name: &str) -> String {
        format!("{name}-superset")
    }
    pub fn superset_init(name: &str) -> String {
        format!("{name}-superset-init")
    }
    pub fn redash(name: &str) -> String {
        format!("{name}-redash")
    }
    pub fn redash_worker(name: &str) -> String {
        format!("{name}-redash-worker")
    }
    pub fn redash_init(name: &str) -> String {
        format!("{name}-redash-init")
    }
}

/// What a component's pods are selected by.
pub fn selector(hq: &HapQuery, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "hap-query".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), hq.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
    ])
}

fn labels(hq: &HapQuery, component: &str) -> BTreeMap<String, String> {
    let mut l = selector(hq, component);
    l.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    l
}

/// Metadata of a child: its name, the HapQuery's namespace, the common labels, and a controller owner
/// reference when the HapQuery has a uid (it has none when rendered from a file).
pub fn meta(hq: &HapQuery, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: hq.namespace(),
        labels: Some(labels(hq, component)),
        owner_references: hq.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

/// A pod template's metadata: the component's labels, and the hash of the files it mounts.
pub fn template_meta(hq: &HapQuery, component: &str, config: &[&ConfigMap]) -> ObjectMeta {
    let data: Vec<_> = config.iter().map(|c| &c.data).collect();
    ObjectMeta {
        labels: Some(labels(hq, component)),
        annotations: (!config.is_empty())
            .then(|| BTreeMap::from([(CONFIG_HASH.to_string(), hash_of(&data))])),
        ..Default::default()
    }
}

pub fn label_selector(hq: &HapQuery, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector(hq, component)),
        ..Default::default()
    }
}

/// The header every generated file starts with, in the file's comment syntax.
pub fn header(hq: &HapQuery, comment: &str) -> String {
    format!(
        "{comment} Written by hap-operator for HapQuery {}/{}; edits are overwritten.\n",
        hq.namespace().unwrap_or_default(),
        hq.name_any()
    )
}

pub fn config_map(
    hq: &HapQuery,
    name: &str,
    component: &str,
    files: &[(&str, String)],
) -> ConfigMap {
    ConfigMap {
        metadata: meta(hq, name, component),
        data: Some(
            files
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The shape of a Secret the operator generates: no data. Its keys get random values when it is
/// first created (at apply time, never here), and it is never rewritten.
pub fn generated_secret(hq: &HapQuery, name: &str, component: &str) -> Secret {
    Secret {
        metadata: meta(hq, name, component),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Every child a HapQuery can have, at one stage: as the spec wants it (`Desired`, None where it does
/// not call for it) or as the caches hold it (`Observed`). Taken apart without `..` wherever it is
/// used, so a new child does not compile until it is planned, applied and rendered.
pub struct Children<S: Stage> {
    pub database_secret: S::Of<Secret>,
    pub database_config: S::Of<ConfigMap>,
    pub database_service: S::Of<Service>,
    pub database: S::Of<StatefulSet>,
    pub metastore_config: S::Of<ConfigMap>,
    pub metastore_schema: S::Of<Job>,
    pub metastore_service: S::Of<Service>,
    pub metastore: S::Of<Deployment>,
    pub trino_catalog: S::Of<ConfigMap>,
    pub trino_coordinator_config: S::Of<ConfigMap>,
    pub trino_worker_config: S::Of<ConfigMap>,
    pub trino_coordinator_service: S::Of<Service>,
    pub trino_worker_service: S::Of<Service>,
    pub trino_coordinator: S::Of<Deployment>,
    pub trino_worker: S::Of<Deployment>,
    pub dashboard_secret: S::Of<Secret>,
    pub dashboard_config: S::Of<ConfigMap>,
    pub dashboard_init: S::Of<Job>,
    pub dashboard_service: S::Of<Service>,
    pub dashboard: S::Of<Deployment>,
    /// Redash's background worker.
    pub dashboard_worker: S::Of<Deployment>,
}

impl Default for Children<Observed> {
    /// Nothing observed.
    fn default() -> Self {
        Children {
            database_secret: None,
            database_config: None,
            database_service: None,
            database: None,
            metastore_config: None,
            metastore_schema: None,
            metastore_service: None,
            metastore: None,
            trino_catalog: None,
            trino_coordinator_config: None,
            trino_worker_config: None,
            trino_coordinator_service: None,
            trino_worker_service: None,
            trino_coordinator: None,
            trino_worker: None,
            dashboard_secret: None,
            dashboard_config: None,
            dashboard_init: None,
            dashboard_service: None,
            dashboard: None,
            dashboard_worker: None,
        }
    }
}

fn push<T: Serialize + Resource>(out: &mut Vec<Value>, obj: Option<T>) {
    if let Some(o) = obj {
        out.push(serde_json::to_value(o).expect("built objects serialize"));
    }
}

impl Children<Desired> {
    /// The children in the order they are applied: each Secret and ConfigMap before what reads it,
    /// the database before the metastore, the metastore before Trino, Trino before the dashboard.
    /// Taken apart without `..`, so a new child does not compile until it has its place.
    pub fn in_apply_order(self) -> Vec<Value> {
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
            dashboard,
            dashboard_worker,
        } = self;
        let mut out = Vec::new();
        push(&mut out, database_secret);
        push(&mut out, database_config);
        push(&mut out, database_service);
        push(&mut out, database);
        push(&mut out, metastore_config);
        push(&mut out, metastore_schema);
        push(&mut out, metastore_service);
        push(&mut out, metastore);
        push(&mut out, trino_catalog);
        push(&mut out, trino_coordinator_config);
        push(&mut out, trino_worker_config);
        push(&mut out, trino_coordinator_service);
        push(&mut out, trino_worker_service);
        push(&mut out, trino_coordinator);
        push(&mut out, trino_worker);
        push(&mut out, dashboard_secret);
        push(&mut out, dashboard_config);
        push(&mut out, dashboard_init);
        push(&mut out, dashboard_service);
        push(&mut out, dashboard);
        push(&mut out, dashboard_worker);
        out
    }
}

/// Every child, stamped with the hash of its content (see [`hashed`]).
pub fn build(hq: &HapQuery, r: &Resolved) -> Children<Desired> {
    let db = database::build(hq, r);
    let ms = metastore::build(hq, r);
    let t = trino::build(hq, r);
    let d = dashboard::build(hq, r);
    Children {
        database_secret: db.secret.map(hashed),
        database_config: db.config.map(hashed),
        database_service: db.service.map(hashed),
        database: db.stateful_set.map(hashed),
        metastore_config: Some(hashed(ms.config)),
        metastore_schema: Some(hashed(ms.schema_job)),
        metastore_service: Some(hashed(ms.service)),
        metastore: Some(hashed(ms.deployment)),
        trino_catalog: Some(hashed(t.catalog)),
        trino_coordinator_config: Some(hashed(t.coordinator_config)),
        trino_worker_config: Some(hashed(t.worker_config)),
        trino_coordinator_service: Some(hashed(t.coordinator_service)),
        trino_worker_service: Some(hashed(t.worker_service)),
        trino_coordinator: Some(hashed(t.coordinator)),
        trino_worker: Some(hashed(t.worker)),
        dashboard_secret: d.secret.map(hashed),
        dashboard_config: d.config.map(hashed),
        dashboard_init: d.init.map(hashed),
        dashboard_service: d.service.map(hashed),
        dashboard: d.deployment.map(hashed),
        dashboard_worker: d.worker.map(hashed),
    }
}

/// A pod spec with the project's security settings for an image's unprivileged user (non-root, no
/// privilege escalation, every capability dropped, RuntimeDefault seccomp) and no API token, which
/// none of these programs needs.
pub fn pod_spec(
    user: i64,
    group: i64,
    mut containers: Vec<Container>,
    volumes: Vec<Volume>,
) -> PodSpec {
    let (pod_security, container_security) = security_as(user, group);
    for c in &mut containers {
        c.security_context = Some(container_security.clone());
    }
    PodSpec {
        containers,
        volumes: (!volumes.is_empty()).then_some(volumes),
        security_context: Some(pod_security),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        ..Default::default()
    }
}

/// A volume of a ConfigMap's files (all of them, or `keys` only).
pub fn config_volume(volume: &str, config_map: &str, keys: &[&str]) -> Volume {
    Volume {
        name: volume.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.into(),
            items: (!keys.is_empty()).then(|| {
                keys.iter()
                    .map(|k| KeyToPath {
                        key: k.to_string(),
                        path: k.to_string(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

pub fn tcp_probe(port: &str, initial_delay: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        failure_threshold: Some(6),
        ..Default::default()
    }
}

pub fn http_probe(path: &str, port: &str, initial_delay: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        failure_threshold: Some(6),
        ..Default::default()
    }
}

/// A pod template from its metadata and spec.
pub fn template(metadata: ObjectMeta, spec: PodSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(metadata),
        spec: Some(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::resolve::resolve;
    use crate::testing::hapquery as hq;

    const SPEC: &str =
        "{s3: {endpoint: 'http://s3:80', bucket: b, credentialsSecret: {name: keys}}}";

    fn objects(spec: &str) -> Vec<Value> {
        let q = hq(spec);
        build(&q, &resolve(&q)).in_apply_order()
    }

    fn kinds_and_names(objs: &[Value]) -> Vec<String> {
        objs.iter()
            .map(|o| {
                format!(
                    "{} {}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn a_default_hapquery_has_every_component_named_after_it() {
        assert_eq!(
            kinds_and_names(&objects(SPEC)),
            [
                "Secret q-mariadb",
                "ConfigMap q-mariadb",
                "Service q-mariadb",
                "StatefulSet q-mariadb",
                "ConfigMap q-metastore",
                "Job q-metastore-schema",
                "Service q-metastore",
                "Deployment q-metastore",
                "ConfigMap q-trino-catalog",
                "ConfigMap q-trino-coordinator",
                "ConfigMap q-trino-worker",
                "Service q-trino-coordinator",
                "Service q-trino-worker",
                "Deployment q-trino-coordinator",
                "Deployment q-trino-worker",
                "Secret q-superset",
                "ConfigMap q-superset",
                "Job q-superset-init",
                "Service q-superset",
                "Deployment q-superset",
            ]
        );
    }

    #[test]
    fn a_discarded_database_takes_its_passwords_along() {
        let discarded = objects(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, database: {mariadb: {keepOnDelete: false}}}",
        );
        let secret = discarded
            .iter()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "q-mariadb")
            .unwrap();
        assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "u-2");
    }

    #[test]
    fn an_external_database_and_no_dashboard_leave_those_out() {
        let names = kinds_and_names(&objects(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, database: {external: {kind: mysql, host: db, credentialsSecret: {name: c}}}, dashboard: {kind: none}}",
        ));
        assert!(
            !names
                .iter()
                .any(|n| n.contains("mariadb") || n.contains("superset")),
            "{names:?}"
        );
        assert!(names.contains(&"Deployment q-trino-worker".to_string()));
    }

    #[test]
    fn every_child_is_owned_labelled_and_hashed() {
        for o in objects(SPEC) {
            let m = &o["metadata"];
            assert_eq!(m["namespace"], "ns");
            // The database's passwords stay with its kept volume (keepOnDelete, the default).
            if o["kind"] == "Secret" && m["name"] == "q-mariadb" {
                assert!(m.get("ownerReferences").is_none(), "{m}");
            } else {
                assert_eq!(m["ownerReferences"][0]["uid"], "u-2", "{}", m["name"]);
                assert_eq!(m["ownerReferences"][0]["controller"], true);
            }
            assert_eq!(m["labels"]["app.kubernetes.io/name"], "hap-query");
            assert_eq!(m["labels"]["app.kubernetes.io/instance"], "q");
            assert_eq!(m["labels"]["app.kubernetes.io/managed-by"], "hap-operator");
            assert!(m["annotations"][crate::names::SPEC_HASH].is_string());
        }
    }

    #[test]
    fn no_secret_has_data_and_no_pod_runs_as_root() {
        for o in objects(
            "{s3: {endpoint: 'http://s3:80', bucket: b, credentialsSecret: {name: keys}}, dashboard: {kind: redash, redash: {connectionSecret: {name: r}}}}",
        ) {
            if o["kind"] == "Secret" {
                assert!(
                    o.get("data").is_none() && o.get("stringData").is_none(),
                    "{o}"
                );
            }
            let pod = match o["kind"].as_str().unwrap() {
                "Deployment" | "StatefulSet" | "Job" => &o["spec"]["template"]["spec"],
                _ => continue,
            };
            let name = &o["metadata"]["name"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{name}"
            );
            assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
            for c in pod["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
                // Credentials come from Secrets; the only literal values are settings.
                for e in c["env"].as_array().into_iter().flatten() {
                    let n = e["name"].as_str().unwrap();
                    if n.contains("PASSWORD")
                        || n.contains("SECRET")
                        || n.ends_with("_URL") && n.starts_with("REDASH")
                    {
                        assert!(e.get("value").is_none(), "{name}: {n} is inlined");
                        assert!(e["valueFrom"]["secretKeyRef"].is_object(), "{name}: {n}");
                    }
                }
            }
        }
    }
}
