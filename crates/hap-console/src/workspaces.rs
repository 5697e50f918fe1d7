//! The workspaces (HapContainers) the console shows and changes, with its own ServiceAccount once a
//! SubjectAccessReview has said the user may: the form read into a HapContainer (pure), and the
//! API calls (the edge).

use std::collections::BTreeMap;

use hap_api::profile::{self, Catalog};
use hap_api::{HapContainer, HapContainerSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::Deserialize;
use serde_json::json;

/// Who made a workspace through the console, as the API server knows them.
pub const CREATED_BY: &str = "hap.cloudian.com/created-by";

/// The create form as the browser sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewWorkspace {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub profile: String,
    /// The home volume's size; empty for the profile's.
    #[serde(default)]
    pub size: String,
    #[serde(default)]
    pub csrf: String,
}

/// What is wrong with a form, by field (`name`, `profile`, `size`, `namespace`, or `form` for the
/// whole), each message saying what to do.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// The HapContainer the form asks for, or what is wrong with it. The console makes workspaces from
/// profiles only; the profile's own limits are checked here, as the operator would check them.
pub fn build(
    form: &NewWorkspace,
    catalog: &Catalog,
    namespaces: &[String],
    created_by: &str,
) -> Result<HapContainer, FieldErrors> {
    let mut errors = FieldErrors::new();
    if !namespaces.contains(&form.namespace) {
        errors.insert("namespace", "choose one of your namespaces".to_string());
    }
    if let Some(p) = hap_api::bounds::HAPCONTAINER_NAME.check("name", &form.name) {
        errors.insert("name", p.message);
    }
    let size = form.size.trim();
    if !size.is_empty() && hap_api::quantity::parse(size).is_none_or(|b| b <= 0.0) {
        errors.insert(
            "size",
            "a size such as 10Gi, or empty for the profile's".to_string(),
        );
    }
    let profile = match catalog.find(&form.profile) {
        Ok(p) => Some(p),
        Err(_) if matches!(catalog, Catalog::Listed(_)) => {
            errors.insert("profile", "choose one of the profiles listed".to_string());
            None
        }
        Err(why) => {
            errors.insert("profile", why);
            None
        }
    };
    let mut spec: HapContainerSpec = serde_json::from_value(json!({})).expect("an empty spec");
    spec.profile = Some(form.profile.clone());
    if !size.is_empty() {
        spec.volume.size = Some(Quantity(size.to_string()));
    }
    // The profile's limits are checked whatever else is wrong: every mistake is shown at once.
    if let Some(profile) = profile {
        for problem in profile::apply(profile, &spec).1 {
            let field = if problem.field.starts_with("spec.volume") {
                "size"
            } else {
                "form"
            };
            // A field already found wrong keeps that first, plainer message.
            errors.entry(field).or_insert(problem.message);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut hc = HapContainer::new(&form.name, spec);
    hc.metadata.namespace = Some(form.namespace.clone());
    hc.metadata.annotations = Some(BTreeMap::from([(
        CREATED_BY.to_string(),
        created_by.to_string(),
    )]));
    Ok(hc)
}

fn api(client: &kube::Client, namespace: &str) -> kube::Api<HapContainer> {
    kube::Api::namespaced(client.clone(), namespace)
}

pub async fn list(client: &kube::Client, namespace: &str) -> kube::Result<Vec<HapContainer>> {
    Ok(api(client, namespace)
        .list(&ListParams::default())
        .await?
        .items)
}

pub async fn create(client: &kube::Client, hc: &HapContainer) -> kube::Result<HapContainer> {
    let namespace = hc.metadata.namespace.as_deref().unwrap_or_default();
    api(client, namespace)
        .create(&PostParams::default(), hc)
        .await
}

/// Starts (1) or stops (0) a workspace: its `size`, as `kubectl patch` would set it.
pub async fn set_size(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    size: i32,
) -> kube::Result<HapContainer> {
    api(client, namespace)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": size}})),
        )
        .await
}

/// Deletes a workspace; its home volume is kept unless its spec says otherwise.
pub async fn delete(client: &kube::Client, namespace: &str, name: &str) -> kube::Result<()> {
    api(client, namespace)
        .delete(name, &DeleteParams::background())
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::parse(
            "- name: small\n  resources: {limits: {cpu: '1', memory: 2Gi}}\n  volume: {size: 5Gi, maxSize: 20Gi}\n",
        )
    }

    fn form(name: &str, profile: &str, size: &str) -> NewWorkspace {
        NewWorkspace {
            namespace: "team-a".into(),
            name: name.into(),
            profile: profile.into(),
            size: size.into(),
            csrf: String::new(),
        }
    }

    #[test]
    fn a_workspace_from_a_profile_names_it_and_who_made_it() {
        let mine = ["team-a".to_string()];
        let hc = build(&form("ws", "small", ""), &catalog(), &mine, "oidc:alice").unwrap();
        assert_eq!(hc.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(hc.spec.profile.as_deref(), Some("small"));
        assert_eq!(hc.spec.volume.size, None, "the profile's size");
        assert_eq!(hc.metadata.annotations.unwrap()[CREATED_BY], "oidc:alice");
        let sized = build(&form("ws", "small", "12Gi"), &catalog(), &mine, "u").unwrap();
        assert_eq!(sized.spec.volume.size, Some(Quantity("12Gi".into())));
    }

    #[test]
    fn each_mistake_is_told_by_its_field() {
        let mine = ["team-a".to_string()];
        let errors = |f: &NewWorkspace| build(f, &catalog(), &mine, "u").unwrap_err();
        let e = errors(&form("Bad_Name", "large", "lots"));
        assert!(e["name"].contains("lower-case"), "{e:?}");
        assert!(e["profile"].contains("choose one"), "{e:?}");
        assert!(e["size"].contains("such as 10Gi"), "{e:?}");
        let e = errors(&form("ws", "small", "50Gi"));
        assert!(e["size"].contains("20Gi"), "{e:?}");
        let mut other = form("ws", "small", "");
        other.namespace = "team-b".into();
        assert!(errors(&other)["namespace"].contains("your namespaces"));
        let none = build(&form("ws", "small", ""), &Catalog::Absent, &mine, "u").unwrap_err();
        assert!(none["profile"].contains("no profiles"), "{none:?}");
    }
}
