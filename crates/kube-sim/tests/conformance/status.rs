//! The status subresource: the main endpoint ignores status and /status ignores everything else.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common;

fn deployment() -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"v": "1"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}},
        "status": {"replicas": 42}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_endpoint_ignores_status_and_status_ignores_spec_for_built_ins() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Workloads, false);
    let c = sim.admin_client().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let created = api
        .create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    assert_eq!(
        created.status.as_ref().and_then(|s| s.replicas),
        None,
        "status sent on create is dropped"
    );

    // A main-resource write that changes status and spec: only spec changes.
    let mut main = serde_json::to_value(&created).unwrap();
    main["spec"]["replicas"] = json!(2);
    main["status"] = json!({"replicas": 7});
    let r = common::put(
        &c,
        "/apis/apps/v1/namespaces/default/deployments/web",
        &main,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let after_main = r.json();
    assert_eq!(after_main["spec"]["replicas"], 2);
    assert!(
        after_main["status"].get("replicas").is_none(),
        "{}",
        after_main["status"]
    );

    // A /status write that changes status, spec and labels: only status changes.
    let mut status = after_main.clone();
    status["spec"]["replicas"] = json!(5);
    status["metadata"]["labels"]["v"] = json!("2");
    status["status"] = json!({"replicas": 3, "observedGeneration": 2});
    let r = common::put(
        &c,
        "/apis/apps/v1/namespaces/default/deployments/web/status",
        &status,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let after_status = r.json();
    assert_eq!(after_status["status"]["replicas"], 3);
    assert_eq!(after_status["spec"]["replicas"], 2);
    assert_eq!(after_status["metadata"]["labels"]["v"], "1");
    assert_eq!(
        after_status["metadata"]["generation"],
        after_main["metadata"]["generation"]
    );

    // Patches follow the same split, through kube-rs too.
    let pp = PatchParams::default();
    let patched = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().replicas, Some(3));
    let patched = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"readyReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(2));
    assert_eq!(patched.status.as_ref().unwrap().ready_replicas, Some(1));
    // GET on /status is the whole object.
    let got = api.get_status("web").await.unwrap();
    assert_eq!(got.status.unwrap().ready_replicas, Some(1));
    assert_eq!(got.spec.unwrap().replicas, Some(2));

    // Server-side apply on /status owns status fields only.
    let applied = api
        .patch_status(
            "web",
            &PatchParams::apply("status-writer"),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 9}, "status": {"availableReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(2));
    assert_eq!(applied.status.unwrap().available_replicas, Some(1));
    let entry = applied
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("status-writer"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(
        serde_json::to_value(entry.fields_v1.unwrap()).unwrap(),
        json!({"f:status": {"f:availableReplicas": {}}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_split_status_only_when_their_crd_declares_it() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    crate::crds::install(&c, &crate::crds::widget_crd()).await;
    crate::crds::install(&c, &crate::crds::gadget_crd()).await;
    let base = "/apis/example.com/v1/namespaces/default/widgets";
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1, "colour": "red"}, "status": {"phase": "Sneaky"}});
    let created = common::post(&c, base, &w).await;
    assert_eq!(created.code, 201, "{}", created.text);
    assert!(created.json().get("status").is_none(), "{}", created.text);

    let s = common::patch(
        &c,
        &format!("{base}/w/status"),
        "application/merge-patch+json",
        &json!({"spec": {"size": 5}, "status": {"phase": "Ready"}}),
    )
    .await;
    assert_eq!(s.code, 200, "{}", s.text);
    assert_eq!(s.json()["status"]["phase"], "Ready");
    assert_eq!(s.json()["spec"]["size"], 1);
    let m = common::patch(
        &c,
        &format!("{base}/w"),
        "application/merge-patch+json",
        &json!({"spec": {"size": 2}, "status": {"phase": "Gone"}}),
    )
    .await
    .json();
    assert_eq!(m["spec"]["size"], 2);
    assert_eq!(m["status"]["phase"], "Ready");
    assert_eq!(m["metadata"]["generation"], 2, "spec changed once");

    // A version without the status subresource has no /status endpoint; status is an ordinary field.
    let gadgets = "/apis/example.com/v1/namespaces/default/gadgets";
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "status": {"phase": "Set"}});
    let created = common::post(&c, gadgets, &g).await;
    assert_eq!(created.code, 201, "{}", created.text);
    assert_eq!(created.json()["status"]["phase"], "Set");
    common::get(&c, &format!("{gadgets}/g/status"))
        .await
        .assert_status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_subresource_reads_and_writes_only_replicas() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Workloads, false);
    let c = sim.admin_client().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(c.clone(), "default");
    api.create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );
    assert_eq!(scale.metadata.name.as_deref(), Some("web"));

    let patched = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(4));
    let d = api.get("web").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(4));
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "a replica change is a spec change"
    );
    let entry = d
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.subresource.as_deref() == Some("scale"))
        .expect("a scale entry");
    assert_eq!(
        serde_json::to_value(entry.fields_v1.unwrap()).unwrap(),
        json!({"f:spec": {"f:replicas": {}}})
    );

    // PUT with a stale resourceVersion conflicts on the parent; negative replicas are invalid.
    let mut stale = serde_json::to_value(&scale).unwrap();
    stale["spec"]["replicas"] = json!(2);
    common::put(&c, "/apis/apps/v1/namespaces/default/deployments/web/scale", &stale).await.assert_status(
        409,
        "Conflict",
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again",
    );
    common::patch(&c, "/apis/apps/v1/namespaces/default/deployments/web/scale", "application/merge-patch+json", &json!({"spec": {"replicas": -1}}))
        .await
        .assert_status(422, "Invalid", "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");

    // A custom resource scales through the paths its CRD names.
    let mut crd = crate::crds::gadget_crd();
    crd["spec"]["versions"][0]["subresources"] = json!({"scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.ready", "labelSelectorPath": ".status.selector"}});
    crate::crds::install(&c, &crd).await;
    let gadgets = "/apis/example.com/v1/namespaces/default/gadgets";
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 2}, "status": {"ready": 1, "selector": "app=g"}});
    assert_eq!(common::post(&c, gadgets, &g).await.code, 201);
    let s = common::get(&c, &format!("{gadgets}/g/scale")).await.json();
    assert_eq!(s["spec"]["replicas"], 2);
    assert_eq!(s["status"], json!({"replicas": 1, "selector": "app=g"}));
    let r = common::patch(
        &c,
        &format!("{gadgets}/g/scale"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 5}}),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(
        common::get(&c, &format!("{gadgets}/g")).await.json()["spec"]["size"],
        5
    );
}
