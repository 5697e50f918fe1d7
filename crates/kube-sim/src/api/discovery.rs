//! Discovery documents: the legacy per-group-version lists and the aggregated (apidiscovery.k8s.io)
//! form that current kubectl asks for first, plus /version.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

/// The Kubernetes version kube-sim reports (the build metadata marks it as simulated).
pub const MAJOR: &str = "1";
pub const MINOR: &str = "35";
pub const GIT_VERSION: &str = "v1.35.0+kube-sim";

pub fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "emulationMajor": MAJOR,
        "emulationMinor": MINOR,
        "minCompatibilityMajor": MAJOR,
        "minCompatibilityMinor": "34",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// What a subresource answers with, and to which verbs.
fn subresource_shape(t: &ResourceType, sub: &str) -> (Value, Vec<&'static str>) {
    let gvk = |g: &str, v: &str, k: &str| json!({"group": g, "version": v, "kind": k});
    match sub {
        "scale" => (
            gvk("autoscaling", "v1", "Scale"),
            vec!["get", "patch", "update"],
        ),
        "binding" => (gvk("", "v1", "Binding"), vec!["create"]),
        "eviction" => (gvk("policy", "v1", "Eviction"), vec!["create"]),
        "finalize" => (gvk(&t.group, &t.version, &t.kind), vec!["update"]),
        _ => (
            gvk(&t.group, &t.version, &t.kind),
            vec!["get", "patch", "update"],
        ),
    }
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `/api`
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let gv: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(name, v), "version": v}))
        .collect();
    json!({"name": name, "versions": gv, "preferredVersion": gv[0]})
}

/// `/apis`
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| api_group(g, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let groups = registry.groups();
    let versions = groups.get(name)?;
    let mut g = api_group(name, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `/api/v1` or `/apis/GROUP/VERSION`
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<ResourceType> = registry
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in &types {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        for sub in &t.subresources {
            let (kind, verbs) = subresource_shape(t, sub);
            let mut s = json!({
                "name": format!("{}/{sub}", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": kind["kind"],
                "verbs": verbs,
            });
            if kind["group"] != json!(t.group) {
                s["group"] = kind["group"].clone();
                s["version"] = kind["version"].clone();
            }
            resources.push(s);
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources
    }))
}

/// The aggregated discovery document for the core group (`/api`) or all named groups (`/apis`).
pub fn aggregated(registry: &Registry, core: bool, api_version: &str) -> Value {
    let mut items = Vec::new();
    for (group, versions) in registry.groups() {
        if group.is_empty() != core {
            continue;
        }
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = registry
                    .all()
                    .iter()
                    .filter(|t| t.group == group && &t.version == v)
                    .map(|t| {
                        let mut r = json!({
                            "resource": t.plural,
                            "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                            "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": t.singular,
                            "verbs": t.verbs,
                        });
                        if !t.short_names.is_empty() {
                            r["shortNames"] = json!(t.short_names);
                        }
                        if !t.categories.is_empty() {
                            r["categories"] = json!(t.categories);
                        }
                        let subs: Vec<Value> = t
                            .subresources
                            .iter()
                            .map(|s| {
                                let (kind, verbs) = subresource_shape(t, s);
                                json!({"subresource": s, "responseKind": kind, "verbs": verbs})
                            })
                            .collect();
                        if !subs.is_empty() {
                            r["subresources"] = json!(subs);
                        }
                        r
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions}),
        );
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items
    })
}

/// Which aggregated discovery version the Accept header asks for, if any (v2 preferred, as listed).
pub fn aggregated_version_requested(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_lists_include_subresources() {
        let r = Registry::default();
        let core = resource_list(&r, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"pods")
                && names.contains(&"pods/status")
                && names.contains(&"namespaces/finalize")
        );
        let apps = resource_list(&r, "apps", "v1").unwrap();
        let status = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/status")
            .unwrap();
        assert_eq!(status["kind"], "Deployment");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        assert!(resource_list(&r, "nope", "v1").is_none());
    }

    #[test]
    fn aggregated_discovery_splits_core_from_groups() {
        let r = Registry::default();
        let core = aggregated(&r, true, "apidiscovery.k8s.io/v2");
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let groups = aggregated(&r, false, "apidiscovery.k8s.io/v2");
        assert!(
            groups["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["metadata"]["name"] != "")
        );
        assert_eq!(
            aggregated_version_requested(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2")
        );
        assert_eq!(aggregated_version_requested("application/json, */*"), None);
    }
}
