//! Deletion: finalizers and deletionTimestamp, preconditions, what DELETE answers, propagation policies
//! and garbage collection through ownerReferences.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};
use serde_json::{Value, json};

use crate::common::{self, eventually};

const CM: &str = "/api/v1/namespaces/default/configmaps";

async fn create(c: &kube::Client, body: Value) -> Value {
    let r = common::post(c, CM, &body).await;
    assert_eq!(r.code, 201, "{}", r.text);
    r.json()
}

fn owned_by(name: &str, owner: &Value, block: bool) -> Value {
    json!({"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block
    }]}})
}

async fn gone(c: &kube::Client, name: &str) -> bool {
    common::get(c, &format!("{CM}/{name}")).await.code == 404
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_a_deleted_object_until_they_are_removed() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    create(
        &c,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/cleanup"]}}),
    )
    .await;
    let r = common::delete(&c, &format!("{CM}/held"), None).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let marked = common::get(&c, &format!("{CM}/held")).await.json();
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["example.com/cleanup"])
    );

    // Deleting again changes nothing; adding a finalizer now is forbidden.
    assert_eq!(
        common::delete(&c, &format!("{CM}/held"), None).await.code,
        200
    );
    let mut more = marked.clone();
    more["metadata"]["finalizers"] = json!(["example.com/cleanup", "example.com/late"]);
    common::put(&c, &format!("{CM}/held"), &more).await.assert_status(
        422,
        "Invalid",
        "ConfigMap \"held\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/late\"}",
    );
    // Other updates are still allowed while it waits.
    let mut labelled = marked.clone();
    labelled["metadata"]["labels"] = json!({"still": "writable"});
    assert_eq!(
        common::put(&c, &format!("{CM}/held"), &labelled).await.code,
        200
    );

    // Removing the last finalizer completes the deletion.
    let r = common::patch(
        &c,
        &format!("{CM}/held"),
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(gone(&c, "held").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_answers_with_a_status_or_the_object_and_honours_preconditions() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let cm = create(&c, json!({"metadata": {"name": "p"}})).await;
    let uid = cm["metadata"]["uid"].as_str().unwrap();
    let rv = cm["metadata"]["resourceVersion"].as_str().unwrap();

    common::delete(&c, &format!("{CM}/p"), Some(&json!({"preconditions": {"uid": "not-the-uid"}}))).await.assert_status(
        409,
        "Conflict",
        &format!("Operation cannot be fulfilled on configmaps \"p\": StorageError: invalid object, Code: 4, Key: /registry/configmaps/default/p, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"),
    );
    common::delete(&c, &format!("{CM}/p"), Some(&json!({"preconditions": {"resourceVersion": "1"}}))).await.assert_status(
        409,
        "Conflict",
        &format!("Operation cannot be fulfilled on configmaps \"p\": StorageError: invalid object, Code: 4, Key: /registry/configmaps/default/p, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}"),
    );
    common::delete(&c, &format!("{CM}/p"), Some(&json!({"propagationPolicy": "Later"}))).await.assert_status(
        422,
        "Invalid",
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Later\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
    );
    // Matching preconditions: deleted, answered with a Success Status naming it.
    let r = common::delete(
        &c,
        &format!("{CM}/p"),
        Some(&json!({"preconditions": {"uid": uid, "resourceVersion": rv}})),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let s = r.json();
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["status"], "Success");
    assert_eq!(
        s["details"],
        json!({"name": "p", "kind": "configmaps", "uid": uid})
    );
    common::delete(&c, &format!("{CM}/p"), None)
        .await
        .assert_status(404, "NotFound", "configmaps \"p\" not found");

    // Pods answer with the deleted object instead (kube-rs tells the two apart).
    sim.set_controller(kube_sim::Controller::Scheduler, false);
    let pod = json!({"metadata": {"name": "pod"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    assert_eq!(
        common::post(&c, "/api/v1/namespaces/default/pods", &pod)
            .await
            .code,
        201
    );
    let r = common::delete(&c, "/api/v1/namespaces/default/pods/pod", None)
        .await
        .json();
    assert_eq!(r["kind"], "Pod");
    // kube-rs preconditions.
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let made = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "q"}})).unwrap(),
        )
        .await
        .unwrap();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: made.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert!(api.delete("q", &dp).await.unwrap().is_right());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_propagation_lets_the_garbage_collector_delete_dependents() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let owner = create(&c, json!({"metadata": {"name": "owner"}})).await;
    create(&c, owned_by("child-1", &owner, false)).await;
    create(&c, owned_by("child-2", &owner, true)).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert!(gone(&c, "owner").await, "the owner goes at once");
    eventually("the dependents are collected", || async {
        (gone(&c, "child-1").await && gone(&c, "child-2").await).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_propagation_deletes_blocking_dependents_before_the_owner() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let owner = create(&c, json!({"metadata": {"name": "owner"}})).await;
    let mut blocker = owned_by("blocker", &owner, true);
    blocker["metadata"]["finalizers"] = json!(["example.com/slow"]);
    create(&c, blocker).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let r = api
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    let marked = r.left().expect("the owner waits");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(
        marked
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );

    // The dependent is being deleted, and the owner waits for it.
    eventually("the blocking dependent is being deleted", || async {
        let b = common::get(&c, &format!("{CM}/blocker")).await.json();
        b["metadata"]["deletionTimestamp"].is_string().then_some(())
    })
    .await;
    assert!(
        !gone(&c, "owner").await,
        "the owner waits for its blocking dependent"
    );
    common::patch(
        &c,
        &format!("{CM}/blocker"),
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    eventually("dependent then owner are gone", || async {
        (gone(&c, "blocker").await && gone(&c, "owner").await).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_propagation_keeps_dependents_and_drops_their_owner_reference() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let owner = create(&c, json!({"metadata": {"name": "owner"}})).await;
    create(&c, owned_by("orphan", &owner, true)).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    eventually("the owner is gone", || async {
        gone(&c, "owner").await.then_some(())
    })
    .await;
    let orphan = api.get("orphan").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .is_none_or(|r| r.is_empty()),
        "the reference is removed"
    );
    assert!(orphan.metadata.deletion_timestamp.is_none());
    // The legacy orphanDependents flag means the same.
    let owner2 = create(&c, json!({"metadata": {"name": "owner2"}})).await;
    create(&c, owned_by("orphan2", &owner2, false)).await;
    let r = common::delete(
        &c,
        &format!("{CM}/owner2"),
        Some(&json!({"orphanDependents": true})),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    eventually("owner2 is gone", || async {
        gone(&c, "owner2").await.then_some(())
    })
    .await;
    assert!(!gone(&c, "orphan2").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_garbage_collector_deletes_objects_whose_owners_do_not_exist() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let phantom =
        json!({"metadata": {"name": "nobody", "uid": "00000000-0000-4000-8000-000000000000"}});
    create(&c, owned_by("stray", &phantom, false)).await;
    let alive = create(&c, json!({"metadata": {"name": "alive"}})).await;
    // One live owner among dead ones: the object stays and only the dead reference goes.
    let mut mixed = owned_by("mixed", &alive, false);
    let dead = owned_by("x", &phantom, false)["metadata"]["ownerReferences"][0].clone();
    mixed["metadata"]["ownerReferences"]
        .as_array_mut()
        .unwrap()
        .push(dead);
    create(&c, mixed).await;
    eventually("the stray dependent is collected", || async {
        gone(&c, "stray").await.then_some(())
    })
    .await;
    let kept = common::get(&c, &format!("{CM}/mixed")).await.json();
    assert_eq!(kept["metadata"]["ownerReferences"][0]["name"], "alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_collection_deletes_what_the_selector_matches() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    for (n, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        create(
            &c,
            json!({"metadata": {"name": n, "labels": {"tier": tier}}}),
        )
        .await;
    }
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.delete_collection(
        &DeleteParams::default(),
        &kube::api::ListParams::default().labels("tier=x"),
    )
    .await
    .unwrap();
    assert!(gone(&c, "a").await && gone(&c, "b").await);
    assert!(!gone(&c, "c").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_finalizer_helper_adds_then_removes_its_finalizer() {
    use kube::runtime::controller::Action;
    use kube::runtime::finalizer::{Event, finalizer};
    use std::sync::Arc;

    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "f"}})).unwrap(),
    )
    .await
    .unwrap();
    let name = "example.com/cleanup";
    // The helper adds its finalizer with a JSON patch that tests the finalizer list first.
    let obj = Arc::new(api.get("f").await.unwrap());
    finalizer(&api, name, obj, |_e: Event<ConfigMap>| async {
        Ok::<_, std::io::Error>(Action::await_change())
    })
    .await
    .unwrap();
    let with = api.get("f").await.unwrap();
    assert_eq!(
        with.metadata.finalizers.as_deref(),
        Some(&[name.to_string()][..])
    );

    api.delete("f", &DeleteParams::default()).await.unwrap();
    let deleting = Arc::new(api.get("f").await.unwrap());
    assert!(deleting.metadata.deletion_timestamp.is_some());
    let mut cleaned = false;
    finalizer(&api, name, deleting, |e: Event<ConfigMap>| {
        cleaned = matches!(e, Event::Cleanup(_));
        async { Ok::<_, std::io::Error>(Action::await_change()) }
    })
    .await
    .unwrap();
    assert!(cleaned, "the helper saw a cleanup");
    assert!(
        gone(&c, "f").await,
        "removing the last finalizer completed the deletion"
    );

    // kube-rs's JSON patch type, directly: a failed test operation is the apiserver's 422.
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "g"}, "data": {"a": "1"}})).unwrap(),
    )
    .await
    .unwrap();
    let ops: json_patch::Patch = serde_json::from_value(json!([{"op": "test", "path": "/data/a", "value": "2"}, {"op": "remove", "path": "/data/a"}])).unwrap();
    let kube::Error::Api(e) = api
        .patch(
            "g",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Json::<()>(ops),
        )
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
}
