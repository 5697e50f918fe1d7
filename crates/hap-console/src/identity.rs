//! Who signed in, in the API server's own terms: the username and groups its OIDC authenticator would
//! give the same ID token (`--oidc-username-claim`, `--oidc-username-prefix`, `--oidc-groups-claim`,
//! `--oidc-groups-prefix`), so that the RBAC bindings an admin writes for users and groups are the ones
//! the console's SubjectAccessReviews are answered by.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most groups a session carries, and the longest name of one: an ID token is the IdP's, but the
/// session cookie that carries them is bounded (4 KiB in browsers).
pub const MAX_GROUPS: usize = 32;
pub const MAX_NAME: usize = 128;

/// How claims become a Kubernetes user, as the API server's flags say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    pub username_claim: String,
    pub username_prefix: String,
    pub groups_claim: String,
    pub groups_prefix: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            username_claim: "preferred_username".into(),
            username_prefix: "oidc:".into(),
            groups_claim: "groups".into(),
            groups_prefix: "oidc:".into(),
        }
    }
}

/// A signed-in user: the Kubernetes username and groups every SubjectAccessReview names, and the
/// groups as the IdP names them (which the tenant mapping reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub username: String,
    /// The IdP's group names, unprefixed.
    pub groups: Vec<String>,
}

impl Identity {
    /// The groups as the API server sees them.
    pub fn kubernetes_groups(&self, mapping: &ClaimMapping) -> Vec<String> {
        self.groups
            .iter()
            .map(|g| format!("{}{g}", mapping.groups_prefix))
            .collect()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("the ID token has no {0} claim to name the user by")]
    NoUsername(String),
    #[error("the ID token's {claim} claim is not {what}")]
    Malformed { claim: String, what: &'static str },
    #[error(
        "the ID token names more than {MAX_GROUPS} groups; the console carries at most that many"
    )]
    TooManyGroups,
    #[error("a name in the ID token is longer than {MAX_NAME} characters")]
    TooLong,
}

/// The identity an ID token's (already verified) claims give.
pub fn identify(
    claims: &BTreeMap<String, Value>,
    mapping: &ClaimMapping,
) -> Result<Identity, IdentityError> {
    let name = match claims.get(&mapping.username_claim) {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) | None => {
            return Err(IdentityError::NoUsername(mapping.username_claim.clone()));
        }
        Some(_) => {
            return Err(IdentityError::Malformed {
                claim: mapping.username_claim.clone(),
                what: "a string",
            });
        }
    };
    let groups = match claims.get(&mapping.groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        // One group may come as a plain string, as the API server also accepts.
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| IdentityError::Malformed {
                claim: mapping.groups_claim.clone(),
                what: "a list of strings",
            })?,
        Some(_) => {
            return Err(IdentityError::Malformed {
                claim: mapping.groups_claim.clone(),
                what: "a list of strings",
            });
        }
    };
    if groups.len() > MAX_GROUPS {
        return Err(IdentityError::TooManyGroups);
    }
    if name.chars().count() > MAX_NAME || groups.iter().any(|g| g.chars().count() > MAX_NAME) {
        return Err(IdentityError::TooLong);
    }
    Ok(Identity {
        username: format!("{}{name}", mapping.username_prefix),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_username_and_groups_are_prefixed_as_the_api_server_prefixes_them() {
        let mapping = ClaimMapping::default();
        let id = identify(
            &claims(json!({"sub": "1", "preferred_username": "alice", "groups": ["team-a", "x"]})),
            &mapping,
        )
        .unwrap();
        assert_eq!(id.username, "oidc:alice");
        assert_eq!(id.groups, ["team-a", "x"]);
        assert_eq!(id.kubernetes_groups(&mapping), ["oidc:team-a", "oidc:x"]);
        let one = identify(
            &claims(json!({"preferred_username": "bob", "groups": "solo"})),
            &mapping,
        )
        .unwrap();
        assert_eq!(one.groups, ["solo"]);
    }

    #[test]
    fn missing_malformed_and_oversized_claims_are_refused_by_name() {
        let mapping = ClaimMapping::default();
        let err = |v| identify(&claims(v), &mapping).unwrap_err().to_string();
        assert!(err(json!({"sub": "1"})).contains("no preferred_username claim"));
        assert!(err(json!({"preferred_username": ""})).contains("no preferred_username"));
        assert!(err(json!({"preferred_username": 7})).contains("not a string"));
        assert!(
            err(json!({"preferred_username": "a", "groups": [1]}))
                .contains("not a list of strings")
        );
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        assert!(err(json!({"preferred_username": "a", "groups": many})).contains("more than 32"));
        let long = "x".repeat(MAX_NAME + 1);
        assert!(err(json!({"preferred_username": long})).contains("longer than 128"));
    }
}
