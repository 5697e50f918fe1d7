//! The tenant boundary of the multi-tenant install: each tenant's namespace must enforce the
//! `restricted` Pod Security Standard, so that nothing a tenant runs there (a workspace, Spark's
//! executors, any pod its users make) gets privileges, host access or another identity. The operator
//! creates nothing in a namespace that does not; in the original's install (one shared namespace) the
//! namespace is not a boundary and is not checked.

use k8s_openapi::api::core::v1::Namespace;
use kube::Resource;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;

use super::caches::Caches;
use super::config::Tenancy;
use super::problem::Problem;
use super::reason::Reason;

/// The Pod Security admission label, and the level a tenant's namespace must enforce.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const RESTRICTED: &str = "restricted";

/// Whether a namespace enforces the restricted standard.
pub fn restricted(namespace: &PartialObjectMeta<Namespace>) -> bool {
    namespace
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ENFORCE_LABEL))
        .is_some_and(|v| v == RESTRICTED)
}

/// Why `owner`'s namespace cannot hold it under `tenancy`, if it cannot.
pub fn problems<O: Resource<DynamicType = ()>>(
    owner: &O,
    caches: &Caches,
    tenancy: Tenancy,
) -> Vec<Problem> {
    if tenancy != Tenancy::Namespaces {
        return Vec::new();
    }
    let name = owner.meta().namespace.clone().unwrap_or_default();
    let found = caches.namespaces.get(&ObjectRef::new(&name));
    if found.is_some_and(|n| restricted(&n)) {
        return Vec::new();
    }
    vec![Problem {
        reason: Reason::NamespaceNotRestricted,
        message: format!(
            "namespace {name:?} does not enforce the restricted Pod Security Standard, which a tenant's namespace must: an administrator labels it {ENFORCE_LABEL}={RESTRICTED} (docs/multi-tenant.md)"
        ),
        blocking: true,
        component: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::caches::testing;

    fn namespace(labels: serde_json::Value) -> PartialObjectMeta<Namespace> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": labels}
        }))
        .unwrap()
    }

    #[test]
    fn a_tenants_namespace_must_enforce_restricted() {
        let hc = crate::testing::hapcontainer("{}");
        let with = |labels| Caches {
            namespaces: testing::store(vec![namespace(labels)]),
            ..testing::empty()
        };
        let restricted = with(serde_json::json!({ENFORCE_LABEL: "restricted"}));
        let baseline = with(serde_json::json!({ENFORCE_LABEL: "baseline"}));
        assert!(problems(&hc, &restricted, Tenancy::Namespaces).is_empty());
        let p = &problems(&hc, &baseline, Tenancy::Namespaces)[0];
        assert_eq!(p.reason, Reason::NamespaceNotRestricted);
        assert!(
            p.message
                .contains("pod-security.kubernetes.io/enforce=restricted")
        );
        assert!(
            problems(&hc, &baseline, Tenancy::SharedNamespace).is_empty(),
            "the original's install has one namespace for all, and does not check it"
        );
    }
}
