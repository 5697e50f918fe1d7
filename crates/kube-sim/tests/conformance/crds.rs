//! CustomResourceDefinitions: serving their resources as declared, admission of custom resources by the
//! apiserver's own validation code (schema, defaults, pruning, CEL), printer columns, and CRD deletion.

use axum::http::Method;
use serde_json::{Value, json};

use crate::common::{self, eventually};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "colour": {"type": "string", "enum": ["red", "blue"], "default": "blue"},
                    "maxSize": {"type": "integer"}
                },
                "x-kubernetes-validations": [{"rule": "!has(self.maxSize) || self.size <= self.maxSize", "message": "size must not exceed maxSize"}]
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }
    })
}

/// A namespaced CRD with two served versions, a status subresource, printer columns, short names, a
/// default, an enum and a CEL rule.
pub fn widget_crd() -> Value {
    let columns = json!([
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Colour", "type": "string", "jsonPath": ".spec.colour", "priority": 1},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": widget_schema()},
                 "subresources": {"status": {}}, "additionalPrinterColumns": columns},
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": widget_schema()},
                 "subresources": {"status": {}}}
            ]
        }
    })
}

/// A namespaced CRD without a status subresource, which keeps unknown fields.
pub fn gadget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    })
}

fn cluster_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "realms.example.com"},
        "spec": {
            "group": "example.com", "scope": "Cluster",
            "names": {"plural": "realms", "singular": "realm", "kind": "Realm"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"title": {"type": "string"}}}}}}}]
        }
    })
}

/// Creates a CRD and waits until it is Established.
pub async fn install(c: &kube::Client, crd: &Value) {
    let r = common::post(c, CRDS, crd).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let name = crd["metadata"]["name"].as_str().unwrap();
    eventually("the CRD is established", || async {
        let got = common::get(c, &format!("{CRDS}/{name}")).await.json();
        let established = got["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        established.then_some(())
    })
    .await;
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_serves_its_resources_with_their_scope_versions_and_names() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    install(&c, &widget_crd()).await;
    install(&c, &cluster_crd()).await;
    let crd = common::get(&c, &format!("{CRDS}/widgets.example.com"))
        .await
        .json();
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert!(
        crd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "NamesAccepted" && c["status"] == "True")
    );

    for version in ["v1", "v1beta1"] {
        let list = common::get(&c, &format!("/apis/example.com/{version}"))
            .await
            .json();
        let widgets = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "widgets")
            .expect("widgets");
        assert_eq!(widgets["namespaced"], true);
        assert_eq!(widgets["kind"], "Widget");
        assert_eq!(widgets["singularName"], "widget");
        assert_eq!(widgets["shortNames"], json!(["wd"]));
        assert_eq!(widgets["categories"], json!(["all"]));
        assert!(
            list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "widgets/status")
        );
    }
    let group = common::get(&c, "/apis/example.com").await.json();
    assert_eq!(group["preferredVersion"]["version"], "v1");

    // Both versions serve the same objects; each answers in its own apiVersion.
    assert_eq!(
        common::post(&c, WIDGETS, &widget("w", json!({"size": 1})))
            .await
            .code,
        201
    );
    let beta = common::get(&c, "/apis/example.com/v1beta1/namespaces/default/widgets/w")
        .await
        .json();
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["size"], 1);

    // A cluster-scoped resource lives outside namespaces.
    let realm = json!({"apiVersion": "example.com/v1", "kind": "Realm", "metadata": {"name": "north"}, "spec": {"title": "N"}});
    let r = common::post(&c, "/apis/example.com/v1/realms", &realm).await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert!(r.json()["metadata"].get("namespace").is_none());
    assert_eq!(
        common::get(&c, "/apis/example.com/v1/namespaces/default/realms/north")
            .await
            .code,
        404
    );
    assert_eq!(
        common::get(&c, "/apis/example.com/v1/realms/north")
            .await
            .code,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_are_validated_defaulted_and_pruned_by_their_schema() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    install(&c, &widget_crd()).await;

    common::post(&c, WIDGETS, &widget("small", json!({"size": 0}))).await.assert_status(
        422,
        "Invalid",
        "Widget.example.com \"small\" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
    );
    let s = common::post(&c, WIDGETS, &widget("green", json!({"size": 1, "colour": "green"}))).await.assert_status(
        422,
        "Invalid",
        "Widget.example.com \"green\" is invalid: spec.colour: Unsupported value: \"green\": supported values: \"red\", \"blue\"",
    );
    assert_eq!(s["details"]["causes"][0]["field"], "spec.colour");
    common::post(&c, WIDGETS, &widget("none", json!({})))
        .await
        .assert_status(
            422,
            "Invalid",
            "Widget.example.com \"none\" is invalid: spec.size: Required value",
        );
    // CEL rules are evaluated, with the rule's message.
    let cel = common::post(
        &c,
        WIDGETS,
        &widget("big", json!({"size": 5, "maxSize": 3})),
    )
    .await;
    assert_eq!(cel.code, 422, "{}", cel.text);
    assert_eq!(
        cel.json()["message"],
        "Widget.example.com \"big\" is invalid: spec: Invalid value: size must not exceed maxSize"
    );

    // Defaults are applied and unknown fields pruned, with a warning (fieldValidation=Warn by default).
    let r = common::post(
        &c,
        WIDGETS,
        &widget("ok", json!({"size": 2, "bogus": true})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let obj = r.json();
    assert_eq!(obj["spec"]["colour"], "blue");
    assert!(obj["spec"].get("bogus").is_none());
    assert_eq!(
        r.header("warning"),
        "299 - \"unknown field \\\"spec.bogus\\\"\""
    );
    // Strict turns the unknown field into an error.
    common::post(&c, &format!("{WIDGETS}?fieldValidation=Strict"), &widget("strict", json!({"size": 2, "bogus": true})))
        .await
        .assert_status(400, "BadRequest", "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.bogus\"");
    // Updates are validated too.
    let mut bad = obj.clone();
    bad["spec"]["size"] = json!(-1);
    assert_eq!(
        common::put(&c, &format!("{WIDGETS}/ok"), &bad).await.code,
        422
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printer_columns_make_the_custom_resource_table() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    install(&c, &widget_crd()).await;
    assert_eq!(
        common::post(&c, WIDGETS, &widget("t", json!({"size": 3})))
            .await
            .code,
        201
    );
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let t = common::request(&c, Method::GET, WIDGETS, &[("accept", accept)], None)
        .await
        .json();
    let columns: Vec<(String, String, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("Name", "string", 0),
        ("Size", "integer", 0),
        ("Colour", "string", 1),
        ("Phase", "string", 0),
        ("Age", "date", 0),
    ];
    assert_eq!(
        columns,
        expected.map(|(a, b, p)| (a.to_string(), b.to_string(), p))
    );
    assert_eq!(
        t["columnDefinitions"][1]["description"],
        "Custom resource definition column (in JSONPath format): .spec.size"
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[0], "t");
    assert_eq!(cells[1], 3);
    assert_eq!(cells[2], "blue");
    assert_eq!(cells[3], Value::Null, "a missing value is a null cell");
    assert!(
        cells[4].as_str().unwrap().ends_with('s'),
        "dates print as ages: {}",
        cells[4]
    );

    // Without printer columns, a version gets the Age column.
    let beta = common::request(
        &c,
        Method::GET,
        "/apis/example.com/v1beta1/namespaces/default/widgets",
        &[("accept", accept)],
        None,
    )
    .await
    .json();
    let names: Vec<&str> = beta["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Age"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_crd_deletes_its_custom_resources_then_stops_serving_them() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    install(&c, &widget_crd()).await;
    for n in ["a", "b"] {
        assert_eq!(
            common::post(&c, WIDGETS, &widget(n, json!({"size": 1})))
                .await
                .code,
            201
        );
    }
    // A finalizer on one custom resource holds the CRD until it is removed.
    common::patch(
        &c,
        &format!("{WIDGETS}/a"),
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": ["example.com/hold"]}}),
    )
    .await;
    let r = common::delete(&c, &format!("{CRDS}/widgets.example.com"), None).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let crd = eventually("b is deleted and a is terminating", || async {
        let b_gone = common::get(&c, &format!("{WIDGETS}/b")).await.code == 404;
        let a = common::get(&c, &format!("{WIDGETS}/a")).await.json();
        (b_gone && a["metadata"]["deletionTimestamp"].is_string()).then_some(())
    })
    .await;
    let _: () = crd;
    let terminating = common::get(&c, &format!("{CRDS}/widgets.example.com"))
        .await
        .json();
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    assert!(
        terminating["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Terminating" && c["status"] == "True")
    );
    // No new custom resources while the CRD is terminating.
    let refused = common::post(&c, WIDGETS, &widget("c", json!({"size": 1}))).await;
    assert_eq!(refused.code, 405, "{}", refused.text);

    common::patch(
        &c,
        &format!("{WIDGETS}/a"),
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    eventually("the CRD is gone", || async {
        (common::get(&c, &format!("{CRDS}/widgets.example.com"))
            .await
            .code
            == 404)
            .then_some(())
    })
    .await;
    common::get(&c, WIDGETS).await.assert_status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    let groups = common::get(&c, "/apis").await.json();
    assert!(
        !groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_crds_are_refused_by_the_apiextensions_validation() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let mut crd = widget_crd();
    // Two storage versions are not allowed.
    crd["spec"]["versions"][1]["storage"] = json!(true);
    let r = common::post(&c, CRDS, &crd).await;
    assert_eq!(r.code, 422, "{}", r.text);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert!(
        s["message"].as_str().unwrap().starts_with(
            "CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid: "
        ),
        "{}",
        s["message"]
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("must have exactly one version marked as storage version"),
        "{}",
        s["message"]
    );
    assert_eq!(
        common::get(&c, &format!("{CRDS}/widgets.example.com"))
            .await
            .code,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_status_subresource_every_change_but_metadata_bumps_generation() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    install(&c, &gadget_crd()).await;
    let gadgets = "/apis/example.com/v1/namespaces/default/gadgets";
    let created = common::post(
        &c,
        gadgets,
        &json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"a": 1}}),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.text);
    assert_eq!(created.json()["metadata"]["generation"], 1);
    let merge = |patch: Value| {
        let c = c.clone();
        async move {
            let r = common::patch(
                &c,
                &format!("{gadgets}/g"),
                "application/merge-patch+json",
                &patch,
            )
            .await;
            assert_eq!(r.code, 200, "{}", r.text);
            r.json()["metadata"]["generation"].clone()
        }
    };
    assert_eq!(merge(json!({"metadata": {"labels": {"a": "b"}}})).await, 1);
    // Status is an ordinary field here, and so is any other top-level one.
    assert_eq!(merge(json!({"status": {"phase": "Ready"}})).await, 2);
    assert_eq!(merge(json!({"extra": true})).await, 3);
}
