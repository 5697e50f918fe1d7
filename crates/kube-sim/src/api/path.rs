//! Turns a request path and method into what it asks for, following the apiserver's RequestInfo rules.

/// A request for an API resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub subresource: String,
}

impl ResourcePath {
    /// The namespace objects of `rt` are stored under: none for cluster-scoped types, even for a
    /// namespace's own path, whose name counts as its namespace for authorization.
    pub fn namespace_for_storage(&self, rt: &crate::registry::ResourceType) -> String {
        if rt.namespaced {
            self.namespace.clone()
        } else {
            String::new()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Resource(ResourcePath),
    /// Anything else: discovery, /version, /openapi, health, the simulator's own endpoints.
    NonResource,
}

/// The subresources of a namespace, which its path cannot otherwise tell from a resource type.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses `/api/v1/...` and `/apis/GROUP/VERSION/...` paths. Returns the target and whether the legacy
/// `/watch/` prefix was used.
pub fn parse(path: &str) -> (Target, bool) {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return (Target::NonResource, false),
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let mut p = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace: String::new(),
        resource: String::new(),
        name: String::new(),
        subresource: String::new(),
    };
    let rest: &[&str] = match rest {
        ["namespaces", ns, tail @ ..]
            if !tail.is_empty() && !NAMESPACE_SUBRESOURCES.contains(&tail[0]) =>
        {
            p.namespace = ns.to_string();
            tail
        }
        _ => rest,
    };
    match rest {
        [resource] => p.resource = resource.to_string(),
        [resource, name] => {
            p.resource = resource.to_string();
            p.name = name.to_string();
        }
        [resource, name, sub] => {
            p.resource = resource.to_string();
            p.name = name.to_string();
            p.subresource = sub.to_string();
        }
        _ => return (Target::NonResource, watch),
    }
    // A namespace's own name is its namespace, as the apiserver records it for authorization.
    if p.resource == "namespaces" && p.group.is_empty() && !p.name.is_empty() {
        p.namespace = p.name.clone();
    }
    (Target::Resource(p), watch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path).0 {
            Target::Resource(r) => r,
            Target::NonResource => panic!("{path} is a resource path"),
        }
    }

    #[test]
    fn core_and_group_paths() {
        let p = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            (
                p.group.as_str(),
                p.namespace.as_str(),
                p.resource.as_str(),
                p.name.as_str(),
                p.subresource.as_str()
            ),
            ("", "default", "pods", "web", "status")
        );
        let d = res("/apis/apps/v1/deployments");
        assert_eq!(
            (
                d.group.as_str(),
                d.version.as_str(),
                d.resource.as_str(),
                d.namespace.as_str()
            ),
            ("apps", "v1", "deployments", "")
        );
    }

    #[test]
    fn namespaces_themselves() {
        let n = res("/api/v1/namespaces/team");
        assert_eq!(
            (n.resource.as_str(), n.name.as_str(), n.namespace.as_str()),
            ("namespaces", "team", "team")
        );
        let f = res("/api/v1/namespaces/team/finalize");
        assert_eq!(
            (f.resource.as_str(), f.name.as_str(), f.subresource.as_str()),
            ("namespaces", "team", "finalize")
        );
        let all = res("/api/v1/namespaces");
        assert_eq!(
            (all.resource.as_str(), all.name.as_str()),
            ("namespaces", "")
        );
    }

    #[test]
    fn legacy_watch_prefix_and_non_resources() {
        let (t, watch) = parse("/api/v1/watch/namespaces/default/pods");
        assert!(watch);
        assert!(
            matches!(t, Target::Resource(ref r) if r.resource == "pods" && r.namespace == "default")
        );
        for p in [
            "/api",
            "/apis",
            "/api/v1",
            "/apis/apps/v1",
            "/version",
            "/openapi/v3",
        ] {
            assert_eq!(parse(p).0, Target::NonResource, "{p}");
        }
    }
}
