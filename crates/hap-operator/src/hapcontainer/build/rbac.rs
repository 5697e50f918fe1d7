//! What lets the workspace pod, as a Spark driver, run executor pods: a ServiceAccount bound to a Role
//! limited to the objects Spark on Kubernetes manages, in the HapContainer's namespace.

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::ResourceExt;

use super::parts::meta;
use crate::hapcontainer::names;

/// Spark's driver creates, watches and deletes its executors' pods, services, config maps and
/// on-demand claims.
pub fn spark_rules() -> Vec<PolicyRule> {
    vec![PolicyRule {
        api_groups: Some(vec!["".into()]),
        resources: Some(vec![
            "configmaps".into(),
            "persistentvolumeclaims".into(),
            "pods".into(),
            "services".into(),
        ]),
        verbs: [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "watch",
        ]
        .iter()
        .map(|v| v.to_string())
        .collect(),
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
