//! Whether a live child still says what the operator applied. The spec-hash annotation tells whether the
//! desired state changed; these checks tell whether someone edited the child since (an edit keeps the
//! annotation). Only the fields the operator sets are compared: the API server adds defaults and
//! allocations (cluster IPs, node ports) that are not drift.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

pub fn config_map(live: &ConfigMap, desired: &ConfigMap) -> bool {
    live.data == desired.data
}

fn port_matches(live: &ServicePort, desired: &ServicePort) -> bool {
    live.port == desired.port
        && live.target_port == desired.target_port
        && live.protocol.as_deref().unwrap_or("TCP") == desired.protocol.as_deref().unwrap_or("TCP")
        // An unset node port is the cluster's to allocate; a fixed one must be the one asked for.
        && (desired.node_port.is_none() || live.node_port == desired.node_port)
}

pub fn service(live: &Service, desired: &Service) -> bool {
    let (Some(l), Some(d)) = (&live.spec, &desired.spec) else {
        return false;
    };
    let live_ports = l.ports.clone().unwrap_or_default();
    let desired_ports = d.ports.clone().unwrap_or_default();
    l.type_.as_deref().unwrap_or("ClusterIP") == d.type_.as_deref().unwrap_or("ClusterIP")
        && l.selector == d.selector
        && (d.cluster_ip.is_none() || l.cluster_ip == d.cluster_ip)
        && live_ports.len() == desired_ports.len()
        && desired_ports.iter().all(|dp| {
            live_ports
                .iter()
                .any(|lp| lp.name == dp.name && port_matches(lp, dp))
        })
}

pub fn role(live: &Role, desired: &Role) -> bool {
    live.rules == desired.rules
}

pub fn role_binding(live: &RoleBinding, desired: &RoleBinding) -> bool {
    live.role_ref == desired.role_ref && live.subjects == desired.subjects
}

/// A policy loosened by hand (a rule added, a selector widened) is put back.
pub fn network_policy(live: &NetworkPolicy, desired: &NetworkPolicy) -> bool {
    live.spec == desired.spec
}

/// A Deployment scaled by hand is scaled back; the API server fills in too much of a pod template
/// for a comparison of it to be worth its false alarms, so edits there are left to the hash.
pub fn deployment(live: &Deployment, desired: &Deployment) -> bool {
    let replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);
    replicas(desired).is_none() || replicas(live) == replicas(desired)
}

pub fn stateful_set(live: &StatefulSet, desired: &StatefulSet) -> bool {
    let replicas = |s: &StatefulSet| s.spec.as_ref().and_then(|s| s.replicas);
    replicas(desired).is_none() || replicas(live) == replicas(desired)
}

/// For kinds whose hash annotation is the whole comparison.
pub fn always<L, D>(_: &L, _: &D) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::objects::service_port;
    use k8s_openapi::api::core::v1::ServiceSpec;

    fn svc(kind: &str, ports: Vec<(&str, i32, Option<i32>)>) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some(kind.into()),
                selector: Some([("app".to_string(), "x".to_string())].into()),
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(name, port, node_port)| service_port(name, port, node_port))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn allocated_node_ports_and_defaults_are_not_drift() {
        let desired = svc(
            "NodePort",
            vec![("jupyter", 8888, None), ("spark-ui", 4040, None)],
        );
        let mut live = svc(
            "NodePort",
            vec![
                ("spark-ui", 4040, Some(31001)),
                ("jupyter", 8888, Some(31000)),
            ],
        );
        live.spec.as_mut().unwrap().session_affinity = Some("None".into());
        live.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.7".into());
        assert!(service(&live, &desired));
    }

    #[test]
    fn edited_services_are_drift() {
        let desired = svc(
            "NodePort",
            vec![("jupyter", 8888, Some(30888)), ("spark-ui", 4040, None)],
        );
        let retyped = svc(
            "ClusterIP",
            vec![("jupyter", 8888, None), ("spark-ui", 4040, None)],
        );
        assert!(!service(&retyped, &desired));
        let one_port = svc("NodePort", vec![("jupyter", 8888, Some(30888))]);
        assert!(!service(&one_port, &desired));
        let moved = svc(
            "NodePort",
            vec![
                ("jupyter", 8888, Some(30999)),
                ("spark-ui", 4040, Some(31001)),
            ],
        );
        assert!(!service(&moved, &desired), "a fixed node port must stay");
        let mut reselected = svc(
            "NodePort",
            vec![("jupyter", 8888, Some(30888)), ("spark-ui", 4040, None)],
        );
        reselected.spec.as_mut().unwrap().selector =
            Some([("app".to_string(), "y".to_string())].into());
        assert!(!service(&reselected, &desired));
    }

    #[test]
    fn config_maps_roles_and_bindings_compare_what_the_operator_writes() {
        let cm = |v: &str| ConfigMap {
            data: Some([("spark-defaults.conf".to_string(), v.to_string())].into()),
            ..Default::default()
        };
        assert!(config_map(&cm("a"), &cm("a")));
        assert!(!config_map(&cm("edited"), &cm("a")));
        let role_with = |verbs: &[&str]| Role {
            rules: Some(vec![k8s_openapi::api::rbac::v1::PolicyRule {
                verbs: verbs.iter().map(|v| v.to_string()).collect(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(role(&role_with(&["get"]), &role_with(&["get"])));
        assert!(!role(&role_with(&["get", "delete"]), &role_with(&["get"])));
        let binding = RoleBinding::default();
        let mut changed = binding.clone();
        changed.subjects = Some(vec![]);
        assert!(role_binding(&binding, &binding));
        assert!(!role_binding(&changed, &binding));
    }
}
