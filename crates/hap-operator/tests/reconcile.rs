//! The reconciler on the real local cluster: the operator's controller, with its own ServiceAccount's
//! permissions from deploy/role.yaml, real pods from the real workspace image, and faults injected
//! into its client.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Harness, condition, condition_in, eventually};
use hap_operator::hapcontainer::names;
use http::Method;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const SAMPLE: &str = "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: example-hapcontainer
spec:
  size: 1
  image: \"hap-workspace:0.1.0\"
";

/// A workspace the kubelet evicts every time it starts: Jupyter's start-up writes more than its 1Ki
/// of scratch space (container logs and writable layer) allows.
const EVICTED: &str = "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: NAME
spec:
  resources:
    requests: {cpu: 50m, memory: 256Mi}
    limits: {ephemeral-storage: 1Ki}
";

const POD: &str = "example-hapcontainer-happod";
const SVC: &str = "example-hapcontainer-hapservice";

async fn pod_uid(h: &Harness, name: &str) -> Option<String> {
    h.api::<Pod>()
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.uid())
}

/// Waits for a pod named `name` other than the one with uid `before`, ready: the replacement itself,
/// which a status that still says Running from before cannot stand in for.
async fn new_pod_ready(h: &Harness, name: &str, before: &str) {
    eventually(Duration::from_secs(150), "a new pod, ready", || async {
        let pod = h
            .api::<Pod>()
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no pod")?;
        if pod.uid().as_deref() != Some(before) && hap_operator::pipeline::pods::ready(&pod) {
            Ok(())
        } else {
            Err(format!(
                "uid {:?}, ready {}",
                pod.uid(),
                hap_operator::pipeline::pods::ready(&pod)
            ))
        }
    })
    .await;
}

async fn has_event(
    h: &Harness,
    name: &str,
    reason: &str,
    note_contains: &str,
) -> Result<(), String> {
    let events = h.events_for(name).await;
    if events.iter().any(|e| {
        e.reason.as_deref() == Some(reason)
            && e.note.as_deref().is_some_and(|n| n.contains(note_contains))
    }) {
        Ok(())
    } else {
        let seen: Vec<String> = events
            .iter()
            .map(|e| format!("{:?}: {:?}", e.reason, e.note))
            .collect();
        Err(format!("{seen:?}"))
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn creates_the_workspace_and_reports_it_running() {
    let h = Harness::start().await;
    let hc = h.create(SAMPLE).await;
    let hc = h.wait_phase(&hc.name_any(), "Running").await;
    let status = hc.status.clone().expect("status");
    assert_eq!(status.ready.as_deref(), Some("1/1"));
    assert_eq!(status.observed_generation, hc.metadata.generation);
    assert_eq!(status.pod_name.as_deref(), Some(POD));
    assert_eq!(status.service_name.as_deref(), Some(SVC));
    let ready = condition_in(&status, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "PodReady")
    );
    let configured = condition_in(&status, "Configured");
    assert_eq!(configured.status, "True");

    // The service: NodePort, Jupyter on 8888 and the Spark UI on 4040, node ports in the status and URL.
    let svc = h.api::<Service>().get(SVC).await.expect("service");
    let spec = svc.spec.expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    let ports: BTreeMap<String, (i32, i32)> = spec
        .ports
        .expect("ports")
        .into_iter()
        .map(|p| {
            (
                p.name.unwrap_or_default(),
                (p.port, p.node_port.unwrap_or(0)),
            )
        })
        .collect();
    assert_eq!(ports["jupyter"].0, 8888);
    assert_eq!(ports["spark-ui"].0, 4040);
    assert_eq!(status.jupyter_node_port, Some(ports["jupyter"].1));
    let pod = h.api::<Pod>().get(POD).await.expect("pod");
    let host_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.host_ip.clone())
        .expect("hostIP");
    assert_eq!(
        status.jupyter_url,
        Some(format!("http://{host_ip}:{}/", ports["jupyter"].1))
    );
    assert_eq!(
        status.spark_ui_url,
        Some(format!("http://{host_ip}:{}/", ports["spark-ui"].1))
    );

    // Every child is owned by the HapContainer (garbage collection, no finalizers) and labelled.
    let uid = hc.metadata.uid.clone().expect("uid");
    let owned = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        let refs = meta.owner_references.clone().unwrap_or_default();
        refs.len() == 1 && refs[0].uid == uid && refs[0].controller == Some(true)
    };
    assert!(owned(&pod.metadata) && owned(&svc.metadata));
    let secret = h
        .api::<Secret>()
        .get(&names::token_secret("example-hapcontainer"))
        .await
        .expect("token secret");
    assert!(owned(&secret.metadata));
    let cm = h
        .api::<ConfigMap>()
        .get(&names::spark_conf("example-hapcontainer"))
        .await
        .expect("spark conf");
    assert!(owned(&cm.metadata));
    assert!(
        hc.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .is_empty()
    );
    let labels = pod.labels();
    assert_eq!(labels["app"], "example-hapcontainer");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "hap-operator");
    assert_eq!(labels["app.kubernetes.io/instance"], "example-hapcontainer");

    // Secure defaults: non-root, no privilege escalation, capabilities dropped, RuntimeDefault seccomp,
    // and the Jupyter token read from the Secret.
    let spec = pod.spec.expect("pod spec");
    let psc = spec.security_context.expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.map(|s| s.type_),
        Some("RuntimeDefault".into())
    );
    let c = &spec.containers[0];
    let sc = c
        .security_context
        .clone()
        .expect("container security context");
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    let token_env = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "JUPYTER_TOKEN")
        .expect("JUPYTER_TOKEN");
    assert!(token_env.value.is_none(), "the token is never inlined");
    let secret_ref = token_env
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.clone())
        .expect("secretKeyRef");
    assert_eq!(secret_ref.name, names::token_secret("example-hapcontainer"));
    // The generated token is long and random, and appears nowhere but in its Secret.
    let token = secret.data.expect("token data")["token"].0.clone();
    assert!(token.len() >= 32);
    let status_text =
        serde_json::to_string(&h.hapcontainers().get(&hc.name_any()).await.unwrap()).unwrap();
    assert!(!status_text.contains(std::str::from_utf8(&token).unwrap()));

    has_event(
        &h,
        "example-hapcontainer",
        "Created",
        "Created Pod example-hapcontainer-happod",
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_deleted_pod_comes_back() {
    let h = Harness::start().await;
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let before = pod_uid(&h, POD).await.expect("pod");
    h.api::<Pod>()
        .delete(POD, &DeleteParams::default())
        .await
        .expect("delete pod");
    new_pod_ready(&h, POD, &before).await;
    h.wait_phase("example-hapcontainer", "Running").await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_spec_change_replaces_the_pod() {
    let h = Harness::start().await;
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let before = h.api::<Pod>().get(POD).await.unwrap();
    let patch = json!({"spec": {"env": [{"name": "HAP_TEST_ROUND", "value": "two"}]}});
    h.hapcontainers()
        .patch(
            "example-hapcontainer",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let after = eventually(
        Duration::from_secs(90),
        "a pod with the new environment",
        || async {
            let p = h
                .api::<Pod>()
                .get_opt(POD)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no pod")?;
            let env = p.spec.as_ref().and_then(|s| s.containers[0].env.clone());
            let round = env
                .unwrap_or_default()
                .into_iter()
                .find(|e| e.name == "HAP_TEST_ROUND")
                .and_then(|e| e.value);
            if round.as_deref() == Some("two") {
                Ok(p)
            } else {
                Err(format!("{round:?}"))
            }
        },
    )
    .await;
    assert_ne!(
        after.uid(),
        before.uid(),
        "pods are immutable: a new pod, not a patched one"
    );
    assert_ne!(
        after.annotations().get(hap_operator::pipeline::SPEC_HASH),
        before.annotations().get(hap_operator::pipeline::SPEC_HASH)
    );
    h.wait_status("example-hapcontainer", "generation 2 running", |hc| {
        hc.status.as_ref().is_some_and(|s| {
            s.observed_generation == Some(2) && s.phase.map(|p| p.as_str()) == Some("Running")
        })
    })
    .await;
    eventually(Duration::from_secs(10), "a Replacing event", || {
        has_event(&h, "example-hapcontainer", "Replacing", POD)
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn size_zero_suspends_and_one_resumes() {
    let h = Harness::start().await;
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let size = |n: i32| json!({"spec": {"size": n}});
    h.hapcontainers()
        .patch(
            "example-hapcontainer",
            &PatchParams::default(),
            &Patch::Merge(&size(0)),
        )
        .await
        .unwrap();
    let hc = h.wait_phase("example-hapcontainer", "Suspended").await;
    assert_eq!(hc.status.as_ref().unwrap().ready.as_deref(), Some("0/0"));
    eventually(Duration::from_secs(90), "the pod gone", || async {
        match pod_uid(&h, POD).await {
            None => Ok(()),
            Some(u) => Err(u),
        }
    })
    .await;
    // Everything else stays.
    assert!(h.exists::<Service>(SVC).await);
    assert!(
        h.exists::<Secret>(&names::token_secret("example-hapcontainer"))
            .await
    );
    h.hapcontainers()
        .patch(
            "example-hapcontainer",
            &PatchParams::default(),
            &Patch::Merge(&size(1)),
        )
        .await
        .unwrap();
    h.wait_phase("example-hapcontainer", "Running").await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_missing_s3_secret_is_a_condition_and_an_event_then_heals() {
    let h = Harness::start().await;
    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: s3
spec:
  s3:
    endpoint: http://hyperstore.example:80
    bucket: air
    credentialsSecret:
      name: hyperstore-keys
",
    )
    .await;
    let hc = h.wait_phase("s3", "Failed").await;
    let status = hc.status.unwrap();
    let configured = condition_in(&status, "Configured");
    assert_eq!(configured.status, "False");
    assert_eq!(configured.reason, "S3CredentialsSecretNotFound");
    assert!(
        configured.message.contains("hyperstore-keys")
            && configured.message.contains("AWS_ACCESS_KEY_ID")
    );
    assert!(
        !h.exists::<Pod>("s3-happod").await,
        "no pod until it can run"
    );
    eventually(Duration::from_secs(10), "a warning event", || {
        has_event(&h, "s3", "S3CredentialsSecretNotFound", "hyperstore-keys")
    })
    .await;

    // Creating the Secret heals the workspace without touching the HapContainer.
    h.create_secret(
        "hyperstore-keys",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"),
        ],
    )
    .await;
    let hc = h.wait_phase("s3", "Running").await;
    let pod = h.api::<Pod>().get("s3-happod").await.unwrap();
    let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
    let find = |n: &str| {
        env.iter()
            .find(|e| e.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} set"))
    };
    assert_eq!(
        find("AWS_ENDPOINT_URL").value.as_deref(),
        Some("http://hyperstore.example:80")
    );
    assert_eq!(find("HAP_S3_BUCKET").value.as_deref(), Some("air"));
    let key_ref = find("AWS_SECRET_ACCESS_KEY")
        .value_from
        .unwrap()
        .secret_key_ref
        .unwrap();
    assert_eq!(
        (key_ref.name.as_str(), key_ref.key.as_str()),
        ("hyperstore-keys", "AWS_SECRET_ACCESS_KEY")
    );
    // Secret values reach neither status nor events.
    let text = serde_json::to_string(&hc).unwrap() + &format!("{:?}", h.events_for("s3").await);
    assert!(!text.contains("not-a-real-secret"));
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn api_errors_are_retried_with_back_off() {
    let h = Harness::start().await;
    // The first two pod applies and the first status write fail: a 500 and a 409.
    h.faults.fail_next(Method::PATCH, "pods", 2, 500);
    h.faults
        .fail_next(Method::PATCH, "hapcontainers/status", 1, 409);
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    // Every injected failure was met (and retried past); other requests may legitimately fail too
    // (a retried create of the token Secret finds it already made: 409 AlreadyExists).
    let failed = |resource: &str, code: u16| h.faults.count(Method::PATCH, resource, code);
    assert_eq!(failed("pods", 500), 2, "{:?}", h.faults.calls());
    assert_eq!(
        failed("hapcontainers/status", 409),
        1,
        "{:?}",
        h.faults.calls()
    );
    let metrics = h.metrics.render();
    // Each failure under its step: the pod's apply, and the status write.
    assert!(
        metrics.contains(
            "hap_operator_reconcile_failures_total{step=\"apply\",reason=\"InternalError\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("hap_operator_reconcile_failures_total{step=\"status\",reason=\"Conflict\"}"),
        "{metrics}"
    );
    eventually(
        Duration::from_secs(10),
        "the failures as events",
        || async {
            has_event(
                &h,
                "example-hapcontainer",
                "ApplyFailed",
                "cannot apply Pod",
            )
            .await?;
            has_event(
                &h,
                "example-hapcontainer",
                "StatusUpdateFailed",
                "injected conflict",
            )
            .await
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_converged_workspace_costs_no_writes_on_resync() {
    let h = Harness::start().await;
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let reconciles = || h.successful_reconciles();
    // Waits until `n` more reconciles (resyncs every second here) have completed.
    let resyncs = |n: u64| {
        let target = reconciles() + n;
        eventually(Duration::from_secs(30), "resyncs", move || async move {
            let now = reconciles();
            if now >= target {
                Ok(())
            } else {
                Err(format!("{now} of {target} reconciles"))
            }
        })
    };
    // Settle: the creation's last events and status writes are done once a whole resync goes by
    // without a write.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        h.faults.reset_calls();
        resyncs(1).await;
        if h.operator_writes().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the operator kept writing: {:?}",
            h.operator_writes()
        );
    }
    // Then two more resyncs: still no write.
    h.faults.reset_calls();
    resyncs(2).await;
    assert_eq!(
        h.operator_writes(),
        vec![],
        "a resync of a converged workspace writes nothing"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_failed_pod_is_replaced_with_back_off() {
    let h = Harness::start().await;
    h.create(EVICTED.replace("NAME", "flaky").as_str()).await;
    // The pod is evicted every time it starts: each failure is reported and the pod replaced, the
    // count of replacements in a row grows (the delay before each one is unit-tested with it).
    let hc = h
        .wait_status("flaky", "two replacements, while degraded", |hc| {
            let s = hc.status.as_ref();
            s.and_then(|s| s.failed_pod_replacements).unwrap_or(0) >= 2
                && s.and_then(|s| s.phase).map(|p| p.as_str()) == Some("Degraded")
        })
        .await;
    let ready = condition(&hc, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "PodFailed")
    );
    // The kubelet reports the eviction as Failed/Evicted, or as Succeeded when Jupyter exited cleanly
    // on the stop signal (timing decides); the operator's event says which.
    let events = h.events_for("flaky").await;
    let notes: Vec<&str> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("PodFailed"))
        .filter_map(|e| e.note.as_deref())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("(Evicted)")
            || n.contains("(Succeeded, container workspace exited with code 0)")),
        "{notes:?}"
    );
    let deletes = h.faults.count(Method::DELETE, "pods", 200);
    assert!(deletes >= 2, "failed pods were deleted to be replaced");
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn an_image_that_cannot_be_pulled_is_degraded() {
    let h = Harness::start().await;
    // The node holds no such image and may not pull one (no traffic leaves the machine): the
    // kubelet's answer is ErrImageNeverPull, as a cluster without a registry's credentials answers
    // ErrImagePull.
    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: typo
spec:
  image: no-such-image:1
  imagePullPolicy: Never
",
    )
    .await;
    let hc = h.wait_phase("typo", "Degraded").await;
    let ready = condition(&hc, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "ErrImageNeverPull");
    assert!(
        ready.message.contains("no-such-image:1"),
        "{}",
        ready.message
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn spark_executors_get_rbac_config_and_a_driver_service() {
    let h = Harness::start().await;
    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: spark
spec:
  s3:
    endpoint: https://s3.example.com
    credentialsSecret:
      name: keys
  spark:
    executors: 3
    executorCores: 2
    executorMemory: 4Gi
  volume:
    size: 10Gi
",
    )
    .await;
    h.create_secret(
        "keys",
        &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
    )
    .await;
    h.wait_phase("spark", "Running").await;
    let sa = h
        .api::<ServiceAccount>()
        .get("spark-spark")
        .await
        .expect("spark service account");
    assert!(sa.owner_references().len() == 1);
    let role = h
        .api::<Role>()
        .get("spark-spark")
        .await
        .expect("spark role");
    let verbs = &role.rules.unwrap()[0].verbs;
    assert!(
        verbs.contains(&"create".to_string()) && verbs.contains(&"deletecollection".to_string())
    );
    let binding = h
        .api::<RoleBinding>()
        .get("spark-spark")
        .await
        .expect("binding");
    assert_eq!(binding.subjects.unwrap()[0].name, "spark-spark");
    let driver = h
        .api::<Service>()
        .get("spark-spark-driver")
        .await
        .expect("driver service");
    assert_eq!(driver.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    let pvc = h
        .api::<PersistentVolumeClaim>()
        .get("spark-workspace")
        .await
        .expect("workspace volume");
    assert_eq!(
        pvc.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0,
        "10Gi"
    );
    let conf = h
        .api::<ConfigMap>()
        .get("spark-spark-conf")
        .await
        .unwrap()
        .data
        .unwrap()["spark-defaults.conf"]
        .clone();
    for line in [
        "spark.master k8s://https://kubernetes.default.svc:443",
        "spark.executor.instances 3",
        "spark.executor.cores 2",
        "spark.executor.memory 4096m",
        &format!("spark.kubernetes.namespace {}", h.ns),
        "spark.kubernetes.authenticate.driver.serviceAccountName spark-spark",
        "spark.hadoop.fs.s3a.endpoint https://s3.example.com",
        "spark.hadoop.fs.s3a.path.style.access true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled true",
        "spark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY spark-spark-s3:AWS_SECRET_ACCESS_KEY",
        &format!(
            "spark.driver.host spark-happod.spark-spark-driver.{}.svc.cluster.local",
            h.ns
        ),
    ] {
        assert!(conf.lines().any(|l| l == line), "{line:?} in\n{conf}");
    }
    for line in [
        "spark.authenticate true",
        "spark.network.crypto.enabled true",
        "spark.authenticate.secret.file /opt/hap/spark-auth/secret",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line:?} in\n{conf}");
    }
    let pod = h.api::<Pod>().get("spark-happod").await.unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("spark-spark"));
    assert_eq!(spec.subdomain.as_deref(), Some("spark-spark-driver"));
    // The secret Spark authenticates with: generated once, owned by the HapContainer, mounted in the
    // driver, and in no ConfigMap.
    let auth = h
        .api::<Secret>()
        .get("spark-spark-auth")
        .await
        .expect("the Spark authentication secret");
    let value = auth.data.as_ref().unwrap()["secret"].0.clone();
    assert_eq!(value.len(), 48);
    assert!(
        auth.metadata.owner_references.unwrap()[0].kind == "HapContainer",
        "owned, so it goes with the HapContainer"
    );
    assert!(spec.volumes.unwrap().iter().any(|v| {
        v.secret
            .as_ref()
            .is_some_and(|s| s.secret_name.as_deref() == Some("spark-spark-auth"))
    }));
    let value = String::from_utf8(value).unwrap();
    for cm in h
        .api::<ConfigMap>()
        .list(&Default::default())
        .await
        .unwrap()
    {
        let text = serde_json::to_string(&cm.data).unwrap();
        assert!(
            !text.contains(&value),
            "the secret is in ConfigMap {:?}",
            cm.metadata.name
        );
    }

    // The executors' copy of the keys (the one Secret the admission policy lets them read): the
    // source's two keys, and it follows the source when that changes.
    let copied = |secret: Secret| -> Vec<(String, String)> {
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect()
    };
    let keys = |secret: &str| {
        [
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    };
    assert_eq!(
        copied(
            h.api::<Secret>()
                .get("spark-spark-s3")
                .await
                .expect("the executors' keys")
        ),
        keys("b")
    );
    h.api::<Secret>()
        .patch(
            "keys",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"AWS_SECRET_ACCESS_KEY": "rotated"}})),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the copy follows its source",
        || async {
            let now = copied(
                h.api::<Secret>()
                    .get("spark-spark-s3")
                    .await
                    .map_err(|e| e.to_string())?,
            );
            if now == keys("rotated") {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;

    // Back to local Spark: the Spark RBAC, driver service, keys' copy and authentication secret go;
    // the volume stays (nothing is lost).
    h.hapcontainers()
        .patch(
            "spark",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"spark": {"executors": 0}}})),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(90),
        "Spark RBAC and keys removed",
        || async {
            let left = (
                h.exists::<Role>("spark-spark").await,
                h.exists::<RoleBinding>("spark-spark").await,
                h.exists::<ServiceAccount>("spark-spark").await,
                h.exists::<Service>("spark-spark-driver").await,
                h.exists::<Secret>("spark-spark-s3").await,
                h.exists::<Secret>("spark-spark-auth").await,
            );
            if left == (false, false, false, false, false, false) {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;
    h.wait_phase("spark", "Running").await;
    assert!(h.exists::<PersistentVolumeClaim>("spark-workspace").await);
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_user_supplied_token_secret_is_used_and_checked() {
    let h = Harness::start().await;
    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: mine
spec:
  jupyter:
    tokenSecret:
      name: my-token
      key: jupyter
",
    )
    .await;
    let hc = h.wait_phase("mine", "Failed").await;
    let configured = condition(&hc, "Configured");
    assert_eq!(configured.reason, "JupyterTokenSecretNotFound");
    h.create_secret("my-token", &[("jupyter", "s3cr3t-t0ken")])
        .await;
    h.wait_phase("mine", "Running").await;
    let pod = h.api::<Pod>().get("mine-happod").await.unwrap();
    let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
    let token = env
        .iter()
        .find(|e| e.name == "JUPYTER_TOKEN")
        .unwrap()
        .value_from
        .clone()
        .unwrap()
        .secret_key_ref
        .unwrap();
    assert_eq!(
        (token.name.as_str(), token.key.as_str()),
        ("my-token", "jupyter")
    );
    assert!(
        !h.exists::<Secret>("mine-jupyter").await,
        "no token is generated"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_larger_size_is_rejected_at_admission_with_how_to_scale_out() {
    let h = Harness::start().await;
    let hc: hap_api::HapContainer =
        serde_saphyr::from_str("apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata:\n  name: big\nspec:\n  size: 3\n").unwrap();
    let err = h
        .hapcontainers()
        .create(&PostParams::default(), &hc)
        .await
        .expect_err("size 3 is rejected");
    let kube::Error::Api(status) = err else {
        panic!("an API error")
    };
    assert_eq!(status.code, 422);
    assert!(status.message.contains("spec.size"), "{}", status.message);
    assert!(
        status.message.contains("spec.spark.executors"),
        "{}",
        status.message
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn deleting_the_hapcontainer_removes_every_child() {
    let h = Harness::start().await;
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    h.hapcontainers()
        .delete("example-hapcontainer", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(90),
        "children garbage-collected",
        || async {
            let pods = h
                .api::<Pod>()
                .list(&ListParams::default().labels("app=example-hapcontainer"))
                .await
                .map_err(|e| e.to_string())?;
            let svcs = h
                .api::<Service>()
                .get_opt(SVC)
                .await
                .map_err(|e| e.to_string())?;
            let secret = h
                .api::<Secret>()
                .get_opt("example-hapcontainer-jupyter")
                .await
                .map_err(|e| e.to_string())?;
            let cm = h
                .api::<ConfigMap>()
                .get_opt("example-hapcontainer-spark-conf")
                .await
                .map_err(|e| e.to_string())?;
            if pods.items.is_empty() && svcs.is_none() && secret.is_none() && cm.is_none() {
                Ok(())
            } else {
                Err(format!(
                    "{} pods, svc {}, secret {}, cm {}",
                    pods.items.len(),
                    svcs.is_some(),
                    secret.is_some(),
                    cm.is_some()
                ))
            }
        },
    )
    .await;
}

/// Waits until the HapContainer's Ready condition has `reason`, and checks it is Pending.
async fn pending_because(h: &Harness, name: &str, reason: &str) -> hap_api::HapContainerStatus {
    let hc = h
        .wait_status(name, reason, |hc| {
            hc.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == reason)
            })
        })
        .await;
    let status = hc.status.unwrap();
    assert_eq!(status.phase.map(|p| p.as_str()), Some("Pending"));
    status
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn an_unschedulable_pod_is_pending_with_the_schedulers_reason() {
    let h = Harness::start().await;
    // The local cluster's node has no GPUs.
    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: gpu
spec:
  gpus: 2
",
    )
    .await;
    let status = pending_because(&h, "gpu", "Unschedulable").await;
    let ready = condition_in(&status, "Ready");
    assert!(
        ready.message.contains("Insufficient nvidia.com/gpu"),
        "{}",
        ready.message
    );
    let pod = h.api::<Pod>().get("gpu-happod").await.unwrap();
    let limits = pod.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(limits["nvidia.com/gpu"].0, "2");
}

/// The original's sample on a cluster whose storage cannot give its home volume a claim (here a
/// StorageClass that does not exist): the status says the workspace waits for its volume, and why.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_home_volume_that_cannot_be_bound_is_said_in_the_status() {
    let h = Harness::start().await;
    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: nostorage
spec:
  volume: {storageClassName: no-such-class}
",
    )
    .await;
    let status = pending_because(&h, "nostorage", "VolumePending").await;
    let ready = condition_in(&status, "Ready");
    assert!(
        ready.message.contains("nostorage-workspace"),
        "the message names the claim: {}",
        ready.message
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_failed_pod_waits_out_its_back_off_before_it_is_replaced() {
    // The first replacement waits 5 s from when the operator saw the failure, on its own clock (the
    // cap is raised too, or it would shorten the wait). The plan's unit tests prove the back-off with
    // the time passed in; this checks that the running operator does not cut it short.
    let h = Harness::start_with(|config| hap_operator::pipeline::config::RunConfig {
        replace_min: Duration::from_secs(5),
        replace_max: Duration::from_secs(5),
        ..config
    })
    .await;
    h.create(EVICTED.replace("NAME", "patient").as_str()).await;
    // Evicted: Failed, or Succeeded when Jupyter exited cleanly on the stop signal.
    let failed = eventually(Duration::from_secs(90), "the pod evicted", || async {
        let pod = h
            .api::<Pod>()
            .get_opt("patient-happod")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no pod")?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if matches!(phase.as_deref(), Some("Failed" | "Succeeded")) {
            Ok(pod)
        } else {
            Err(format!("{phase:?}"))
        }
    })
    .await;
    // The failure's time as the pod records it: its last status change (the kubelet writes these
    // before the operator can see the pod failed). Measured from the pod's records and not from when
    // this test saw them, so a slow poll on a busy machine cannot shorten the wait it measures.
    let status = failed.status.clone().unwrap_or_default();
    let finished = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.clone());
    let transitions = status
        .conditions
        .iter()
        .flatten()
        .filter_map(|c| c.last_transition_time.clone());
    let failed_at = finished
        .chain(transitions)
        .map(|t| t.0)
        .max()
        .expect("the failed pod records when its state changed");
    let replacement = eventually(
        Duration::from_secs(60),
        "the failed pod replaced",
        || async {
            match h.api::<Pod>().get_opt("patient-happod").await {
                Ok(Some(p)) if p.uid() != failed.uid() => Ok(p),
                other => Err(format!("{:?}", other.map(|p| p.map(|p| p.uid())))),
            }
        },
    )
    .await;
    let created = replacement
        .metadata
        .creation_timestamp
        .expect("a created pod has a creation time")
        .0;
    // Both in whole seconds, from this machine's clock: 5 s apart at least, less one for the
    // truncation.
    let waited = created.duration_since(failed_at);
    assert!(
        waited >= jiff::SignedDuration::from_secs(4),
        "replaced {waited:?} after the failure, before its 5 s back-off"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_child_the_api_refuses_is_a_condition_and_the_pod_keeps_healing() {
    let h = Harness::start().await;
    // Another service holds a node port (node ports are cluster-wide: the API picks a free one).
    let squatter: Service = serde_json::from_value(json!({
        "metadata": {"name": "squatter"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}], "selector": {"app": "other"}}
    }))
    .unwrap();
    let taken = h
        .api::<Service>()
        .create(&PostParams::default(), &squatter)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.ports?.first()?.node_port)
        .expect("an allocated node port");
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let ask = json!({"spec": {"service": {"jupyterNodePort": taken}}});
    h.hapcontainers()
        .patch(
            "example-hapcontainer",
            &PatchParams::default(),
            &Patch::Merge(&ask),
        )
        .await
        .unwrap();
    let hc = h
        .wait_status("example-hapcontainer", "the refusal reported", |hc| {
            hc.status.as_ref().is_some_and(|s| {
                s.observed_generation == Some(2)
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Configured" && c.reason == "ChildRejected")
            })
        })
        .await;
    let status = hc.status.unwrap();
    let configured = condition_in(&status, "Configured");
    assert_eq!(configured.status, "False");
    assert!(
        configured
            .message
            .contains("provided port is already allocated"),
        "{}",
        configured.message
    );
    assert_eq!(
        status.phase.map(|p| p.as_str()),
        Some("Degraded"),
        "running, but not as asked"
    );
    let port = taken.to_string();
    eventually(Duration::from_secs(10), "a warning event", || {
        has_event(&h, "example-hapcontainer", "ChildRejected", &port)
    })
    .await;
    // The workspace itself still heals.
    let before = pod_uid(&h, POD).await.expect("pod");
    h.api::<Pod>()
        .delete(POD, &DeleteParams::default())
        .await
        .unwrap();
    new_pod_ready(&h, POD, &before).await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn edits_to_children_are_undone() {
    let h = Harness::start().await;
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let conf = "example-hapcontainer-spark-conf";
    let original = h.api::<ConfigMap>().get(conf).await.unwrap().data;
    let edit = json!({"data": {"spark-defaults.conf": "spark.master local[1]\n"}});
    h.api::<ConfigMap>()
        .patch(conf, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let retype = json!({"spec": {"type": "ClusterIP", "ports": [{"name": "jupyter", "port": 8888, "targetPort": "jupyter", "nodePort": null}]}});
    h.api::<Service>()
        .patch(SVC, &PatchParams::default(), &Patch::Merge(&retype))
        .await
        .unwrap();
    eventually(Duration::from_secs(90), "both edits undone", || async {
        let cm = h
            .api::<ConfigMap>()
            .get(conf)
            .await
            .map_err(|e| e.to_string())?;
        let svc = h
            .api::<Service>()
            .get(SVC)
            .await
            .map_err(|e| e.to_string())?;
        let spec = svc.spec.unwrap_or_default();
        let ports = spec.ports.unwrap_or_default().len();
        if cm.data == original && spec.type_.as_deref() == Some("NodePort") && ports == 2 {
            Ok(())
        } else {
            Err(format!(
                "type {:?}, {ports} ports, data restored: {}",
                spec.type_,
                cm.data == original
            ))
        }
    })
    .await;
    h.wait_status("example-hapcontainer", "a Jupyter URL again", |hc| {
        hc.status.as_ref().is_some_and(|s| {
            s.jupyter_url.is_some() && s.phase.map(|p| p.as_str()) == Some("Running")
        })
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_restarted_operator_finds_everything_in_place_and_writes_nothing() {
    let mut h = Harness::start().await;
    for name in ["one", "two", "three"] {
        h.create(&SAMPLE.replace("example-hapcontainer", name))
            .await;
    }
    for name in ["one", "two", "three"] {
        h.wait_phase(name, "Running").await;
    }
    h.stop_controller().await;
    let successes = |h: &Harness| h.successful_reconciles();
    let before = successes(&h);
    h.faults.reset_calls();
    h.run_controller(h.fast_config());
    // Every workspace reconciled at least twice by the new instance (start-up, then a resync).
    eventually(
        Duration::from_secs(30),
        "the restarted operator's reconciles",
        || async {
            let n = successes(&h);
            if n >= before + 6 {
                Ok(())
            } else {
                Err(format!("{} reconciles", n - before))
            }
        },
    )
    .await;
    assert_eq!(
        h.operator_writes(),
        vec![],
        "a restart changes nothing that is in place"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn the_workspace_volume_keeps_its_files_across_spec_changes_and_pod_loss() {
    let h = Harness::start().await;
    h.create(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: keeper
spec:
  volume: {size: 1Gi}
",
    )
    .await;
    h.wait_phase("keeper", "Running").await;
    let file = format!(
        "{}/results.csv",
        hap_operator::hapcontainer::build::pod::WORK_DIR
    );
    h.kubectl(&[
        "exec",
        "keeper-happod",
        "--",
        "sh",
        "-c",
        &format!("echo 'day,aqi' > {file}"),
    ]);
    let first = h.api::<Pod>().get("keeper-happod").await.unwrap().uid();
    // A spec change replaces the pod; then the pod is lost outright.
    let patch = json!({"spec": {"env": [{"name": "HAP_TEST_ROUND", "value": "two"}]}});
    h.hapcontainers()
        .patch("keeper", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    h.wait_status("keeper", "the changed spec running", |hc| {
        hc.status
            .as_ref()
            .is_some_and(|s| s.observed_generation == Some(2) && s.ready.as_deref() == Some("1/1"))
    })
    .await;
    let second = h.api::<Pod>().get("keeper-happod").await.unwrap().uid();
    assert_ne!(first, second, "the spec change made a new pod");
    assert_eq!(
        h.kubectl(&["exec", "keeper-happod", "--", "cat", &file]),
        "day,aqi\n"
    );
    h.api::<Pod>()
        .delete("keeper-happod", &DeleteParams::default())
        .await
        .unwrap();
    new_pod_ready(&h, "keeper-happod", second.as_deref().unwrap()).await;
    assert_eq!(
        h.kubectl(&["exec", "keeper-happod", "--", "cat", &file]),
        "day,aqi\n"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn dropped_watches_and_a_slow_api_still_converge_and_heal() {
    let mut h = Harness::start_idle().await;
    // Every request waits 200 ms; every watch is closed by the server's side after 3 s (as an API
    // server restart closes them), and the first three requests for pods after that (the
    // re-established watch or a relist) fail with a 500.
    h.faults.set_latency(Duration::from_millis(200));
    h.faults.cut_watches_after(Some(Duration::from_secs(3)));
    h.run_controller(h.fast_config());
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.faults.fail_next(Method::GET, "pods", 3, 500);
    h.create(SAMPLE).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let before = pod_uid(&h, POD).await.expect("pod");
    h.api::<Pod>()
        .delete(POD, &DeleteParams::default())
        .await
        .unwrap();
    new_pod_ready(&h, POD, &before).await;
    h.wait_phase("example-hapcontainer", "Running").await;
    let watches = h
        .faults
        .calls()
        .into_iter()
        .filter(|c| c.uri.contains("watch=true"))
        .count();
    // Nine kinds are watched; more than two watches each means they were re-opened after the closes.
    const WATCHED_KINDS: usize = 9;
    assert!(
        watches > 2 * WATCHED_KINDS,
        "the watches were re-opened: {watches}"
    );
    assert_eq!(h.faults.count(Method::GET, "pods", 500), 3);
}
