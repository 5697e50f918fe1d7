//! `record_update`: ownership after create, update (PUT) and non-apply patches.

use super::{T0, T1, T2, fields, managers, req};
use crate::{ManagedFieldsEntry, Request, Schema, record_update, record_update_ignoring};
use serde_json::{Value, json};

/// A Deployment as `kubectl create deployment nginx --image=nginx` leaves it after defaulting.
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}, "creationTimestamp": null},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

fn create(obj: &Value, manager: &str) -> Vec<ManagedFieldsEntry> {
    let schema = Schema::builtin("apps", "v1", "Deployment");
    record_update_ignoring(
        None,
        obj,
        &[],
        &req(manager, "apps/v1", T0),
        &[&["status"]],
        &schema,
    )
    .unwrap()
}

/// Stored objects carry uid and their managed fields.
fn stored(mut obj: Value, entries: &[ManagedFieldsEntry]) -> Value {
    obj["metadata"]["uid"] = json!("6f1c2d7e");
    obj["metadata"]["managedFields"] = serde_json::to_value(entries).unwrap();
    obj
}

#[test]
fn create_records_what_a_real_apiserver_records_for_kubectl_create() {
    let entries = create(&created_deployment(), "kubectl-create");
    assert_eq!(
        managers(&entries),
        vec![("kubectl-create".into(), "Update".into())]
    );
    let e = &entries[0];
    assert_eq!(
        (
            e.api_version.as_str(),
            e.time.as_deref(),
            e.fields_type.as_str()
        ),
        ("apps/v1", Some(T0), "FieldsV1")
    );
    assert_eq!(e.subresource, None);
    // Literal shape of a real apiserver's entry: "." only where a whole map or item appeared
    // (labels, rollingUpdate, the container), never on struct fields the zero value already had.
    assert_eq!(
        e.fields_v1.clone().unwrap(),
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:progressDeadlineSeconds": {},
                "f:replicas": {},
                "f:revisionHistoryLimit": {},
                "f:selector": {},
                "f:strategy": {
                    "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                    "f:type": {}
                },
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            "k:{\"name\":\"nginx\"}": {
                                ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                                "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}
                            }
                        },
                        "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                        "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}
                    }
                }
            }
        })
    );
}

#[test]
fn an_update_takes_changed_fields_from_their_previous_owner() {
    let schema = Schema::builtin("apps", "v1", "Deployment");
    let created = create(&created_deployment(), "kubectl-create");
    let old = stored(created_deployment(), &created);
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(3);
    new["metadata"]["labels"]["tier"] = json!("web");

    let entries = record_update(
        Some(&old),
        &new,
        &created,
        &req("kubectl-edit", "apps/v1", T1),
        &schema,
    )
    .unwrap();
    assert_eq!(
        managers(&entries),
        vec![
            ("kubectl-create".into(), "Update".into()),
            ("kubectl-edit".into(), "Update".into())
        ]
    );
    assert_eq!(
        fields(&entries, "kubectl-edit", "Update"),
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}, "f:spec": {"f:replicas": {}}})
    );
    let creator = fields(&entries, "kubectl-create", "Update");
    assert!(creator["f:spec"].get("f:replicas").is_none());
    assert!(creator["f:spec"].get("f:selector").is_some());
    // The untouched entry keeps its time; the editor's is the request time.
    assert_eq!(entries[0].time.as_deref(), Some(T0));
    assert_eq!(entries[1].time.as_deref(), Some(T1));
}

#[test]
fn removing_a_field_removes_its_ownership_and_empty_entries_disappear() {
    let schema = Schema::builtin("", "v1", "ConfigMap");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let created = record_update(None, &cm, &[], &req("creator", "v1", T0), &schema).unwrap();
    assert_eq!(
        fields(&created, "creator", "Update"),
        json!({"f:data": {".": {}, "f:a": {}}})
    );

    let old = stored(cm.clone(), &created);
    let mut new = old.clone();
    new["data"]["b"] = json!("2");
    let added =
        record_update(Some(&old), &new, &created, &req("adder", "v1", T1), &schema).unwrap();
    assert_eq!(
        fields(&added, "adder", "Update"),
        json!({"f:data": {"f:b": {}}})
    );

    let old = stored(new, &added);
    let mut new = old.clone();
    new["data"] = json!({"a": "changed"});
    let entries =
        record_update(Some(&old), &new, &added, &req("editor", "v1", T2), &schema).unwrap();
    // The adder owned only what was removed, so its entry is gone; the creator keeps the map
    // itself (it still exists) but not the value the editor changed.
    assert_eq!(
        managers(&entries),
        vec![
            ("creator".into(), "Update".into()),
            ("editor".into(), "Update".into())
        ]
    );
    assert_eq!(fields(&entries, "creator", "Update"), json!({"f:data": {}}));
    assert_eq!(
        fields(&entries, "editor", "Update"),
        json!({"f:data": {"f:a": {}}})
    );
}

#[test]
fn an_update_that_changes_nothing_keeps_entries_and_times() {
    let schema = Schema::builtin("apps", "v1", "Deployment");
    let created = create(&created_deployment(), "kubectl-create");
    let old = stored(created_deployment(), &created);
    let entries = record_update(
        Some(&old),
        &old,
        &created,
        &req("someone", "apps/v1", T1),
        &schema,
    )
    .unwrap();
    assert_eq!(entries, created);
}

#[test]
fn managed_fields_sent_empty_reset_tracking_and_it_stays_off() {
    let schema = Schema::builtin("apps", "v1", "Deployment");
    let created = create(&created_deployment(), "kubectl-create");
    let old = stored(created_deployment(), &created);
    let mut new = old.clone();
    new["metadata"]["managedFields"] = json!([]);
    let entries = record_update(
        Some(&old),
        &new,
        &created,
        &req("kubectl-edit", "apps/v1", T1),
        &schema,
    )
    .unwrap();
    assert!(entries.is_empty());

    // An existing object without managed fields is not tracked by later updates.
    let old = stored(created_deployment(), &[]);
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(5);
    let entries = record_update(
        Some(&old),
        &new,
        &[],
        &req("kubectl-edit", "apps/v1", T2),
        &schema,
    )
    .unwrap();
    assert!(entries.is_empty());
}

#[test]
fn managed_fields_set_by_the_client_are_the_starting_point() {
    let schema = Schema::builtin("", "v1", "ConfigMap");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}, "data": {"a": "1"}});
    let live_entries: Vec<ManagedFieldsEntry> = serde_json::from_value(json!([
        {"manager": "creator", "operation": "Update", "apiVersion": "v1", "time": T0,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}
    ]))
    .unwrap();
    let sent = json!([
        {"manager": "adopter", "operation": "Apply", "apiVersion": "v1", "time": T0,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}
    ]);
    let old = stored(cm.clone(), &live_entries);
    let mut new = old.clone();
    new["metadata"]["managedFields"] = sent.clone();
    let entries = record_update(
        Some(&old),
        &new,
        &live_entries,
        &req("writer", "v1", T1),
        &schema,
    )
    .unwrap();
    assert_eq!(serde_json::to_value(&entries).unwrap(), sent);

    // Through a subresource the client's managed fields are ignored.
    let status_req = Request {
        subresource: Some("status"),
        ..req("writer", "v1", T1)
    };
    let entries = record_update(Some(&old), &new, &live_entries, &status_req, &schema).unwrap();
    assert_eq!(entries, live_entries);
}

#[test]
fn a_status_update_is_recorded_under_the_subresource() {
    let schema = Schema::builtin("apps", "v1", "Deployment");
    let created = create(&created_deployment(), "kubectl-create");
    let old = stored(created_deployment(), &created);
    let mut new = old.clone();
    new["status"] = json!({
        "replicas": 1,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]
    });
    new["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    let status_req = Request {
        subresource: Some("status"),
        ..req("kube-controller-manager", "apps/v1", T1)
    };
    let entries = record_update(Some(&old), &new, &created, &status_req, &schema).unwrap();
    let e = entries
        .iter()
        .find(|e| e.manager == "kube-controller-manager")
        .unwrap();
    assert_eq!(e.subresource.as_deref(), Some("status"));
    assert_eq!(
        e.fields_v1.clone().unwrap(),
        json!({
            "f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}},
            "f:status": {
                "f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {
                    ".": {}, "f:reason": {}, "f:status": {}, "f:type": {}
                }},
                "f:replicas": {}
            }
        })
    );
}

#[test]
fn status_changes_through_the_main_resource_are_owned_by_nobody() {
    let schema = Schema::builtin("apps", "v1", "Deployment");
    let created = create(&created_deployment(), "kubectl-create");
    let old = stored(created_deployment(), &created);
    let mut new = old.clone();
    new["status"] = json!({"replicas": 7});
    let entries = record_update_ignoring(
        Some(&old),
        &new,
        &created,
        &req("intruder", "apps/v1", T1),
        &[&["status"]],
        &schema,
    )
    .unwrap();
    assert_eq!(entries, created);
}

#[test]
fn more_than_ten_updaters_are_capped_into_ancient_changes() {
    let schema = Schema::builtin("", "v1", "ConfigMap");
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k0": "v"}});
    let mut entries = record_update(None, &obj, &[], &req("writer-00", "v1", T0), &schema).unwrap();
    obj["metadata"]["uid"] = json!("u");
    for i in 1..11 {
        let old = obj.clone();
        obj["data"][format!("k{i}")] = json!("v");
        let time = format!("2026-11-24T10:{i:02}:00Z");
        entries = record_update(
            Some(&old),
            &obj,
            &entries,
            &req(&format!("writer-{i:02}"), "v1", &time),
            &schema,
        )
        .unwrap();
    }
    assert_eq!(entries.len(), 10);
    let ancient = entries
        .iter()
        .find(|e| e.manager == "ancient-changes")
        .expect("bucket");
    // The two oldest writers were folded together; the bucket has the newer one's time.
    assert_eq!(ancient.time.as_deref(), Some("2026-11-24T10:01:00Z"));
    assert_eq!(
        ancient.fields_v1.clone().unwrap(),
        json!({"f:data": {".": {}, "f:k0": {}, "f:k1": {}}})
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.manager == "writer-00" || e.manager == "writer-01")
    );
    // Entries sort by time, so the bucket comes first.
    assert_eq!(entries[0].manager, "ancient-changes");
}

#[test]
fn scaling_moves_replicas_to_a_scale_entry_without_a_timestamp() {
    let schema = Schema::builtin("apps", "v1", "Deployment");
    let created = create(&created_deployment(), "kubectl-create");
    let old = stored(created_deployment(), &created);
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(4);
    let scale_req = Request {
        subresource: Some("scale"),
        ..req("kubectl", "apps/v1", T1)
    };
    let entries = record_update(Some(&old), &new, &created, &scale_req, &schema).unwrap();
    let scale = entries.iter().find(|e| e.manager == "kubectl").unwrap();
    assert_eq!(
        serde_json::to_value(scale).unwrap(),
        json!({"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
               "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"})
    );
    assert!(
        fields(&entries, "kubectl-create", "Update")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}

#[test]
fn custom_resources_created_by_update_get_dot_entries_on_their_spec() {
    let schema = Schema::from_openapi_v3(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}
    }));
    let obj = json!({"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "Store", "metadata": {"name": "s"}, "spec": {"size": 3}});
    let entries = record_update(
        None,
        &obj,
        &[],
        &req("kubectl-create", "hap.cloudian.com/v1alpha1", T0),
        &schema,
    )
    .unwrap();
    assert_eq!(
        fields(&entries, "kubectl-create", "Update"),
        json!({"f:spec": {".": {}, "f:size": {}}})
    );
}

#[test]
fn an_object_that_does_not_fit_its_schema_keeps_the_live_entries() {
    let schema = Schema::builtin("", "v1", "Pod");
    let old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "uid": "u"}, "spec": {"containers": [{"name": "a"}]}});
    let live: Vec<ManagedFieldsEntry> = serde_json::from_value(json!([
        {"manager": "m", "operation": "Update", "apiVersion": "v1", "time": T0,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:containers": {}}}}
    ]))
    .unwrap();
    let mut new = old.clone();
    new["spec"]["containers"] = json!([{"image": "no-name"}]);
    let entries = record_update(Some(&old), &new, &live, &req("w", "v1", T1), &schema).unwrap();
    assert_eq!(entries, live);
}
