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

/// Every child a HapQuery can have, as the spec wants it (None where it does not call for it).
pub struct Children {
    pub database_secret: Option<Secret>,
    pub database_config: Option<ConfigMap>,
    pub database_service: Option<Service>,
    pub database: Option<StatefulSet>,
    pub metastore_config: Option<ConfigMap>,
    pub metastore_schema: Option<Job>,
    pub metastore_service: Option<Service>,
    pub metastore: Option<Deployment>,
    pub trino_catalog: Option<ConfigMap>,
    pub trino_coordinator_config: Option<ConfigMap>,
    pub trino_worker_config: Option<ConfigMap>,
    pub trino_coordinator_service: Option<Service>,
    pub trino_worker_service: Option<Service>,
    pub trino_coordinator: Option<Deployment>,
    pub trino_worker: Option<Deployment>,
    pub dashboard_secret: Option<Secret>,
    pub dashboard_config: Option<ConfigMap>,
    pub dashboard_init: Option<Job>,
    pub dashboard_service: Option<Service>,
    pub dashboard: Option<Deployment>,
    /// Redash's background worker.
    pub dashboard_worker: Option<Deployment>,
}

fn push<T: Serialize + Resource>(out: &mut Vec<Value>, obj: Option<T>) {
    if let Some(o) = obj {
        out.push(serde_json::to_value(hashed(o)).expect("built objects serialize"));
    }
}

impl Children {
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

pub fn build(hq: &HapQuery, r: &Resolved) -> Children {
    let db = database::build(hq, r);
    let ms = metastore::build(hq, r);
    let t = trino::build(hq, r);
    let d = dashboard::build(hq, r);
    Children {
        database_secret: db.secret,
        database_config: db.config,
        database_service: db.service,
        database: db.stateful_set,
        metastore_config: Some(ms.config),
        metastore_schema: Some(ms.schema_job),
        metastore_service: Some(ms.service),
        metastore: Some(ms.deployment),
        trino_catalog: Some(t.catalog),
        trino_coordinator_config: Some(t.coordinator_config),
        trino_worker_config: Some(t.worker_config),
        trino_coordinator_service: Some(t.coordinator_service),
        trino_worker_service: Some(t.worker_service),
        trino_coordinator: Some(t.coordinator),
        trino_worker: Some(t.worker),
        dashboard_secret: d.secret,
        dashboard_config: d.config,
        dashboard_init: d.init,
        dashboard_service: d.service,
        dashboard: d.deployment,
        dashboard_worker: d.worker,
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
            assert_eq!(m["ownerReferences"][0]["uid"], "u-2", "{}", m["name"]);
            assert_eq!(m["ownerReferences"][0]["controller"], true);
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
