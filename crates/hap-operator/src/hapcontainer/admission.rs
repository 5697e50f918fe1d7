//! The admission policy that confines a workspace's Spark driver. The driver (the workspace pod, run
//! as the ServiceAccount `<name>-spark`) needs to create executor pods, and anyone in the notebook
//! holds its token. RBAC alone cannot say which pods: so the API server's own admission
//! (a ValidatingAdmissionPolicy, no webhook) refuses, for requests made as a `<name>-spark` account,
//! every pod or ConfigMap that is not one of that workspace's executors (owned by its driver pod, and
//! without the labels that select the operator's children),
//! and every executor that is not made as the workspace's executors are: the namespace's default
//! ServiceAccount with no token, no host namespaces, only emptyDir and ConfigMap volumes, no
//! privilege, the workspace's executor image, and Secrets only from the workspace's own S3 Secret.
//!
//! The HapContainers themselves are the policy's parameters: each request is held against every
//! HapContainer of its namespace, and only the workspace's own (by name) constrains it. The
//! executor image comes from the HapContainer's status, which only the operator writes.
//!
//! Generated here and shipped with the HapContainer CRD (`hap-operator crd`), drift-tested like it.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::json;

/// The policies' (and their bindings') names: one for pods, one for ConfigMaps (each typed against
/// its own kind).
pub const PODS: &str = "hap-spark-executors.hap.cloudian.com";
pub const CONFIG_MAPS: &str = "hap-spark-executor-settings.hap.cloudian.com";

/// What every confined request must pass: the object (the old one, for a delete) is this
/// workspace's executor's.
const OWNED: (&str, &str) = (
    "variables.owned",
    "a workspace's Spark driver may create, change or delete only its own executors' pods and ConfigMaps (owned by its workspace pod)",
);

/// No object of a driver's carries the labels the operator's children are known by: a pod with them
/// would be selected by another workspace's Service (and get its users' traffic), and either kind
/// would show in the operator's watches as if it were a child.
const UNLABELLED: (&str, &str) = (
    "request.operation == 'DELETE' || !object.metadata.?labels.orValue({}).exists(k, k in ['app', 'app.kubernetes.io/component', 'app.kubernetes.io/managed-by'])",
    "a workspace's Spark driver may not set the labels app, app.kubernetes.io/component or app.kubernetes.io/managed-by, which select the operator's children",
);

/// What an executor pod must be, each check with what it says when it fails.
const EXECUTOR: &[(&str, &str)] = &[
    (
        "!variables.executor || !has(object.spec.serviceAccountName) || object.spec.serviceAccountName == 'default'",
        "an executor runs as the namespace's default ServiceAccount",
    ),
    (
        "!variables.executor || object.spec.?automountServiceAccountToken.orValue(true) == false",
        "an executor gets no API token (automountServiceAccountToken: false)",
    ),
    (
        "!variables.executor || !(object.spec.?hostNetwork.orValue(false) || object.spec.?hostPID.orValue(false) || object.spec.?hostIPC.orValue(false))",
        "an executor uses no host network, PID or IPC namespace",
    ),
    (
        "!variables.executor || object.spec.?volumes.orValue([]).all(v, has(v.emptyDir) || has(v.configMap))",
        "an executor mounts only emptyDir and ConfigMap volumes (no Secret, claim or host path)",
    ),
    (
        "!variables.executor || (!has(object.spec.initContainers) && !has(object.spec.ephemeralContainers))",
        "an executor has no init or ephemeral containers",
    ),
    (
        "!variables.executor || object.spec.containers.all(c, !c.?securityContext.?privileged.orValue(false) && c.?securityContext.?allowPrivilegeEscalation.orValue(true) == false && c.?securityContext.?capabilities.?drop.orValue([]).exists(d, d == 'ALL') && c.?securityContext.?capabilities.?add.orValue([]).size() == 0)",
        "an executor's containers are not privileged, cannot gain privileges, and drop every capability",
    ),
    (
        "!variables.executor || !variables.mine || object.spec.containers.all(c, c.image == params.?status.?sparkExecutorImage.orValue(''))",
        "an executor runs the workspace's executor image (status.sparkExecutorImage of its HapContainer)",
    ),
    (
        "!variables.executor || !variables.mine || object.spec.containers.all(c, !has(c.envFrom) && c.?env.orValue([]).all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef) || e.valueFrom.secretKeyRef.name == params.spec.?s3.?credentialsSecret.?name.orValue('')))",
        "an executor reads no Secret but the workspace's own S3 Secret (spec.s3.credentialsSecret)",
    ),
];

/// The policies: executor pods, and their ConfigMaps.
pub fn policies() -> [ValidatingAdmissionPolicy; 2] {
    let mut pods = vec![OWNED, UNLABELLED];
    pods.extend_from_slice(EXECUTOR);
    [
        policy(PODS, "pods", &pods),
        policy(CONFIG_MAPS, "configmaps", &[OWNED, UNLABELLED]),
    ]
}

fn policy(name: &str, resource: &str, checks: &[(&str, &str)]) -> ValidatingAdmissionPolicy {
    let validations: Vec<_> = checks
        .iter()
        .map(|(expression, message)| json!({"expression": expression, "message": message}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "hap-operator"}},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer"},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"],
                "resources": [resource],
                "operations": ["CREATE", "UPDATE", "DELETE"]
            }]},
            // Only requests made as a workspace's Spark account: `<name>-spark` in the namespace.
            "matchConditions": [{
                "name": "made-by-a-workspace-spark-driver",
                "expression": "request.userInfo.username.startsWith('system:serviceaccount:' + request.namespace + ':') && request.userInfo.username.endsWith('-spark')"
            }],
            "variables": [
                {"name": "account", "expression": "request.userInfo.username.split(':')[3]"},
                {"name": "workspace", "expression": "variables.account.substring(0, variables.account.size() - 6)"},
                {"name": "target", "expression": "request.operation == 'DELETE' ? oldObject : object"},
                {"name": "owned", "expression": "variables.target.metadata.?ownerReferences.orValue([]).exists(r, r.kind == 'Pod' && r.name == variables.workspace + '-happod')"},
                {"name": "executor", "expression": "request.kind.kind == 'Pod' && request.operation != 'DELETE'"},
                {"name": "mine", "expression": "params.metadata.name == variables.workspace"}
            ],
            "validations": validations
        }
    }))
    .expect("the policy is a ValidatingAdmissionPolicy")
}

/// Binds each policy with every HapContainer of the request's namespace as a parameter. A
/// namespace with none lets the request through unjudged: the API server looks the parameters up
/// before it tries the policy's match conditions, so `Deny` would refuse every pod and ConfigMap
/// write in such a namespace, the garbage collector's included; and a namespace with no
/// HapContainer has no workspace Spark account (each goes with its HapContainer).
pub fn bindings() -> [ValidatingAdmissionPolicyBinding; 2] {
    [binding(PODS), binding(CONFIG_MAPS)]
}

fn binding(name: &str) -> ValidatingAdmissionPolicyBinding {
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "hap-operator"}},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"}
        }
    }))
    .expect("the binding is a ValidatingAdmissionPolicyBinding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_says_what_it_refuses_and_each_binding_names_its_policy() {
        let [pods, config_maps] = policies().map(|p| serde_json::to_value(p).unwrap());
        let validations = pods["spec"]["validations"].as_array().unwrap();
        assert_eq!(validations.len(), EXECUTOR.len() + 2);
        assert!(
            validations
                .iter()
                .all(|v| v["message"].as_str().unwrap().len() > 20)
        );
        let settings = config_maps["spec"]["validations"].as_array().unwrap();
        assert_eq!(settings.len(), 2);
        assert_eq!(
            config_maps["spec"]["matchConstraints"]["resourceRules"][0]["resources"][0],
            "configmaps"
        );
        for (b, name) in bindings().iter().zip([PODS, CONFIG_MAPS]) {
            let b = serde_json::to_value(b).unwrap();
            assert_eq!(b["spec"]["policyName"], name);
            assert_eq!(b["spec"]["paramRef"]["parameterNotFoundAction"], "Allow");
        }
    }
}
