//! The HapQuery CRD: generated, not hand-edited (a drift test), and judged by the real API server of
//! the local cluster: it is established, the sample is admitted, and invalid resources are rejected
//! with messages that say what to fix, CEL rules included.

mod common;

use common::{Harness, repo_root};
use hap_api::HapQuery;
use kube::CustomResourceExt;

const CRD_FILE: &str = "deploy/crds/hap.cloudian.com_hapqueries_crd.yaml";
const SAMPLE: &str = "deploy/crds/hap.cloudian.com_v1alpha1_hapquery_cr.yaml";

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap()
}

#[test]
fn deploy_crd_is_what_the_operator_generates() {
    let generated = hap_operator::crd_yaml(&hap_api::HapQuery::crd()).unwrap();
    assert_eq!(
        read(CRD_FILE),
        generated,
        "{CRD_FILE} drifted: regenerate it from the second document of `cargo run -p hap-operator -- crd`"
    );
    assert!(hap_operator::crds_yaml().unwrap().ends_with(&generated));
}

/// The API server's verdict on each HapQuery in `crs`, in a namespace of their own.
async fn verdicts(crs: &str) -> Vec<(String, Result<(), String>)> {
    Harness::start_idle().await.admit::<HapQuery>(crs).await
}

fn cr(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapQuery\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"
    )
}

const S3: &str = "s3: {endpoint: 'http://s3:80', bucket: b}";

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn the_crd_the_sample_and_other_valid_resources_are_accepted() {
    let crs = [
        read(SAMPLE),
        cr("minimal", S3),
        cr(
            "external",
            &format!(
                "{S3}, database: {{external: {{kind: postgres, host: pg, credentialsSecret: {{name: c}}}}}}, dashboard: {{kind: redash, redash: {{connectionSecret: {{name: r}}}}, nodePort: 30500}}"
            ),
        ),
        cr(
            "bare",
            &format!("{S3}, dashboard: {{kind: none}}, trino: {{workers: 3}}"),
        ),
    ];
    let ok = |name: &str| (name.to_string(), Ok(()));
    assert_eq!(
        verdicts(&crs.join("---\n")).await,
        vec![
            ok("example-hapquery"),
            ok("minimal"),
            ok("external"),
            ok("bare")
        ]
    );
}

/// Each invalid resource, and what its rejection must say.
const INVALID: &[(&str, &str, &[&str])] = &[
    (
        "no-bucket",
        "s3: {endpoint: 'http://s3:80'}",
        &["spec:", "s3.bucket is required"],
    ),
    ("no-s3", "schema: x", &["spec.s3: Required value"]),
    (
        "bad-namespace",
        "s3: {endpoint: 'http://s3:80', bucket: b}, trino: {allowedNamespaces: [team-b, 'Team_B']}",
        &["each of spec.trino.allowedNamespaces must be a namespace's name"],
    ),
    (
        "tls-off",
        "s3: {endpoint: 'https://s3:443', bucket: b, verifyTls: false}",
        &["s3.verifyTls cannot be false", "certificate the pods trust"],
    ),
    (
        "both-dbs",
        "s3: {endpoint: 'http://s3:80', bucket: b}, database: {mariadb: {}, external: {kind: postgres, host: h, credentialsSecret: {name: c}}}",
        &["spec.database", "not both"],
    ),
    (
        "external-no-host",
        "s3: {endpoint: 'http://s3:80', bucket: b}, database: {external: {kind: mysql, credentialsSecret: {name: c}}}",
        &["spec.database.external", "host is required"],
    ),
    (
        "external-no-credentials",
        "s3: {endpoint: 'http://s3:80', bucket: b}, database: {external: {kind: mysql, host: db}}",
        &["spec.database.external", "credentialsSecret is required"],
    ),
    (
        "external-port",
        "s3: {endpoint: 'http://s3:80', bucket: b}, database: {external: {kind: mysql, host: db, port: 70000, credentialsSecret: {name: c}}}",
        &["spec.database.external.port", "less than or equal to 65535"],
    ),
    (
        "external-kind",
        "s3: {endpoint: 'http://s3:80', bucket: b}, database: {external: {kind: oracle, host: db, credentialsSecret: {name: c}}}",
        &[
            "spec.database.external.kind",
            "Unsupported value: \"oracle\"",
        ],
    ),
    (
        "old-trino",
        "s3: {endpoint: 'http://s3:80', bucket: b}, trino: {version: 450}",
        &["spec.trino.version", "476 or later"],
    ),
    (
        "negative-workers",
        "s3: {endpoint: 'http://s3:80', bucket: b}, trino: {workers: -1}",
        &["spec.trino.workers", "greater than or equal to 0"],
    ),
    (
        "no-grace",
        "s3: {endpoint: 'http://s3:80', bucket: b}, trino: {gracefulShutdownSeconds: 0}",
        &[
            "spec.trino.gracefulShutdownSeconds",
            "greater than or equal to 1",
        ],
    ),
    (
        "port-without-dashboard",
        "s3: {endpoint: 'http://s3:80', bucket: b}, dashboard: {kind: none, nodePort: 30088}",
        &["spec.dashboard", "kind is none"],
    ),
    (
        "low-node-port",
        "s3: {endpoint: 'http://s3:80', bucket: b}, dashboard: {nodePort: 8088}",
        &["spec.dashboard.nodePort", "greater than or equal to 30000"],
    ),
    (
        "redash-alone",
        "s3: {endpoint: 'http://s3:80', bucket: b}, dashboard: {kind: redash}",
        &[
            "spec.dashboard",
            "connectionSecret is required with kind redash",
        ],
    ),
    (
        "schema-name",
        "s3: {endpoint: 'http://s3:80', bucket: b}, schema: Air-Quality",
        &["spec.schema", "lower-case SQL name"],
    ),
    (
        "endpoint",
        "s3: {endpoint: 's3:80', bucket: b}",
        &["spec.s3.endpoint", "must be an http:// or https:// URL"],
    ),
];

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn invalid_resources_are_rejected_with_messages_that_say_what_to_fix() {
    let crs: Vec<String> = INVALID
        .iter()
        .map(|(name, spec, _)| cr(name, spec))
        .collect();
    let verdicts = verdicts(&crs.join("---\n")).await;
    for ((name, _, wanted), (judged, verdict)) in INVALID.iter().zip(&verdicts) {
        assert_eq!(name, judged);
        let message = verdict.clone().expect_err(&format!("{name} is rejected"));
        for w in *wanted {
            assert!(message.contains(w), "{name}: {w:?} not in {message}");
        }
    }
    assert_eq!(verdicts.len(), INVALID.len());
}
