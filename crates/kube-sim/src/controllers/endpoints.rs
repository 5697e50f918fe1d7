//! The endpoints and endpointslice controllers: each Service with a selector gets an Endpoints object and
//! an EndpointSlice listing the ready and not-ready addresses of its pods.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Writer, controller_ref, pod_ready, run_loop, storage};
use crate::admission::random_suffix;
use crate::core::{Controller, Core};
use crate::lifecycle::DeleteOptions;
use crate::selectors::LabelSelector;
use crate::store::meta_str;

/// A service port's target on a pod: a number, or a named container port.
fn target_port(svc_port: &Value, pod: &Value) -> Option<i64> {
    match &svc_port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64()),
        _ => svc_port["port"].as_i64(),
    }
}

fn address(pod: &Value) -> Value {
    json!({
        "ip": pod["status"]["podIP"],
        "nodeName": pod["spec"]["nodeName"],
        "targetRef": {"kind": "Pod", "namespace": meta_str(pod, "namespace"), "name": meta_str(pod, "name"), "uid": meta_str(pod, "uid")}
    })
}

/// The desired Endpoints subsets and EndpointSlice body of `svc`.
fn desired(svc: &Value, pods: &[Value]) -> (Value, Value) {
    let selector = LabelSelector::from_map(&svc["spec"]["selector"]);
    let members: Vec<&Value> = pods
        .iter()
        .filter(|p| meta_str(p, "namespace") == meta_str(svc, "namespace"))
        .filter(|p| selector.matches(p) && p["status"]["podIP"].is_string())
        .filter(|p| !p["metadata"]["deletionTimestamp"].is_string())
        .collect();
    let ports: Vec<Value> = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let port_list = |pod: Option<&Value>| -> Vec<Value> {
        ports
            .iter()
            .map(|p| {
                let port = pod
                    .and_then(|pod| target_port(p, pod))
                    .or(p["targetPort"].as_i64())
                    .or(p["port"].as_i64());
                let mut e = json!({"port": port, "protocol": p["protocol"]});
                if let Some(name) = p["name"].as_str() {
                    e["name"] = json!(name);
                }
                e
            })
            .collect()
    };
    let ready: Vec<Value> = members
        .iter()
        .filter(|p| pod_ready(p))
        .map(|p| address(p))
        .collect();
    let not_ready: Vec<Value> = members
        .iter()
        .filter(|p| !pod_ready(p))
        .map(|p| address(p))
        .collect();
    let subsets = if members.is_empty() {
        json!([])
    } else {
        let mut subset = json!({"ports": port_list(members.first().copied())});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        json!([subset])
    };
    let endpoints: Vec<Value> = members
        .iter()
        .map(|p| {
            json!({
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": pod_ready(p), "serving": pod_ready(p), "terminating": false},
                "nodeName": p["spec"]["nodeName"],
                "targetRef": {"kind": "Pod", "namespace": meta_str(p, "namespace"), "name": meta_str(p, "name"), "uid": meta_str(p, "uid")}
            })
        })
        .collect();
    let slice = json!({"addressType": "IPv4", "endpoints": endpoints, "ports": port_list(members.first().copied())});
    (subsets, slice)
}

async fn sync(core: &Core) {
    let writer = Writer {
        core,
        manager: "kube-controller-manager",
    };
    let ep_rt = core.built_in("", "endpoints");
    let slice_rt = core.built_in("discovery.k8s.io", "endpointslices");
    let (services, _) = core.store.list(&storage("", "services"), None);
    let (pods, _) = core.store.list(&storage("", "pods"), None);
    let (all_endpoints, _) = core.store.list(&storage("", "endpoints"), None);
    let (all_slices, _) = core
        .store
        .list(&storage("discovery.k8s.io", "endpointslices"), None);
    for svc in services
        .iter()
        .filter(|s| s["spec"]["selector"].is_object())
    {
        let (ns, name) = (meta_str(svc, "namespace"), meta_str(svc, "name"));
        let (subsets, slice_body) = desired(svc, &pods);
        let labels = svc["metadata"]["labels"].clone();
        match all_endpoints
            .iter()
            .find(|e| meta_str(e, "namespace") == ns && meta_str(e, "name") == name)
        {
            Some(existing)
                if existing["subsets"] == subsets
                    || (existing.get("subsets").is_none() && subsets == json!([])) => {}
            Some(existing) => {
                let mut updated = existing.clone();
                updated["subsets"] = subsets;
                let _ = writer.update(&ep_rt, existing, updated).await;
            }
            None => {
                let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}, "subsets": subsets});
                if labels.is_object() {
                    ep["metadata"]["labels"] = labels.clone();
                }
                let _ = writer.create(&ep_rt, ep).await;
            }
        }
        let existing = all_slices.iter().find(|s| {
            meta_str(s, "namespace") == ns
                && s["metadata"]["labels"]["kubernetes.io/service-name"] == json!(name)
        });
        match existing {
            Some(s)
                if s["endpoints"] == slice_body["endpoints"]
                    && s["ports"] == slice_body["ports"] => {}
            Some(s) => {
                let mut updated = s.clone();
                updated["endpoints"] = slice_body["endpoints"].clone();
                updated["ports"] = slice_body["ports"].clone();
                let _ = writer.update(&slice_rt, s, updated).await;
            }
            None => {
                let mut slice = slice_body;
                slice["apiVersion"] = json!("discovery.k8s.io/v1");
                slice["kind"] = json!("EndpointSlice");
                slice["metadata"] = json!({
                    "name": format!("{name}-{}", random_suffix(5)),
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                    "ownerReferences": [controller_ref(svc)],
                });
                let _ = writer.create(&slice_rt, slice).await;
            }
        }
    }
    // Endpoints of deleted services go too (they carry no owner reference for the garbage collector).
    for ep in &all_endpoints {
        let gone = !services.iter().any(|s| {
            meta_str(s, "namespace") == meta_str(ep, "namespace")
                && meta_str(s, "name") == meta_str(ep, "name")
        });
        if gone {
            let _ = writer.delete(&ep_rt, ep, &DeleteOptions::default());
        }
    }
}

pub async fn run(core: Arc<Core>) {
    run_loop(core, Duration::from_secs(2), |core, event| async move {
        if !core.switches.enabled(Controller::Endpoints) {
            return;
        }
        let relevant = event.as_ref().is_none_or(|e| {
            e.storage.group.is_empty()
                && (e.storage.resource == "pods" || e.storage.resource == "services")
        });
        if relevant {
            sync(&core).await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_not_ready_addresses() {
        let svc = json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"selector": {"app": "a"},
            "ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]}});
        let pod = |name: &str, ready: &str| {
            json!({
                "metadata": {"name": name, "namespace": "d", "uid": name, "labels": {"app": "a"}},
                "spec": {"nodeName": "n", "containers": [{"ports": [{"name": "web", "containerPort": 8080}]}]},
                "status": {"podIP": format!("10.0.0.{}", name.len()), "conditions": [{"type": "Ready", "status": ready}]}
            })
        };
        let other = json!({"metadata": {"name": "o", "namespace": "d", "labels": {"app": "b"}}, "status": {"podIP": "10.9.9.9"}});
        let (subsets, slice) = desired(&svc, &[pod("a", "True"), pod("bb", "False"), other]);
        assert_eq!(subsets[0]["addresses"].as_array().unwrap().len(), 1);
        assert_eq!(subsets[0]["notReadyAddresses"].as_array().unwrap().len(), 1);
        assert_eq!(
            subsets[0]["ports"][0]["port"], 8080,
            "named target ports resolve to the container port"
        );
        assert_eq!(slice["endpoints"].as_array().unwrap().len(), 2);
        let (empty, _) = desired(&svc, &[]);
        assert_eq!(empty, json!([]));
    }
}
