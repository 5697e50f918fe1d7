//! Server-side apply: ownership, pruning, conflicts and the errors around them.

use super::{T0, T1, T2, fields, managers, req};
use crate::{ApplyError, ManagedFieldsEntry, Request, Schema, apply, record_update};
use serde_json::{Value, json};

fn deployment_schema() -> Schema {
    Schema::builtin("apps", "v1", "Deployment")
}

fn nginx(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

/// Applies and returns the stored object (with uid and managed fields) and the entries.
fn apply_ok(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    time: &str,
    force: bool,
    schema: &Schema,
) -> (Value, Vec<ManagedFieldsEntry>) {
    let managed = live.map(entries_of).unwrap_or_default();
    let api_version = config["apiVersion"].as_str().unwrap().to_string();
    let (mut obj, entries) = apply(
        live,
        config,
        &managed,
        &req(manager, &api_version, time),
        force,
        &[],
        schema,
    )
    .unwrap();
    obj["metadata"]["uid"] = json!("0b7e3f");
    obj["metadata"]["managedFields"] = serde_json::to_value(&entries).unwrap();
    (obj, entries)
}

fn entries_of(obj: &Value) -> Vec<ManagedFieldsEntry> {
    serde_json::from_value(obj["metadata"]["managedFields"].clone()).unwrap_or_default()
}

fn apply_err(live: &Value, config: &Value, manager: &str, schema: &Schema) -> ApplyError {
    let api_version = config["apiVersion"].as_str().unwrap().to_string();
    apply(
        Some(live),
        config,
        &entries_of(live),
        &req(manager, &api_version, T2),
        false,
        &[],
        schema,
    )
    .unwrap_err()
}

#[test]
fn apply_creates_the_object_and_owns_exactly_what_it_applied() {
    let (obj, entries) = apply_ok(
        None,
        &nginx(2, "nginx:1.25"),
        "kubectl",
        T0,
        false,
        &deployment_schema(),
    );
    assert_eq!(obj["spec"]["replicas"], json!(2));
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:1.25")
    );
    assert!(
        obj["metadata"].get("creationTimestamp").is_none(),
        "zero-value nulls are not stored"
    );
    assert_eq!(
        serde_json::to_value(&entries).unwrap(),
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
            "fieldsType": "FieldsV1",
            // What a real apiserver records: no "." on struct fields, the port keyed with its
            // defaulted protocol, and only the fields the configuration named.
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            }
        }])
    );
}

#[test]
fn re_applying_the_same_configuration_changes_nothing_not_even_the_time() {
    let schema = deployment_schema();
    let (live, first) = apply_ok(None, &nginx(2, "nginx"), "kubectl", T0, false, &schema);
    let (again, second) = apply_ok(
        Some(&live),
        &nginx(2, "nginx"),
        "kubectl",
        T1,
        false,
        &schema,
    );
    assert_eq!(first, second);
    assert_eq!(again, live);
}

#[test]
fn fields_dropped_from_the_configuration_are_removed_when_nobody_else_owns_them() {
    let schema = Schema::builtin("", "v1", "ConfigMap");
    let cm = |data: Value, labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": labels}, "data": data});
    let (live, _) = apply_ok(
        None,
        &cm(json!({"a": "1", "b": "2"}), json!({"x": "1", "y": "2"})),
        "alice",
        T0,
        false,
        &schema,
    );
    let (live, entries) = apply_ok(
        Some(&live),
        &cm(json!({"a": "1"}), json!({"x": "1"})),
        "alice",
        T1,
        false,
        &schema,
    );
    assert_eq!(live["data"], json!({"a": "1"}));
    assert_eq!(live["metadata"]["labels"], json!({"x": "1"}));
    assert_eq!(
        fields(&entries, "alice", "Apply"),
        json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
    );
}

#[test]
fn list_map_items_dropped_from_the_configuration_are_removed() {
    let schema = deployment_schema();
    let mut two = nginx(1, "nginx");
    two["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let (live, _) = apply_ok(None, &two, "kubectl", T0, false, &schema);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (live, entries) = apply_ok(
        Some(&live),
        &nginx(1, "nginx"),
        "kubectl",
        T1,
        false,
        &schema,
    );
    let containers = &live["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 1);
    assert_eq!(containers[0]["name"], json!("nginx"));
    assert!(
        fields(&entries, "kubectl", "Apply")["f:spec"]["f:template"]["f:spec"]["f:containers"]
            .get("k:{\"name\":\"sidecar\"}")
            .is_none()
    );
}

#[test]
fn two_appliers_of_the_same_value_share_it_until_both_let_go() {
    let schema = Schema::builtin("", "v1", "ConfigMap");
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let (live, _) = apply_ok(
        None,
        &cm(json!({"shared": "v", "a": "1"})),
        "alice",
        T0,
        false,
        &schema,
    );
    // Same value: no conflict, both own it.
    let (live, entries) = apply_ok(
        Some(&live),
        &cm(json!({"shared": "v"})),
        "bob",
        T1,
        false,
        &schema,
    );
    assert_eq!(
        fields(&entries, "alice", "Apply"),
        json!({"f:data": {"f:a": {}, "f:shared": {}}})
    );
    assert_eq!(
        fields(&entries, "bob", "Apply"),
        json!({"f:data": {"f:shared": {}}})
    );
    // Bob only co-owns an unchanged value: the object did not change, so no timestamp.
    let bob = entries.iter().find(|e| e.manager == "bob").unwrap();
    assert_eq!(bob.time, None);

    let (live, _) = apply_ok(
        Some(&live),
        &cm(json!({"a": "1"})),
        "alice",
        T1,
        false,
        &schema,
    );
    assert_eq!(
        live["data"],
        json!({"a": "1", "shared": "v"}),
        "bob still owns it"
    );
    // Naming `data: {}` would claim the map itself; bob names nothing.
    let nothing = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let (live, entries) = apply_ok(Some(&live), &nothing, "bob", T2, false, &schema);
    assert_eq!(live["data"], json!({"a": "1"}));
    assert_eq!(managers(&entries), vec![("alice".into(), "Apply".into())]);
}

#[test]
fn changing_a_field_an_update_manager_owns_is_a_conflict_with_the_apiserver_message() {
    let schema = deployment_schema();
    let created = nginx(1, "nginx");
    let entries = record_update(
        None,
        &created,
        &[],
        &req("kubectl-client-side-apply", "apps/v1", T0),
        &schema,
    )
    .unwrap();
    let mut live = created.clone();
    live["metadata"]["uid"] = json!("u");
    live["metadata"]["managedFields"] = serde_json::to_value(&entries).unwrap();

    let err = apply_err(&live, &nginx(3, "nginx"), "argocd", &schema);
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    let causes = err.causes();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(
        causes[0].message,
        r#"conflict with "kubectl-client-side-apply" using apps/v1"#
    );
    assert_eq!(causes[0].field, ".spec.replicas");

    // Applying the value already there is no conflict: the applier becomes a co-owner.
    let (_, entries) = apply_ok(
        Some(&live),
        &nginx(1, "nginx"),
        "argocd",
        T1,
        false,
        &schema,
    );
    assert!(
        fields(&entries, "argocd", "Apply")["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    assert!(
        fields(&entries, "kubectl-client-side-apply", "Update")["f:spec"]
            .get("f:replicas")
            .is_some()
    );
}

#[test]
fn conflicts_with_several_managers_are_grouped_and_sorted() {
    let schema = deployment_schema();
    let (live, _) = apply_ok(None, &nginx(1, "nginx:1"), "zeta", T0, false, &schema);
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(2);
    scaled["spec"]["template"]["metadata"]["labels"]["tier"] = json!("web");
    let entries = record_update(
        Some(&live),
        &scaled,
        &entries_of(&live),
        &req("hpa", "apps/v1", T1),
        &schema,
    )
    .unwrap();
    scaled["metadata"]["managedFields"] = serde_json::to_value(&entries).unwrap();

    let mut config = nginx(5, "nginx:2");
    config["spec"]["template"]["metadata"]["labels"]["tier"] = json!("db");
    let err = apply_err(&scaled, &config, "alpha", &schema);
    assert_eq!(
        err.message(),
        "Apply failed with 3 conflicts: conflicts with \"hpa\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.metadata.labels.tier\n\
         conflicts with \"zeta\":\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let fields_in_causes: Vec<String> = err.causes().into_iter().map(|c| c.field).collect();
    assert_eq!(fields_in_causes.len(), 3);
}

#[test]
fn force_takes_ownership_from_other_managers() {
    let schema = deployment_schema();
    let (live, _) = apply_ok(None, &nginx(1, "nginx:1"), "alice", T0, false, &schema);
    let (live, entries) = apply_ok(Some(&live), &nginx(4, "nginx:1"), "bob", T1, true, &schema);
    assert_eq!(live["spec"]["replicas"], json!(4));
    assert!(
        fields(&entries, "alice", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert!(
        fields(&entries, "bob", "Apply")["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    // Alice no longer owns replicas, so dropping it from her configuration leaves it alone.
    let mut without = nginx(0, "nginx:1");
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let (live, _) = apply_ok(Some(&live), &without, "alice", T2, false, &schema);
    assert_eq!(live["spec"]["replicas"], json!(4));
}

#[test]
fn atomic_lists_conflict_as_a_whole_and_sets_merge_by_value() {
    let schema = Schema::builtin("", "v1", "Pod");
    let pod = |tolerations: Value, finalizers: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "finalizers": finalizers},
               "spec": {"containers": [{"name": "c", "image": "i"}], "tolerations": tolerations}})
    };
    let (live, _) = apply_ok(
        None,
        &pod(json!([{"key": "a", "operator": "Exists"}]), json!(["x"])),
        "alice",
        T0,
        false,
        &schema,
    );
    // Bob's set member merges in; his different toleration list conflicts with alice's whole list.
    let bob = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["y"]},
                     "spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}});
    let err = apply_err(&live, &bob, "bob", &schema);
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "alice": .spec.tolerations"#
    );
    let mut bob_sets_only = bob.clone();
    bob_sets_only.as_object_mut().unwrap().remove("spec");
    let (live, entries) = apply_ok(Some(&live), &bob_sets_only, "bob", T1, false, &schema);
    assert_eq!(live["metadata"]["finalizers"], json!(["x", "y"]));
    assert_eq!(
        fields(&entries, "bob", "Apply"),
        json!({"f:metadata": {"f:finalizers": {"v:\"y\"": {}}}})
    );
    // Alice dropping her member removes only hers.
    let (live, _) = apply_ok(
        Some(&live),
        &pod(json!([{"key": "a", "operator": "Exists"}]), json!([])),
        "alice",
        T2,
        false,
        &schema,
    );
    assert_eq!(live["metadata"]["finalizers"], json!(["y"]));
}

#[test]
fn list_map_items_keyed_by_several_fields_merge_per_item() {
    let schema = Schema::builtin("", "v1", "Service");
    let svc = |ports: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": ports}});
    let (live, _) = apply_ok(
        None,
        &svc(json!([{"port": 53, "protocol": "UDP", "name": "dns"}])),
        "alice",
        T0,
        false,
        &schema,
    );
    let (live, entries) = apply_ok(
        Some(&live),
        &svc(json!([{"port": 53, "name": "dns-tcp"}])),
        "bob",
        T1,
        false,
        &schema,
    );
    // Same port, different protocol: a different item (protocol defaults to TCP).
    assert_eq!(
        live["spec"]["ports"],
        json!([{"port": 53, "protocol": "UDP", "name": "dns"}, {"port": 53, "name": "dns-tcp"}])
    );
    assert_eq!(
        fields(&entries, "bob", "Apply"),
        json!({"f:spec": {"f:ports": {"k:{\"port\":53,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}}}}})
    );
}

#[test]
fn the_first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
    let schema = deployment_schema();
    let mut live = nginx(1, "nginx");
    live["metadata"]["uid"] = json!("u");
    let err = apply_err(&live, &nginx(2, "nginx"), "argocd", &schema);
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#
    );
    let (_, entries) = apply_ok(
        Some(&live),
        &nginx(1, "nginx"),
        "argocd",
        T1,
        false,
        &schema,
    );
    assert_eq!(
        managers(&entries),
        vec![
            ("argocd".into(), "Apply".into()),
            ("before-first-apply".into(), "Update".into())
        ]
    );
}

#[test]
fn kubectl_migrating_from_client_side_apply_takes_over_fields_it_applied_before() {
    let schema = deployment_schema();
    let mut created = nginx(1, "nginx");
    let last_applied = serde_json::to_string(&created).unwrap();
    created["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last_applied});
    let entries = record_update(
        None,
        &created,
        &[],
        &req("kubectl-client-side-apply", "apps/v1", T0),
        &schema,
    )
    .unwrap();
    let mut live = created.clone();
    live["metadata"]["uid"] = json!("u");
    live["metadata"]["managedFields"] = serde_json::to_value(&entries).unwrap();

    // Another manager would conflict; "kubectl" does not, because the annotation explains it.
    assert!(matches!(
        apply_err(&live, &nginx(3, "nginx"), "other", &schema),
        ApplyError::Conflicts(_)
    ));
    let config = nginx(3, "nginx");
    let (obj, entries) = apply_ok(Some(&live), &config, "kubectl", T1, false, &schema);
    assert_eq!(obj["spec"]["replicas"], json!(3));
    assert!(
        fields(&entries, "kubectl-client-side-apply", "Update")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // The annotation now records what was applied, encoded as Go encodes JSON.
    let annotation =
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap();
    assert!(annotation.ends_with("}\n"));
    assert_eq!(serde_json::from_str::<Value>(annotation).unwrap(), config);

    // A value someone changed since the last client-side apply still conflicts.
    let mut drifted = live.clone();
    drifted["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:drift");
    let err = apply_err(&drifted, &nginx(3, "nginx:new"), "kubectl", &schema);
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.template.spec.containers[name="nginx"].image"#
    );
}

#[test]
fn ignored_paths_are_neither_applied_nor_owned() {
    let schema = deployment_schema();
    let (live, _) = apply_ok(None, &nginx(1, "nginx"), "alice", T0, false, &schema);
    let mut live = live;
    live["status"] = json!({"replicas": 1});
    let mut config = nginx(1, "nginx");
    config["status"] = json!({"replicas": 99});
    let (obj, entries) = apply(
        Some(&live),
        &config,
        &entries_of(&live),
        &req("alice", "apps/v1", T1),
        false,
        &[&["status"]],
        &schema,
    )
    .unwrap();
    assert_eq!(obj["status"], json!({"replicas": 1}));
    assert!(fields(&entries, "alice", "Apply").get("f:status").is_none());
    assert_eq!(
        entries,
        entries_of(&live),
        "nothing changed, so not even the time"
    );

    // On the status endpoint everything but status is reset.
    let status_req = Request {
        subresource: Some("status"),
        ..req("controller", "apps/v1", T2)
    };
    let (obj, entries) = apply(
        Some(&live),
        &config,
        &entries_of(&live),
        &status_req,
        false,
        &[&["spec"], &["metadata"]],
        &schema,
    )
    .unwrap();
    assert_eq!(obj["status"], json!({"replicas": 99}));
    let controller = entries.iter().find(|e| e.manager == "controller").unwrap();
    assert_eq!(controller.subresource.as_deref(), Some("status"));
    assert_eq!(
        controller.fields_v1.clone().unwrap(),
        json!({"f:status": {"f:replicas": {}}})
    );
}

#[test]
fn a_crd_schema_with_a_list_map_merges_items_by_key() {
    let schema = Schema::from_openapi_v3(&json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "buckets": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"}, "quota": {"type": "integer"}
                        }}
                    },
                    "tags": {"type": "array", "items": {"type": "string"}}
                }
            }
        }
    }));
    let cr = |buckets: Value, tags: Value| {
        json!({"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "Store", "metadata": {"name": "s"},
               "spec": {"buckets": buckets, "tags": tags}})
    };
    let (live, _) = apply_ok(
        None,
        &cr(json!([{"name": "a", "quota": 1}]), json!(["x"])),
        "alice",
        T0,
        false,
        &schema,
    );
    let (live, entries) = apply_ok(
        Some(&live),
        &cr(json!([{"name": "b", "quota": 2}]), json!(["x"])),
        "bob",
        T1,
        false,
        &schema,
    );
    assert_eq!(
        live["spec"]["buckets"],
        json!([{"name": "a", "quota": 1}, {"name": "b", "quota": 2}])
    );
    assert_eq!(
        fields(&entries, "bob", "Apply"),
        json!({"f:spec": {"f:buckets": {"k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:quota": {}}}, "f:tags": {}}})
    );
    // An undeclared field is refused as the apiserver refuses it (a 500 upstream).
    let mut bad = cr(json!([]), json!([]));
    bad["spec"]["extra"] = json!(1);
    let err = apply_err(&live, &bad, "alice", &schema);
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.message(),
        "failed to create typed patch object (/s; hap.cloudian.com/v1alpha1, Kind=Store): .spec.extra: field not declared in schema"
    );
}

#[test]
fn invalid_configurations_are_refused_with_upstream_wording() {
    let schema = deployment_schema();
    let (live, _) = apply_ok(None, &nginx(1, "nginx"), "alice", T0, false, &schema);

    // Upstream reports an item's own errors before a later duplicate of it.
    let mut dup = nginx(1, "nginx");
    dup["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "c", "env": [{"name": "FOO", "value": "x"}, {"name": "FOO", "value": "y"}]},
        {"name": "c"}
    ]);
    let err = apply_err(&live, &dup, "alice", &schema);
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.message(),
        "failed to create typed patch object (default/nginx; apps/v1, Kind=Deployment): errors:\n  \
         .spec.template.spec.containers[name=\"c\"].env: duplicate entries for key [name=\"FOO\"]\n  \
         .spec.template.spec.containers: duplicate entries for key [name=\"c\"]"
    );

    let mut keyless = nginx(1, "nginx");
    keyless["spec"]["template"]["spec"]["containers"] = json!([{"image": "nginx"}]);
    assert_eq!(
        apply_err(&live, &keyless, "alice", &schema).message(),
        "failed to create typed patch object (default/nginx; apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"
    );

    let mut other_version = nginx(1, "nginx");
    other_version["apiVersion"] = json!("apps/v1beta2");
    let err = apply(
        Some(&live),
        &other_version,
        &entries_of(&live),
        &req("alice", "apps/v1", T1),
        false,
        &[],
        &schema,
    )
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            400,
            "invalid object type: apps/v1beta2, Kind=Deployment".to_string()
        )
    );

    let mut other_kind = nginx(1, "nginx");
    other_kind["kind"] = json!("StatefulSet");
    assert_eq!(
        apply_err(&live, &other_kind, "alice", &schema).message(),
        "invalid object type: apps/v1, Kind=StatefulSet"
    );

    let mut with_managed = nginx(1, "nginx");
    with_managed["metadata"]["managedFields"] = json!([]);
    let err = apply_err(&live, &with_managed, "alice", &schema);
    assert_eq!(
        (err.code(), err.message()),
        (400, "metadata.managedFields must be nil".to_string())
    );
}

#[test]
fn an_applied_list_keeps_live_order_and_inserts_new_items_in_applied_order() {
    let schema = Schema::builtin("", "v1", "Pod");
    let pod = |containers: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}});
    let c = |n: &str| json!({"name": n, "image": "i"});
    let (live, _) = apply_ok(
        None,
        &pod(json!([c("a"), c("b"), c("c")])),
        "alice",
        T0,
        false,
        &schema,
    );
    // x precedes the shared item b in the configuration, so it lands before b.
    let (live, _) = apply_ok(
        Some(&live),
        &pod(json!([c("x"), c("b")])),
        "bob",
        T1,
        false,
        &schema,
    );
    let names: Vec<&str> = live["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "x", "b", "c"]);
}
