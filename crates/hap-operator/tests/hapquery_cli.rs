//! `hap-operator render` of HapQueries: the sample prints the MariaDB, metastore, Trino and Superset
//! objects and no secret values (snapshot-tested), a file may mix HapContainers and HapQueries, and
//! every rendered object validates against the upstream Kubernetes schemas.

mod common;

use common::render::{docs, find, render};
use common::{repo_root, tool};
use serde_json::Value;
use std::process::Command;

const SAMPLE: &str = "deploy/crds/hap.cloudian.com_v1alpha1_hapquery_cr.yaml";
const FULL: &str = "crates/hap-operator/tests/fixtures/hapquery-full.yaml";

fn render_file(rel: &str) -> String {
    let path = repo_root().join(rel);
    let (ok, out, err) = render(&["-f", path.to_str().unwrap()], None);
    assert!(ok, "{err}");
    assert!(err.is_empty(), "no warnings for {rel}: {err}");
    out
}

fn containers(d: &Value) -> Vec<&Value> {
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

/// `path` is in a volume of `container` whose source is a Secret.
fn assert_in_a_secret_volume(d: &Value, container: &Value, path: &str) {
    let volumes = d["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let in_secret = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .any(|m| {
            volumes
                .iter()
                .any(|v| v["name"] == m["name"] && v["secret"].is_object())
        });
    assert!(
        in_secret,
        "{} names {path}, which is not in a Secret's volume",
        d["metadata"]["name"]
    );
}

/// No Secret carries data, and no container gets a credential as a literal value (a `*_FILE`
/// variable names a file in a Secret's volume).
fn assert_no_secret_values(docs: &[Value]) {
    for d in docs {
        if d["kind"] == "Secret" {
            assert!(
                d.get("data").is_none() && d.get("stringData").is_none(),
                "{d}"
            );
        }
        for c in containers(d) {
            for e in c["env"].as_array().into_iter().flatten() {
                let name = e["name"].as_str().unwrap();
                if [
                    "PASSWORD",
                    "SECRET",
                    "ACCESS_KEY",
                    "DATABASE_URL",
                    "REDIS_URL",
                ]
                .iter()
                .any(|w| name.contains(w))
                {
                    if name.ends_with("_FILE") {
                        assert_in_a_secret_volume(d, c, e["value"].as_str().unwrap());
                        continue;
                    }
                    assert!(
                        e.get("value").is_none() && e["valueFrom"]["secretKeyRef"].is_object(),
                        "{} sets {name} other than from a Secret",
                        d["metadata"]["name"]
                    );
                }
            }
        }
    }
}

#[test]
fn render_prints_the_mariadb_metastore_trino_and_superset_objects_and_no_secret_values() {
    let docs = docs(&render_file(SAMPLE));
    let n = "example-hapquery";
    find(&docs, "StatefulSet", &format!("{n}-mariadb"));
    find(&docs, "Service", &format!("{n}-mariadb"));
    find(&docs, "Secret", &format!("{n}-mariadb"));
    find(&docs, "Job", &format!("{n}-metastore-schema"));
    find(&docs, "Deployment", &format!("{n}-metastore"));
    let metastore = find(&docs, "Service", &format!("{n}-metastore"));
    assert_eq!(metastore["spec"]["ports"][0]["port"], 9083);
    find(&docs, "Deployment", &format!("{n}-trino-coordinator"));
    let workers = find(&docs, "Deployment", &format!("{n}-trino-worker"));
    assert_eq!(workers["spec"]["replicas"], 0, "the sample asks for none");
    let catalog = find(&docs, "ConfigMap", &format!("{n}-trino-catalog"));
    let hive = catalog["data"]["hive.properties"].as_str().unwrap();
    assert!(
        hive.contains("s3.path-style-access=true") && hive.contains("fs.native-s3.enabled=true")
    );
    for file in [
        "node.properties",
        "jvm.config",
        "config.properties",
        "log.properties",
    ] {
        assert!(
            find(&docs, "ConfigMap", &format!("{n}-trino-coordinator"))["data"][file].is_string(),
            "{file}"
        );
    }
    find(&docs, "Job", &format!("{n}-superset-init"));
    find(&docs, "Deployment", &format!("{n}-superset"));
    let superset = find(&docs, "Service", &format!("{n}-superset"));
    assert_eq!(superset["spec"]["type"], "NodePort");
    assert_no_secret_values(&docs);
}

#[test]
fn the_full_spec_renders_redash_workers_and_an_external_database_with_no_secret_values() {
    let docs = docs(&render_file(FULL));
    assert!(
        !docs.iter().any(|d| d["kind"] == "StatefulSet"),
        "the database is external"
    );
    find(&docs, "Deployment", "analytics-sql-redash");
    find(&docs, "Deployment", "analytics-sql-redash-worker");
    find(&docs, "Job", "analytics-sql-redash-init");
    let workers = find(&docs, "Deployment", "analytics-sql-trino-worker");
    assert_eq!(workers["spec"]["replicas"], 3);
    assert_eq!(
        workers["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        270
    );
    assert_no_secret_values(&docs);
}

#[test]
fn a_file_may_hold_hapcontainers_and_hapqueries() {
    let input = std::fs::read_to_string(repo_root().join(SAMPLE)).unwrap()
        + "---\n"
        + &std::fs::read_to_string(
            repo_root().join("deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml"),
        )
        .unwrap();
    let (ok, out, err) = render(&["-f", "-"], Some(&input));
    assert!(ok, "{err}");
    let docs = docs(&out);
    find(&docs, "Pod", "example-hapcontainer-happod");
    find(&docs, "Deployment", "example-hapquery-trino-coordinator");
}

#[test]
fn an_invalid_hapquery_renders_with_warnings_that_say_what_to_fix() {
    let (ok, _, err) = render(
        &["-f", "-"],
        Some(
            "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapQuery\nmetadata: {name: q}\nspec: {s3: {endpoint: 'http://s3:80'}, trino: {workers: -2}}\n",
        ),
    );
    assert!(ok);
    assert!(
        err.contains("warning: HapQuery q: s3.bucket is required"),
        "{err}"
    );
    assert!(err.contains("trino.workers is -2"), "{err}");
}

#[test]
fn rendered_sample_matches_its_snapshot() {
    insta::assert_snapshot!("sample", render_file(SAMPLE));
}

#[test]
fn rendered_full_spec_matches_its_snapshot() {
    insta::assert_snapshot!("full", render_file(FULL));
}

/// kubernetes-validate (installed by scripts/setup.sh), strict: unknown fields are errors.
#[test]
#[ignore = "needs kubernetes-validate (scripts/setup.sh): scripts/test.sh runs it"]
fn rendered_objects_validate_against_upstream_schemas() {
    let tool = tool("kubernetes-validate");
    let dir = tempfile::tempdir().unwrap();
    for (name, rel) in [("sample", SAMPLE), ("full", FULL)] {
        let out = render_file(rel);
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &out).unwrap();
        for version in ["1.33.0", "1.35.0"] {
            let v = Command::new(&tool)
                .args(["--strict", "-k", version])
                .arg(&path)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&v.stdout).to_string()
                + &String::from_utf8_lossy(&v.stderr);
            assert!(v.status.success(), "{name} against {version}:\n{text}");
            assert_eq!(
                text.matches(" passed ").count(),
                docs(&out).len(),
                "every object of {name} passes against {version}:\n{text}"
            );
        }
    }
}
