//! What lets the workspace pod, as a Spark driver, run executor pods: a ServiceAccount bound to a Role
//! limited to the objects Spark on Kubernetes manages, in the HapContainer's namespace.

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::ResourceExt;

use super::parts::meta;
use crate::hapcontainer::names;

/// What Spark's driver (in client mode, from the workspace pod) does with the API, and no more:
/// - pods: create its executors, get/list/watch them (and read its own pod, whose executors it
///   owns), delete an executor it lets go, and deletecollection: at the end of an application it
///   deletes its executors by label, one request;
/// - configmaps: the same for the ConfigMap of Spark settings it makes for its executors.
///
/// No services (client mode makes none; the operator makes the driver's headless Service) and no
/// claims (no on-demand volumes are configured). Which pods and ConfigMaps, and what is in them, the
/// API server's admission policy decides (`crate::hapcontainer::admission`): each deleted object,
/// one by one within a deletecollection, must be this workspace's executor's.
pub fn spark_rules() -> Vec<PolicyRule> {
    let verbs = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "watch",
    ];
    vec![PolicyRule {
        api_groups: Some(vec!["".into()]),
        resources: Some(vec!["configmaps".into(), "pods".into()]),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }]
}

pub fn service_account(hc: &HapContainer) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(hc, &names::spark_rbac(&hc.name_any())),
        ..Default::default()
    }
}

pub fn role(hc: &HapContainer) -> Role {
    Role {
        metadata: meta(hc, &names::spark_rbac(&hc.name_any())),
        rules: Some(spark_rules()),
    }
}

pub fn role_binding(hc: &HapContainer) -> RoleBinding {
    let name = names::spark_rbac(&hc.name_any());
    RoleBinding {
        metadata: meta(hc, &name),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name,
            namespace: hc.namespace(),
            ..Default::default()
        }]),
    }
}
