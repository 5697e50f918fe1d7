//! The CRD: generated, not hand-edited (a drift test), and judged by the apiserver's own apiextensions
//! code (crdcheck): it is accepted, the sample resources are accepted, and invalid ones are rejected
//! with the messages users are meant to see, CEL rules included.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{deploy_file, repo_root, tool};
use serde_json::{Value, json};

const CRD_FILE: &str = "crds/hap.cloudian.com_hapcontainers_crd.yaml";

#[test]
fn deploy_crd_is_what_the_operator_generates() {
    use kube::CustomResourceExt;
    let generated = hap_operator::crd_yaml(&hap_api::HapContainer::crd()).unwrap();
    assert_eq!(
        deploy_file(CRD_FILE),
        generated,
        "deploy/{CRD_FILE} drifted: regenerate it with `cargo run -p hap-operator -- crd`, whose first document it is"
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

fn crdcheck(crs: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crs.yaml");
    std::fs::write(&path, crs).unwrap();
    let out = Command::new(tool("crdcheck"))
        .arg(repo_root().join("deploy").join(CRD_FILE))
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the CRD is invalid:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().map(str::to_string).collect()
}

#[test]
fn the_crd_and_valid_resources_are_accepted() {
    let crs = deploy_file("crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml")
        + "---\n"
        + &std::fs::read_to_string(
            repo_root().join("crates/hap-operator/tests/fixtures/full.yaml"),
        )
        .unwrap()
        + "---\napiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: minimal}\nspec: {}\n";
    let lines = crdcheck(&crs);
    assert_eq!(
        lines,
        vec![
            "crd ok hapcontainers.hap.cloudian.com",
            "accept HapContainer/example-hapcontainer",
            "accept HapContainer/analytics",
            "accept HapContainer/minimal",
        ]
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
        &["spec.spark.executors", "less than or equal to 200"],
    ),
];

#[test]
fn invalid_resources_are_rejected_with_messages_that_say_what_to_fix() {
    let crs: Vec<String> = INVALID
        .iter()
        .map(|(name, spec, _)| format!("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"))
        .collect();
    let lines = crdcheck(&crs.join("---\n"));
    for (name, _, wanted) in INVALID {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("HapContainer/{name}")))
            .unwrap_or_else(|| panic!("no verdict for {name}: {lines:?}"));
        assert!(line.starts_with("reject"), "{line}");
        for w in *wanted {
            assert!(line.contains(w), "{name}: {w:?} not in {line}");
        }
    }
}

/// Transition rules need the old object, which only the serve mode takes.
#[test]
fn a_volume_keeps_its_class_and_only_grows() {
    let crd: Value =
        serde_saphyr::from_str(deploy_file(CRD_FILE).trim_start_matches("---\n")).unwrap();
    let cr = |volume: Value| {
        json!({"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer",
        "metadata": {"name": "w", "namespace": "default"}, "spec": {"volume": volume}})
    };
    let mut child = Command::new(tool("crdcheck"))
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut verdict = |new: Value, old: Value| -> (bool, String) {
        writeln!(
            stdin,
            "{}",
            json!({"crd": crd, "object": new, "oldObject": old})
        )
        .unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let resp: Value = serde_json::from_str(&line).unwrap();
        let message = resp["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (resp["allowed"] == true, message)
    };
    let fast = json!({"size": "1Gi", "storageClassName": "fast"});
    assert!(verdict(cr(fast.clone()), cr(fast.clone())).0, "unchanged");
    assert!(
        verdict(
            cr(json!({"size": "2Gi", "storageClassName": "fast"})),
            cr(fast.clone())
        )
        .0,
        "grown"
    );
    let class_msg = "storageClassName cannot change";
    for (new, old, what) in [
        (
            json!({"size": "1Gi", "storageClassName": "slow"}),
            fast.clone(),
            "changed",
        ),
        (
            json!({"size": "1Gi", "storageClassName": "fast"}),
            json!({"size": "1Gi"}),
            "added",
        ),
        (json!({"size": "1Gi"}), fast.clone(), "removed"),
    ] {
        let (ok, message) = verdict(cr(new), cr(old));
        assert!(
            !ok && message.contains("spec.volume") && message.contains(class_msg),
            "{what}: {message}"
        );
    }
    let (ok, message) = verdict(
        cr(json!({"size": "512Mi", "storageClassName": "fast"})),
        cr(fast.clone()),
    );
    assert!(!ok && message.contains("size cannot shrink"), "{message}");
    // A volume added to a workspace that had none has nothing to compare with.
    let (ok, message) = verdict(
        cr(fast),
        json!({"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer",
        "metadata": {"name": "w", "namespace": "default"}, "spec": {}}),
    );
    assert!(ok, "{message}");
    drop(stdin);
    let _ = child.wait();
}
