//! Discovery, /version, OpenAPI, Table output and the cluster's starting contents.

use std::collections::BTreeSet;

use axum::http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::common::{self, eventually};

fn names(list: &Value) -> BTreeSet<String> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_discovery_lists_every_served_group_version_and_resource() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();

    let api = common::get(&c, "/api").await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));

    let core = common::get(&c, "/api/v1").await.json();
    assert_eq!(core["kind"], "APIResourceList");
    assert_eq!(core["groupVersion"], "v1");
    let core_names = names(&core);
    for r in [
        "namespaces",
        "pods",
        "pods/status",
        "pods/binding",
        "pods/eviction",
        "services",
        "services/status",
        "endpoints",
        "secrets",
        "configmaps",
        "serviceaccounts",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "events",
        "nodes",
        "nodes/status",
        "namespaces/status",
        "namespaces/finalize",
    ] {
        assert!(core_names.contains(r), "/api/v1 lists {r}: {core_names:?}");
    }
    let pods = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap();
    assert_eq!(pods["namespaced"], true);
    assert_eq!(pods["kind"], "Pod");
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(
        pods["verbs"],
        json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ])
    );
    let eviction = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .unwrap();
    assert_eq!(
        (eviction["group"].as_str(), eviction["kind"].as_str()),
        (Some("policy"), Some("Eviction"))
    );

    let groups = common::get(&c, "/apis").await.json();
    assert_eq!(groups["kind"], "APIGroupList");
    let served: BTreeSet<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(served.contains(g), "/apis lists {g}");
    }

    let expected: &[(&str, &[&str])] = &[
        (
            "apps/v1",
            &[
                "deployments",
                "deployments/status",
                "replicasets",
                "statefulsets",
            ],
        ),
        ("batch/v1", &["jobs", "jobs/status"]),
        (
            "rbac.authorization.k8s.io/v1",
            &[
                "roles",
                "rolebindings",
                "clusterroles",
                "clusterrolebindings",
            ],
        ),
        ("coordination.k8s.io/v1", &["leases"]),
        ("events.k8s.io/v1", &["events"]),
        (
            "apiextensions.k8s.io/v1",
            &[
                "customresourcedefinitions",
                "customresourcedefinitions/status",
            ],
        ),
    ];
    for (gv, resources) in expected {
        let list = common::get(&c, &format!("/apis/{gv}")).await.json();
        assert_eq!(list["groupVersion"], *gv);
        let listed = names(&list);
        for r in *resources {
            assert!(listed.contains(*r), "/apis/{gv} lists {r}: {listed:?}");
        }
    }

    let apps = common::get(&c, "/apis/apps").await.json();
    assert_eq!(apps["kind"], "APIGroup");
    assert_eq!(
        apps["preferredVersion"],
        json!({"groupVersion": "apps/v1", "version": "v1"})
    );

    common::get(&c, "/apis/example.com/v1").await.assert_status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_discovery_answers_when_asked_for_by_media_type() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = common::request(&c, Method::GET, "/apis", &[("accept", accept)], None).await;
    assert_eq!(r.code, 200);
    assert_eq!(
        r.header("content-type"),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let doc = r.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
    let apps = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "apps")
        .expect("apps");
    let deployments = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap();
    assert_eq!(deployments["scope"], "Namespaced");
    assert_eq!(
        deployments["responseKind"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    let subresources: Vec<&str> = deployments["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert_eq!(subresources, ["scale", "status"]);

    let core = common::request(&c, Method::GET, "/api", &[("accept", accept)], None)
        .await
        .json();
    assert_eq!(core["items"].as_array().unwrap().len(), 1);
    assert_eq!(core["items"][0]["metadata"]["name"], "");
    // Without the media type, the legacy document.
    assert_eq!(common::get(&c, "/api").await.json()["kind"], "APIVersions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_reports_the_simulated_release() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let v = common::get(&c, "/version").await.json();
    assert_eq!(v["major"], "1");
    assert_eq!(v["minor"], "35");
    assert!(
        v["gitVersion"].as_str().unwrap().starts_with("v1.35."),
        "{v}"
    );
    assert_eq!(v["platform"], "linux/amd64");
    // kube-rs reads the same document.
    let info = c.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "35"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_advertise_field_validation_on_patch() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let index = common::get(&c, "/openapi/v3").await.json();
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 is listed")
        .to_string();
    let doc = common::get(&c, &url).await.json();
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );

    let v2 = common::request(
        &c,
        Method::GET,
        "/openapi/v2",
        &[(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )],
        None,
    )
    .await;
    assert_eq!(v2.code, 200);
    assert_eq!(
        v2.header("content-type"),
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    assert_eq!(
        common::get(&c, "/openapi/v2").await.json()["swagger"],
        "2.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_has_its_namespaces_node_and_per_namespace_defaults() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    for ns in ["default", "kube-system"] {
        assert!(
            names.contains(&ns.to_string()),
            "{ns} is pre-created: {names:?}"
        );
        let got = namespaces.get(ns).await.unwrap();
        assert_eq!(got.status.unwrap().phase.as_deref(), Some("Active"));
        assert_eq!(
            got.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
            ns
        );
    }
    // The namespace controllers give every namespace its default ServiceAccount and root CA.
    for ns in ["default", "kube-system"] {
        let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
        eventually("the default ServiceAccount", || async {
            sas.get_opt("default").await.unwrap()
        })
        .await;
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
        let ca = eventually("kube-root-ca.crt", || async {
            cms.get_opt("kube-root-ca.crt").await.unwrap()
        })
        .await;
        assert_eq!(ca.data.unwrap()["ca.crt"], sim.ca_pem());
    }
    let svc = common::get(&c, "/api/v1/namespaces/default/services/kubernetes")
        .await
        .json();
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_served_when_kubectl_asks_for_them() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let cm = json!({"metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"}});
    assert_eq!(
        common::post(&c, "/api/v1/namespaces/default/configmaps", &cm)
            .await
            .code,
        201
    );

    let r = common::request(
        &c,
        Method::GET,
        "/api/v1/namespaces/default/configmaps",
        &[("accept", accept)],
        None,
    )
    .await;
    let t = r.json();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    let columns: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Data", "Age"]);
    let row = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][0] == "settings")
        .expect("a row");
    assert_eq!(row["cells"][1], 2);
    // By default each row carries the object's metadata, which kubectl needs for --show-labels etc.
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "settings");
    assert!(t["metadata"]["resourceVersion"].is_string());

    let one = common::request(
        &c,
        Method::GET,
        "/api/v1/namespaces/default/configmaps/settings?includeObject=None",
        &[("accept", accept)],
        None,
    )
    .await
    .json();
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert!(one["rows"][0].get("object").is_none());

    let pods = common::request(
        &c,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        &[("accept", accept)],
        None,
    )
    .await
    .json();
    let pod_columns: Vec<&str> = pods["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        pod_columns,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(pods["rows"], json!([]));

    // A media type the server cannot produce is 406.
    common::request(
        &c,
        Method::GET,
        "/api/v1/namespaces/default/configmaps",
        &[("accept", "application/xml")],
        None,
    )
    .await
    .assert_status(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/yaml",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_answer_404_and_405_as_the_apiservers_router_does() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    for path in [
        "/apis/example.com/v1/namespaces/default/widgets",
        "/api/v1/namespaces/default/pods/p/log",
        "/api/v1/nodes/n/status/extra",
    ] {
        common::get(&c, path).await.assert_status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let not_allowed = "the server does not allow this method on the requested resource";
    // A collection has no PUT or PATCH, an object no POST, a review no GET.
    let s = common::put(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "x"}}),
    )
    .await
    .assert_status(405, "MethodNotAllowed", not_allowed);
    assert_eq!(s["details"], json!({}));
    common::post(
        &c,
        "/api/v1/namespaces/default/configmaps/x",
        &json!({"metadata": {"name": "x"}}),
    )
    .await
    .assert_status(405, "MethodNotAllowed", not_allowed);
    common::get(&c, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        .await
        .assert_status(405, "MethodNotAllowed", not_allowed);
    // A patch in a media type the route does not take.
    assert_eq!(
        common::post(
            &c,
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "x"}})
        )
        .await
        .code,
        201
    );
    common::patch(
        &c,
        "/api/v1/namespaces/default/configmaps/x",
        "text/plain",
        &json!({}),
    )
    .await
    .assert_status(415, "UnsupportedMediaType", "415: Unsupported Media Type");
}
