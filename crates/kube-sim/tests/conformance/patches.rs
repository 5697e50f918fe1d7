//! PATCH in its four forms: JSON merge patch, JSON patch, strategic merge patch and server-side apply.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::common;

const CM: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";

async fn config_map(c: &kube::Client, name: &str, data: Value) -> Value {
    let r = common::post(c, CM, &json!({"metadata": {"name": name}, "data": data})).await;
    assert_eq!(r.code, 201, "{}", r.text);
    r.json()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [
                    {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080, "name": "http"}],
                     "env": [{"name": "MODE", "value": "a"}, {"name": "KEEP", "value": "k"}],
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                    {"name": "sidecar", "image": "sidecar:1"}
                ],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]
            }}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_merge_patch_merges_maps_removes_nulls_and_replaces_lists() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Workloads, false);
    let c = sim.admin_client().await.unwrap();
    config_map(&c, "m", json!({"keep": "1", "change": "1", "drop": "1"})).await;
    let r = common::patch(
        &c,
        &format!("{CM}/m"),
        "application/merge-patch+json",
        &json!({"data": {"change": "2", "drop": null, "add": "3"}}),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(
        r.json()["data"],
        json!({"keep": "1", "change": "2", "add": "3"})
    );

    assert_eq!(common::post(&c, DEPLOY, &deployment()).await.code, 201);
    let containers = json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "only:1"}]}}}});
    let d = common::patch(
        &c,
        &format!("{DEPLOY}/web"),
        "application/merge-patch+json",
        &containers,
    )
    .await
    .json();
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["only"], "a merge patch replaces lists whole");
    // The merged result is defaulted like any write.
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );

    common::patch(
        &c,
        &format!("{CM}/absent"),
        "application/merge-patch+json",
        &json!({"data": {}}),
    )
    .await
    .assert_status(404, "NotFound", "configmaps \"absent\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_applies_operations_in_order() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    config_map(&c, "j", json!({"a": "1", "b": "2"})).await;
    let ops = json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "remove", "path": "/data/b"},
        {"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}},
        {"op": "copy", "from": "/data/a", "path": "/data/c"}
    ]);
    let r = common::patch(&c, &format!("{CM}/j"), "application/json-patch+json", &ops).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let obj = r.json();
    assert_eq!(obj["data"], json!({"a": "10", "c": "10"}));
    assert_eq!(obj["metadata"]["labels"]["patched"], "yes");

    // A failed operation rejects the whole patch, as the apiserver words it (its message hides the cause).
    let failing = json!([{"op": "replace", "path": "/data/a", "value": "x"}, {"op": "test", "path": "/data/a", "value": "nope"}]);
    common::patch(
        &c,
        &format!("{CM}/j"),
        "application/json-patch+json",
        &failing,
    )
    .await
    .assert_status(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    assert_eq!(
        common::get(&c, &format!("{CM}/j")).await.json()["data"]["a"],
        "10",
        "nothing was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_patch_merges_lists_by_their_merge_keys() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Workloads, false);
    let c = sim.admin_client().await.unwrap();
    assert_eq!(common::post(&c, DEPLOY, &deployment()).await.code, 201);
    let smp = json!({"spec": {"template": {"spec": {
        "containers": [{
            "name": "app",
            "image": "app:2",
            "ports": [{"containerPort": 9090, "name": "metrics"}],
            "env": [{"name": "MODE", "value": "b"}, {"name": "NEW", "value": "n"}]
        }],
        "volumes": [{"name": "cache", "$patch": "delete"}, {"name": "tmp", "emptyDir": {}}]
    }}}});
    let r = common::patch(
        &c,
        &format!("{DEPLOY}/web"),
        "application/strategic-merge-patch+json",
        &smp,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let spec = &r.json()["spec"]["template"]["spec"];
    let by_name = |list: &Value, key: &str, name: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i[key] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    // containers merge by name: the patched one changes, the other stays.
    assert_eq!(spec["containers"].as_array().unwrap().len(), 2);
    let app = by_name(&spec["containers"], "name", "app");
    assert_eq!(app["image"], "app:2");
    assert_eq!(
        by_name(&spec["containers"], "name", "sidecar")["image"],
        "sidecar:1"
    );
    // ports merge by containerPort.
    let ports: Vec<i64> = app["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_i64().unwrap())
        .collect();
    assert_eq!(ports.len(), 2);
    assert!(ports.contains(&8080) && ports.contains(&9090));
    // env merges by name.
    assert_eq!(by_name(&app["env"], "name", "MODE")["value"], "b");
    assert_eq!(by_name(&app["env"], "name", "KEEP")["value"], "k");
    assert_eq!(by_name(&app["env"], "name", "NEW")["value"], "n");
    // volumes merge by name, and `$patch: delete` removes one.
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        volumes.contains(&"data") && volumes.contains(&"tmp") && !volumes.contains(&"cache"),
        "{volumes:?}"
    );

    // kube-rs's Patch::Strategic is the same request.
    let api: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "sidecar:2"}]}}}})))
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2);
    assert_eq!(
        containers
            .iter()
            .find(|c| c.name == "sidecar")
            .unwrap()
            .image
            .as_deref(),
        Some("sidecar:2")
    );

    // Custom resources have no patch strategy: strategic merge patch is refused for them.
    crate::crds::install(&c, &crate::crds::widget_crd()).await;
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1, "colour": "red"}});
    assert_eq!(
        common::post(&c, "/apis/example.com/v1/namespaces/default/widgets", &w)
            .await
            .code,
        201
    );
    let s = common::patch(
        &c,
        "/apis/example.com/v1/namespaces/default/widgets/w",
        "application/strategic-merge-patch+json",
        &json!({"spec": {"size": 2}}),
    )
    .await;
    assert_eq!(s.code, 415, "{}", s.text);
    assert_eq!(s.json()["reason"], "UnsupportedMediaType");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_needs_a_field_manager_and_records_managed_fields() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    common::patch(&c, &format!("{CM}/ssa"), "application/apply-patch+yaml", &body).await.assert_status(
        422,
        "Invalid",
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
    );
    common::patch(&c, &format!("{CM}/ssa?force=true"), "application/merge-patch+json", &json!({})).await.assert_status(
        422,
        "Invalid",
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
    );

    // Apply creates the object when it is absent.
    let created = common::patch(
        &c,
        &format!("{CM}/ssa?fieldManager=alice"),
        "application/apply-patch+yaml",
        &body,
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.text);
    let obj = created.json();
    let managed = &obj["metadata"]["managedFields"];
    assert_eq!(managed.as_array().unwrap().len(), 1);
    assert_eq!(managed[0]["manager"], "alice");
    assert_eq!(managed[0]["operation"], "Apply");
    assert_eq!(managed[0]["apiVersion"], "v1");
    assert_eq!(managed[0]["fieldsType"], "FieldsV1");
    assert_eq!(managed[0]["fieldsV1"], json!({"f:data": {"f:a": {}}}));

    // An update by another manager is recorded beside it.
    let updated = common::patch(
        &c,
        &format!("{CM}/ssa?fieldManager=bob"),
        "application/merge-patch+json",
        &json!({"data": {"b": "2"}}),
    )
    .await
    .json();
    let entries = updated["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .clone();
    let bob = entries
        .iter()
        .find(|e| e["manager"] == "bob")
        .expect("bob's entry");
    assert_eq!(bob["operation"], "Update");
    assert_eq!(bob["fieldsV1"], json!({"f:data": {"f:b": {}}}));

    // Re-applying without a field drops it, as the applier no longer wants it; other managers' fields stay.
    let reapplied = common::patch(
        &c,
        &format!("{CM}/ssa?fieldManager=alice"),
        "application/apply-patch+yaml",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"c": "3"}}),
    )
    .await
    .json();
    assert_eq!(reapplied["data"], json!({"b": "2", "c": "3"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_reports_conflicts_unless_forced() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let apply = |data: Value| {
        serde_json::from_value::<ConfigMap>(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"}, "data": data})).unwrap()
    };
    api.patch(
        "owned",
        &PatchParams::apply("alice"),
        &Patch::Apply(apply(json!({"k": "alice", "j": "alice"}))),
    )
    .await
    .unwrap();

    // Bob applies a different value for a field Alice owns: 409, one cause per field.
    let err = api
        .patch(
            "owned",
            &PatchParams::apply("bob"),
            &Patch::Apply(apply(json!({"k": "bob", "j": "bob"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .data.j\n- .data.k"
    );
    let details = status.details.unwrap();
    assert_eq!(details.causes.len(), 2);
    assert_eq!(details.causes[0].reason, "FieldManagerConflict");
    assert_eq!(details.causes[0].message, "conflict with \"alice\"");
    assert_eq!(details.causes[0].field, ".data.j");
    // Applying the same value is no conflict: the field becomes shared.
    api.patch(
        "owned",
        &PatchParams::apply("bob"),
        &Patch::Apply(apply(json!({"k": "alice"}))),
    )
    .await
    .unwrap();

    // Forced, Bob takes the field over.
    let forced = api
        .patch(
            "owned",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(apply(json!({"j": "bob"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["j"], "bob");
    let alice = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("alice"))
        .unwrap();
    let owned = serde_json::to_value(alice.fields_v1.unwrap()).unwrap();
    assert_eq!(owned, json!({"f:data": {"f:k": {}}}), "alice lost .data.j");

    // A conflict with a non-apply (Update) manager names the operation and version.
    api.patch(
        "owned",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"u": "1"}})),
    )
    .await
    .unwrap();
    let err = api
        .patch(
            "owned",
            &PatchParams::apply("carol"),
            &Patch::Apply(apply(json!({"u": "2"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 409);
    assert!(
        status
            .message
            .starts_with("Apply failed with 1 conflict: conflict with \""),
        "{}",
        status.message
    );
    assert!(
        status.message.ends_with("\" using v1: .data.u"),
        "{}",
        status.message
    );
}
