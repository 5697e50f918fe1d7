//! Strategic merge patch: strategies, directives and errors.

use crate::{PatchError, Schema, strategic_merge};
use serde_json::{Value, json};

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": spec})
}

fn patch_pod(original: &Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge(original, &patch, &Schema::builtin("", "v1", "Pod"))
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn maps_merge_and_null_deletes() {
    let original = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
    let out = patch_pod(
        &original,
        json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
}

#[test]
fn lists_with_a_merge_key_merge_by_it_and_others_are_replaced() {
    let original = pod(json!({
        "containers": [
            {"name": "a", "image": "x", "args": ["--one", "--two"], "env": [{"name": "E1", "value": "1"}]},
            {"name": "b", "image": "y"}
        ],
        "tolerations": [{"key": "k1", "operator": "Exists"}]
    }));
    let out = patch_pod(
        &original,
        json!({"spec": {
            "containers": [{"name": "a", "image": "x2", "args": ["--three"], "env": [{"name": "E2", "value": "2"}]}],
            "tolerations": [{"key": "k2", "operator": "Exists"}]
        }}),
    )
    .unwrap();
    let a = &out["spec"]["containers"][0];
    assert_eq!(names(&out["spec"]["containers"]), vec!["a", "b"]);
    assert_eq!(a["image"], json!("x2"));
    // args has no patch strategy: replaced. env merges by name, and like upstream an item the
    // live list lacks lands before the live-only items.
    assert_eq!(a["args"], json!(["--three"]));
    assert_eq!(
        a["env"],
        json!([{"name": "E2", "value": "2"}, {"name": "E1", "value": "1"}])
    );
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "k2", "operator": "Exists"}])
    );
}

#[test]
fn container_ports_merge_by_container_port_alone() {
    let original = pod(
        json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}),
    );
    let out = patch_pod(
        &original,
        json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "UDP"}, {"containerPort": 81}]}]}}),
    )
    .unwrap();
    // Strategic merge keys ports by containerPort only (unlike apply, which adds protocol).
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "UDP"}, {"containerPort": 81}])
    );
}

#[test]
fn patch_directives_delete_and_replace() {
    let original = pod(json!({
        "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
        "securityContext": {"runAsUser": 1, "fsGroup": 2}
    }));
    let deleted = patch_pod(
        &original,
        json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
    )
    .unwrap();
    assert_eq!(names(&deleted["spec"]["containers"]), vec!["b"]);

    let replaced = patch_pod(
        &original,
        json!({"spec": {"containers": [{"name": "c", "image": "z"}, {"$patch": "replace"}]}}),
    )
    .unwrap();
    assert_eq!(
        replaced["spec"]["containers"],
        json!([{"name": "c", "image": "z"}])
    );

    let map_replaced = patch_pod(
        &original,
        json!({"spec": {"securityContext": {"$patch": "replace", "runAsUser": 5}}}),
    )
    .unwrap();
    assert_eq!(
        map_replaced["spec"]["securityContext"],
        json!({"runAsUser": 5})
    );

    // Deleting a map through the directive leaves it empty, as upstream does.
    let map_deleted = patch_pod(
        &original,
        json!({"spec": {"securityContext": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(map_deleted["spec"]["securityContext"], json!({}));
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let original = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let schema = Schema::builtin("apps", "v1", "Deployment");
    let out = strategic_merge(
        &original,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        &schema,
    )
    .unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

    let err = strategic_merge(
        &original,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}),
        &schema,
    )
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (400, "invalid patch format of retainKeys".to_string())
    );
}

#[test]
fn primitive_lists_merge_deduplicate_and_delete_by_value() {
    let original = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]}});
    let merged = patch_pod(&original, json!({"metadata": {"finalizers": ["c", "a"]}})).unwrap();
    // Patch items take the patch's order; a live-only item stays behind them.
    assert_eq!(merged["metadata"]["finalizers"], json!(["c", "a", "b"]));

    let deleted = patch_pod(
        &original,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    )
    .unwrap();
    assert_eq!(deleted["metadata"]["finalizers"], json!(["b"]));
    assert!(
        deleted["metadata"]
            .get("$deleteFromPrimitiveList/finalizers")
            .is_none()
    );
}

#[test]
fn set_element_order_orders_the_merged_list() {
    let original = pod(
        json!({"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}]}),
    );
    let out = patch_pod(
        &original,
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "new"}]
        }}),
    )
    .unwrap();
    assert_eq!(names(&out["spec"]["containers"]), vec!["b", "a", "c"]);
    assert_eq!(out["spec"]["containers"][1]["image"], json!("new"));
    assert!(out["spec"].get("$setElementOrder/containers").is_none());
}

#[test]
fn a_list_item_without_its_merge_key_is_a_500_with_upstream_text() {
    let original = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
    let err = patch_pod(
        &original,
        json!({"spec": {"containers": [{"image": "nginx"}]}}),
    )
    .unwrap_err();
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.message(),
        "map: map[image:nginx] does not contain declared merge key: name"
    );
}

#[test]
fn malformed_directives_are_rejected_with_their_status() {
    let original = pod(json!({"containers": [{"name": "a", "image": "x"}]}));

    let err = patch_pod(
        &original,
        json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
    )
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (400, "invalid patch format of primitive list".to_string())
    );

    let err = patch_pod(&original, json!({"spec": {"$setElementOrder": []}})).unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            400,
            "invalid patch format of setElementOrder list".to_string()
        )
    );

    let err = patch_pod(
        &original,
        json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
    )
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            500,
            "merging lists cannot yet be specified in the patch".to_string()
        )
    );

    let err = patch_pod(
        &original,
        json!({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}),
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        "unknown patch type: bogus in map: map[$patch:bogus name:a]"
    );

    // Merging two lists of lists is refused with 422.
    let nested = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": [["x"]]}});
    let err = patch_pod(&nested, json!({"metadata": {"finalizers": [["y"]]}})).unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (422, "lists of lists are not supported".to_string())
    );

    let err = patch_pod(&original, json!([1, 2])).unwrap_err();
    assert_eq!(err.code(), 400);
}

#[test]
fn values_added_by_the_patch_lose_nulls_and_directives() {
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let out = patch_pod(
        &original,
        json!({"spec": {"affinity": {"nodeAffinity": null, "podAffinity": {"x": {"$patch": "delete"}, "y": 1}}}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["affinity"], json!({"podAffinity": {"y": 1}}));
}
