//! The CRD: generated, not hand-edited (a drift test), and judged by the real API server of the local
//! cluster: it is established, the sample resources are admitted, and invalid ones are rejected with the
//! messages users are meant to see, CEL rules (transition rules included) among them.

mod common;

use std::process::Command;

use common::{Harness, deploy_file, repo_root};
use hap_api::HapContainer;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CRD_FILE: &str = "crds/hap.cloudian.com_hapcontainers_crd.yaml";

#[test]
fn deploy_crd_is_what_the_operator_generates() {
    let generated = hap_operator::hapcontainer_crd_yaml().unwrap();
    assert_eq!(
        deploy_file(CRD_FILE),
        generated,
        "deploy/{CRD_FILE} drifted: regenerate it with `cargo run -p hap-operator -- crd`, whose first seven documents it is (the CRD, the three admission policies and their bindings)"
    );
    // `crd` prints every CRD (HapQuery's is drift-tested in hapquery_crd.rs).
    let out = Command::new(env!("CARGO_BIN_EXE_hap-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        hap_operator::crds_yaml().unwrap()
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn the_crd_and_valid_resources_are_accepted() {
    let h = Harness::start_idle().await;
    let crs = deploy_file("crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml")
        + "---\n"
        + &std::fs::read_to_string(
            repo_root().join("crates/hap-operator/tests/fixtures/full.yaml"),
        )
        .unwrap()
        + "---\napiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: minimal}\nspec: {}\n";
    let ok = |name: &str| (name.to_string(), Ok(()));
    assert_eq!(
        h.admit::<HapContainer>(&crs).await,
        vec![ok("example-hapcontainer"), ok("analytics"), ok("minimal")]
    );
}

/// Each invalid resource, and what its rejection must say.
const INVALID: &[(&str, &str, &[&str])] = &[
    (
        "too-big",
        "size: 2",
        &["spec.size", "To scale out, set spec.spark.executors"],
    ),
    (
        "negative",
        "size: -1",
        &["spec.size", "should be greater than or equal to 0"],
    ),
    (
        "no-scheme",
        "s3: {endpoint: s3.example.com}",
        &["spec.s3.endpoint", "must be an http:// or https:// URL"],
    ),
    (
        "no-endpoint",
        "s3: {bucket: b}",
        &["spec.s3.endpoint", "Required value"],
    ),
    (
        "cluster-ip-ports",
        "service: {type: ClusterIP, jupyterNodePort: 30001}",
        &["spec.service", "need service.type NodePort or LoadBalancer"],
    ),
    (
        "same-ports",
        "service: {jupyterNodePort: 30001, sparkUiNodePort: 30001}",
        &["spec.service", "must differ"],
    ),
    (
        "low-port",
        "service: {jupyterNodePort: 8888}",
        &[
            "spec.service.jupyterNodePort",
            "greater than or equal to 30000",
        ],
    ),
    (
        "bad-type",
        "service: {type: Ingress}",
        &["spec.service.type", "Unsupported value: \"Ingress\""],
    ),
    (
        "too-many-executors",
        "spark: {executors: 1000}",
        &["spec.spark.executors", "less than or equal to 100"],
    ),
    // Values that would reach a configuration file or a child's name.
    (
        "line-in-endpoint",
        "s3: {endpoint: \"http://s3:80\\nfs.s3a.access.key=x\"}",
        &["spec.s3.endpoint", "URL characters only"],
    ),
    (
        "line-in-region",
        "s3: {endpoint: \"http://s3:80\", region: \"us\\neast\"}",
        &["spec.s3.region", "a region name of letters"],
    ),
    (
        "line-in-bucket",
        "s3: {endpoint: \"http://s3:80\", bucket: \"b\\nx=y\"}",
        &["spec.s3.bucket", "a bucket name"],
    ),
    (
        "spaced-image",
        "image: \"hap-workspace:1 --privileged\"",
        &["spec.image", "an image reference"],
    ),
    (
        "a-workspace-name-far-longer-than-fifty-characters-allow",
        "size: 1",
        &["metadata.name", "at most 50"],
    ),
    ("dotted.name", "size: 1", &["metadata.name", "no dots"]),
];

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn invalid_resources_are_rejected_with_messages_that_say_what_to_fix() {
    let h = Harness::start_idle().await;
    for (name, spec, wanted) in INVALID {
        let cr = format!(
            "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"
        );
        let (_, verdict) = h.admit::<HapContainer>(&cr).await.remove(0);
        let message = verdict.expect_err(&format!("{name} is rejected"));
        for w in *wanted {
            assert!(message.contains(w), "{name}: {w:?} not in {message}");
        }
    }
}

/// Transition rules compare with the stored object: a real one, changed by dry-run patches.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_volume_keeps_its_class_and_only_grows() {
    let h = Harness::start_idle().await;
    let api = h.hapcontainers();
    let make = |name: &str, volume: Value| -> HapContainer {
        serde_json::from_value(
            json!({"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer",
            "metadata": {"name": name}, "spec": {"volume": volume}}),
        )
        .unwrap()
    };
    let fast = json!({"size": "1Gi", "storageClassName": "fast"});
    api.create(&PostParams::default(), &make("w", fast.clone()))
        .await
        .expect("created");
    // Volume changes to w, judged and not stored.
    let verdict = |volume: Value| {
        let api = api.clone();
        async move {
            let dry_run = PatchParams {
                dry_run: true,
                ..Default::default()
            };
            let patch = json!({"spec": {"volume": volume}});
            match api.patch("w", &dry_run, &Patch::Merge(&patch)).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) => Err(status.message),
                Err(other) => panic!("the API server did not answer: {other}"),
            }
        }
    };
    assert_eq!(verdict(fast.clone()).await, Ok(()), "unchanged");
    assert_eq!(verdict(json!({"size": "2Gi"})).await, Ok(()), "grown");
    let class_msg = "storageClassName cannot change";
    for (volume, what) in [
        (json!({"storageClassName": "slow"}), "changed"),
        (json!({"storageClassName": null}), "removed"),
    ] {
        let message = verdict(volume).await.expect_err(what);
        assert!(
            message.contains("spec.volume") && message.contains(class_msg),
            "{what}: {message}"
        );
    }
    let message = verdict(json!({"size": "512Mi"})).await.expect_err("shrunk");
    assert!(message.contains("size cannot shrink"), "{message}");
    let message = verdict(json!({"size": null})).await.expect_err("removed");
    assert!(
        message.contains("size cannot shrink or be removed"),
        "{message}"
    );
    // A class added where there was none is a change too.
    api.create(
        &PostParams::default(),
        &make("plain", json!({"size": "1Gi"})),
    )
    .await
    .expect("created");
    let dry_run = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let added = api
        .patch(
            "plain",
            &dry_run,
            &Patch::Merge(&json!({"spec": {"volume": {"storageClassName": "fast"}}})),
        )
        .await;
    assert!(
        matches!(&added, Err(kube::Error::Api(s)) if s.message.contains(class_msg)),
        "added: {added:?}"
    );
}
