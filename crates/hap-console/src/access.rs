//! Every action asked of the API server first: a SubjectAccessReview for the signed-in user and
//! their groups, on the exact resource, verb and namespace (and name, where there is one). The
//! console acts with its own ServiceAccount only after the answer is yes; it impersonates no one.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;

use crate::identity::{ClaimMapping, Identity};

/// The resources the console acts on: workspaces, and (listed only) SQL stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    HapContainers,
    HapQueries,
}

impl Resource {
    fn plural(self) -> &'static str {
        match self {
            Resource::HapContainers => "hapcontainers",
            Resource::HapQueries => "hapqueries",
        }
    }
}

/// One action: `verb` on `resource` in `namespace`, on the object `name` if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action<'a> {
    pub verb: &'static str,
    pub resource: Resource,
    pub namespace: &'a str,
    pub name: Option<&'a str>,
}

impl std::fmt::Display for Action<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource.plural())?;
        if let Some(name) = self.name {
            write!(f, "/{name}")?;
        }
        write!(f, " in namespace {}", self.namespace)
    }
}

/// The review that asks whether `who` may do `action`.
pub fn review(who: &Identity, mapping: &ClaimMapping, action: &Action) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(who.username.clone()),
            // As the API server sees any signed-in user: their groups and system:authenticated.
            groups: Some(
                who.kubernetes_groups(mapping)
                    .into_iter()
                    .chain(["system:authenticated".to_string()])
                    .collect(),
            ),
            resource_attributes: Some(ResourceAttributes {
                group: Some("hap.cloudian.com".into()),
                resource: Some(action.resource.plural().into()),
                verb: Some(action.verb.into()),
                namespace: Some(action.namespace.into()),
                name: action.name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Why an action was not done.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("you may not {0}")]
    Denied(String),
    #[error("the cluster could not be asked whether you may {action}: {error}")]
    Unanswered { action: String, error: String },
}

/// Asks the API server; Ok only if the answer is yes.
pub async fn ask(
    client: &kube::Client,
    who: &Identity,
    mapping: &ClaimMapping,
    action: &Action<'_>,
) -> Result<(), Refusal> {
    let api: kube::Api<SubjectAccessReview> = kube::Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review(who, mapping, action))
        .await
        .map_err(|e| Refusal::Unanswered {
            action: action.to_string(),
            error: e.to_string(),
        })?;
    match answer.status {
        Some(s) if s.allowed && s.denied != Some(true) => Ok(()),
        _ => Err(Refusal::Denied(action.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_names_the_user_their_prefixed_groups_and_the_exact_object() {
        let who = Identity {
            username: "oidc:alice".into(),
            groups: vec!["team-a".into()],
        };
        let action = Action {
            verb: "patch",
            resource: Resource::HapContainers,
            namespace: "team-a",
            name: Some("ws"),
        };
        let r = review(&who, &ClaimMapping::default(), &action);
        let v = serde_json::to_value(&r.spec).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "user": "oidc:alice",
                "groups": ["oidc:team-a", "system:authenticated"],
                "resourceAttributes": {"group": "hap.cloudian.com", "resource": "hapcontainers",
                    "verb": "patch", "namespace": "team-a", "name": "ws"}
            })
        );
        assert_eq!(
            action.to_string(),
            "patch hapcontainers/ws in namespace team-a"
        );
    }
}
