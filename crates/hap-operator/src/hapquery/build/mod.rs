//! The build step (pure) for a HapQuery: its children, one builder per component (`database`,
//! `metastore`, `trino`, `dashboard`) and one function per configuration file. Credentials never
//! enter a built object: containers read them from Secrets as environment variables at start, and
//! the generated Secrets are built as shapes whose values are drawn when they are first created.

pub mod dashboard;
pub mod database;
pub mod metastore;
pub mod network;
pub mod parts;
pub mod trino;

use hap_api::HapQuery;

use super::children::Children;
use super::resolve::Resolved;
use crate::pipeline::kinds::Desired;

/// Every child the spec calls for, by component.
pub fn build(hq: &HapQuery, r: &Resolved) -> Children<Desired> {
    Children {
        database: database::build(hq, r),
        metastore: metastore::build(hq, r),
        trino: trino::build(hq, r),
        dashboard: dashboard::build(hq, r),
        other_dashboard: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::build;
    use crate::pipeline::plan::Action;
    use crate::testing::hapquery as hq;
    use serde_json::Value;

    const SPEC: &str =
        "{s3: {endpoint: 'http://s3:80', bucket: b, credentialsSecret: {name: keys}}}";

    /// The children in the order they are applied: the plan made against nothing observed.
    fn objects(spec: &str) -> Vec<Value> {
        let q = hq(spec);
        let r = crate::testing::resolve_hapquery(&q);
        let steps = crate::hapquery::children::plan(
            &Default::default(),
            &build(&q, &r),
            &r,
            None,
            jiff::Timestamp::UNIX_EPOCH,
        );
        steps
            .into_iter()
            .filter_map(|s| match s.action {
                Action::Apply(o) | Action::Create(o) | Action::Later(o) => {
                    Some(serde_json::to_value(o).unwrap())
                }
                Action::CreateOnce(o, _) | Action::Issue(o, _) => {
                    Some(serde_json::to_value(o).unwrap())
                }
                _ => None,
            })
            .collect()
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
                "NetworkPolicy q-mariadb-ingress",
                "Secret q-mariadb",
                "Secret q-mariadb-superset",
                "ConfigMap q-mariadb",
                "Service q-mariadb",
                "StatefulSet q-mariadb",
                "NetworkPolicy q-metastore-ingress",
                "ConfigMap q-metastore",
                "Job q-metastore-schema",
                "Service q-metastore",
                "Deployment q-metastore",
                "Secret q-trino-users",
                "Secret q-trino-internal",
                "Secret q-trino-tls",
                "ConfigMap q-ca",
                "NetworkPolicy q-trino-coordinator-ingress",
                "NetworkPolicy q-trino-worker-ingress",
                "ConfigMap q-trino-catalog",
                "ConfigMap q-trino-coordinator",
                "ConfigMap q-trino-worker",
                "Service q-trino-coordinator",
                "Service q-trino-worker",
                "Deployment q-trino-coordinator",
                "Deployment q-trino-worker",
                "NetworkPolicy q-superset-ingress",
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
            assert!(m["annotations"][crate::pipeline::SPEC_HASH].is_string());
        }
    }

    #[test]
    fn no_secret_has_data_and_no_pod_runs_as_root_or_writes_its_image() {
        let redash = "{s3: {endpoint: 'http://s3:80', bucket: b, credentialsSecret: {name: keys}}, dashboard: {kind: redash, redash: {connectionSecret: {name: r}}}}";
        let superset =
            "{s3: {endpoint: 'http://s3:80', bucket: b, credentialsSecret: {name: keys}}}";
        for o in objects(redash).into_iter().chain(objects(superset)) {
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
                // Redash alone keeps a writable root (see dashboard.rs); the rest write to
                // emptyDirs, /tmp first.
                let redash = name.as_str().unwrap().contains("redash");
                assert_eq!(sc["readOnlyRootFilesystem"] == true, !redash, "{name}");
                if !redash {
                    assert!(
                        c["volumeMounts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|m| m["mountPath"] == "/tmp"),
                        "{name}"
                    );
                }
                assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
                // Credentials come from Secrets; the only literal values are settings (and paths
                // of files mounted from Secrets, `..._FILE`).
                for e in c["env"].as_array().into_iter().flatten() {
                    let n = e["name"].as_str().unwrap();
                    if n.ends_with("_FILE") {
                        continue;
                    }
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
