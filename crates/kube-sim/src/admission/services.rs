//! Cluster IP and node port allocation, done by the apiserver itself when a Service is written (not by a
//! controller), so a client sees its ports in the create response.

use std::collections::BTreeSet;

use rand::Rng;
use serde_json::{Value, json};

use crate::errors::FieldError;

pub const NODE_PORT_MIN: i64 = 30000;
pub const NODE_PORT_MAX: i64 = 32767;

fn needs_node_ports(svc: &Value) -> bool {
    matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    )
}

fn port_key(p: &Value) -> (i64, String) {
    (
        p["port"].as_i64().unwrap_or(0),
        p["protocol"].as_str().unwrap_or("TCP").to_string(),
    )
}

/// Assigns the cluster IP and node ports of `svc`, keeping those `old` already has, and checks the ones
/// the client chose against those `others` use.
pub fn allocate(svc: &mut Value, old: Option<&Value>, others: &[Value]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = svc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = svc["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let is_self = |o: &Value| {
        o["metadata"]["name"].as_str() == Some(name.as_str())
            && o["metadata"]["namespace"].as_str() == Some(namespace.as_str())
    };
    let others: Vec<&Value> = others.iter().filter(|o| !is_self(o)).collect();
    let external_name = svc["spec"]["type"].as_str() == Some("ExternalName");

    // Cluster IP: kept from the old object when the update leaves it out; immutable otherwise.
    let old_ip = old
        .and_then(|o| o["spec"]["clusterIP"].as_str())
        .unwrap_or_default()
        .to_string();
    let new_ip = svc["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if external_name {
        if let Some(s) = svc["spec"].as_object_mut() {
            s.remove("clusterIP");
            s.remove("clusterIPs");
        }
    } else if new_ip.is_empty() && !old_ip.is_empty() {
        svc["spec"]["clusterIP"] = json!(old_ip);
    } else if !old_ip.is_empty() && new_ip != old_ip {
        errs.push(FieldError::invalid(
            "spec.clusterIP",
            json!(new_ip),
            "field is immutable",
        ));
    } else if new_ip.is_empty() {
        let used: BTreeSet<&str> = others
            .iter()
            .filter_map(|o| o["spec"]["clusterIP"].as_str())
            .collect();
        let mut rng = rand::rng();
        let ip = loop {
            // 10.96.0.0/12, leaving the first addresses to well-known services.
            let n: u32 = rng.random_range(10..(1 << 20) - 1);
            let ip = format!("10.{}.{}.{}", 96 + (n >> 16), (n >> 8) & 0xff, n & 0xff);
            if !used.contains(ip.as_str()) {
                break ip;
            }
        };
        svc["spec"]["clusterIP"] = json!(ip);
    }
    if let Some(ip) = svc["spec"]["clusterIP"].as_str().map(str::to_string) {
        svc["spec"]["clusterIPs"] = json!([ip]);
    }

    // Node ports.
    let used: BTreeSet<i64> = others
        .iter()
        .flat_map(|o| o["spec"]["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["nodePort"].as_i64())
        .collect();
    let old_ports: Vec<Value> = old
        .filter(|o| needs_node_ports(o))
        .and_then(|o| o["spec"]["ports"].as_array().cloned())
        .unwrap_or_default();
    let wants = needs_node_ports(svc);
    let mut taken: BTreeSet<i64> = BTreeSet::new();
    let ports = svc["spec"]["ports"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, mut p) in ports.into_iter().enumerate() {
        let field = format!("spec.ports[{i}].nodePort");
        let requested = p["nodePort"].as_i64().filter(|n| *n != 0);
        let previous = old_ports
            .iter()
            .find(|o| port_key(o) == port_key(&p))
            .and_then(|o| o["nodePort"].as_i64());
        if !wants {
            // Switching to ClusterIP drops the node ports that were allocated before.
            if requested.is_some() && requested == previous {
                p.as_object_mut().map(|m| m.remove("nodePort"));
            }
            out.push(p);
            continue;
        }
        let port = match requested.or(previous) {
            Some(n) if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&n) => {
                errs.push(FieldError::invalid(
                    &field,
                    json!(n),
                    format!("provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"),
                ));
                n
            }
            Some(n) if used.contains(&n) || taken.contains(&n) => {
                errs.push(FieldError::invalid(
                    &field,
                    json!(n),
                    "provided port is already allocated",
                ));
                n
            }
            Some(n) => n,
            None => {
                let mut rng = rand::rng();
                let free = (NODE_PORT_MAX - NODE_PORT_MIN + 1) as usize - used.len() - taken.len();
                if free == 0 {
                    errs.push(FieldError::invalid(&field, json!(0), "range is full"));
                    0
                } else {
                    loop {
                        let n = rng.random_range(NODE_PORT_MIN..=NODE_PORT_MAX);
                        if !used.contains(&n) && !taken.contains(&n) {
                            break n;
                        }
                    }
                }
            }
        };
        taken.insert(port);
        p["nodePort"] = json!(port);
        out.push(p);
    }
    if svc["spec"]["ports"].is_array() || !out.is_empty() {
        svc["spec"]["ports"] = json!(out);
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"type": "NodePort", "ports": ports}})
    }

    #[test]
    fn allocates_distinct_ports_in_range() {
        let mut a = svc(
            "a",
            json!([{"port": 8888, "protocol": "TCP"}, {"port": 4040, "protocol": "TCP"}]),
        );
        assert!(allocate(&mut a, None, &[]).is_empty());
        let p0 = a["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
        let p1 = a["spec"]["ports"][1]["nodePort"].as_i64().unwrap();
        assert_ne!(p0, p1);
        assert!((NODE_PORT_MIN..=NODE_PORT_MAX).contains(&p0));
        assert!(a["spec"]["clusterIP"].as_str().unwrap().starts_with("10."));
    }

    #[test]
    fn keeps_allocations_across_updates_that_omit_them() {
        let mut a = svc("a", json!([{"port": 8888, "protocol": "TCP"}]));
        allocate(&mut a, None, &[]);
        let mut update = svc("a", json!([{"port": 8888, "protocol": "TCP"}]));
        assert!(allocate(&mut update, Some(&a), &[a.clone()]).is_empty());
        assert_eq!(
            update["spec"]["ports"][0]["nodePort"],
            a["spec"]["ports"][0]["nodePort"]
        );
        assert_eq!(update["spec"]["clusterIP"], a["spec"]["clusterIP"]);
    }

    #[test]
    fn rejects_taken_and_out_of_range_ports() {
        let mut a = svc(
            "a",
            json!([{"port": 80, "nodePort": 30080, "protocol": "TCP"}]),
        );
        assert!(allocate(&mut a, None, &[]).is_empty());
        let mut b = svc(
            "b",
            json!([{"port": 80, "nodePort": 30080, "protocol": "TCP"}]),
        );
        let errs = allocate(&mut b, None, &[a.clone()]);
        assert_eq!(
            errs[0].message(),
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        );
        let mut c = svc(
            "c",
            json!([{"port": 80, "nodePort": 80, "protocol": "TCP"}]),
        );
        let errs = allocate(&mut c, None, &[]);
        assert!(
            errs[0]
                .message()
                .contains("The range of valid ports is 30000-32767")
        );
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let mut a = svc("a", json!([{"port": 80, "protocol": "TCP"}]));
        allocate(&mut a, None, &[]);
        let mut changed = a.clone();
        changed["spec"]["clusterIP"] = json!("10.96.99.99");
        let errs = allocate(&mut changed, Some(&a), &[]);
        assert!(errs[0].message().ends_with("field is immutable"));
    }
}
