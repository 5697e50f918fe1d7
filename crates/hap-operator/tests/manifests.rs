//! Every manifest in deploy/, and everything the operator would create, validates against the upstream
//! Kubernetes schemas (kubernetes-validate, strict: unknown fields are errors). The custom resource has
//! no upstream schema; tests/crd.rs checks it with the apiserver's own CRD code instead.

mod common;

use std::process::Command;

use common::{repo_root, tool};

const VERSIONS: &[&str] = &["1.33.0", "1.35.0"];

fn validate(files: &[std::path::PathBuf], version: &str) -> String {
    let out = Command::new(tool("kubernetes-validate"))
        .args(["--strict", "-k", version])
        .args(files)
        .output()
        .expect("kubernetes-validate runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubernetes-validate {version} failed:\n{text}"
    );
    text
}

#[test]
#[ignore = "needs kubernetes-validate (scripts/setup.sh): scripts/test.sh runs it"]
fn deploy_manifests_validate_against_upstream_schemas() {
    let deploy = repo_root().join("deploy");
    let built_in = [
        "service_account.yaml",
        "role.yaml",
        "role_binding.yaml",
        "operator.yaml",
        "crds/hap.cloudian.com_hapcontainers_crd.yaml",
    ];
    let files: Vec<_> = built_in.iter().map(|f| deploy.join(f)).collect();
    for version in VERSIONS {
        let text = validate(&files, version);
        for f in built_in {
            assert!(
                text.contains(&format!("{f} passed")),
                "{f} against {version}:\n{text}"
            );
        }
        assert!(!text.contains("ERROR"), "{text}");
    }
}

#[test]
#[ignore = "needs kubernetes-validate (scripts/setup.sh): scripts/test.sh runs it"]
fn rendered_children_validate_against_upstream_schemas() {
    let dir = tempfile::tempdir().unwrap();
    for (name, input) in [
        (
            "sample",
            repo_root().join("deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml"),
        ),
        (
            "full",
            repo_root().join("crates/hap-operator/tests/fixtures/full.yaml"),
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hap-operator"))
            .args(["render", "-f"])
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &out.stdout).unwrap();
        for version in VERSIONS {
            let text = validate(std::slice::from_ref(&path), version);
            let passed = text.matches(" passed ").count();
            let docs = String::from_utf8_lossy(&out.stdout)
                .matches("\n---\n")
                .count()
                + 1;
            assert_eq!(
                passed, docs,
                "every rendered object of {name} passes against {version}:\n{text}"
            );
        }
    }
}
