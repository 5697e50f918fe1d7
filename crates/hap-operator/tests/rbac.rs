//! deploy/role.yaml is least privilege: it grants exactly the calls the operator makes (as the real API
//! server's audit log records them, with its authorization decisions, while the operator runs through
//! every kind of change, leader election included) plus the permissions the operator hands on to each
//! workspace's Spark driver, which Kubernetes only lets it grant if it holds them itself.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Harness, deploy_file, eventually, within};
use hap_operator::config::ProcessConfig;
use k8s_openapi::api::core::v1::Pod;
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

#[tokio::test]
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
    // series), executors back to 0 (Spark RBAC deleted), then suspend (pod deleted).
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
    patch_spec(&h, json!({"size": 0})).await;
    h.wait_phase("ws", "Suspended").await;
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
    let spark_rules = serde_json::to_value(hap_operator::build::rbac::spark_rules()).unwrap();
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
