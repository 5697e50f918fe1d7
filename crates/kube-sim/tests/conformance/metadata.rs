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
    let sent = json!({"metadata": {"name": "x", "uid": "client-chosen", "creationTimestamp": "2001-01-01T00:00:00Z", "resourceVersion": "99999"}});
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
    assert_ne!(obj["metadata"]["resourceVersion"], "99999");

    // Updates cannot change them either.
    let mut changed = obj.clone();
    changed["metadata"]["uid"] = json!("other");
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
