//! The read step: the Secrets a spec names. A missing Secret or key is a problem the user fixes (a
//! condition and an event), not an error to retry blindly. Secret values are read only to check that
//! the keys exist; they are never kept, logged or reported.

use hap_api::Component;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Resource};

use super::caches::Caches;
use super::config::Tenancy;
use super::error::ReadError;
use super::problem::Problem;
use super::reason::Reason;

/// The label a Secret needs before a resource may name it, where the operator and its users share
/// one namespace (the original's install): its owner's consent to share it with every user there.
pub const SHARE_LABEL: &str = "hap.cloudian.com/allow-reference";

/// A Secret the user supplies, with the keys the children read from it.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretReference {
    pub name: String,
    pub keys: Vec<String>,
    /// The spec field that names it, for messages.
    pub field: String,
    /// The reasons when the Secret, or one of its keys, is missing.
    pub missing: Reason,
    pub key_missing: Reason,
    /// The components that read it, each of whose conditions reports it missing (none for a
    /// resource without components).
    pub components: Vec<Component>,
}

fn has_key(secret: &Secret, key: &str) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(key))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(key))
}

/// What is wrong with one referenced Secret as found (None: it does not exist), if anything, under
/// `tenancy`.
pub fn problem(
    wanted: &SecretReference,
    namespace: &str,
    found: Option<&Secret>,
    tenancy: Tenancy,
) -> Option<(Reason, String)> {
    let SecretReference {
        name, keys, field, ..
    } = wanted;
    let shared = |s: &Secret| {
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SHARE_LABEL))
            .is_some_and(|v| v == "true")
    };
    if let Some(secret) = found
        && tenancy == Tenancy::SharedNamespace
        && !shared(secret)
    {
        return Some((
            Reason::SecretNotShared,
            format!(
                "Secret {name:?} ({field}) is not shared with the HAP resources of namespace {namespace:?}: where users share a namespace, a resource may name only the Secrets labelled {SHARE_LABEL}=true; if the Secret is yours to share, label it (kubectl label secret {name} {SHARE_LABEL}=true)"
            ),
        ));
    }
    match found {
        None => Some((
            wanted.missing,
            match keys.len() {
                0 => format!(
                    "Secret {name:?} ({field}) was not found in namespace {namespace:?}: create it"
                ),
                n => format!(
                    "Secret {name:?} ({field}) was not found in namespace {namespace:?}: create it with the key{} {}",
                    if n > 1 { "s" } else { "" },
                    keys.join(" and ")
                ),
            },
        )),
        Some(secret) => {
            let missing: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| !has_key(secret, k))
                .collect();
            (!missing.is_empty()).then(|| {
                (
                    wanted.key_missing,
                    format!(
                        "Secret {name:?} ({field}) has no key {}: add it",
                        missing.join(" or ")
                    ),
                )
            })
        }
    }
}

/// Checks each Secret: the problems found (one per component that reads the Secret), in the order
/// given, and the Secrets that could not be read (each is checked, whatever the others gave).
pub async fn check(
    api: &Api<Secret>,
    wanted: &[SecretReference],
    tenancy: Tenancy,
) -> (Vec<Problem>, Vec<ReadError>) {
    let namespace = api.namespace().unwrap_or_default();
    let (mut problems, mut errors) = (Vec::new(), Vec::new());
    for w in wanted {
        let found = match api.get_opt(&w.name).await {
            Ok(found) => found,
            Err(source) => {
                errors.push(ReadError::Secret {
                    name: w.name.clone(),
                    field: w.field.clone(),
                    source,
                });
                continue;
            }
        };
        if let Some((reason, message)) = problem(w, namespace, found.as_ref(), tenancy) {
            let components = match w.components.as_slice() {
                [] => vec![None],
                some => some.iter().copied().map(Some).collect(),
            };
            problems.extend(components.into_iter().map(|component| Problem {
                reason,
                message: message.clone(),
                blocking: true,
                component,
            }));
        }
    }
    (problems, errors)
}

/// A Secret of a name the resource generates (its token, its passwords) that this very resource did
/// not make: its values were chosen by whoever made it, so it is never used, and the resource waits
/// for the name to be free. None when there is no such Secret, or it is the resource's own.
pub fn foreign<O: Resource<DynamicType = ()>>(
    caches: &Caches,
    owner: &O,
    name: &str,
    component: Option<Component>,
) -> Option<Problem> {
    let namespace = owner.meta().namespace.clone().unwrap_or_default();
    let live = caches.get::<Secret>(&namespace, name)?;
    let uid = owner.meta().uid.as_deref();
    let kind = O::kind(&());
    let made_here = live
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid && r.kind == kind);
    (!made_here).then(|| Problem {
        reason: Reason::NameConflict,
        message: format!(
            "Secret {name:?} exists and was not made by this {kind}: the operator generates that Secret's values itself and will not use ones someone else chose. Delete the Secret if it is not in use (kubectl delete secret {name}), or give the {kind} another name"
        ),
        blocking: true,
        component,
    })
}

/// A child's name held by an object this `owner_kind` did not make (see `plan::foreign`): nothing is
/// written over it, and nothing that would use it is made.
pub fn taken(owner_kind: &str, kind: &str, name: &str, component: Option<Component>) -> Problem {
    Problem {
        reason: Reason::NameConflict,
        message: format!(
            "{kind} {name:?} exists and was not made by this {owner_kind}, which needs that name for its own {kind}: the operator does not take over what someone else made. Delete it if it is not in use (kubectl delete {} {name}), or give the {owner_kind} another name",
            kind.to_lowercase()
        ),
        blocking: true,
        component,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SecretReference {
        SecretReference {
            name: "keys".into(),
            keys: vec!["id".into(), "secret".into()],
            field: "spec.s3.credentialsSecret".into(),
            missing: Reason::S3CredentialsSecretNotFound,
            key_missing: Reason::S3CredentialsKeyMissing,
            components: vec![],
        }
    }

    #[test]
    fn a_missing_secret_or_key_says_what_to_create() {
        let open = Tenancy::Namespaces;
        let (reason, message) = problem(&keys(), "ns", None, open).unwrap();
        assert_eq!(reason, Reason::S3CredentialsSecretNotFound);
        assert_eq!(
            message,
            "Secret \"keys\" (spec.s3.credentialsSecret) was not found in namespace \"ns\": create it with the keys id and secret"
        );
        let partial: Secret =
            serde_json::from_value(serde_json::json!({"data": {"id": "eA=="}})).unwrap();
        let (reason, message) = problem(&keys(), "ns", Some(&partial), open).unwrap();
        assert_eq!(reason, Reason::S3CredentialsKeyMissing);
        assert!(message.ends_with("has no key secret: add it"), "{message}");
        let whole: Secret =
            serde_json::from_value(serde_json::json!({"data": {"id": "eA==", "secret": "eQ=="}}))
                .unwrap();
        assert_eq!(problem(&keys(), "ns", Some(&whole), open), None);
    }

    #[test]
    fn where_users_share_a_namespace_only_shared_secrets_may_be_named() {
        let unlabelled: Secret =
            serde_json::from_value(serde_json::json!({"data": {"id": "eA==", "secret": "eQ=="}}))
                .unwrap();
        let (reason, message) =
            problem(&keys(), "ns", Some(&unlabelled), Tenancy::SharedNamespace).unwrap();
        assert_eq!(reason, Reason::SecretNotShared);
        assert!(
            message.contains("kubectl label secret keys hap.cloudian.com/allow-reference=true")
        );
        let mut shared = unlabelled.clone();
        shared.metadata.labels = Some([(SHARE_LABEL.to_string(), "true".to_string())].into());
        assert_eq!(
            problem(&keys(), "ns", Some(&shared), Tenancy::SharedNamespace),
            None
        );
    }

    #[test]
    fn a_generated_name_taken_by_someone_else_is_a_conflict() {
        use crate::pipeline::caches::testing;
        let hc = crate::testing::hapcontainer("{}");
        let secret = |owner: &str| -> kube::core::PartialObjectMeta<Secret> {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "w-jupyter", "namespace": "ns", "ownerReferences": [
                    {"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer", "name": "w",
                     "uid": owner, "controller": true}]}
            }))
            .unwrap()
        };
        let caches = |s| Caches {
            secrets: testing::store(vec![s]),
            ..testing::empty()
        };
        assert_eq!(
            foreign(&caches(secret("u-1")), &hc, "w-jupyter", None),
            None
        );
        let p = foreign(&caches(secret("someone")), &hc, "w-jupyter", None).unwrap();
        assert_eq!((p.reason, p.blocking), (Reason::NameConflict, true));
        assert!(
            p.message.contains("not made by this HapContainer"),
            "{}",
            p.message
        );
        assert_eq!(foreign(&testing::empty(), &hc, "w-jupyter", None), None);
    }
}
