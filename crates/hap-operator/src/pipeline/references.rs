//! The read step: the Secrets a spec names. A missing Secret or key is a problem the user fixes (a
//! condition and an event), not an error to retry blindly. Secret values are read only to check that
//! the keys exist; they are never kept, logged or reported.

use hap_api::Component;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::error::ReadError;
use super::problem::Problem;
use super::reason::Reason;

/// A Secret the user supplies, with the keys the children read from it.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretReference {
    pub name: String,
    pub keys: Vec<String>,
    /// The spec field that names it, for messages.
    pub field: &'static str,
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

/// What is wrong with one referenced Secret as found (None: it does not exist), if anything.
pub fn problem(
    wanted: &SecretReference,
    namespace: &str,
    found: Option<&Secret>,
) -> Option<(Reason, String)> {
    let SecretReference {
        name, keys, field, ..
    } = wanted;
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
) -> (Vec<Problem>, Vec<ReadError>) {
    let namespace = api.namespace().unwrap_or_default();
    let (mut problems, mut errors) = (Vec::new(), Vec::new());
    for w in wanted {
        let found = match api.get_opt(&w.name).await {
            Ok(found) => found,
            Err(source) => {
                errors.push(ReadError::Secret {
                    name: w.name.clone(),
                    field: w.field,
                    source,
                });
                continue;
            }
        };
        if let Some((reason, message)) = problem(w, namespace, found.as_ref()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SecretReference {
        SecretReference {
            name: "keys".into(),
            keys: vec!["id".into(), "secret".into()],
            field: "spec.s3.credentialsSecret",
            missing: Reason::S3CredentialsSecretNotFound,
            key_missing: Reason::S3CredentialsKeyMissing,
            components: vec![],
        }
    }

    #[test]
    fn a_missing_secret_or_key_says_what_to_create() {
        let (reason, message) = problem(&keys(), "ns", None).unwrap();
        assert_eq!(reason, Reason::S3CredentialsSecretNotFound);
        assert_eq!(
            message,
            "Secret \"keys\" (spec.s3.credentialsSecret) was not found in namespace \"ns\": create it with the keys id and secret"
        );
        let partial: Secret =
            serde_json::from_value(serde_json::json!({"data": {"id": "eA=="}})).unwrap();
        let (reason, message) = problem(&keys(), "ns", Some(&partial)).unwrap();
        assert_eq!(reason, Reason::S3CredentialsKeyMissing);
        assert!(message.ends_with("has no key secret: add it"), "{message}");
        let whole: Secret =
            serde_json::from_value(serde_json::json!({"data": {"id": "eA==", "secret": "eQ=="}}))
                .unwrap();
        assert_eq!(problem(&keys(), "ns", Some(&whole)), None);
    }
}
