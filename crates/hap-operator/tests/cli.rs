//! The binary's offline subcommands: `render` prints the workspace's children (snapshot-tested, and never
//! with a secret value), `crd` prints the CRD (see crd.rs).

mod common;

use common::render::{docs, find, render};
use common::repo_root;

#[test]
fn render_prints_the_original_pod_and_service_and_no_secret_values() {
    let cr = repo_root().join("deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml");
    let (ok, out, err) = render(&["-f", cr.to_str().unwrap()], None);
    assert!(ok, "{err}");
    let docs = docs(&out);
    let pod = find(&docs, "Pod", "example-hapcontainer-happod");
    assert_eq!(pod["spec"]["containers"][0]["image"], "hap-workspace:0.1.0");
    let svc = find(&docs, "Service", "example-hapcontainer-hapservice");
    assert_eq!(svc["spec"]["type"], "NodePort");
    let ports: Vec<(&str, i64)> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["port"].as_i64().unwrap()))
        .collect();
    assert_eq!(ports, vec![("jupyter", 8888), ("spark-ui", 4040)]);
    let secret = find(&docs, "Secret", "example-hapcontainer-jupyter");
    assert!(
        secret.get("data").is_none() && secret.get("stringData").is_none(),
        "{secret}"
    );
    for d in &docs {
        if d["kind"] == "Secret" {
            assert!(d.get("data").is_none() && d.get("stringData").is_none());
        }
    }
}

#[test]
fn render_reads_standard_input_and_rejects_files_without_hapcontainers() {
    let input =
        std::fs::read_to_string(repo_root().join("crates/hap-operator/tests/fixtures/full.yaml"))
            .unwrap();
    let (ok, out, _) = render(&["-f", "-"], Some(&input));
    assert!(ok);
    assert!(
        docs(&out)
            .iter()
            .any(|d| d["kind"] == "Role" && d["metadata"]["name"] == "analytics-spark")
    );
    let (ok, _, err) = render(
        &["-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
    );
    assert!(!ok);
    assert!(
        err.contains("no HapContainer (hap.cloudian.com/v1alpha1) in the input"),
        "{err}"
    );
    let (ok, _, err) = render(&["-f", "/nonexistent.yaml"], None);
    assert!(!ok && err.contains("reading /nonexistent.yaml"), "{err}");
}

#[test]
fn rendered_sample_matches_its_snapshot() {
    let cr = repo_root().join("deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml");
    let (ok, out, _) = render(&["-f", cr.to_str().unwrap()], None);
    assert!(ok);
    insta::assert_snapshot!("sample", out);
}

#[test]
fn rendered_full_spec_matches_its_snapshot() {
    let cr = repo_root().join("crates/hap-operator/tests/fixtures/full.yaml");
    let (ok, out, _) = render(&["-f", cr.to_str().unwrap()], None);
    assert!(ok);
    insta::assert_snapshot!("full", out);
}

/// The shipped profiles (deploy/multi-tenant/profiles.yaml) are a valid catalog, and `render` takes
/// the profiles from a ConfigMap `hap-profiles` in its input, as the operator does from its namespace:
/// a workspace naming one gets its resources and home size; one that asks for more is reported.
#[test]
fn render_applies_the_shipped_profiles() {
    let shipped =
        std::fs::read_to_string(repo_root().join("deploy/multi-tenant/profiles.yaml")).unwrap();
    let workspaces = "
---
apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata: {name: fits}
spec: {profile: small}
---
apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata: {name: greedy}
spec: {profile: small, gpus: 1}
";
    let (ok, out, err) = render(&["-f", "-"], Some(&(shipped + workspaces)));
    assert!(ok, "{err}");
    let docs = docs(&out);
    let pod = find(&docs, "Pod", "fits-happod");
    let resources = &pod["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["memory"], "4Gi");
    assert_eq!(resources["requests"]["cpu"], "500m");
    let claim = find(&docs, "PersistentVolumeClaim", "fits-workspace");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
    assert!(
        err.contains(
            "HapContainer greedy: spec.gpus is 1, more than the profile \"small\" allows (0)"
        ),
        "{err}"
    );
    assert!(!err.contains("HapContainer fits"), "{err}");
}
