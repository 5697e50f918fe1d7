//! Authentication by bearer token and authorization by the stored RBAC objects, with the apiserver's
//! exact 403 wording.

use axum::http::Method;
use serde_json::{Value, json};

use crate::common;

const USER: &str = "system:serviceaccount:default:op";

async fn admin_post(c: &kube::Client, path: &str, body: Value) {
    let r = common::post(c, path, &body).await;
    assert_eq!(r.code, 201, "{path}: {}", r.text);
}

/// The ServiceAccount `default/op`, a Role and ClusterRole for it, and their bindings.
async fn grant(c: &kube::Client) {
    admin_post(
        c,
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"metadata": {"name": "op"}}),
    )
    .await;
    admin_post(c, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", json!({
        "metadata": {"name": "op"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"], "verbs": ["get", "update", "list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "get"]},
            {"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["patch"]}
        ]
    })).await;
    admin_post(
        c,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        json!({
            "metadata": {"name": "op"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "op"},
            "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "default"}]
        }),
    )
    .await;
    admin_post(c, "/apis/rbac.authorization.k8s.io/v1/clusterroles", json!({
        "metadata": {"name": "node-reader"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    })).await;
    admin_post(c, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json!({
        "metadata": {"name": "op-nodes"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "node-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "default"}]
    })).await;
}

fn forbidden(what: &str, verb: &str, resource: &str, group: &str, scope: &str) -> String {
    format!(
        "{what} is forbidden: User \"{USER}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_grant_verbs_on_resources_in_their_groups_and_namespace() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    admin_post(
        &admin,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "other"}}),
    )
    .await;
    let sa = sim.service_account_client("default", "op").await.unwrap();

    assert_eq!(
        common::get(&sa, "/api/v1/namespaces/default/pods")
            .await
            .code,
        200
    );
    assert_eq!(
        common::get(
            &sa,
            "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1"
        )
        .await
        .code,
        200
    );
    let s = common::request(
        &sa,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/x",
        &[],
        None,
    )
    .await
    .assert_status(
        403,
        "Forbidden",
        &forbidden(
            "pods \"x\"",
            "delete",
            "pods",
            "",
            "in the namespace \"default\"",
        ),
    );
    assert_eq!(s["details"], json!({"name": "x", "kind": "pods"}));
    // A Role's grants stop at its namespace.
    common::get(&sa, "/api/v1/namespaces/other/pods")
        .await
        .assert_status(
            403,
            "Forbidden",
            &forbidden("pods", "list", "pods", "", "in the namespace \"other\""),
        );
    // API groups must match: deployments in apps, not in the core group.
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(
        common::post(&sa, "/apis/apps/v1/namespaces/default/deployments", &deploy)
            .await
            .code,
        201
    );
    let s = common::request(
        &sa,
        Method::DELETE,
        "/apis/apps/v1/namespaces/default/deployments/d",
        &[],
        None,
    )
    .await
    .assert_status(
        403,
        "Forbidden",
        &forbidden(
            "deployments.apps \"d\"",
            "delete",
            "deployments",
            "apps",
            "in the namespace \"default\"",
        ),
    );
    assert_eq!(
        s["details"],
        json!({"name": "d", "group": "apps", "kind": "deployments"})
    );
    // ClusterRoles bound cluster-wide grant cluster-scoped resources, and namespaced ones everywhere.
    assert_eq!(common::get(&sa, "/api/v1/nodes").await.code, 200);
    assert_eq!(
        common::get(&sa, "/api/v1/namespaces/other/secrets")
            .await
            .code,
        200
    );
    assert_eq!(common::get(&sa, "/api/v1/secrets").await.code, 200);
    common::get(&sa, "/api/v1/namespaces").await.assert_status(
        403,
        "Forbidden",
        &forbidden(
            "namespaces",
            "list",
            "namespaces",
            "",
            "at the cluster scope",
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subresources_and_resource_names_need_rules_of_their_own() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    let sa = sim.service_account_client("default", "op").await.unwrap();
    // pods does not cover pods/status, nor deployments deployments/scale.
    common::patch(
        &sa,
        "/api/v1/namespaces/default/pods/x/status",
        "application/merge-patch+json",
        &json!({}),
    )
    .await
    .assert_status(
        403,
        "Forbidden",
        &forbidden(
            "pods \"x\"",
            "patch",
            "pods/status",
            "",
            "in the namespace \"default\"",
        ),
    );
    // deployments/status is granted by its own rule (the object does not exist, so 404 after authorization).
    let r = common::patch(
        &sa,
        "/apis/apps/v1/namespaces/default/deployments/x/status",
        "application/merge-patch+json",
        &json!({}),
    )
    .await;
    assert_eq!(r.code, 404, "{}", r.text);

    // resourceNames allow only the named objects, and a list or watch only when its field selector
    // names one.
    admin_post(
        &admin,
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "allowed"}}),
    )
    .await;
    admin_post(
        &admin,
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "denied"}}),
    )
    .await;
    assert_eq!(
        common::get(&sa, "/api/v1/namespaces/default/configmaps/allowed")
            .await
            .code,
        200
    );
    common::get(&sa, "/api/v1/namespaces/default/configmaps/denied")
        .await
        .assert_status(
            403,
            "Forbidden",
            &forbidden(
                "configmaps \"denied\"",
                "get",
                "configmaps",
                "",
                "in the namespace \"default\"",
            ),
        );
    common::get(&sa, "/api/v1/namespaces/default/configmaps")
        .await
        .assert_status(
            403,
            "Forbidden",
            &forbidden(
                "configmaps",
                "list",
                "configmaps",
                "",
                "in the namespace \"default\"",
            ),
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_selector_on_the_name_lets_resource_names_cover_list_and_watch() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    for name in ["allowed", "denied"] {
        admin_post(
            &admin,
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": name}}),
        )
        .await;
    }
    let sa = sim.service_account_client("default", "op").await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    for selector in ["metadata.name%3Dallowed", "metadata.name%3D%3Dallowed"] {
        let r = common::get(&sa, &format!("{cms}?fieldSelector={selector}")).await;
        assert_eq!(r.code, 200, "{selector}: {}", r.text);
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"]["name"], "allowed");
    }
    let watch = common::get(
        &sa,
        &format!("{cms}?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dallowed"),
    )
    .await;
    assert_eq!(watch.code, 200, "{}", watch.text);
    let legacy = common::get(
        &sa,
        "/api/v1/watch/namespaces/default/configmaps/allowed?timeoutSeconds=1",
    )
    .await;
    assert_eq!(legacy.code, 200, "{}", legacy.text);
    // The name the selector asks for is the name the 403 reports.
    let s = common::get(&sa, &format!("{cms}?fieldSelector=metadata.name%3Ddenied"))
        .await
        .assert_status(
            403,
            "Forbidden",
            &forbidden(
                "configmaps \"denied\"",
                "list",
                "configmaps",
                "",
                "in the namespace \"default\"",
            ),
        );
    assert_eq!(
        s["details"],
        json!({"name": "denied", "kind": "configmaps"})
    );
    // A selector that excludes the name, or also selects others, names nothing.
    for selector in ["metadata.name!%3Dallowed", "metadata.namespace%3Ddefault"] {
        let r = common::get(&sa, &format!("{cms}?fieldSelector={selector}")).await;
        assert_eq!(r.code, 403, "{selector}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_resource_urls_are_authorized_too() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    let sa = sim.service_account_client("default", "op").await.unwrap();
    // Every authenticated user may read discovery and /version (system:discovery, system:public-info-viewer).
    for path in [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/version",
        "/openapi/v3",
    ] {
        assert_eq!(common::get(&sa, path).await.code, 200, "{path}");
    }
    common::get(&sa, "/kube-sim/v1/requests")
        .await
        .assert_status(
            403,
            "Forbidden",
            &format!("forbidden: User \"{USER}\" cannot get path \"/kube-sim/v1/requests\""),
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_authenticate_only_while_their_service_account_exists() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    let sa = sim.service_account_client("default", "op").await.unwrap();
    common::get(&sa, "/api")
        .await
        .assert_status(401, "Unauthorized", "Unauthorized");
    grant(&admin).await;
    assert_eq!(
        common::get(&sa, "/api/v1/namespaces/default/pods")
            .await
            .code,
        200
    );
    assert_eq!(
        common::delete(
            &admin,
            "/api/v1/namespaces/default/serviceaccounts/op",
            None
        )
        .await
        .code,
        200
    );
    common::get(&sa, "/api/v1/namespaces/default/pods")
        .await
        .assert_status(401, "Unauthorized", "Unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_cannot_grant_more_than_their_author_holds() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    admin_post(&admin, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", json!({
        "metadata": {"name": "role-writer"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]}]
    })).await;
    admin_post(&admin, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json!({
        "metadata": {"name": "role-writer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-writer"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "default"}]
    })).await;
    let sa = sim.service_account_client("default", "op").await.unwrap();
    let within = json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
    assert_eq!(
        common::post(
            &sa,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &within
        )
        .await
        .code,
        201
    );
    // What is missing is listed one line per resource, its verbs compacted into one rule.
    let beyond = json!({"metadata": {"name": "deleter"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete", "deletecollection"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}
    ]});
    let s = common::post(
        &sa,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        &beyond,
    )
    .await
    .assert_status(
        403,
        "Forbidden",
        &format!("roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"{USER}\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:default\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{{APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"list\"]}}\n{{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"deletecollection\"]}}"),
    );
    assert_eq!(
        s["details"],
        json!({"name": "deleter", "group": "rbac.authorization.k8s.io", "kind": "roles"})
    );
    // Binding a role one does not hold is an escalation too.
    let bind = json!({"metadata": {"name": "admin-for-me"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "default"}]});
    assert_eq!(
        common::post(
            &sa,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &bind
        )
        .await
        .code,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_subject_access_reviews_answer_can_i() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    let sa = sim.service_account_client("default", "op").await.unwrap();
    let review = |verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "default", "verb": verb, "resource": resource}}})
    };
    let yes = common::post(
        &sa,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &review("list", "pods"),
    )
    .await;
    assert_eq!(yes.code, 201, "{}", yes.text);
    assert_eq!(yes.json()["status"]["allowed"], true);
    let no = common::post(
        &sa,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &review("delete", "pods"),
    )
    .await
    .json();
    assert_eq!(no["status"]["allowed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_credentials_are_anonymous_and_bad_tokens_unauthorized() {
    let sim = common::start().await;
    let kc = kube::config::Kubeconfig::from_yaml(&sim.admin_kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.auth_info = Default::default();
    let anonymous = kube::Client::try_from(config.clone()).unwrap();
    // Public information is open to everyone (system:public-info-viewer); discovery is not.
    assert_eq!(common::get(&anonymous, "/version").await.code, 200);
    common::get(&anonymous, "/api").await.assert_status(
        403,
        "Forbidden",
        "forbidden: User \"system:anonymous\" cannot get path \"/api\"",
    );
    config.auth_info.token = Some("not-a-token".to_string().into());
    let bad = kube::Client::try_from(config).unwrap();
    common::get(&bad, "/version")
        .await
        .assert_status(401, "Unauthorized", "Unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_switches_the_user_for_those_allowed_to_impersonate() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    let as_op = [("impersonate-user", USER)];
    // The admin acting as the ServiceAccount gets exactly its permissions.
    assert_eq!(
        common::request(
            &admin,
            Method::GET,
            "/api/v1/namespaces/default/pods",
            &as_op,
            None
        )
        .await
        .code,
        200
    );
    common::request(
        &admin,
        Method::GET,
        "/api/v1/namespaces/default/secrets/x",
        &as_op,
        None,
    )
    .await
    .assert_status(
        403,
        "Forbidden",
        &forbidden(
            "secrets \"x\"",
            "get",
            "secrets",
            "",
            "in the namespace \"default\"",
        ),
    );
    // An account that does not exist can be impersonated; it has no permissions.
    let ghost = [("impersonate-user", "system:serviceaccount:default:ghost")];
    assert_eq!(
        common::request(
            &admin,
            Method::GET,
            "/api/v1/namespaces/default/pods",
            &ghost,
            None
        )
        .await
        .code,
        403
    );
    // Groups come with the user: impersonating system:masters makes anyone an admin.
    let masters = [
        ("impersonate-user", "someone"),
        ("impersonate-group", "system:masters"),
    ];
    assert_eq!(
        common::request(
            &admin,
            Method::GET,
            "/api/v1/namespaces/default/secrets",
            &masters,
            None
        )
        .await
        .code,
        200
    );
    // Those without the impersonate verb cannot.
    let sa = sim.service_account_client("default", "op").await.unwrap();
    common::request(&sa, Method::GET, "/api/v1/namespaces/default/pods", &[("impersonate-user", "alice")], None)
        .await
        .assert_status(
            403,
            "Forbidden",
            &format!("users \"alice\" is forbidden: User \"{USER}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        );
    common::request(
        &admin,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        &[("impersonate-group", "devs")],
        None,
    )
    .await
    .assert_status(
        400,
        "BadRequest",
        "requested [{Group  devs    }] without impersonating a user",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_comes_before_routing() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    grant(&admin).await;
    let sa = sim.service_account_client("default", "op").await.unwrap();
    // A type that is not served is forbidden to those who may not use it, and not found to the others.
    common::get(&sa, "/apis/example.com/v1/namespaces/default/widgets")
        .await
        .assert_status(
            403,
            "Forbidden",
            &forbidden(
                "widgets.example.com",
                "list",
                "widgets",
                "example.com",
                "in the namespace \"default\"",
            ),
        );
    assert_eq!(
        common::get(&admin, "/apis/example.com/v1/namespaces/default/widgets")
            .await
            .code,
        404
    );
}
