//! Kind-specific behaviour of the built-in resources: namespaces, both Event APIs, leases, claims,
//! secrets, the ServiceAccount admission of pods, validation and field validation, and dry runs.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

use crate::common::{self, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_empties_it_then_removes_it() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    assert_eq!(
        common::post(
            &c,
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "team"}})
        )
        .await
        .code,
        201
    );
    let ns = common::get(&c, "/api/v1/namespaces/team").await.json();
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let cm = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    assert_eq!(
        common::post(&c, "/api/v1/namespaces/team/configmaps", &cm)
            .await
            .code,
        201
    );
    assert_eq!(
        common::post(
            &c,
            "/api/v1/namespaces/team/secrets",
            &json!({"metadata": {"name": "s"}})
        )
        .await
        .code,
        201
    );

    let r = common::delete(&c, "/api/v1/namespaces/team", None).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.json()["status"]["phase"], "Terminating");
    // Nothing new may be created in it meanwhile.
    let s = common::post(&c, "/api/v1/namespaces/team/configmaps", &json!({"metadata": {"name": "late"}})).await.assert_status(
        403,
        "Forbidden",
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated",
    );
    assert_eq!(s["details"]["causes"][0]["reason"], "NamespaceTerminating");
    eventually("the namespace's contents are deleted", || async {
        (common::get(&c, "/api/v1/namespaces/team/secrets/s")
            .await
            .code
            == 404)
            .then_some(())
    })
    .await;
    // The finalizer on the remaining object holds the namespace.
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/team").await.json()["status"]["phase"],
        "Terminating"
    );
    common::patch(
        &c,
        "/api/v1/namespaces/team/configmaps/held",
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    eventually("the namespace is gone", || async {
        (common::get(&c, "/api/v1/namespaces/team").await.code == 404).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_and_events_k8s_io_events_are_two_views_of_one_store() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    // kube-rs's recorder writes events.k8s.io/v1 Events, and patches a repeated one into a series.
    let recorder = Recorder::new(
        c.clone(),
        Reporter {
            controller: "test-controller".into(),
            instance: Some("test-1".into()),
        },
    );
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some("subject".into()),
        namespace: Some("default".into()),
        uid: Some("00000000-0000-4000-8000-000000000001".into()),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "Broken".into(),
        note: Some("it broke".into()),
        action: "Check".into(),
        secondary: None,
    };
    recorder.publish(&event, &regarding).await.unwrap();
    recorder.publish(&event, &regarding).await.unwrap();

    let v1 = common::get(&c, "/apis/events.k8s.io/v1/namespaces/default/events")
        .await
        .json();
    let item = v1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "Broken")
        .expect("the event")
        .clone();
    assert_eq!(item["note"], "it broke");
    assert_eq!(item["regarding"]["name"], "subject");
    assert_eq!(item["reportingController"], "test-controller");
    assert_eq!(item["series"]["count"], 2);
    // The same object through core/v1, with the old field names.
    let name = item["metadata"]["name"].as_str().unwrap();
    let core: Api<CoreEvent> = Api::namespaced(c.clone(), "default");
    let old = core.get(name).await.unwrap();
    assert_eq!(old.message.as_deref(), Some("it broke"));
    assert_eq!(old.involved_object.name.as_deref(), Some("subject"));
    assert_eq!(old.reporting_component.as_deref(), Some("test-controller"));
    assert_eq!(old.series.unwrap().count, Some(2));
    // Field selectors on the old names work for the core view (kubectl describe uses them).
    let selected = common::get(&c, "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dsubject,reason%3DBroken").await.json();
    assert_eq!(selected["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_keep_micro_times_and_conflict_when_stale() {
    let sim = common::start().await;
    let api: Api<Lease> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"}, "spec": {
        "holderIdentity": "a", "leaseDurationSeconds": 15,
        "acquireTime": "2026-01-01T00:00:00.123456Z", "renewTime": "2026-01-01T00:00:01.654321Z"}}))
    .unwrap();
    let created = api.create(&PostParams::default(), &lease).await.unwrap();
    let raw = serde_json::to_value(&created).unwrap();
    assert_eq!(raw["spec"]["acquireTime"], "2026-01-01T00:00:00.123456Z");
    assert_eq!(raw["spec"]["renewTime"], "2026-01-01T00:00:01.654321Z");
    // Leader election: the holder renews; a contender with the old version loses.
    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().lease_transitions = Some(1);
    api.replace("leader", &PostParams::default(), &renewed)
        .await
        .unwrap();
    let mut contender = created.clone();
    contender.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let kube::Error::Api(e) = api
        .replace("leader", &PostParams::default(), &contender)
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(e.code, 409);
    // Taking the lease by server-side apply must force: the holder's update owns the field.
    let apply = Patch::Apply(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": "b"}}),
    );
    let kube::Error::Api(e) = api
        .patch("leader", &PatchParams::apply("b"), &apply)
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    let applied = api
        .patch("leader", &PatchParams::apply("b").force(), &apply)
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().holder_identity.as_deref(), Some("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_get_the_default_storage_class_and_are_bound() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let pvc = json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}});
    let r = common::post(
        &c,
        "/api/v1/namespaces/default/persistentvolumeclaims",
        &pvc,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(
        created["spec"]["storageClassName"], "standard",
        "the DefaultStorageClass admission plugin"
    );
    assert_eq!(created["spec"]["volumeMode"], "Filesystem");
    let bound = eventually("the claim is bound", || async {
        let p = common::get(&c, "/api/v1/namespaces/default/persistentvolumeclaims/data")
            .await
            .json();
        (p["status"]["phase"] == "Bound").then_some(p)
    })
    .await;
    assert_eq!(bound["status"]["capacity"]["storage"], "2Gi");
    assert_eq!(bound["status"]["accessModes"], json!(["ReadWriteOnce"]));
    assert!(
        bound["spec"]["volumeName"]
            .as_str()
            .unwrap()
            .starts_with("pvc-")
    );
    // A bound claim's spec is immutable except for its requested size.
    let mut changed = bound.clone();
    changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let s = common::put(
        &c,
        "/api/v1/namespaces/default/persistentvolumeclaims/data",
        &changed,
    )
    .await;
    assert_eq!(s.code, 422, "{}", s.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_fold_string_data_and_check_their_keys() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let secret =
        json!({"metadata": {"name": "s"}, "stringData": {"token": "abc"}, "data": {"raw": "eA=="}});
    let r = common::post(&c, "/api/v1/namespaces/default/secrets", &secret).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let s = r.json();
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"], json!({"raw": "eA==", "token": "YWJj"}));
    assert!(s.get("stringData").is_none(), "stringData is write-only");
    let bad = json!({"metadata": {"name": "bad"}, "data": {"a b": "eA=="}});
    common::post(&c, "/api/v1/namespaces/default/secrets", &bad).await.assert_status(
        422,
        "Invalid",
        "Secret \"bad\" is invalid: data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_need_their_service_account_and_get_its_token_mounted() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Scheduler, false);
    let c = sim.admin_client().await.unwrap();
    let pod = |sa: &str| json!({"metadata": {"name": format!("p-{sa}")}, "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "busybox"}]}});
    common::post(&c, "/api/v1/namespaces/default/pods", &pod("missing")).await.assert_status(
        403,
        "Forbidden",
        "pods \"p-missing\" is forbidden: error looking up service account default/missing: serviceaccount \"missing\" not found",
    );
    eventually("the default ServiceAccount exists", || async {
        (common::get(&c, "/api/v1/namespaces/default/serviceaccounts/default")
            .await
            .code
            == 200)
            .then_some(())
    })
    .await;
    let r = common::post(&c, "/api/v1/namespaces/default/pods", &pod("default")).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let p = r.json();
    let volume = p["spec"]["volumes"][0].clone();
    assert!(
        volume["name"]
            .as_str()
            .unwrap()
            .starts_with("kube-api-access-")
    );
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["path"],
        "token"
    );
    assert_eq!(
        p["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(p["spec"]["serviceAccount"], "default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_objects_are_validated_with_the_apiservers_messages() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let s = common::post(
        &c,
        "/api/v1/namespaces/default/pods",
        &json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": []}}),
    )
    .await;
    let status = s.json();
    assert_eq!(
        (s.code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{}",
        s.text
    );
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"metadata.name") && fields.contains(&"spec.containers"),
        "{fields:?}"
    );
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("Pod \"Bad_Name\" is invalid: ["),
        "{}",
        status["message"]
    );

    let svc =
        json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "protocol": "HTTP"}]}});
    common::post(&c, "/api/v1/namespaces/default/services", &svc).await.assert_status(
        422,
        "Invalid",
        "Service \"web\" is invalid: spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    );
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    common::post(&c, "/apis/apps/v1/namespaces/default/deployments", &deploy).await.assert_status(
        422,
        "Invalid",
        "Deployment.apps \"d\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"b\"}: `selector` does not match template `labels`",
    );
    let named = json!({"metadata": {"name": "named"}, "spec": {"ports": [{"name": "Spark_UI", "port": 4040, "targetPort": "ui--port"}]}});
    let s = common::post(&c, "/api/v1/namespaces/default/services", &named)
        .await
        .json();
    let causes: Vec<String> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        causes.iter().any(|c| c.starts_with(
            "spec.ports[0].name: Invalid value: \"Spark_UI\": a lowercase RFC 1123 label"
        )),
        "{causes:?}"
    );
    assert!(causes.contains(&"spec.ports[0].targetPort: Invalid value: \"ui--port\": must not contain consecutive hyphens".to_string()), "{causes:?}");
    let role = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]});
    common::post(&c, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", &role).await.assert_status(
        422,
        "Invalid",
        "Role.rbac.authorization.k8s.io \"r\" is invalid: [rules[0].verbs: Required value: verbs must contain at least one value, rules[1].nonResourceURLs: Invalid value: [\"/metrics\"]: namespaced rules cannot apply to non-resource URLs]",
    );
    let binding = json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "Robot", "name": "r2d2"}]});
    common::post(&c, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", &binding).await.assert_status(
        422,
        "Invalid",
        "RoleBinding.rbac.authorization.k8s.io \"b\" is invalid: subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
    );
    let pod = json!({"metadata": {"name": "env"}, "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "A=B", "value": "x"}]}],
        "volumes": [{"name": "nothing"}]}});
    let s = common::post(&c, "/api/v1/namespaces/default/pods", &pod)
        .await
        .json();
    let causes: Vec<String> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        causes.contains(&"spec.volumes[0]: Required value: must specify a volume type".to_string()),
        "{causes:?}"
    );
    assert!(
        causes.contains(&"spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='".to_string()),
        "{causes:?}"
    );
    // A wrongly typed field is a decoding error, not a validation one.
    let r = common::post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "x"}, "data": {"k": 1}}),
    )
    .await;
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (400, Some("BadRequest")),
        "{}",
        r.text
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: "),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_warn_by_default_fail_when_strict_and_pass_when_ignored() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let body =
        |name: &str| json!({"metadata": {"name": name, "colour": "red"}, "data": {"a": "b"}});
    let warned = common::post(&c, "/api/v1/namespaces/default/configmaps", &body("warn")).await;
    assert_eq!(warned.code, 201);
    assert_eq!(
        warned.header("warning"),
        "299 - \"unknown field \\\"metadata.colour\\\"\""
    );
    assert!(
        warned.json()["metadata"].get("colour").is_none(),
        "the unknown field is dropped"
    );
    common::post(&c, "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", &body("strict")).await.assert_status(
        400,
        "BadRequest",
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"metadata.colour\"",
    );
    let ignored = common::post(
        &c,
        "/api/v1/namespaces/default/configmaps?fieldValidation=Ignore",
        &body("ignore"),
    )
    .await;
    assert_eq!(ignored.code, 201);
    assert!(ignored.headers.get("warning").is_none());
    common::post(&c, "/api/v1/namespaces/default/configmaps?fieldValidation=Loud", &body("loud")).await.assert_status(
        422,
        "Invalid",
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loud\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_answer_without_storing() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let r = common::post(
        &c,
        "/api/v1/namespaces/default/configmaps?dryRun=All",
        &json!({"metadata": {"name": "dry"}, "data": {"a": "1"}}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert!(
        r.json()["metadata"]["uid"].is_string(),
        "a dry run answers with the object as it would be"
    );
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/configmaps/dry")
            .await
            .code,
        404
    );
    assert_eq!(
        common::post(
            &c,
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "wet"}, "data": {"a": "1"}})
        )
        .await
        .code,
        201
    );
    let p = common::patch(
        &c,
        "/api/v1/namespaces/default/configmaps/wet?dryRun=All",
        "application/merge-patch+json",
        &json!({"data": {"a": "2"}}),
    )
    .await;
    assert_eq!(p.json()["data"]["a"], "2");
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/configmaps/wet")
            .await
            .json()["data"]["a"],
        "1"
    );
    assert_eq!(
        common::delete(
            &c,
            "/api/v1/namespaces/default/configmaps/wet?dryRun=All",
            None
        )
        .await
        .code,
        200
    );
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/configmaps/wet")
            .await
            .code,
        200
    );
    common::post(&c, "/api/v1/namespaces/default/configmaps?dryRun=Some", &json!({"metadata": {"name": "x"}})).await.assert_status(
        422,
        "Invalid",
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"Some\"]: supported values: \"All\"",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_are_stored_in_canonical_form() {
    let sim = common::start().await;
    sim.set_controller(kube_sim::Controller::Scheduler, false);
    let c = sim.admin_client().await.unwrap();
    eventually("the default ServiceAccount exists", || async {
        (common::get(&c, "/api/v1/namespaces/default/serviceaccounts/default")
            .await
            .code
            == 200)
            .then_some(())
    })
    .await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}, "spec": {"containers": [{"name": "c", "image": "i",
        "resources": {"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": {"cpu": 2, "memory": "1.5Gi"}}}]}});
    let r = common::patch(
        &c,
        "/api/v1/namespaces/default/pods/q?fieldManager=me",
        "application/apply-patch+yaml",
        &pod,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(
        created["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1536Mi"}})
    );
    // Applying the same intent again is no change, although the text differs from what is stored.
    let again = common::patch(
        &c,
        "/api/v1/namespaces/default/pods/q?fieldManager=me",
        "application/apply-patch+yaml",
        &pod,
    )
    .await
    .json();
    assert_eq!(
        again["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let mut bad = pod.clone();
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("lots");
    common::post(&c, "/api/v1/namespaces/default/pods", &bad).await.assert_status(
        400,
        "BadRequest",
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    );
}
