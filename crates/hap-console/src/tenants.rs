//! Which namespaces a user's groups give them: the ConfigMap `hap-console` (key `tenants.yaml`) in
//! the console's namespace, written by the admin. The mapping only says where the console looks;
//! what the user may do there is the API server's answer to a SubjectAccessReview, every time.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Deserialize;

pub const CONFIG_MAP: &str = "hap-console";
pub const KEY: &str = "tenants.yaml";

/// One entry: the members of `group` work in `namespaces`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub group: String,
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenants(Vec<Tenant>);

impl Tenants {
    /// The mapping as the admin wrote it; every mistake named, and a bad list refused whole.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tenants: Vec<Tenant> = serde_saphyr::from_str(text)
            .map_err(|e| format!("{KEY} is not a list of tenants: {e}"))?;
        for t in &tenants {
            if t.group.is_empty() {
                return Err(format!("{KEY}: a tenant has an empty group"));
            }
            for ns in &t.namespaces {
                if !hap_api::bounds::NAMESPACE.holds(ns) {
                    return Err(format!(
                        "{KEY}: group {}: {ns:?} is not {}",
                        t.group,
                        hap_api::bounds::NAMESPACE.what
                    ));
                }
            }
        }
        Ok(Self(tenants))
    }

    /// The mapping the ConfigMap holds: none when there is no ConfigMap or no key.
    pub fn from_config_map(cm: Option<&ConfigMap>) -> Result<Self, String> {
        let text = cm
            .and_then(|cm| cm.data.as_ref())
            .and_then(|d| d.get(KEY))
            .map_or("", String::as_str);
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        Self::parse(text).map_err(|e| {
            format!("the tenant mapping is invalid ({e}): an administrator must fix it")
        })
    }

    /// The namespaces the groups work in, each once, in order.
    pub fn namespaces_for(&self, groups: &[String]) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|t| groups.contains(&t.group))
            .flat_map(|t| t.namespaces.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_their_namespaces_and_nothing_else() {
        let t = Tenants::parse(
            "- {group: analysts-a, namespaces: [team-a]}\n- {group: leads, namespaces: [team-a, team-b]}\n",
        )
        .unwrap();
        let of = |gs: &[&str]| {
            let gs: Vec<String> = gs.iter().map(|g| g.to_string()).collect();
            t.namespaces_for(&gs).into_iter().collect::<Vec<_>>()
        };
        assert_eq!(of(&["analysts-a"]), ["team-a"]);
        assert_eq!(of(&["leads", "analysts-a"]), ["team-a", "team-b"]);
        assert!(of(&["analysts-b"]).is_empty());
        assert!(of(&[]).is_empty());
    }

    #[test]
    fn a_bad_mapping_is_refused_whole_with_what_to_fix() {
        let err = |s| Tenants::parse(s).unwrap_err();
        assert!(
            err("- {group: a, namespaces: [Team]}").contains("\"Team\" is not a namespace's name")
        );
        assert!(err("- {group: '', namespaces: [a]}").contains("empty group"));
        assert!(err("- {group: a, namespace: [a]}").contains("unknown field"));
        assert!(err("group: a").contains("not a list of tenants"));
        assert_eq!(Tenants::parse("[]").unwrap(), Tenants::default());
    }
}
