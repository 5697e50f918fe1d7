//! The original operator's journey, verbatim, with a real kubectl: install from deploy/ in the README's
//! order, create the sample HapContainer, see the workspace pod and the operator pod running, delete the
//! pod and see it come back, describe the NodePort service, then clean up in the README's order and see
//! nothing left behind and nothing hang.
//!
//! By default the cluster is kube-sim (a separate process) and the operator is the `hap-operator` binary
//! running with the hap-operator ServiceAccount's credentials, as its pod would. With
//! HAP_E2E_KUBECONFIG set, the same journey runs against that real cluster instead, where the Deployment
//! in deploy/operator.yaml runs the operator image (build and load it first; see the README).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{repo_root, tool};

/// The README's install order, then the custom resource.
const INSTALL: &[&str] = &[
    "deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml",
    "deploy/service_account.yaml",
    "deploy/role.yaml",
    "deploy/role_binding.yaml",
    "deploy/operator.yaml",
];
const CR: &str = "deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml";
/// The README's clean-up order.
const CLEANUP: &[&str] = &[
    "deploy/service_account.yaml",
    "deploy/role.yaml",
    "deploy/role_binding.yaml",
    "deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml",
    "deploy/operator.yaml",
    "deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml",
];

/// A process that is killed when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Cluster {
    kubeconfig: PathBuf,
    /// The hap-operator ServiceAccount's kubeconfig (simulated cluster only).
    operator_kubeconfig: Option<PathBuf>,
    _sim: Option<Process>,
    simulated: bool,
    dir: tempfile::TempDir,
}

fn sibling_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_hap-operator")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p kube-sim`",
        path.display()
    );
    path
}

fn start_cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    if let Some(real) = std::env::var_os("HAP_E2E_KUBECONFIG") {
        return Cluster {
            kubeconfig: PathBuf::from(real),
            operator_kubeconfig: None,
            _sim: None,
            simulated: false,
            dir,
        };
    }
    let admin = dir.path().join("admin.yaml");
    let operator = dir.path().join("operator.yaml");
    let mut child = Command::new(sibling_binary("kube-sim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&admin)
        .arg("--sa-kubeconfig")
        .arg(format!("default/hap-operator={}", operator.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kube-sim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("kube-sim serving on https://127.0.0.1:"),
        "kube-sim said {line:?}"
    );
    Cluster {
        kubeconfig: admin,
        operator_kubeconfig: Some(operator),
        _sim: Some(Process(child)),
        simulated: true,
        dir,
    }
}

struct Kubectl<'a> {
    binary: PathBuf,
    cluster: &'a Cluster,
    /// On a real cluster the journey runs in a namespace of its own, so that what is "left behind" is
    /// only what the journey made.
    namespace: Option<String>,
}

impl Kubectl<'_> {
    /// Runs kubectl from the repository root (so the README's relative paths work), with its own
    /// discovery cache, and fails the test if it runs for more than a minute: nothing may hang.
    fn run(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let mut child = Command::new(&self.binary)
            .arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cluster.dir.path().join("kubectl-cache"))
            .args(
                self.namespace
                    .iter()
                    .flat_map(|n| ["--namespace", n.as_str()]),
            )
            .args(args)
            .current_dir(repo_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("kubectl {args:?} hung for a minute");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Polls `kubectl args` until `check` accepts its output.
    fn until(&self, args: &[&str], what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline =
            Instant::now() + Duration::from_secs(if self.cluster.simulated { 60 } else { 600 });
        loop {
            let out = self.run(args);
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            if out.status.success() && check(&stdout) {
                return stdout;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; kubectl {args:?} said:\n{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A `kubectl get pods` line for `name` (a prefix for generated names) showing 1/1 Running.
fn running(table: &str, name: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.len() >= 3 && cols[0].starts_with(name) && cols[1] == "1/1" && cols[2] == "Running")
            .then(|| cols[0].to_string())
    })
}

fn journey(kubectl_binary: PathBuf) {
    let cluster = start_cluster();
    let namespace = (!cluster.simulated).then(|| format!("hap-e2e-{}", std::process::id()));
    let k = Kubectl {
        binary: kubectl_binary,
        cluster: &cluster,
        namespace: namespace.clone(),
    };
    if let Some(ns) = &namespace {
        k.ok(&["create", "namespace", ns]);
    }

    // 1. Install, in the README's order.
    for file in INSTALL {
        let out = k.ok(&["apply", "-f", file]);
        assert!(
            out.contains("created") || out.contains("configured") || out.contains("unchanged"),
            "{out}"
        );
    }

    // The operator: on kube-sim its pod does not run anything, so the binary runs as that pod would,
    // with the pod's name and the hap-operator ServiceAccount's credentials.
    let pods = k.until(&["get", "pods"], "the operator pod running", |t| {
        running(t, "hap-operator-").is_some()
    });
    let operator_pod = running(&pods, "hap-operator-").unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("hap-operator.log");
    let mut operator = cluster.operator_kubeconfig.as_ref().map(|kubeconfig| {
        Process(
            Command::new(env!("CARGO_BIN_EXE_hap-operator"))
                .env("KUBECONFIG", kubeconfig)
                .env("WATCH_NAMESPACE", "default")
                .env("POD_NAME", &operator_pod)
                .env("POD_NAMESPACE", "default")
                .env("OPERATOR_NAME", "hap-operator")
                .env("HAP_METRICS_ADDR", "127.0.0.1:0")
                .env("LOG_FORMAT", "json")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log_path).unwrap())
                .spawn()
                .expect("hap-operator starts"),
        )
    });

    // 2. The custom resource; both pods running.
    let out = k.ok(&["apply", "-f", CR]);
    assert!(
        out.contains("hapcontainer.hap.cloudian.com/example-hapcontainer created"),
        "{out}"
    );
    let pods = k.until(&["get", "pods"], "the workspace pod running", |t| {
        running(t, "example-hapcontainer-happod").is_some()
    });
    assert!(
        pods.starts_with("NAME")
            && pods
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert!(running(&pods, "hap-operator-").is_some(), "{pods}");
    let hc = k.until(&["get", "hapcontainers"], "the HapContainer Running", |t| {
        t.contains("Running") && t.contains("1/1")
    });
    assert!(
        hc.lines().next().unwrap().contains("PHASE") && hc.contains("http://"),
        "{hc}"
    );

    // 3. The pod heals.
    let uid = |k: &Kubectl| {
        k.ok(&[
            "get",
            "pod",
            "example-hapcontainer-happod",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    let before = uid(&k);
    let out = k.ok(&["delete", "pods", "example-hapcontainer-happod"]);
    assert!(
        out.contains("\"example-hapcontainer-happod\" deleted"),
        "{out}"
    );
    k.until(&["get", "pods"], "the workspace pod back", |t| {
        running(t, "example-hapcontainer-happod").is_some()
    });
    assert_ne!(uid(&k), before, "a new pod of the same name");

    // 4. The NodePort service: Jupyter on 8888, the Spark UI on 4040.
    let svc = k.ok(&["describe", "service", "example-hapcontainer-hapservice"]);
    let field = |name: &str| {
        svc.lines()
            .filter(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Type:"), vec!["NodePort"], "{svc}");
    assert_eq!(
        field("Port:"),
        vec!["jupyter  8888/TCP", "spark-ui  4040/TCP"],
        "{svc}"
    );
    let node_ports = field("NodePort:");
    assert_eq!(node_ports.len(), 2, "{svc}");
    assert!(
        node_ports[0].starts_with("jupyter  3") && node_ports[1].starts_with("spark-ui  3"),
        "{svc}"
    );
    let pod = k.ok(&["describe", "pod", "example-hapcontainer-happod"]);
    assert!(
        pod.lines()
            .any(|l| l.starts_with("Node:") && l.contains('/')),
        "the node's IP is shown:\n{pod}"
    );

    // The generated Jupyter token, to prove below that the operator never logs it.
    let token = k.ok(&[
        "get",
        "secret",
        "example-hapcontainer-jupyter",
        "-o",
        "go-template={{.data.token | base64decode}}",
    ]);
    assert!(!token.is_empty(), "the token Secret has a token");

    // 5. Clean up in the README's order: every command returns, and nothing is left.
    for file in CLEANUP {
        let out = k.run(&["delete", "-f", file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if *file == CR {
            // The CRD went first and took the resource with it, so kubectl finds nothing to delete,
            // exactly as on a real cluster.
            assert!(!out.status.success());
            assert!(
                stderr.contains("NotFound") || stderr.contains("no matches for kind"),
                "{stderr}"
            );
        } else {
            assert!(out.status.success(), "delete -f {file}: {stderr}");
        }
    }
    let leftovers = "pods,services,deployments,replicasets,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,persistentvolumeclaims";
    k.until(
        &["get", leftovers, "-o", "name"],
        "nothing left behind",
        |t| {
            let left: Vec<&str> = t
                .lines()
                .filter(|l| {
                    ![
                        "service/kubernetes",
                        "configmap/kube-root-ca.crt",
                        "serviceaccount/default",
                    ]
                    .contains(l)
                })
                .collect();
            left.is_empty()
        },
    );
    let crds = k.ok(&["get", "customresourcedefinitions", "-o", "name"]);
    assert!(!crds.contains("hapcontainers"), "{crds}");
    if let Some(ns) = &namespace {
        k.ok(&["delete", "namespace", ns]);
    }

    // The operator process shuts down cleanly on SIGTERM.
    if let Some(Process(child)) = operator.as_mut() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "hap-operator did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "hap-operator exited with {status}");
        check_logs(&std::fs::read_to_string(&log_path).unwrap(), &token);
    }
}

/// The operator's logs are JSON lines that speak of the workspace, and hold no secret value.
fn check_logs(logs: &str, token: &str) {
    assert!(token.len() >= 32, "a long random token");
    let mut lines = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(record["level"].is_string(), "{line}");
        assert!(
            !line.contains(token),
            "the Jupyter token leaked into a log line: {line}"
        );
        lines += 1;
    }
    assert!(
        lines > 0 && logs.contains("example-hapcontainer"),
        "the operator logged its work:\n{logs}"
    );
}

#[test]
fn journey_with_current_kubectl() {
    journey(tool("kubectl"));
}

#[test]
fn journey_with_debian_kubectl() {
    journey(tool("kubectl-debian"));
}
