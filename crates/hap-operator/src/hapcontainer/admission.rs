//! The admission policies that confine a workspace's Spark driver. The driver (the workspace pod, run
//! as the ServiceAccount `<name>-spark`) needs to create executor pods, and anyone in the notebook
//! holds its token. RBAC alone cannot say which pods: so the API server's own admission
//! (ValidatingAdmissionPolicies, no webhook) refuses, for requests made as a `<name>-spark` account:
//!
//! - any pod or ConfigMap that its workspace pod is not the one owner of, that is not named as Spark
//!   names executors and their settings, or that carries the labels of the operator's children (or,
//!   on a pod, the label the NetworkPolicies know another workspace's executors by);
//! - any executor not made as the operator's template makes it: another account, an API token, host
//!   namespaces or ports, volumes other than emptyDir and ConfigMap, init or ephemeral containers,
//!   privilege, root, an unconfined profile, sysctls, a chosen node, priority or runtime class,
//!   tolerations beyond the defaults, pull Secrets, device claims, or any Secret but the operator's
//!   copy of the workspace's S3 keys, `<name>-spark-s3` (as environment variables), and the
//!   workspace's Spark authentication secret, `<name>-spark-auth` (as a volume).
//!
//! Everything in that policy follows from the request alone (the workspace's name is the account's
//! less `-spark`), so it holds whatever the namespace's HapContainers say, or if there are none. A
//! second policy, with the HapContainers as parameters, holds executors to the image in their
//! HapContainer's `status.sparkExecutorImage`; that one is weaker by nature (it has nothing to judge
//! by once the HapContainer is gone), and guards little: the image is the user's own choice in the
//! spec.
//!
//! The API server evaluates a parameterised policy once per parameter, so the image policy looks at
//! executor pods only (Spark's label `spark-role: executor`, which the first policy makes every
//! driver's pod carry). Without that, every pod write in a namespace of 1,000 HapContainers cost
//! 58 ms more (measured in docs/scale.md); now only an executor's does.
//!
//! Generated here and shipped with the HapContainer CRD (`hap-operator crd`), drift-tested like it;
//! `testing/cluster/tenants.sh` makes each refused request against a real API server.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::{Value, json};

/// The policies' (and their bindings') names.
pub const PODS: &str = "hap-spark-executors.hap.cloudian.com";
pub const CONFIG_MAPS: &str = "hap-spark-executor-settings.hap.cloudian.com";
pub const IMAGES: &str = "hap-spark-executor-images.hap.cloudian.com";

/// A check: a CEL expression, and what it says when it fails.
type Check = (&'static str, &'static str);

/// What every confined request must pass: the object (before and after a change) has the workspace
/// pod as its one owner.
const OWNED: Check = (
    "variables.ownsNew && variables.ownsOld",
    "a workspace's Spark driver may create, change or delete only its own executors' pods and ConfigMaps (whose one owner is its workspace pod)",
);

/// No object of a driver's carries the labels the operator's children are known by: a pod with them
/// would be selected by another workspace's Service (and get its users' traffic), and either kind
/// would show in the operator's watches as if it were a child.
const UNLABELLED: Check = (
    "request.operation == 'DELETE' || !object.metadata.?labels.orValue({}).exists(k, k in ['app', 'app.kubernetes.io/component', 'app.kubernetes.io/managed-by'])",
    "a workspace's Spark driver may not set the labels app, app.kubernetes.io/component or app.kubernetes.io/managed-by, which select the operator's children",
);

/// The label the NetworkPolicies know a workspace's executors by names the driver's own workspace
/// only: a pod labelled for another workspace would reach that workspace's driver and executors.
const OWN_WORKSPACE_LABEL: Check = (
    "request.operation == 'DELETE' || !('hap.cloudian.com/workspace' in object.metadata.?labels.orValue({})) || object.metadata.labels['hap.cloudian.com/workspace'] == variables.workspace",
    "a workspace's Spark driver may set the label hap.cloudian.com/workspace to its own workspace's name only",
);

/// Spark labels its executor pods so; the image policy selects pods by that label, so a driver's pod
/// must carry it, or it would escape the image check.
const EXECUTOR_LABEL: Check = (
    "!variables.executor || ('spark-role' in object.metadata.?labels.orValue({}) && object.metadata.labels['spark-role'] == 'executor')",
    "an executor pod carries the label spark-role: executor, as Spark labels them",
);

/// Names as Spark gives them, which no child of the operator has: a driver cannot take the name of
/// another workspace's pod or settings before the operator makes it.
const POD_NAME: Check = (
    "request.operation != 'CREATE' || object.metadata.name.matches('-exec-[0-9]+$')",
    "an executor pod's name ends in -exec-<n>, as Spark names them",
);
const CONFIG_MAP_NAME: Check = (
    "request.operation != 'CREATE' || object.metadata.name.matches('^spark-exec-[a-z0-9]+-conf-map$')",
    "a Spark driver's ConfigMap is named spark-exec-<id>-conf-map, as Spark names them",
);

/// What an executor pod must be, each check with what it says when it fails. `variables.executor`
/// is a pod being created or changed.
const EXECUTOR: &[Check] = &[
    (
        "!variables.executor || (object.spec.?serviceAccountName.orValue('default') == 'default' && object.spec.?serviceAccount.orValue('default') == 'default')",
        "an executor runs as the namespace's default ServiceAccount",
    ),
    (
        "!variables.executor || object.spec.?automountServiceAccountToken.orValue(true) == false",
        "an executor gets no API token (automountServiceAccountToken: false)",
    ),
    (
        "!variables.executor || !(object.spec.?hostNetwork.orValue(false) || object.spec.?hostPID.orValue(false) || object.spec.?hostIPC.orValue(false)) && object.spec.containers.all(c, c.?ports.orValue([]).all(p, p.?hostPort.orValue(0) == 0))",
        "an executor uses no host network, PID or IPC namespace, and no host port",
    ),
    (
        "!variables.executor || object.spec.?volumes.orValue([]).all(v, has(v.emptyDir) || has(v.configMap) || (has(v.secret) && v.secret.?secretName.orValue('') == variables.workspace + '-spark-auth'))",
        "an executor mounts only emptyDir and ConfigMap volumes, and of Secrets only its workspace's Spark authentication secret, <workspace>-spark-auth (no other Secret, projected token, claim or host path)",
    ),
    (
        "!variables.executor || (!has(object.spec.initContainers) && !has(object.spec.ephemeralContainers))",
        "an executor has no init or ephemeral containers",
    ),
    (
        "!variables.executor || object.spec.containers.all(c, !c.?securityContext.?privileged.orValue(false) && c.?securityContext.?allowPrivilegeEscalation.orValue(true) == false && c.?securityContext.?capabilities.?drop.orValue([]).exists(d, d == 'ALL') && c.?securityContext.?capabilities.?add.orValue([]).size() == 0 && c.?securityContext.?procMount.orValue('Default') == 'Default')",
        "an executor's containers are not privileged, cannot gain privileges, and drop every capability",
    ),
    (
        "!variables.executor || object.spec.?securityContext.?runAsNonRoot.orValue(false) == true && object.spec.?securityContext.?runAsUser.orValue(1) != 0 && object.spec.containers.all(c, c.?securityContext.?runAsUser.orValue(1) != 0 && c.?securityContext.?runAsNonRoot.orValue(true) == true)",
        "an executor runs as a non-root user (runAsNonRoot: true, never uid 0)",
    ),
    (
        "!variables.executor || object.spec.?securityContext.?seccompProfile.?type.orValue('') in ['RuntimeDefault', 'Localhost'] && object.spec.?securityContext.?appArmorProfile.?type.orValue('RuntimeDefault') != 'Unconfined' && object.spec.?securityContext.?sysctls.orValue([]).size() == 0 && !object.spec.?securityContext.?seLinuxOptions.hasValue() && object.spec.containers.all(c, c.?securityContext.?seccompProfile.?type.orValue('RuntimeDefault') != 'Unconfined' && c.?securityContext.?appArmorProfile.?type.orValue('RuntimeDefault') != 'Unconfined' && !c.?securityContext.?seLinuxOptions.hasValue())",
        "an executor keeps the RuntimeDefault seccomp profile, a confined AppArmor profile, and sets no sysctls or SELinux options",
    ),
    (
        "!variables.executor || !has(object.spec.nodeName) && !has(object.spec.priorityClassName) && !has(object.spec.runtimeClassName) && !has(object.spec.imagePullSecrets) && !has(object.spec.resourceClaims) && object.spec.containers.all(c, c.?resources.?claims.orValue([]).size() == 0) && object.spec.?tolerations.orValue([]).all(t, t.?key.orValue('') in ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'] && t.?effect.orValue('') == 'NoExecute')",
        "an executor chooses no node, priority class, runtime class, pull Secret, device claim or toleration (beyond the default not-ready and unreachable ones)",
    ),
    (
        "!variables.executor || object.spec.containers.all(c, !has(c.envFrom) && c.?env.orValue([]).all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef) || e.valueFrom.secretKeyRef.name == variables.workspace + '-spark-s3'))",
        "an executor reads no Secret but the operator's copy of its workspace's S3 keys, <workspace>-spark-s3",
    ),
];

/// The image check, against the HapContainer of the driver's workspace (the policy's parameter).
const IMAGE: Check = (
    "!variables.executor || params.metadata.name != variables.workspace || object.spec.containers.all(c, c.image == params.?status.?sparkExecutorImage.orValue(''))",
    "an executor runs the workspace's executor image (status.sparkExecutorImage of its HapContainer)",
);

/// The policies: executor pods, their ConfigMaps, and executors' images.
pub fn policies() -> [ValidatingAdmissionPolicy; 3] {
    let mut pods = vec![
        OWNED,
        POD_NAME,
        UNLABELLED,
        OWN_WORKSPACE_LABEL,
        EXECUTOR_LABEL,
    ];
    pods.extend_from_slice(EXECUTOR);
    [
        policy(PODS, "pods", &pods, false),
        policy(
            CONFIG_MAPS,
            "configmaps",
            &[OWNED, CONFIG_MAP_NAME, UNLABELLED],
            false,
        ),
        policy(IMAGES, "pods", &[IMAGE], true),
    ]
}

fn policy(name: &str, resource: &str, checks: &[Check], params: bool) -> ValidatingAdmissionPolicy {
    let validations: Vec<_> = checks
        .iter()
        .map(|(expression, message)| json!({"expression": expression, "message": message}))
        .collect();
    let one_owner = |obj: &str| {
        format!(
            "{obj}.metadata.?ownerReferences.orValue([]).map(r, r.kind + '/' + r.name) == ['Pod/' + variables.workspace + '-happod']"
        )
    };
    let mut spec = json!({
        "failurePolicy": "Fail",
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
            {"name": "ownsNew", "expression": format!("request.operation == 'DELETE' || {}", one_owner("object"))},
            {"name": "ownsOld", "expression": format!("request.operation == 'CREATE' || {}", one_owner("oldObject"))},
            {"name": "executor", "expression": "request.kind.kind == 'Pod' && request.operation != 'DELETE'"}
        ],
        "validations": validations
    });
    if params {
        spec["paramKind"] =
            json!({"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer"});
        // Parameters are looked up and tried for every request the policy matches, before its
        // match conditions: only executor pods (see the module's note) pay for that.
        spec["matchConstraints"]["objectSelector"] =
            json!({"matchLabels": {"spark-role": "executor"}});
    }
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "hap-operator"}},
        "spec": spec
    }))
    .expect("the policy is a ValidatingAdmissionPolicy")
}

/// Binds each policy. The image policy takes every HapContainer of the request's namespace as a
/// parameter, and lets a request through when there is none: the API server looks parameters up
/// before it tries the match conditions, so `Deny` would refuse every pod write in such a
/// namespace, the garbage collector's included.
pub fn bindings() -> [ValidatingAdmissionPolicyBinding; 3] {
    [
        binding(PODS, None),
        binding(CONFIG_MAPS, None),
        binding(
            IMAGES,
            Some(json!({"selector": {}, "parameterNotFoundAction": "Allow"})),
        ),
    ]
}

fn binding(name: &str, param_ref: Option<Value>) -> ValidatingAdmissionPolicyBinding {
    let mut spec = json!({"policyName": name, "validationActions": ["Deny"]});
    if let Some(p) = param_ref {
        spec["paramRef"] = p;
    }
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "hap-operator"}},
        "spec": spec
    }))
    .expect("the binding is a ValidatingAdmissionPolicyBinding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_says_what_it_refuses_and_only_the_image_policy_has_parameters() {
        let [pods, config_maps, images] = policies().map(|p| serde_json::to_value(p).unwrap());
        let validations = pods["spec"]["validations"].as_array().unwrap();
        assert_eq!(validations.len(), EXECUTOR.len() + 5);
        assert!(
            validations
                .iter()
                .all(|v| v["message"].as_str().unwrap().len() > 20)
        );
        assert_eq!(
            config_maps["spec"]["matchConstraints"]["resourceRules"][0]["resources"][0],
            "configmaps"
        );
        assert!(pods["spec"].get("paramKind").is_none());
        assert!(config_maps["spec"].get("paramKind").is_none());
        assert_eq!(images["spec"]["paramKind"]["kind"], "HapContainer");
        // The image policy matches only what the pod policy makes every executor carry.
        assert_eq!(
            images["spec"]["matchConstraints"]["objectSelector"]["matchLabels"]["spark-role"],
            "executor"
        );
        assert!(
            pods["spec"]["matchConstraints"]
                .get("objectSelector")
                .is_none()
        );
        assert!(
            validations
                .iter()
                .any(|v| v["expression"].as_str().unwrap().contains("'spark-role'"))
        );
        for (b, name) in bindings().iter().zip([PODS, CONFIG_MAPS, IMAGES]) {
            let b = serde_json::to_value(b).unwrap();
            assert_eq!(b["spec"]["policyName"], name);
            assert_eq!(b["spec"].get("paramRef").is_some(), name == IMAGES);
        }
    }
}
