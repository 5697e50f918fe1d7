//! The defaults the apiserver fills into built-in objects (the `SetDefaults_*` functions of k8s.io/api),
//! for the fields that clients and `kubectl describe` look at.

use serde_json::{Value, json};

/// Sets `obj[field]` when it is absent or null.
fn default(obj: &mut Value, field: &str, value: Value) {
    if obj.get(field).is_none_or(Value::is_null) {
        obj[field] = value;
    }
}

fn each_mut(obj: &mut Value, field: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = obj.get_mut(field).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

fn container(c: &mut Value) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    if c.get("imagePullPolicy").is_none_or(Value::is_null) {
        let image = c["image"].as_str().unwrap_or_default();
        // The tag is what follows the last ':' after the last '/'; no tag or :latest means Always.
        let last = image.rsplit('/').next().unwrap_or(image);
        let tag = last
            .split('@')
            .next()
            .unwrap_or(last)
            .split_once(':')
            .map(|(_, t)| t);
        let always = !image.contains('@') && matches!(tag, None | Some("latest"));
        c["imagePullPolicy"] = json!(if always { "Always" } else { "IfNotPresent" });
    }
    default(c, "resources", json!({}));
    each_mut(c, "ports", |p| default(p, "protocol", json!("TCP")));
    each_mut(c, "env", |e| {
        if let Some(f) = e.pointer_mut("/valueFrom/fieldRef") {
            default(f, "apiVersion", json!("v1"));
        }
    });
}

/// Defaults of a PodSpec, wherever it appears (pods and workload templates).
pub fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default(spec, "priority", json!(0));
    each_mut(spec, "containers", container);
    each_mut(spec, "initContainers", container);
    each_mut(spec, "volumes", |v| {
        for source in ["secret", "configMap", "projected", "downwardAPI"] {
            if let Some(s) = v.get_mut(source).filter(|s| s.is_object()) {
                default(s, "defaultMode", json!(420));
            }
        }
    });
}

fn pod_template(obj: &mut Value) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
}

/// Applies the defaults of `group`/`kind` to a new or updated object.
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
                // The DefaultTolerationSeconds admission plugin.
                let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
                let mut tolerations = tolerations;
                for key in [
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ] {
                    if !tolerations.iter().any(|t| t["key"] == key) {
                        tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                    }
                }
                spec["tolerations"] = json!(tolerations);
            }
        }
        ("", "Service") => {
            let spec = &mut obj["spec"];
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            default(spec, "internalTrafficPolicy", json!("Cluster"));
            let t = spec["type"].as_str().unwrap_or_default().to_string();
            if t == "NodePort" || t == "LoadBalancer" {
                default(spec, "externalTrafficPolicy", json!("Cluster"));
            }
            if t != "ExternalName" {
                default(spec, "ipFamilies", json!(["IPv4"]));
                default(spec, "ipFamilyPolicy", json!("SingleStack"));
            }
            each_mut(spec, "ports", |p| {
                default(p, "protocol", json!("TCP"));
                let port = p["port"].clone();
                default(p, "targetPort", port);
            });
        }
        ("", "Secret") => {
            default(obj, "type", json!("Opaque"));
            // stringData is write-only: merged into data, base64-encoded.
            if let Some(Value::Object(string_data)) =
                obj.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                use base64::Engine;
                let data = obj["data"].as_object().cloned().unwrap_or_default();
                let mut data = data;
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    data.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
                obj["data"] = Value::Object(data);
            }
        }
        ("", "PersistentVolumeClaim") => {
            default(&mut obj["spec"], "volumeMode", json!("Filesystem"));
        }
        ("", "Namespace") => {
            default(&mut obj["spec"], "finalizers", json!(["kubernetes"]));
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
        }
        ("apps", "Deployment") => {
            let spec = &mut obj["spec"];
            default(spec, "replicas", json!(1));
            // Go encodes the strategy struct even when empty, so its fields are defaulted one by one.
            default(spec, "strategy", json!({}));
            default(&mut spec["strategy"], "type", json!("RollingUpdate"));
            if spec["strategy"]["type"] == "RollingUpdate" {
                default(
                    &mut spec["strategy"],
                    "rollingUpdate",
                    json!({"maxUnavailable": "25%", "maxSurge": "25%"}),
                );
            }
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            pod_template(obj);
        }
        ("apps", "ReplicaSet") => {
            default(&mut obj["spec"], "replicas", json!(1));
            pod_template(obj);
        }
        ("apps", "StatefulSet") => {
            let spec = &mut obj["spec"];
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(spec, "updateStrategy", json!({}));
            default(&mut spec["updateStrategy"], "type", json!("RollingUpdate"));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                default(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
                default(
                    &mut spec["updateStrategy"]["rollingUpdate"],
                    "partition",
                    json!(0),
                );
            }
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            pod_template(obj);
        }
        ("batch", "Job") => {
            let spec = &mut obj["spec"];
            default(spec, "parallelism", json!(1));
            default(spec, "completions", json!(1));
            default(spec, "backoffLimit", json!(6));
            default(spec, "completionMode", json!("NonIndexed"));
            default(spec, "suspend", json!(false));
            default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            pod_template(obj);
        }
        _ => {}
    }
}

/// The labels and selector the Job controller's admission adds (`batch.kubernetes.io/controller-uid`).
pub fn job_selector(obj: &mut Value) {
    if obj["spec"]["selector"].is_object() {
        return;
    }
    let uid = obj["metadata"]["uid"].clone();
    let name = obj["metadata"]["name"].clone();
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    labels["batch.kubernetes.io/controller-uid"] = uid.clone();
    labels["batch.kubernetes.io/job-name"] = name.clone();
    labels["controller-uid"] = uid;
    labels["job-name"] = name;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "busybox", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "repo:5000/busybox:1.36"},
            {"name": "c", "image": "busybox:latest"}
        ], "volumes": [{"name": "s", "secret": {"secretName": "x"}}]}});
        apply("", "Pod", &mut pod);
        let s = &pod["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(s["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(s["containers"][2]["imagePullPolicy"], "Always");
        assert_eq!(s["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(s["volumes"][0]["secret"]["defaultMode"], 420);
        assert_eq!(s["tolerations"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn empty_strategies_get_their_fields_defaulted() {
        let mut d = json!({"spec": {"strategy": {}, "template": {"spec": {"containers": []}}}});
        apply("apps", "Deployment", &mut d);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    }

    #[test]
    fn service_defaults_target_port_to_port() {
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 8888}]}});
        apply("", "Service", &mut svc);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8888);
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    }

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let mut s = json!({"stringData": {"token": "abc"}, "data": {"x": "eA=="}});
        apply("", "Secret", &mut s);
        assert!(s.get("stringData").is_none());
        assert_eq!(s["data"]["token"], "YWJj");
        assert_eq!(s["data"]["x"], "eA==");
        assert_eq!(s["type"], "Opaque");
    }
}
