//! The operator image under deploy/operator.yaml's settings, and the build's own error messages.

use hap_image_tests::{docker, operator_image, repo, text, workspace_image};

/// `hap-operator crd` runs with a read-only root filesystem as uid 65532 with no capabilities, and prints
/// exactly the CRD in deploy/ (so the image holds the current binary).
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn operator_runs_read_only_as_65532() {
    let image = operator_image();
    let out = docker(&[
        "run",
        "--rm",
        "--read-only",
        "--user",
        "65532:65532",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--network",
        "none",
        &image,
        "crd",
    ]);
    assert!(out.status.success(), "crd failed: {}", text(&out.stderr));
    // Both CRDs, as deploy/crds holds them.
    let deployed: String = [
        "deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml",
        "deploy/crds/hap.cloudian.com_hapqueries_crd.yaml",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(repo().join(f)).unwrap())
    .collect();
    assert_eq!(text(&out.stdout), deployed);

    // The image's own user is the non-root one, so no securityContext is needed to get it.
    let user = docker(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(text(&user.stdout).trim(), "65532:65532");
    let tags = docker(&["image", "inspect", "--format", "{{json .RepoTags}}", &image]);
    assert!(
        !text(&tags.stdout).contains(":latest"),
        "{}",
        text(&tags.stdout)
    );
}

/// deploy/operator.yaml runs `command: ["hap-operator"]`: the binary is on the image's PATH.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn operator_binary_is_on_path() {
    let out = docker(&[
        "run",
        "--rm",
        "--read-only",
        "--network",
        "none",
        "--entrypoint",
        "hap-operator",
        &operator_image(),
        "--help",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("render"),
        "{}",
        text(&out.stdout)
    );
}

/// The build step that fetches Python packages names the cause when it cannot: no network, or a
/// certificate the build does not trust (a CA bundle without the needed root, as behind an
/// intercepting proxy without --ca-bundle). The check is the images' own build script
/// (images/build/check-index.py), run in the workspace image's Python as a build runs it.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn package_index_check_names_the_cause() {
    let image = workspace_image();
    let script = "/tmp/hap-build/check-index.py";
    let mount = format!(
        "{}:/tmp/hap-build:ro",
        repo()
            .join("images/build")
            .canonicalize()
            .unwrap()
            .display()
    );

    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        &image,
        "python3",
        script,
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("BUILD ERROR: no network: cannot reach the package index"),
        "{err}"
    );

    // An index URL with credentials in it: the message names the index without them.
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "PIP_INDEX_URL=https://hap-user:hap-password@index.invalid:8443/simple/",
        "-v",
        &mount,
        &image,
        "python3",
        script,
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("the package index https://index.invalid:8443/simple/ ")
            && !err.contains("hap-password")
            && !err.contains("hap-user"),
        "{err}"
    );

    // A bundle holding one unrelated CA: nothing real verifies against it. Made in the container, so
    // the test needs no certificate tooling of its own.
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        &mount,
        &image,
        "bash",
        "-c",
        "awk '/BEGIN CERT/{p=1} p{print} /END CERT/{exit}' /etc/ssl/certs/ca-certificates.crt \
         > /tmp/one-ca.pem && exec python3 /tmp/hap-build/check-index.py /tmp/one-ca.pem",
    ]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "verified with an unrelated CA: {err}"
    );
    assert!(
        err.contains("presented a certificate this build does not trust")
            && err.contains("--ca-bundle"),
        "{err}"
    );
}
