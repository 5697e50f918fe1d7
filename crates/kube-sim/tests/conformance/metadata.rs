//! Object metadata: resourceVersion, optimistic concurrency, uid, creationTimestamp, generateName,
//! namespace checks and generation.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common;

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .parse()
        .expect("numeric")
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_versions_come_from_one_global_counter() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let cm = common::post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "a"}}),
    )
    .await
    .json();
    let secret = common::post(
        &c,
        "/api/v1/namespaces/kube-system/secrets",
        &json!({"metadata": {"name": "b"}}),
    )
    .await
    .json();
    let deploy = common::post(
        &c,
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("web"),
    )
    .await
    .json();
    // Writes to different resources and namespaces are ordered by one counter.
    assert!(
        rv(&cm) < rv(&secret) && rv(&secret) < rv(&deploy),
        "{} {} {}",
        rv(&cm),
        rv(&secret),
        rv(&deploy)
    );
    // A list reports the counter's current value, not its items' versions.
    let list = common::get(&c, "/api/v1/namespaces/default/configmaps")
        .await
        .json();
    let list_rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(list_rv >= rv(&deploy));
    // An update that changes nothing is not a write: the resourceVersion stays.
    let same = common::put(&c, "/api/v1/namespaces/default/configmaps/a", &cm)
        .await
        .json();
    assert_eq!(rv(&same), rv(&cm));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_update_is_a_conflict() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let created = common::post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "cfg"}, "data": {"k": "1"}}),
    )
    .await
    .json();
    let mut first = created.clone();
    first["data"]["k"] = json!("2");
    let updated = common::put(&c, "/api/v1/namespaces/default/configmaps/cfg", &first).await;
    assert_eq!(updated.code, 200, "{}", updated.text);
    assert!(rv(&updated.json()) > rv(&created));

    let mut stale = created.clone();
    stale["data"]["k"] = json!("3");
    let s = common::put(&c, "/api/v1/namespaces/default/configmaps/cfg", &stale).await.assert_status(
        409,
        "Conflict",
        "Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again",
    );
    assert_eq!(s["details"], json!({"name": "cfg", "kind": "configmaps"}));

    // A merge patch naming a stale resourceVersion is a precondition, and fails the same way.
    let p = common::patch(&c, "/api/v1/namespaces/default/configmaps/cfg", "application/merge-patch+json",
        &json!({"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"k": "4"}})).await;
    assert_eq!(p.code, 409, "{}", p.text);

    // Without a resourceVersion, a built-in object is updated unconditionally.
    let mut blind = created.clone();
    blind["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    blind["data"]["k"] = json!("5");
    let r = common::put(&c, "/api/v1/namespaces/default/configmaps/cfg", &blind).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["k"], "5");

    // kube-rs sees the same 409.
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let stale_typed: ConfigMap = serde_json::from_value(stale).unwrap();
    let kube::Error::Api(e) = api
        .replace("cfg", &PostParams::default(), &stale_typed)
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_owns_uid_creation_timestamp_and_resource_version() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let sent = json!({"metadata": {"name": "x", "uid": "client-chosen", "creationTimestamp": "2001-01-01T00:00:00Z"}});
    let created = common::post(&c, "/api/v1/namespaces/default/configmaps", &sent).await;
    assert_eq!(created.code, 201, "{}", created.text);
    let obj = created.json();
    let uid = obj["metadata"]["uid"].as_str().unwrap().to_string();
    assert_ne!(uid, "client-chosen");
    assert_eq!(uid.len(), 36, "a UUID: {uid}");
    let ts = obj["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(ts, "2001-01-01T00:00:00Z");
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");

    // An update cannot change the creationTimestamp, and one without a uid keeps the stored one.
    let mut changed = obj.clone();
    changed["metadata"].as_object_mut().unwrap().remove("uid");
    changed["metadata"]["creationTimestamp"] = json!("2001-01-01T00:00:00Z");
    changed["data"] = json!({"a": "b"});
    let updated = common::put(&c, "/api/v1/namespaces/default/configmaps/x", &changed)
        .await
        .json();
    assert_eq!(updated["metadata"]["uid"], uid.as_str());
    assert_eq!(updated["metadata"]["creationTimestamp"], ts.as_str());
    assert_eq!(updated["data"]["a"], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_naming_a_resource_version_is_refused_by_storage() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    // Storage's plain error, passed on as a 500 without a reason.
    let s = common::post(
        &c,
        cms,
        &json!({"metadata": {"name": "x", "resourceVersion": "99999"}}),
    )
    .await
    .assert_status(
        500,
        "",
        "resourceVersion should not be set on objects to be created",
    );
    assert!(s.get("details").is_none(), "{s}");
    assert_eq!(common::get(&c, &format!("{cms}/x")).await.code, 404);
    // A dry run never reaches storage, and "0" is no resourceVersion.
    let dry = common::post(
        &c,
        &format!("{cms}?dryRun=All"),
        &json!({"metadata": {"name": "x", "resourceVersion": "99999"}}),
    )
    .await;
    assert_eq!(dry.code, 201, "{}", dry.text);
    let zero = common::post(
        &c,
        cms,
        &json!({"metadata": {"name": "x", "resourceVersion": "0"}}),
    )
    .await;
    assert_eq!(zero.code, 201, "{}", zero.text);
    assert_ne!(zero.json()["metadata"]["resourceVersion"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uid_in_an_update_is_a_precondition_and_a_patch_cannot_change_it() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let path = "/api/v1/namespaces/default/configmaps/x";
    let obj = common::post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "x"}}),
    )
    .await
    .json();
    let uid = obj["metadata"]["uid"].as_str().unwrap();
    let mut other = obj.clone();
    other["metadata"]["uid"] = json!("other");
    other["data"] = json!({"a": "b"});
    let s = common::put(&c, path, &other).await.assert_status(
        409,
        "Conflict",
        &format!("Operation cannot be fulfilled on configmaps \"x\": StorageError: invalid object, Code: 4, Key: /registry/configmaps/default/x, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: other, UID in object meta: {uid}"),
    );
    assert_eq!(s["details"], json!({"name": "x", "kind": "configmaps"}));
    // The precondition is checked before the resourceVersion.
    other["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(
        common::put(&c, path, &other).await.json()["message"],
        s["message"]
    );
    let s = common::patch(
        &c,
        path,
        "application/merge-patch+json",
        &json!({"metadata": {"uid": "other"}}),
    )
    .await
    .assert_status(
        422,
        "Invalid",
        "ConfigMap \"x\" is invalid: metadata.uid: Invalid value: \"other\": field is immutable",
    );
    assert_eq!(
        s["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "message": "Invalid value: \"other\": field is immutable", "field": "metadata.uid"})
    );
    let unchanged = common::get(&c, path).await.json();
    assert_eq!(
        unchanged["metadata"]["resourceVersion"],
        obj["metadata"]["resourceVersion"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_makes_a_unique_name_and_a_name_is_required() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let r = common::post(
            &c,
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"generateName": "job-"}}),
        )
        .await;
        assert_eq!(r.code, 201, "{}", r.text);
        let obj = r.json();
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        assert!(
            name.starts_with("job-") && name.len() == "job-".len() + 5,
            "{name}"
        );
        assert_eq!(obj["metadata"]["generateName"], "job-");
        assert!(seen.insert(name));
    }
    let s = common::post(&c, "/api/v1/namespaces/default/configmaps", &json!({"metadata": {}})).await.assert_status(
        422,
        "Invalid",
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required",
    );
    assert_eq!(
        s["details"]["causes"][0],
        json!({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_checked_on_every_write() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    // The body's namespace must match the URL's.
    common::post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "a", "namespace": "kube-system"}}),
    )
    .await
    .assert_status(
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    );
    // An empty one is filled from the URL.
    let r = common::post(
        &c,
        "/api/v1/namespaces/kube-system/configmaps",
        &json!({"metadata": {"name": "a"}}),
    )
    .await
    .json();
    assert_eq!(r["metadata"]["namespace"], "kube-system");
    // The namespace must exist.
    let s = common::post(
        &c,
        "/api/v1/namespaces/nowhere/configmaps",
        &json!({"metadata": {"name": "a"}}),
    )
    .await
    .assert_status(404, "NotFound", "namespaces \"nowhere\" not found");
    assert_eq!(
        s["details"],
        json!({"name": "nowhere", "kind": "namespaces"})
    );
    // Cluster-scoped objects carry no namespace.
    let ns = common::post(
        &c,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": "team", "namespace": "default"}}),
    )
    .await
    .json();
    assert!(ns["metadata"].get("namespace").is_none(), "{ns}");
    // A namespaced resource cannot be addressed without a namespace, except to list across all.
    assert_eq!(
        common::post(
            &c,
            "/api/v1/configmaps",
            &json!({"metadata": {"name": "b"}})
        )
        .await
        .code,
        404
    );
    let all = common::get(&c, "/api/v1/configmaps").await.json();
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["namespace"] == "kube-system" && i["metadata"]["name"] == "a")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_counts_spec_changes_only() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Workloads, false);
    let c = sim.admin_client().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let created = common::post(
        &c,
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("web"),
    )
    .await
    .json();
    assert_eq!(created["metadata"]["generation"], 1);

    let pp = PatchParams::default();
    let labelled = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata is not spec"
    );
    let status = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": 1, "replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1), "status is not spec");
    let scaled = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    let again = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.generation,
        Some(2),
        "a no-op is not a change"
    );
    assert_eq!(
        again.metadata.resource_version,
        scaled.metadata.resource_version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_counts_annotation_changes_as_a_replica_set_does_not() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Workloads, false);
    let c = sim.admin_client().await.unwrap();
    common::post(
        &c,
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("web"),
    )
    .await;
    let mut rs = deployment("web-rs");
    rs["kind"] = json!("ReplicaSet");
    common::post(&c, "/apis/apps/v1/namespaces/default/replicasets", &rs).await;
    let annotate = json!({"metadata": {"annotations": {"note": "a"}}});
    // Deployment annotations are copied to its ReplicaSets, so its strategy counts them as a change.
    let d = common::patch(
        &c,
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/merge-patch+json",
        &annotate,
    )
    .await
    .json();
    assert_eq!(d["metadata"]["generation"], 2, "{d}");
    let r = common::patch(
        &c,
        "/apis/apps/v1/namespaces/default/replicasets/web-rs",
        "application/merge-patch+json",
        &annotate,
    )
    .await
    .json();
    assert_eq!(r["metadata"]["generation"], 1, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_an_object_for_deletion_bumps_its_generation() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Workloads, false);
    sim.set_controller(kube_sim::Controller::Kubelet, false);
    let c = sim.admin_client().await.unwrap();
    let mut d = deployment("web");
    d["metadata"]["finalizers"] = json!(["example.com/hold"]);
    common::post(&c, "/apis/apps/v1/namespaces/default/deployments", &d).await;
    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let marked = common::delete(&c, path, None).await.json();
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    assert_eq!(marked["metadata"]["generation"], 2, "{marked}");
    // Only the first delete marks it.
    let again = common::delete(&c, path, None).await.json();
    assert_eq!(again["metadata"]["generation"], 2, "{again}");

    // A graceful pod deletion marks the pod the same way.
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    common::post(&c, "/api/v1/namespaces/default/pods", &pod).await;
    let pod_path = "/api/v1/namespaces/default/pods/p";
    common::eventually("the pod is scheduled", || async {
        let p = common::get(&c, pod_path).await.json();
        p["spec"]["nodeName"].is_string().then_some(())
    })
    .await;
    let terminating = common::delete(&c, pod_path, None).await.json();
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(terminating["metadata"]["generation"], 2, "{terminating}");

    // Kinds without a generation get none.
    let cm = json!({"metadata": {"name": "cm", "finalizers": ["example.com/hold"]}});
    common::post(&c, "/api/v1/namespaces/default/configmaps", &cm).await;
    let cm = common::delete(&c, "/api/v1/namespaces/default/configmaps/cm", None)
        .await
        .json();
    assert!(cm["metadata"]["deletionTimestamp"].is_string(), "{cm}");
    assert!(cm["metadata"].get("generation").is_none(), "{cm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconditional_writes_that_race_other_writers_are_retried_not_refused() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let svc = json!({"metadata": {"name": "s", "finalizers": ["example.com/hold"]},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "s"}}});
    let created = common::post(&c, "/api/v1/namespaces/default/services", &svc).await;
    assert_eq!(created.code, 201, "{}", created.text);
    let mut base = created.json();
    base["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    // Concurrent PUTs without a resourceVersion and deletes without preconditions each read the
    // object before another one's write lands; the apiserver's storage retries them all.
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..12 {
        let c = c.clone();
        let mut body = base.clone();
        body["metadata"]["labels"] = json!({format!("writer-{i}"): "yes"});
        writers.spawn(async move {
            let path = "/api/v1/namespaces/default/services/s";
            let r = if i % 3 == 0 {
                common::delete(&c, path, None).await
            } else {
                common::put(&c, path, &body).await
            };
            (i, r.code, r.text)
        });
    }
    while let Some(done) = writers.join_next().await {
        let (i, code, text) = done.unwrap();
        assert_eq!(code, 200, "writer {i}: {text}");
    }
}
