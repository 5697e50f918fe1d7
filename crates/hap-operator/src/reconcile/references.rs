//! The read step: the spec's own problems, and the Secrets it names. A missing Secret or key is a
//! configuration problem the user fixes (a condition and an event), not an error to retry blindly.
//! Secret values are read only to check that the keys exist; they are never kept, logged or reported.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::Problem;
use crate::error::ReadError;
use crate::resolve::{Resolved, SecretReference};

fn has_key(secret: &Secret, key: &str) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(key))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(key))
}

/// Checks one referenced Secret and the keys the spec expects in it.
async fn check_secret(
    api: &Api<Secret>,
    wanted: &SecretReference,
    out: &mut Vec<Problem>,
) -> Result<(), ReadError> {
    let namespace = api.namespace().unwrap_or_default();
    let SecretReference {
        name,
        keys,
        field,
        missing_reason,
        key_missing_reason,
    } = wanted;
    let found = api
        .get_opt(name)
        .await
        .map_err(|source| ReadError::Secret {
            name: name.clone(),
            field,
            source,
        })?;
    match found {
        None => out.push(Problem {
            blocking: true,
            reason: missing_reason,
            message: match keys.len() {
                0 => format!(
                    "Secret {name:?} ({field}) was not found in namespace {namespace:?}: create it"
                ),
                n => format!(
                    "Secret {name:?} ({field}) was not found in namespace {namespace:?}: create it with the key{} {}",
                    if n > 1 { "s" } else { "" },
                    keys.join(" and ")
                ),
            },
        }),
        Some(secret) => {
            let missing: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| !has_key(&secret, k))
                .collect();
            if !missing.is_empty() {
                out.push(Problem {
                    blocking: true,
                    reason: key_missing_reason,
                    message: format!(
                        "Secret {name:?} ({field}) has no key {}: add it",
                        missing.join(" or ")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Every problem that stops the workspace from running, in the order the user should fix them, and
/// every Secret that could not be read (each is checked, whatever the others gave).
pub async fn problems(api: &Api<Secret>, resolved: &Resolved) -> (Vec<Problem>, Vec<ReadError>) {
    let mut out = spec_problems(&resolved.problems);
    let (secrets, errors) = secret_problems(api, &resolved.user_secrets()).await;
    out.extend(secrets.into_iter().flatten());
    (out, errors)
}

/// The spec's own problems (what admission would have refused), as blocking problems.
pub fn spec_problems(messages: &[String]) -> Vec<Problem> {
    messages
        .iter()
        .map(|message| Problem {
            reason: "InvalidSpec",
            message: message.clone(),
            blocking: true,
        })
        .collect()
}

/// Checks each Secret: the problems found with each (in the order given), and the Secrets that
/// could not be read.
pub async fn secret_problems(
    api: &Api<Secret>,
    wanted: &[SecretReference],
) -> (Vec<Vec<Problem>>, Vec<ReadError>) {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for w in wanted {
        let mut found = Vec::new();
        if let Err(e) = check_secret(api, w, &mut found).await {
            errors.push(e);
        }
        out.push(found);
    }
    (out, errors)
}
