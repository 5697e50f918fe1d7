//! The read step: the spec's own problems, and the Secrets it names. A missing Secret or key is a
//! configuration problem the user fixes (a condition and an event), not an error to retry blindly.
//! Secret values are read only to check that the keys exist; they are never kept, logged or reported.

use hap_api::HapContainer;
use hap_api::validation;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use crate::build::pod::token_source;
use crate::names;

/// Something the user must fix before the workspace can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The Configured condition's reason.
    pub reason: &'static str,
    pub message: String,
    /// Whether it stops the workspace from running (a missing Secret) or only keeps the last change
    /// from being applied (a child the API refused), while the workspace runs as it was.
    pub blocking: bool,
}

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
    name: &str,
    keys: &[&str],
    field: &str,
    missing_reason: &'static str,
    key_reason: &'static str,
    out: &mut Vec<Problem>,
) -> Result<(), kube::Error> {
    let namespace = api.namespace().unwrap_or_default();
    match api.get_opt(name).await? {
        None => out.push(Problem {
            blocking: true,
            reason: missing_reason,
            message: format!(
                "Secret {name:?} ({field}) was not found in namespace {namespace:?}: create it with the key{} {}",
                if keys.len() > 1 { "s" } else { "" },
                keys.join(" and ")
            ),
        }),
        Some(secret) => {
            let missing: Vec<&str> = keys.iter().copied().filter(|k| !has_key(&secret, k)).collect();
            if !missing.is_empty() {
                out.push(Problem {
                    blocking: true,
                    reason: key_reason,
                    message: format!("Secret {name:?} ({field}) has no key {}: add it", missing.join(" or ")),
                });
            }
        }
    }
    Ok(())
}

/// Every problem that stops the workspace from running, in the order the user should fix them.
pub async fn problems(api: &Api<Secret>, hc: &HapContainer) -> Result<Vec<Problem>, kube::Error> {
    let mut out: Vec<Problem> = validation::problems(&hc.spec)
        .into_iter()
        .map(|message| Problem {
            reason: "InvalidSpec",
            message,
            blocking: true,
        })
        .collect();
    if let Some(creds) = hc
        .spec
        .s3
        .as_ref()
        .and_then(|s| s.credentials_secret.as_ref())
    {
        check_secret(
            api,
            &creds.name,
            &[&creds.access_key_id_key, &creds.secret_access_key_key],
            "spec.s3.credentialsSecret",
            "S3CredentialsSecretNotFound",
            "S3CredentialsKeyMissing",
            &mut out,
        )
        .await?;
    }
    let (token_secret, token_key) = token_source(hc);
    if token_secret != names::token_secret(&hc.name_any()) {
        check_secret(
            api,
            &token_secret,
            &[&token_key],
            "spec.jupyter.tokenSecret",
            "JupyterTokenSecretNotFound",
            "JupyterTokenKeyMissing",
            &mut out,
        )
        .await?;
    }
    Ok(out)
}
