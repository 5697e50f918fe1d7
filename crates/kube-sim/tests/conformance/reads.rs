//! get and list: label and field selectors, pagination, metadata-only lists and resourceVersion rules.

use std::collections::BTreeSet;

use axum::http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use crate::common;

fn names(list: &Value) -> BTreeSet<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn config_map(c: &kube::Client, ns: &str, name: &str, labels: Value) {
    let r = common::post(
        c,
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        &json!({"metadata": {"name": name, "labels": labels}}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_returns_the_object_or_not_found() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    config_map(&c, "default", "present", json!({})).await;
    let got = common::get(&c, "/api/v1/namespaces/default/configmaps/present").await;
    assert_eq!(got.code, 200);
    let obj = got.json();
    assert_eq!(
        (obj["kind"].as_str(), obj["apiVersion"].as_str()),
        (Some("ConfigMap"), Some("v1"))
    );
    let s = common::get(&c, "/api/v1/namespaces/default/configmaps/absent")
        .await
        .assert_status(404, "NotFound", "configmaps \"absent\" not found");
    assert_eq!(
        s["details"],
        json!({"name": "absent", "kind": "configmaps"})
    );
    common::get(&c, "/apis/apps/v1/namespaces/default/deployments/absent")
        .await
        .assert_status(404, "NotFound", "deployments.apps \"absent\" not found");
    // Same name, other namespace: not found.
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/kube-system/configmaps/present")
            .await
            .code,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selectors_filter_lists() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    config_map(
        &c,
        "default",
        "web-prod",
        json!({"app": "web", "env": "prod"}),
    )
    .await;
    config_map(
        &c,
        "default",
        "web-dev",
        json!({"app": "web", "env": "dev"}),
    )
    .await;
    config_map(
        &c,
        "default",
        "db-prod",
        json!({"app": "db", "env": "prod"}),
    )
    .await;
    config_map(&c, "default", "bare", json!({})).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["web-prod", "web-dev"]),
        ("app==web,env=prod", &["web-prod"]),
        ("app!=web", &["db-prod", "bare"]),
        ("env in (dev,prod),app notin (db)", &["web-prod", "web-dev"]),
        ("app", &["web-prod", "web-dev", "db-prod"]),
        ("!app", &["bare"]),
    ];
    for (selector, want) in cases {
        let got: BTreeSet<String> = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.metadata.name.unwrap())
            .filter(|n| n != "kube-root-ca.crt")
            .collect();
        assert_eq!(got, set(want), "selector {selector}");
    }
}

/// A label selector in a query, percent-encoded.
fn label_query(selector: &str) -> String {
    let encoded: String = selector
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/api/v1/namespaces/default/configmaps?labelSelector={encoded}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selectors_follow_the_apimachinery_grammar() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    config_map(&c, "default", "web", json!({"app": "web", "rank": "2"})).await;
    config_map(&c, "default", "db", json!({"app": "db", "rank": "10"})).await;
    config_map(&c, "default", "blank", json!({"app": ""})).await;
    let cases: &[(&str, &[&str])] = &[
        // Operators need no blanks around them; an empty set or entry stands for the empty value.
        ("app in(web)", &["web"]),
        ("app in ()", &["blank"]),
        ("app in (db,)", &["blank", "db"]),
        ("app=", &["blank"]),
        ("rank>3", &["db"]),
        ("rank<3,app", &["web"]),
        // `in` is a value where a value is expected.
        ("app notin (in)", &["blank", "db", "web"]),
    ];
    for (selector, want) in cases {
        let r = common::get(&c, &label_query(selector)).await;
        assert_eq!(r.code, 200, "{selector}: {}", r.text);
        let mut got = names(&r.json());
        got.remove("kube-root-ca.crt");
        assert_eq!(got, set(want), "selector {selector}");
    }
    let key_msg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let value_msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let refused = [
        ("a=b=c", "found '=', expected: ',' or 'end of string'".to_string()),
        ("app=web,", "found '', expected: identifier after ','".to_string()),
        ("!=x", "found '!=', expected: !, identifier, or 'end of string'".to_string()),
        ("bad_key-=x", format!("unable to parse requirement: <nil>: Invalid value: \"bad_key-\": {key_msg}")),
        ("app=-x", format!("unable to parse requirement: values[0][app]: Invalid value: \"-x\": {value_msg}")),
        ("app web", "unable to parse requirement: found 'web', expected: '=', '!=', '==', 'in', notin'".to_string()),
        ("app in web", "unable to parse requirement: found 'web' expected: '('".to_string()),
        ("rank>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer".to_string()),
    ];
    for (selector, message) in refused {
        common::get(&c, &label_query(selector))
            .await
            .assert_status(400, "BadRequest", &message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selectors_filter_by_the_fields_each_resource_supports() {
    let sim = common::start().await;
    // No kubelet: a pod stays Pending on its node, so the phase is the test's to set.
    sim.set_controller(kube_sim::Controller::Kubelet, false);
    sim.set_controller(kube_sim::Controller::Scheduler, false);
    let c = sim.admin_client().await.unwrap();
    config_map(&c, "default", "one", json!({})).await;
    config_map(&c, "kube-system", "one", json!({})).await;
    let by_name = common::get(&c, "/api/v1/configmaps?fieldSelector=metadata.name%3Done")
        .await
        .json();
    assert_eq!(by_name["items"].as_array().unwrap().len(), 2);
    let by_ns = common::get(
        &c,
        "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dkube-system,metadata.name%3Done",
    )
    .await
    .json();
    assert_eq!(by_ns["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_ns["items"][0]["metadata"]["namespace"], "kube-system");
    let not = common::get(
        &c,
        "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name!%3Done",
    )
    .await
    .json();
    assert!(!names(&not).contains("one"));

    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    for (name, node) in [("placed", Some("kube-sim-node-1")), ("floating", None)] {
        let mut pod = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        if let Some(n) = node {
            pod["spec"]["nodeName"] = json!(n);
        }
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    }
    let on_node = pods
        .list(&ListParams::default().fields("spec.nodeName=kube-sim-node-1"))
        .await
        .unwrap();
    assert_eq!(
        on_node
            .items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["placed"]
    );
    let mut phase = serde_json::to_value(pods.get_status("placed").await.unwrap()).unwrap();
    phase["status"]["phase"] = json!("Running");
    let r = common::put(&c, "/api/v1/namespaces/default/pods/placed/status", &phase).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let running = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    assert_eq!(running.items.len(), 1);
    assert_eq!(running.items[0].metadata.name.as_deref(), Some("placed"));
    let pending = pods
        .list(&ListParams::default().fields("status.phase!=Running"))
        .await
        .unwrap();
    assert_eq!(
        pending
            .items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["floating"]
    );

    // Fields a resource cannot be selected by are a 400, worded per resource as the apiserver words it.
    common::get(
        &c,
        "/api/v1/namespaces/default/pods?fieldSelector=spec.bogus%3Dx",
    )
    .await
    .assert_status(400, "BadRequest", "field label not supported: spec.bogus");
    common::get(&c, "/api/v1/namespaces/default/configmaps?fieldSelector=status.phase%3DRunning").await.assert_status(
        400,
        "BadRequest",
        "\"status.phase\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_limit_and_continue() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    common::post(
        &c,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": "paged"}}),
    )
    .await;
    for i in 0..5 {
        config_map(&c, "paged", &format!("cm-{i}"), json!({"page": "yes"})).await;
    }
    let mut seen = Vec::new();
    let mut path =
        "/api/v1/namespaces/paged/configmaps?labelSelector=page%3Dyes&limit=2".to_string();
    let mut pages = 0;
    let mut first_rv = None;
    loop {
        let page = common::get(&c, &path).await.json();
        pages += 1;
        if pages == 1 {
            // Changes after the first page do not show in the later ones: they read its snapshot.
            first_rv = Some(page["metadata"]["resourceVersion"].clone());
            assert_eq!(
                common::delete(&c, "/api/v1/namespaces/paged/configmaps/cm-4", None)
                    .await
                    .code,
                200
            );
            config_map(&c, "paged", "cm-5", json!({"page": "yes"})).await;
        } else {
            assert_eq!(
                Some(page["metadata"]["resourceVersion"].clone()),
                first_rv,
                "every page reports the snapshot's version"
            );
        }
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(token) if !token.is_empty() => {
                assert_eq!(
                    page["metadata"]["remainingItemCount"],
                    5 - seen.len() as u64
                );
                path = format!(
                    "/api/v1/namespaces/paged/configmaps?labelSelector=page%3Dyes&limit=2&continue={token}"
                );
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"],
        "each item of the first page's snapshot once, in key order"
    );
    // Once that snapshot is compacted away, a continued list is 410 with a token to go on at the
    // latest state.
    let first = common::get(
        &c,
        "/api/v1/namespaces/paged/configmaps?labelSelector=page%3Dyes&limit=2",
    )
    .await
    .json();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    config_map(&c, "paged", "unlabelled", json!({})).await;
    sim.compact();
    let r = common::get(
        &c,
        &format!(
            "/api/v1/namespaces/paged/configmaps?labelSelector=page%3Dyes&limit=2&continue={token}"
        ),
    )
    .await;
    let s = r.assert_status(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    );
    let latest = s["metadata"]["continue"]
        .as_str()
        .expect("a token for the latest state");
    let rest = common::get(&c, &format!("/api/v1/namespaces/paged/configmaps?labelSelector=page%3Dyes&limit=10&continue={latest}")).await.json();
    let names: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cm-2", "cm-3", "cm-5"]);
    // kube-rs pages the same way.
    let api: Api<ConfigMap> = Api::namespaced(c, "paged");
    let first = api
        .list(&ListParams::default().labels("page=yes").limit(3))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let rest = api
        .list(
            &ListParams::default()
                .labels("page=yes")
                .limit(3)
                .continue_token(first.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.metadata.continue_.is_none_or(|c| c.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_lists_and_gets() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    config_map(&c, "default", "meta", json!({"x": "y"})).await;
    let accept =
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let list = common::request(
        &c,
        Method::GET,
        "/api/v1/namespaces/default/configmaps",
        &[("accept", accept)],
        None,
    )
    .await
    .json();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "meta")
        .unwrap();
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert_eq!(item["metadata"]["labels"]["x"], "y");
    assert!(item.get("data").is_none());
    // kube-rs's metadata API.
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let meta = api.get_metadata("meta").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["x"], "y");
    let metas = api
        .list_metadata(&ListParams::default().labels("x=y"))
        .await
        .unwrap();
    assert_eq!(metas.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_at_resource_versions_newer_than_the_store_are_refused() {
    let sim = common::start().await;
    let c = common::admin_without_retries(&sim).await;
    let list = common::get(&c, "/api/v1/namespaces/default/configmaps")
        .await
        .json();
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Served from the current state for any resourceVersion not newer than it ("NotOlderThan").
    assert_eq!(
        common::get(
            &c,
            &format!("/api/v1/namespaces/default/configmaps?resourceVersion={rv}")
        )
        .await
        .code,
        200
    );
    assert_eq!(
        common::get(
            &c,
            "/api/v1/namespaces/default/configmaps?resourceVersion=0"
        )
        .await
        .code,
        200
    );
    let future = rv + 1000;
    let r = common::get(
        &c,
        &format!("/api/v1/namespaces/default/configmaps?resourceVersion={future}"),
    )
    .await;
    assert_eq!(r.header("retry-after"), "1");
    let s = r.json();
    assert_eq!(
        (r.code, s["reason"].as_str()),
        (504, Some("Timeout")),
        "{}",
        r.text
    );
    // The simulated controllers may write meanwhile, so "current" is at least what the list saw.
    let message = s["message"].as_str().unwrap();
    let prefix = format!("Timeout: Too large resource version: {future}, current: ");
    let current: u64 = message
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{message}"))
        .parse()
        .unwrap();
    assert!(current >= rv && current < future, "{message}");
    assert_eq!(
        s["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
    assert_eq!(s["details"]["retryAfterSeconds"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_lists_read_the_state_at_that_resource_version() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    config_map(&c, "default", "kept", json!({"at": "exact"})).await;
    let then = common::get(
        &c,
        "/api/v1/namespaces/default/configmaps?labelSelector=at%3Dexact",
    )
    .await
    .json();
    let rv = then["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    config_map(&c, "default", "later", json!({"at": "exact"})).await;
    assert_eq!(
        common::delete(&c, "/api/v1/namespaces/default/configmaps/kept", None)
            .await
            .code,
        200
    );
    let exact = common::get(&c, &format!("/api/v1/namespaces/default/configmaps?labelSelector=at%3Dexact&resourceVersion={rv}&resourceVersionMatch=Exact")).await.json();
    assert_eq!(names(&exact), set(&["kept"]));
    assert_eq!(exact["metadata"]["resourceVersion"], rv.as_str());
    // The default, NotOlderThan, is served from the current state.
    let now = common::get(
        &c,
        &format!(
            "/api/v1/namespaces/default/configmaps?labelSelector=at%3Dexact&resourceVersion={rv}"
        ),
    )
    .await
    .json();
    assert_eq!(names(&now), set(&["later"]));
    sim.compact();
    common::get(
        &c,
        &format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact"
        ),
    )
    .await
    .assert_status(
        410,
        "Expired",
        "The resourceVersion for the provided list is too old.",
    );
}
