//! deploy/role.yaml is least privilege: it grants exactly the calls the operator makes (as the real API
//! server's audit log records them, with its authorization decisions, while the operator runs through
//! every kind of change, leader election included) plus the permissions the operator hands on to each
//! workspace's Spark driver, which Kubernetes only lets it grant if it holds them itself.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Harness, deploy_file, eventually, within};
use hap_api::HapQuery;
use hap_operator::pipeline::config::ProcessConfig;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

type Permission = (String, String, String); // (API group, resource[/subresource], verb)

fn atoms(rules: &Value) -> BTreeSet<Permission> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

async fn patch_spec(h: &Harness, spec: Value) {
    h.hapcontainers()
        .patch(
            "ws",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": spec})),
        )
        .await
        .unwrap();
}

async fn query_status(h: &Harness, what: &str, check: impl Fn(&Value) -> bool) {
    eventually(Duration::from_secs(120), what, || async {
        let hq: Value =
            serde_json::to_value(h.api::<HapQuery>().get("sql").await.unwrap()).unwrap();
        if check(&hq["status"]) {
            Ok(())
        } else {
            Err(format!("{:#}", hq["status"]))
        }
    })
    .await;
}

fn reason(status: &Value, kind: &str) -> String {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A HapQuery's every kind of write: its MariaDB StatefulSet made and then deleted (the spec moves to
/// an external database), its schema Job made and replaced (a new metastore image), and its dashboard
/// Deployment deleted (the spec drops the dashboard). The components' images are not in the node, so
/// the Superset Deployment that would run after its set-up Job is put in place here, as the operator
/// would have made it.
async fn run_a_hapquery_through_its_changes(h: &Harness) {
    let small = json!({"requests": {"cpu": "10m", "memory": "64Mi"}});
    let mut hq: HapQuery = serde_json::from_value(json!({
        "apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapQuery",
        "metadata": {"name": "sql"},
        "spec": {
            "s3": {"endpoint": "http://198.18.0.1:9000", "bucket": "air", "credentialsSecret": {"name": "keys"}},
            "schema": "air",
            "database": {"mariadb": {"storageSize": "1Gi", "resources": small}},
            "metastore": {"resources": small},
            "trino": {"workers": 0, "coordinator": {"resources": small}},
            "dashboard": {"resources": small}
        }
    }))
    .unwrap();
    hq = h
        .api::<HapQuery>()
        .create(&PostParams::default(), &hq)
        .await
        .unwrap();
    query_status(h, "MariaDB created", |s| {
        matches!(
            reason(s, "Database").as_str(),
            "Starting" | "ContainerNotRunning"
        )
    })
    .await;
    let superset: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "sql-superset", "labels": {"app.kubernetes.io/managed-by": "hap-operator"},
            "ownerReferences": [{"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapQuery",
                "name": "sql", "uid": hq.uid(), "controller": true}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "sql-superset"}},
            "template": {"metadata": {"labels": {"app": "sql-superset"}},
                "spec": {"containers": [{"name": "superset", "image": "hap.local/pause:1"}]}}}
    }))
    .unwrap();
    h.api::<Deployment>()
        .create(&PostParams::default(), &superset)
        .await
        .unwrap();
    h.create_secret("db", &[("username", "hive"), ("password", "p")])
        .await;
    let patch = |spec: Value| async move {
        h.api::<HapQuery>()
            .patch(
                "sql",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .unwrap();
    };
    patch(json!({
        "database": {"mariadb": null, "external": {"kind": "mariadb", "host": "127.0.0.1", "port": 1,
            "database": "metastore", "credentialsSecret": {"name": "db"}}},
        "dashboard": {"kind": "none"}
    }))
    .await;
    eventually(
        Duration::from_secs(60),
        "MariaDB and Superset removed, the schema Job made",
        || async {
            let gone = !h.exists::<StatefulSet>("sql-mariadb").await
                && !h.exists::<Deployment>("sql-superset").await;
            let job = h.exists::<Job>("sql-metastore-schema").await;
            if gone && job {
                Ok(())
            } else {
                Err(format!("gone {gone}, job {job}"))
            }
        },
    )
    .await;
    let first = h
        .api::<Job>()
        .get("sql-metastore-schema")
        .await
        .unwrap()
        .uid();
    patch(json!({"metastore": {"image": "hap.local/metastore:2"}})).await;
    eventually(
        Duration::from_secs(60),
        "the schema Job replaced",
        || async {
            match h.api::<Job>().get_opt("sql-metastore-schema").await {
                Ok(Some(j)) if j.uid() != first => Ok(()),
                other => Err(format!("{:?}", other.map(|j| j.map(|j| j.uid())))),
            }
        },
    )
    .await;
    query_status(h, "the status after the changes", |s| {
        s["observedGeneration"].as_i64() == Some(3) && reason(s, "Database") == "Unreachable"
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn role_grants_exactly_what_the_operator_uses_and_delegates() {
    let h = Harness::start_idle().await;
    let config = h.fast_config();
    // The operator's own pod (a pause container here: the operator runs in the test), through which
    // the leader finds the ServiceAccount it ties its Lease to.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": config.instance, "labels": {"name": "hap-operator"}},
        "spec": {"serviceAccountName": "hap-operator", "containers": [{
            "name": "hap-operator", "image": "hap.local/pause:1", "imagePullPolicy": "Never"
        }]}
    }))
    .unwrap();
    h.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    h.create_secret(
        "keys",
        &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
    )
    .await;

    let process = ProcessConfig {
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        leader_election: true,
        lease_name: "hap-operator".into(),
        lease_namespace: Some(h.ns.clone()),
        lease_duration: Duration::from_secs(15),
        json_logs: false,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let operator = h.operator.clone();
    let metrics = h.metrics.clone();
    let run = tokio::spawn(async move {
        hap_operator::app::lead(operator, config, &process, metrics, stop_rx).await
    });

    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: ws
spec:
  s3: {endpoint: 'http://s3.example:80', credentialsSecret: {name: keys}}
  spark: {executors: 2}
  volume: {size: 1Gi}
",
    )
    .await;
    h.wait_phase("ws", "Running").await;
    // Two spec changes (two pod replacements: the second event repeats the first and is patched as a
    // series), executors back to 0 (Spark RBAC deleted), then culled for idleness (its size patched
    // to 0, the pod deleted).
    for value in ["two", "three"] {
        patch_spec(
            &h,
            json!({"env": [{"name": "HAP_TEST_ROUND", "value": value}]}),
        )
        .await;
        h.wait_status("ws", "the changed spec running", |hc| {
            hc.status.as_ref().is_some_and(|s| {
                s.observed_generation == hc.metadata.generation && s.ready.as_deref() == Some("1/1")
            })
        })
        .await;
    }
    patch_spec(&h, json!({"spark": {"executors": 0}})).await;
    h.wait_status("ws", "local Spark", |hc| {
        hc.status
            .as_ref()
            .is_some_and(|s| s.observed_generation == hc.metadata.generation)
    })
    .await;
    // Idle culling stops it (a patch of its own spec) while the HapQuery goes through its changes.
    patch_spec(&h, json!({"culling": {"idleAfter": "1m"}})).await;
    run_a_hapquery_through_its_changes(&h).await;
    h.wait_phase("ws", "Suspended").await;
    let culled = h.hapcontainers().get("ws").await.unwrap();
    assert_eq!(culled.spec.size, 0, "culled, not suspended by hand");
    stop_tx.send(true).unwrap();
    within(Duration::from_secs(40), "the operator to stop", run)
        .await
        .unwrap()
        .unwrap();

    // The audit log is written as requests complete: read it once it stops growing (the operator
    // has stopped, so only its last requests can still be on their way).
    let mut seen = 0;
    let requests = eventually(Duration::from_secs(20), "the audit log settled", || {
        let now = h.audited_operator_requests();
        let settled = now.len() == seen && seen > 0;
        seen = now.len();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            settled.then_some(now).ok_or("still growing".to_string())
        }
    })
    .await;
    let denied: Vec<_> = requests.iter().filter(|r| r.3 == 403).collect();
    assert!(
        denied.is_empty(),
        "the role let the operator down: {denied:#?}"
    );
    // A server-side apply that made its object (201) was authorized as create as well as patch.
    let used: BTreeSet<Permission> = requests
        .iter()
        .flat_map(|(group, resource, verb, code)| {
            let made = verb == "patch" && *code == 201;
            [Some(verb.as_str()), made.then_some("create")]
                .into_iter()
                .flatten()
                .map(|v| (group.clone(), resource.clone(), v.to_string()))
        })
        .collect();
    let spark_rules =
        serde_json::to_value(hap_operator::hapcontainer::build::rbac::spark_rules()).unwrap();
    let delegated = atoms(&spark_rules);
    let role: Value = serde_saphyr::from_str(&deploy_file("role.yaml")).unwrap();
    let granted = atoms(&role["rules"]);
    let needed: BTreeSet<Permission> = used.union(&delegated).cloned().collect();
    let unused: Vec<_> = granted.difference(&needed).collect();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(
        unused.is_empty(),
        "role.yaml grants what is neither used nor delegated: {unused:?}"
    );
    assert!(missing.is_empty(), "role.yaml lacks: {missing:?}");
    // The leader took the Lease and tied it to its ServiceAccount, so uninstalling removes it.
    let lease: k8s_openapi::api::coordination::v1::Lease =
        h.api().get("hap-operator").await.unwrap();
    let owners = lease.metadata.owner_references.unwrap_or_default();
    assert_eq!(
        owners.first().map(|o| (o.kind.as_str(), o.name.as_str())),
        Some(("ServiceAccount", "hap-operator"))
    );
}

fn documents(rel: &str) -> Vec<Value> {
    deploy_file(rel)
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect()
}

/// The multi-tenant install (deploy/multi-tenant/) grants, across namespaces, exactly what
/// deploy/role.yaml grants in one (so the audit-checked role above bounds it too), the Lease only in
/// hap-system, and reading namespaces; and runs the same operator Deployment, told to serve every
/// namespace.
#[test]
fn multi_tenant_install_is_the_single_namespace_one_across_namespaces() {
    let lease = |p: &Permission| p.1 == "leases";
    let single = atoms(&documents("role.yaml")[0]["rules"]);
    let cluster = atoms(&documents("multi-tenant/cluster_role.yaml")[0]["rules"]);
    let mut expected: BTreeSet<Permission> = single.iter().filter(|p| !lease(p)).cloned().collect();
    for verb in ["list", "watch"] {
        expected.insert((String::new(), "namespaces".into(), verb.into()));
    }
    assert_eq!(cluster, expected);
    let leader = documents("multi-tenant/role.yaml");
    assert_eq!(leader[0]["metadata"]["namespace"], "hap-system");
    assert_eq!(
        atoms(&leader[0]["rules"]),
        single.iter().filter(|p| lease(p)).cloned().collect()
    );
    assert_eq!(leader[1]["roleRef"]["name"], leader[0]["metadata"]["name"]);

    let mut operator = documents("operator.yaml").remove(0);
    operator["metadata"]["namespace"] = json!("hap-system");
    let env = operator["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap();
    let watch = env
        .iter()
        .position(|e| e["name"] == "WATCH_NAMESPACE")
        .unwrap();
    env.splice(
        watch..=watch,
        [
            json!({"name": "WATCH_NAMESPACE", "value": ""}),
            json!({"name": "HAP_TENANCY", "value": "namespaces"}),
        ],
    );
    assert_eq!(documents("multi-tenant/operator.yaml")[0], operator);
}
