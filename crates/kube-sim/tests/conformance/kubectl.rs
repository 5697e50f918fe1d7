//! Real kubectl binaries against kube-sim: the current release and Debian's `kubernetes-client` (1.20),
//! each running apply, get (server-side Table output), describe, wait and delete.

use kube_sim::Sim;

use crate::common::{self, Kubectl, eventually, table_rows};

const APP: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: jupyter, port: 8888, targetPort: 8080}
  - {name: spark-ui, port: 4040, targetPort: http}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
"#;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
"#;

const WIDGET: &str = r#"apiVersion: example.com/v1
kind: Widget
metadata:
  name: sprocket
spec:
  size: 3
"#;

async fn kubectl_for(sim: &Sim, label: &'static str) -> Kubectl {
    let bin = common::kubectls()
        .into_iter()
        .find(|(l, _)| *l == label)
        .expect("a known kubectl")
        .1;
    Kubectl::new(label, bin, &sim.admin_kubeconfig())
}

/// apply, get, describe, wait, re-apply and delete of a Deployment, a NodePort Service and a ConfigMap.
async fn built_in_journey(label: &'static str) {
    let sim = common::start().await;
    let k = kubectl_for(&sim, label).await;
    let manifest = k.dir().join("app.yaml");
    std::fs::write(&manifest, APP).unwrap();
    let file = manifest.to_str().unwrap();

    let out = k.run(&["apply", "-f", file]).await.ok();
    assert_eq!(
        out.stdout,
        "deployment.apps/web created\nservice/web created\nconfigmap/settings created\n",
        "{label}"
    );

    let rows = eventually("kubectl shows two running pods", || async {
        let out = k.run(&["get", "pods", "-l", "app=web"]).await.ok();
        let rows = table_rows(&out.stdout);
        let running = rows
            .iter()
            .skip(1)
            .filter(|r| {
                r.get(1).map(String::as_str) == Some("1/1")
                    && r.get(2).map(String::as_str) == Some("Running")
            })
            .count();
        (running == 2).then_some(rows)
    })
    .await;
    assert_eq!(
        rows[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{label}: server-side columns"
    );
    let pod_name = rows[1][0].clone();
    assert!(pod_name.starts_with("web-"), "{pod_name}");

    k.run(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=60s",
    ])
    .await
    .ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    let deploy = table_rows(&k.run(&["get", "deployment", "web"]).await.ok().stdout);
    assert_eq!(
        deploy[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(&deploy[1][..4], ["web", "2/2", "2", "2"]);

    let svc = table_rows(
        &k.run(&["get", "service", "web", "-o", "wide"])
            .await
            .ok()
            .stdout,
    );
    assert_eq!(
        svc[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    assert_eq!(svc[1][1], "NodePort");
    let ports = &svc[1][4];
    assert!(
        ports.starts_with("8888:3") && ports.contains("/TCP,4040:3"),
        "{ports}"
    );

    let describe = k.run(&["describe", "pod", &pod_name]).await.ok().stdout;
    for expected in [
        "Status:",
        "Running",
        "Controlled By:  ReplicaSet/web-",
        "kube-sim-node-1/172.18.0.2",
        "Events:",
        "Scheduled",
    ] {
        assert!(
            describe.contains(expected),
            "{label}: describe pod lacks {expected:?}:\n{describe}"
        );
    }
    let describe = eventually("the service has both endpoints", || async {
        let d = k.run(&["describe", "service", "web"]).await.ok().stdout;
        let endpoints = d.lines().find(|l| l.starts_with("Endpoints:"))?.to_string();
        (endpoints.matches(":8080").count() >= 2).then_some(d)
    })
    .await;
    for expected in [
        "Type:                     NodePort",
        "NodePort:                 jupyter  3",
        "NodePort:                 spark-ui  3",
        "TargetPort:               http/TCP",
    ] {
        assert!(
            describe.contains(expected),
            "{label}: describe service lacks {expected:?}:\n{describe}"
        );
    }

    // Re-applying the same manifest changes nothing; a changed one is configured.
    let out = k.run(&["apply", "-f", file]).await.ok();
    assert_eq!(
        out.stdout,
        "deployment.apps/web unchanged\nservice/web unchanged\nconfigmap/settings unchanged\n",
        "{label}"
    );
    std::fs::write(&manifest, APP.replace("mode: fast", "mode: slow")).unwrap();
    let out = k.run(&["apply", "-f", file]).await.ok();
    assert!(
        out.stdout.contains("configmap/settings configured"),
        "{label}: {}",
        out.stdout
    );
    let mode = k
        .run(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}",
        ])
        .await
        .ok()
        .stdout;
    assert_eq!(mode, "slow");

    // kubectl scale goes through the scale subresource.
    let out = k
        .run(&["scale", "deployment", "web", "--replicas=3"])
        .await
        .ok();
    assert_eq!(out.stdout, "deployment.apps/web scaled\n", "{label}");
    eventually("three replicas are ready", || async {
        let out = k
            .run(&[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .await
            .ok();
        (out.stdout == "3").then_some(())
    })
    .await;

    let out = k.run(&["delete", "-f", file, "--wait=true"]).await.ok();
    // Newer kubectl names the namespace it deleted from.
    let from = if label == "kubectl" {
        " from default namespace"
    } else {
        ""
    };
    assert_eq!(
        out.stdout,
        format!(
            "deployment.apps \"web\" deleted{from}\nservice \"web\" deleted{from}\nconfigmap \"settings\" deleted{from}\n"
        ),
        "{label}"
    );
    let missing = k.run(&["get", "deployment", "web"]).await;
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): deployments.apps \"web\" not found",
        "{label}"
    );
    eventually("the garbage collector removes the pods", || async {
        let out = k
            .run(&["get", "pods", "-l", "app=web", "-o", "name"])
            .await
            .ok();
        out.stdout.trim().is_empty().then_some(())
    })
    .await;
}

/// A CRD and a custom resource: get with printer columns and short names, describe, delete.
async fn custom_resource_journey(label: &'static str) {
    let sim = common::start().await;
    let k = kubectl_for(&sim, label).await;
    let crd = k.dir().join("crd.yaml");
    std::fs::write(&crd, CRD).unwrap();
    let cr = k.dir().join("cr.yaml");
    std::fs::write(&cr, WIDGET).unwrap();
    k.run(&["apply", "-f", crd.to_str().unwrap()]).await.ok();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=60s",
    ])
    .await
    .ok();
    let out = k.run(&["apply", "-f", cr.to_str().unwrap()]).await.ok();
    assert_eq!(
        out.stdout, "widget.example.com/sprocket created\n",
        "{label}"
    );

    let rows = table_rows(&k.run(&["get", "widgets"]).await.ok().stdout);
    assert_eq!(rows[0], ["NAME", "SIZE", "AGE"], "{label}: printer columns");
    assert_eq!(&rows[1][..2], ["sprocket", "3"]);
    let short = table_rows(&k.run(&["get", "wd", "sprocket"]).await.ok().stdout);
    assert_eq!(short[1][0], "sprocket", "{label}: short name");

    let describe = k.run(&["describe", "widget", "sprocket"]).await.ok().stdout;
    for expected in [
        "Name:         sprocket",
        "API Version:  example.com/v1",
        "Kind:         Widget",
        "Size:  3",
    ] {
        assert!(
            describe.contains(expected),
            "{label}: describe lacks {expected:?}:\n{describe}"
        );
    }

    // An invalid custom resource is refused with the apiserver's message.
    let bad = k
        .run_with_input(
            &["apply", "-f", "-"],
            Some(
                &WIDGET
                    .replace("size: 3", "size: 0")
                    .replace("sprocket", "tiny"),
            ),
        )
        .await;
    assert_eq!(bad.code, 1, "{label}: {bad:?}");
    assert!(
        // kubectl rewords a 422 as "The KIND NAME is invalid".
        bad.stderr.contains("The Widget \"tiny\" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"),
        "{label}: {}",
        bad.stderr
    );

    let out = k
        .run(&[
            "delete",
            "-f",
            cr.to_str().unwrap(),
            "-f",
            crd.to_str().unwrap(),
            "--wait=true",
        ])
        .await
        .ok();
    assert!(
        out.stdout
            .contains("widget.example.com \"sprocket\" deleted"),
        "{label}: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "customresourcedefinition.apiextensions.k8s.io \"widgets.example.com\" deleted"
        ),
        "{label}: {}",
        out.stdout
    );
    let gone = k.run(&["get", "crd", "widgets.example.com"]).await;
    assert_eq!(gone.code, 1, "{label}: {gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_kubectl_applies_gets_describes_and_deletes() {
    built_in_journey("kubectl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_kubectl_applies_gets_describes_and_deletes() {
    built_in_journey("kubectl-debian").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_kubectl_drives_custom_resources() {
    custom_resource_journey("kubectl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_kubectl_drives_custom_resources() {
    custom_resource_journey("kubectl-debian").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_reports_conflicts_and_forces() {
    let sim = common::start().await;
    for (label, _) in common::kubectls() {
        let k = kubectl_for(&sim, label).await;
        let name = format!("ssa-{label}");
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  owner: first\n"
        );
        let out = k
            .run_with_input(
                &["apply", "--server-side", "--field-manager=first", "-f", "-"],
                Some(&cm),
            )
            .await
            .ok();
        assert_eq!(
            out.stdout,
            format!("configmap/{name} serverside-applied\n"),
            "{label}"
        );
        let second = cm.replace("owner: first", "owner: second");
        let conflict = k
            .run_with_input(
                &[
                    "apply",
                    "--server-side",
                    "--field-manager=second",
                    "-f",
                    "-",
                ],
                Some(&second),
            )
            .await;
        assert_eq!(conflict.code, 1, "{label}: {conflict:?}");
        assert!(
            conflict
                .stderr
                .contains("Apply failed with 1 conflict: conflict with \"first\": .data.owner"),
            "{label}: {}",
            conflict.stderr
        );
        k.run_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=second",
                "--force-conflicts",
                "-f",
                "-",
            ],
            Some(&second),
        )
        .await
        .ok();
        let owner = k
            .run(&["get", "configmap", &name, "-o", "jsonpath={.data.owner}"])
            .await
            .ok()
            .stdout;
        assert_eq!(owner, "second", "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_as_a_service_account_sees_rbac_decisions() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    let sa = serde_json::json!({"metadata": {"name": "viewer"}});
    assert_eq!(
        common::post(&admin, "/api/v1/namespaces/default/serviceaccounts", &sa)
            .await
            .code,
        201
    );
    let binding = serde_json::json!({"metadata": {"name": "viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": "default"}]});
    let role = serde_json::json!({"metadata": {"name": "viewer"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    assert_eq!(
        common::post(
            &admin,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &role
        )
        .await
        .code,
        201
    );
    assert_eq!(
        common::post(
            &admin,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &binding
        )
        .await
        .code,
        201
    );
    for (label, bin) in common::kubectls() {
        let k = Kubectl::new(
            label,
            bin,
            &sim.service_account_kubeconfig("default", "viewer"),
        );
        let ok = k.run(&["get", "pods"]).await;
        assert_eq!(ok.code, 0, "{label}: {ok:?}");
        let denied = k.run(&["get", "secrets"]).await;
        assert_eq!(denied.code, 1);
        assert_eq!(
            denied.stderr.trim(),
            "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:default:viewer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"",
            "{label}"
        );
        // `auth can-i` asks with a SelfSubjectAccessReview; "no" exits 1.
        let yes = k.run(&["auth", "can-i", "list", "pods"]).await;
        assert_eq!(
            (yes.code, yes.stdout.trim()),
            (0, "yes"),
            "{label}: {yes:?}"
        );
        let no = k.run(&["auth", "can-i", "delete", "pods"]).await;
        assert_eq!((no.code, no.stdout.trim()), (1, "no"), "{label}: {no:?}");
    }
    // The admin can ask on the account's behalf with --as, as one proves a Role sufficient.
    for (label, bin) in common::kubectls() {
        let k = Kubectl::new(label, bin, &sim.admin_kubeconfig());
        let as_viewer = "--as=system:serviceaccount:default:viewer";
        let yes = k.run(&["auth", "can-i", "get", "pods", as_viewer]).await;
        assert_eq!(yes.stdout.trim(), "yes", "{label}: {yes:?}");
        let no = k.run(&["auth", "can-i", "create", "pods", as_viewer]).await;
        assert_eq!(no.stdout.trim(), "no", "{label}: {no:?}");
        let denied = k.run(&["get", "configmaps", as_viewer]).await;
        assert_eq!(denied.code, 1, "{label}");
        assert!(
            denied.stderr.contains(
                "User \"system:serviceaccount:default:viewer\" cannot list resource \"configmaps\""
            ),
            "{label}: {}",
            denied.stderr
        );
    }
}
