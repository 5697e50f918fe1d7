//! RBAC as the apiserver's authorizer does it: bindings select rules for a user; a request is allowed
//! when a rule covers its verb, API group, resource (with subresource) and name, or its non-resource path.
//! Also the escalation check that stops a user from granting permissions it does not hold.
//!
//! Everything here is pure: it takes the stored Roles, ClusterRoles and bindings as JSON.

use serde_json::Value;

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn admin() -> Self {
        User {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    pub fn service_account(namespace: &str, name: &str) -> Self {
        User {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// Whoever presents no credentials.
    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    /// Members of system:masters pass every check, as in the real apiserver.
    pub fn is_superuser(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    /// The (namespace, name) of a service account user.
    pub fn service_account_of(&self) -> Option<(&str, &str)> {
        let rest = self.name.strip_prefix("system:serviceaccount:")?;
        rest.split_once(':')
    }
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    pub verb: String,
    pub resource_request: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

/// The RBAC objects in the store.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub roles: Vec<Value>,
    pub cluster_roles: Vec<Value>,
    pub role_bindings: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn subject_matches(subject: &Value, user: &User, binding_ns: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("User") => user.name == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            // A ServiceAccount subject without a namespace means the binding's own namespace.
            let ns = subject["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(binding_ns);
            user.service_account_of() == Some((ns, name))
        }
        _ => false,
    }
}

fn binds(binding: &Value, user: &User) -> bool {
    let ns = binding["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    binding["subjects"]
        .as_array()
        .is_some_and(|subs| subs.iter().any(|s| subject_matches(s, user, ns)))
}

fn named<'a>(objs: &'a [Value], namespace: &str, name: &str) -> Option<&'a Value> {
    objs.iter().find(|o| {
        o["metadata"]["name"].as_str() == Some(name)
            && o["metadata"]["namespace"].as_str().unwrap_or_default() == namespace
    })
}

impl Policy {
    /// The rules a roleRef points at, or the apiserver's "not found" wording.
    pub fn role_ref_rules(&self, role_ref: &Value, namespace: &str) -> Result<Vec<Value>, String> {
        let name = role_ref["name"].as_str().unwrap_or_default();
        let role = match role_ref["kind"].as_str() {
            Some("ClusterRole") => named(&self.cluster_roles, "", name).ok_or_else(|| {
                format!("clusterrole.rbac.authorization.k8s.io \"{name}\" not found")
            })?,
            _ => named(&self.roles, namespace, name)
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io \"{name}\" not found"))?,
        };
        Ok(role["rules"].as_array().cloned().unwrap_or_default())
    }

    /// The rules that apply to `user` in `namespace` ("" for cluster scope), and the errors met on the way
    /// (bindings to roles that do not exist).
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<Value>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        let mut add = |role_ref: &Value, ns: &str| match self.role_ref_rules(role_ref, ns) {
            Ok(r) => rules.extend(r),
            Err(e) => errors.push(e),
        };
        for b in self.cluster_role_bindings.iter().filter(|b| binds(b, user)) {
            add(&b["roleRef"], "");
        }
        if !namespace.is_empty() {
            for b in self.role_bindings.iter().filter(|b| {
                b["metadata"]["namespace"].as_str() == Some(namespace) && binds(b, user)
            }) {
                add(&b["roleRef"], namespace);
            }
        }
        (rules, errors)
    }

    /// Whether `user` may do what `attrs` describe. On denial, the reason the apiserver appends
    /// (empty unless a binding points at a missing role).
    pub fn authorize(&self, user: &User, attrs: &Attributes) -> Result<(), String> {
        if user.is_superuser() {
            return Ok(());
        }
        let (rules, errors) = self.rules_for(user, &attrs.namespace);
        if rules.iter().any(|r| rule_allows(r, attrs)) {
            return Ok(());
        }
        Err(match errors.len() {
            0 => String::new(),
            1 => format!("RBAC: {}", errors[0]),
            _ => format!("RBAC: [{}]", errors.join(", ")),
        })
    }

    /// The escalation check on creating or updating a role or binding: every permission in `rules` must
    /// already be held by `user` in `namespace`. Returns the apiserver's message when it is not.
    pub fn confirm_no_escalation(
        &self,
        user: &User,
        namespace: &str,
        rules: &[Value],
    ) -> Result<(), String> {
        if user.is_superuser() {
            return Ok(());
        }
        let (owned, errors) = self.rules_for(user, namespace);
        // Missing permissions of one resource (and name) are compacted into one rule listing their
        // verbs in the order met, as rbac's CompactRules does; the descriptions come out sorted.
        let mut compacted: Vec<(Attributes, Vec<String>)> = Vec::new();
        for rule in rules {
            for atom in atoms(rule) {
                if owned.iter().any(|o| rule_allows(o, &atom)) {
                    continue;
                }
                let same = |a: &Attributes| {
                    atom.resource_request
                        && a.resource_request
                        && (&a.group, &a.resource, &a.subresource, &a.name)
                            == (&atom.group, &atom.resource, &atom.subresource, &atom.name)
                };
                match compacted.iter_mut().find(|(a, _)| same(a)) {
                    Some((_, verbs)) if verbs.contains(&atom.verb) => {}
                    Some((_, verbs)) => verbs.push(atom.verb.clone()),
                    None => {
                        let verb = atom.verb.clone();
                        compacted.push((atom, vec![verb]));
                    }
                }
            }
        }
        if compacted.is_empty() {
            return Ok(());
        }
        let mut missing: Vec<String> = compacted
            .iter()
            .map(|(a, verbs)| describe(a, verbs))
            .collect();
        missing.sort();
        missing.dedup();
        let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
        let mut msg = format!(
            "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            groups.join(" "),
            missing.join("\n")
        );
        if !errors.is_empty() {
            msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(msg)
    }
}

/// Whether one PolicyRule allows a request.
pub fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verbs = strings(&rule["verbs"]);
    if !verbs.iter().any(|v| *v == "*" || *v == attrs.verb) {
        return false;
    }
    if !attrs.resource_request {
        return strings(&rule["nonResourceURLs"]).iter().any(|u| {
            *u == "*"
                || *u == attrs.path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| attrs.path.starts_with(prefix))
        });
    }
    let groups = strings(&rule["apiGroups"]);
    if !groups.iter().any(|g| *g == "*" || *g == attrs.group) {
        return false;
    }
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resource_ok = strings(&rule["resources"]).iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(&rule["resourceNames"]);
    names.is_empty() || names.contains(&attrs.name.as_str())
}

/// Breaks a rule into single permissions (one verb, group, resource and name each), so that coverage is
/// checked permission by permission. A wildcard in the granted rule stays a literal "*" here: only a
/// wildcard covers a wildcard.
fn atoms(rule: &Value) -> Vec<Attributes> {
    let verbs = strings(&rule["verbs"]);
    let mut out = Vec::new();
    for verb in &verbs {
        for url in strings(&rule["nonResourceURLs"]) {
            out.push(Attributes {
                verb: verb.to_string(),
                path: url.to_string(),
                ..Default::default()
            });
        }
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
                let names = strings(&rule["resourceNames"]);
                let names = if names.is_empty() { vec![""] } else { names };
                for name in names {
                    out.push(Attributes {
                        verb: verb.to_string(),
                        resource_request: true,
                        group: group.to_string(),
                        resource: resource.to_string(),
                        subresource: subresource.to_string(),
                        name: name.to_string(),
                        ..Default::default()
                    });
                }
            }
        }
    }
    out
}

/// A missing permission in the compact form the apiserver prints (rbac's CompactString: Go's %q of
/// each list).
fn describe(a: &Attributes, verbs: &[String]) -> String {
    let verbs: Vec<String> = verbs.iter().map(|v| format!("{v:?}")).collect();
    let verbs = verbs.join(" ");
    if !a.resource_request {
        return format!("{{NonResourceURLs:[{:?}], Verbs:[{verbs}]}}", a.path);
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let names = if a.name.is_empty() {
        String::new()
    } else {
        format!(", ResourceNames:[{:?}]", a.name)
    };
    format!(
        "{{APIGroups:[{:?}], Resources:[{:?}]{names}, Verbs:[{verbs}]}}",
        a.group, resource
    )
}

/// The message of a 403 for `attrs`, worded exactly as the apiserver's.
pub fn forbidden_message(user: &User, attrs: &Attributes, reason: &str) -> String {
    let what = if !attrs.resource_request {
        format!(
            "User {:?} cannot {} path {:?}",
            user.name, attrs.verb, attrs.path
        )
    } else {
        let resource = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", attrs.namespace)
        };
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
            user.name, attrs.verb, resource, attrs.group
        )
    };
    // The apiserver escapes what could read as HTML in the message (paths and names come from clients).
    let what = what
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let err = if reason.is_empty() {
        what
    } else {
        format!("{what}: {reason}")
    };
    if !attrs.resource_request {
        return format!("forbidden: {err}");
    }
    forbidden_prefix(&attrs.group, &attrs.resource, &attrs.name, &err)
}

/// `pods "x" is forbidden: ...`, `deployments.apps is forbidden: ...`: apimachinery's NewForbidden.
pub fn forbidden_prefix(group: &str, resource: &str, name: &str, err: &str) -> String {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {name:?} is forbidden: {err}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            roles: vec![json!({
                "metadata": {"name": "op", "namespace": "default"},
                "rules": [
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                    {"apiGroups": ["hap.cloudian.com"], "resources": ["hapcontainers/status"], "verbs": ["patch"]},
                    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["lock"], "verbs": ["update"]}
                ]
            })],
            cluster_roles: vec![json!({
                "metadata": {"name": "system:discovery"},
                "rules": [{"nonResourceURLs": ["/api", "/api/*", "/version"], "verbs": ["get"]}]
            })],
            role_bindings: vec![json!({
                "metadata": {"name": "op", "namespace": "default"},
                "roleRef": {"kind": "Role", "name": "op"},
                "subjects": [{"kind": "ServiceAccount", "name": "hap-operator"}]
            })],
            cluster_role_bindings: vec![json!({
                "metadata": {"name": "system:discovery"},
                "roleRef": {"kind": "ClusterRole", "name": "system:discovery"},
                "subjects": [{"kind": "Group", "name": "system:authenticated"}]
            })],
        }
    }

    fn req(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    #[test]
    fn bindings_grant_their_rules_only_in_their_namespace() {
        let p = policy();
        let sa = User::service_account("default", "hap-operator");
        assert!(
            p.authorize(&sa, &req("list", "", "pods", "", "default", ""))
                .is_ok()
        );
        assert!(
            p.authorize(&sa, &req("list", "", "pods", "", "other", ""))
                .is_err()
        );
        assert!(
            p.authorize(&sa, &req("delete", "", "pods", "", "default", "x"))
                .is_err()
        );
        let other = User::service_account("default", "someone");
        assert!(
            p.authorize(&other, &req("list", "", "pods", "", "default", ""))
                .is_err()
        );
    }

    #[test]
    fn subresources_and_resource_names() {
        let p = policy();
        let sa = User::service_account("default", "hap-operator");
        let g = "hap.cloudian.com";
        assert!(
            p.authorize(
                &sa,
                &req("patch", g, "hapcontainers", "status", "default", "x")
            )
            .is_ok()
        );
        assert!(
            p.authorize(&sa, &req("patch", g, "hapcontainers", "", "default", "x"))
                .is_err()
        );
        assert!(
            p.authorize(&sa, &req("update", "", "configmaps", "", "default", "lock"))
                .is_ok()
        );
        assert!(
            p.authorize(
                &sa,
                &req("update", "", "configmaps", "", "default", "other")
            )
            .is_err()
        );
    }

    #[test]
    fn non_resource_urls_with_prefix_wildcards() {
        let p = policy();
        let sa = User::service_account("default", "hap-operator");
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        };
        assert!(p.authorize(&sa, &path("/api/v1")).is_ok());
        assert!(p.authorize(&sa, &path("/version")).is_ok());
        assert!(p.authorize(&sa, &path("/metrics")).is_err());
    }

    #[test]
    fn forbidden_messages_match_the_apiserver() {
        let sa = User::service_account("default", "hap-operator");
        assert_eq!(
            forbidden_message(&sa, &req("list", "", "secrets", "", "default", ""), ""),
            "secrets is forbidden: User \"system:serviceaccount:default:hap-operator\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(
            forbidden_message(
                &sa,
                &req(
                    "patch",
                    "hap.cloudian.com",
                    "hapcontainers",
                    "status",
                    "default",
                    "x"
                ),
                ""
            ),
            "hapcontainers.hap.cloudian.com \"x\" is forbidden: User \"system:serviceaccount:default:hap-operator\" cannot patch resource \"hapcontainers/status\" in API group \"hap.cloudian.com\" in the namespace \"default\""
        );
        assert_eq!(
            forbidden_message(&sa, &req("list", "", "nodes", "", "", ""), ""),
            "nodes is forbidden: User \"system:serviceaccount:default:hap-operator\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn missing_role_is_the_denial_reason() {
        let mut p = policy();
        p.roles.clear();
        let sa = User::service_account("default", "hap-operator");
        let reason = p
            .authorize(&sa, &req("list", "", "pods", "", "default", ""))
            .unwrap_err();
        assert_eq!(
            reason,
            "RBAC: role.rbac.authorization.k8s.io \"op\" not found"
        );
    }

    #[test]
    fn escalation_needs_every_granted_permission() {
        let p = policy();
        let sa = User::service_account("default", "hap-operator");
        let within =
            vec![json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch"]})];
        assert!(p.confirm_no_escalation(&sa, "default", &within).is_ok());
        let beyond =
            vec![json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "create"]})];
        let msg = p
            .confirm_no_escalation(&sa, "default", &beyond)
            .unwrap_err();
        assert!(
            msg.ends_with(
                "not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"create\"]}"
            ),
            "{msg}"
        );
        let wildcard = vec![json!({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]})];
        assert!(
            p.confirm_no_escalation(&sa, "default", &wildcard).is_err(),
            "only a wildcard covers a wildcard"
        );
        assert!(
            p.confirm_no_escalation(&User::admin(), "default", &beyond)
                .is_ok()
        );
    }
}
