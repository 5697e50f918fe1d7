//! NetworkPolicies as both resources write them: ingress only (what a pod may be reached by), each
//! rule a list of peers and of TCP ports. Egress is left open: the servers reach S3 and each other as
//! the ingress rules of the other side allow.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `app.kubernetes.io/name` of a workspace's children (HapContainer's), and what its pod is known by
/// to the SQL stack's policies: the namespace's workspaces may query Trino.
pub const WORKSPACE_APP: &str = "hap-workspace";

/// The workspace pods of a namespace (not their executors or anything else a workspace made).
pub fn workspace_pods() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            WORKSPACE_APP.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "workspace".to_string(),
        ),
    ])
}

/// The label Kubernetes gives every namespace, its own name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A policy that admits, to the pods with the labels `selects`, only what `rules` list.
pub fn ingress_only(
    metadata: ObjectMeta,
    selects: BTreeMap<String, String>,
    rules: Vec<NetworkPolicyIngressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(labels(selects)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(rules),
            egress: None,
        }),
    }
}

/// Connections from `peers` (anyone when empty) to `ports` (every port when empty).
pub fn rule(peers: Vec<NetworkPolicyPeer>, ports: &[i32]) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule {
        from: (!peers.is_empty()).then_some(peers),
        ports: (!ports.is_empty()).then(|| {
            ports
                .iter()
                .map(|p| NetworkPolicyPort {
                    port: Some(IntOrString::Int(*p)),
                    protocol: Some("TCP".into()),
                    end_port: None,
                })
                .collect()
        }),
    }
}

/// Connections from `peers` to the TCP ports `first` to `last`.
pub fn range_rule(
    peers: Vec<NetworkPolicyPeer>,
    first: i32,
    last: i32,
) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule {
        from: (!peers.is_empty()).then_some(peers),
        ports: Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(first)),
            protocol: Some("TCP".into()),
            end_port: Some(last),
        }]),
    }
}

/// The pods of the policy's own namespace with these labels.
pub fn pods(with: BTreeMap<String, String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(labels(with)),
        ..Default::default()
    }
}

/// Every pod of the namespaces named (none when the list is empty).
pub fn namespaces(names: &[String]) -> Option<NetworkPolicyPeer> {
    (!names.is_empty()).then(|| NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.into(),
                operator: "In".into(),
                values: Some(names.to_vec()),
            }]),
            match_labels: None,
        }),
        ..Default::default()
    })
}

fn labels(with: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(with),
        match_expressions: None,
    }
}

/// For tests: each rule of a policy as (its peers, its ports), a peer shown as its pod labels or as
/// `namespaces: a,b`.
#[cfg(test)]
pub fn rules_of(policy: &NetworkPolicy) -> Vec<(Vec<String>, Vec<i32>)> {
    let spec = policy.spec.as_ref().expect("a policy has a spec");
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_string()][..])
    );
    let show = |p: &NetworkPolicyPeer| match (&p.pod_selector, &p.namespace_selector) {
        (Some(pods), None) => pods
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        (None, Some(ns)) => format!(
            "namespaces: {}",
            ns.match_expressions.as_ref().unwrap()[0]
                .values
                .as_ref()
                .unwrap()
                .join(",")
        ),
        other => panic!("a peer of pods or of namespaces, not {other:?}"),
    };
    spec.ingress
        .iter()
        .flatten()
        .map(|r| {
            let ports = r.ports.iter().flatten().flat_map(|p| match p.port {
                Some(IntOrString::Int(n)) => n..=p.end_port.unwrap_or(n),
                _ => panic!("numbered ports"),
            });
            (r.from.iter().flatten().map(show).collect(), ports.collect())
        })
        .collect()
}
