//! Workspace profiles: the kinds of workspace an administrator offers (image, CPU and memory, GPUs,
//! home volume, Spark executors, idle culling). They are the key `profiles.yaml` of the ConfigMap
//! `hap-profiles` in the operator's namespace, which the operator (and the console) read. A
//! HapContainer names one in `spec.profile`: what its spec leaves out comes from the profile, and what
//! it asks for beyond the profile's limits is refused with a message.
//!
//! ```yaml
//! - name: small
//!   displayName: Small (1 CPU, 4 GiB)
//!   image: hap-workspace:0.1.0
//!   resources: {requests: {cpu: 500m, memory: 2Gi}, limits: {cpu: "1", memory: 4Gi}}
//!   volume: {size: 10Gi, maxSize: 50Gi}
//!   spark: {maxExecutors: 4, maxExecutorCores: 2, maxExecutorMemory: 4Gi}
//!   culling: {idleAfter: 2h}
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::{Deserialize, Serialize};

use crate::bounds::{self, Bound};
use crate::hapcontainer::{CullingSpec, HapContainerSpec};
use crate::problem::Problem;
use crate::quantity;

/// The ConfigMap of the operator's namespace that holds the profiles, and its key.
pub const CONFIG_MAP: &str = "hap-profiles";
pub const KEY: &str = "profiles.yaml";

/// What the console shows of a profile: printable text without line breaks.
const TEXT: Bound = Bound {
    pattern: r"^[^\x00-\x1f\x7f]*$",
    max: 500,
    what: "text of at most 500 characters on one line",
};

/// One kind of workspace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// A short title for menus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The image its workspaces run; a spec may name no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The workspace container's requests and limits when the spec sets none, and the most a spec
    /// may ask for: each resource up to the profile's limit for it (its request where it has no
    /// limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// GPUs when the spec sets none, and the most it may ask for.
    #[serde(default)]
    pub gpus: i32,
    #[serde(default)]
    pub volume: ProfileVolume,
    #[serde(default)]
    pub spark: ProfileSpark,
    /// Idle culling when the spec sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culling: Option<CullingSpec>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileVolume {
    /// The home volume's size when the spec sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// The largest home volume a spec may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Quantity>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpark {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_executors: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_executor_cores: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_executor_memory: Option<Quantity>,
}

/// The profiles as the ConfigMap holds them: none (no ConfigMap), a list, or what is wrong with it.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Catalog {
    #[default]
    Absent,
    Listed(Vec<Profile>),
    Invalid(String),
}

impl Catalog {
    /// The catalog `profiles.yaml` holds, checked as a whole (an administrator's mistake in one
    /// profile makes the catalog invalid, with every mistake named, rather than half-read).
    pub fn parse(yaml: &str) -> Catalog {
        let profiles: Vec<Profile> = match serde_saphyr::from_str(yaml) {
            Ok(p) => p,
            Err(e) => return Catalog::Invalid(format!("{KEY} is not a list of profiles: {e}")),
        };
        let mistakes = check(&profiles);
        if mistakes.is_empty() {
            Catalog::Listed(profiles)
        } else {
            Catalog::Invalid(mistakes.join("; "))
        }
    }

    /// The profile `name`, or what to tell a spec that names it.
    pub fn find(&self, name: &str) -> Result<&Profile, String> {
        let whence = format!("the ConfigMap {CONFIG_MAP} (key {KEY}) in the operator's namespace");
        match self {
            Catalog::Absent => Err(format!(
                "spec.profile is {name:?}, but there are no profiles: an administrator defines them in {whence}"
            )),
            Catalog::Invalid(why) => Err(format!(
                "spec.profile is {name:?}, but the profiles in {whence} are invalid ({why}): an administrator must fix them"
            )),
            Catalog::Listed(profiles) => {
                profiles.iter().find(|p| p.name == name).ok_or_else(|| {
                    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
                    format!(
                        "spec.profile is {name:?}, which is not a profile; the profiles are: {}",
                        names.join(", ")
                    )
                })
            }
        }
    }
}

/// Every mistake in a list of profiles.
fn check(profiles: &[Profile]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, p) in profiles.iter().enumerate() {
        let at = format!("profile {i} ({:?})", p.name);
        let mut bounded = |bound: &Bound, field: &str, value: Option<&str>| {
            if let Some(problem) = value.and_then(|v| bound.check(field, v)) {
                out.push(format!("{at}: {}", problem.message));
            }
        };
        bounded(&bounds::PROFILE_NAME, "name", Some(&p.name));
        bounded(&TEXT, "displayName", p.display_name.as_deref());
        bounded(&TEXT, "description", p.description.as_deref());
        bounded(&bounds::IMAGE, "image", p.image.as_deref());
        if !seen.insert(p.name.as_str()) {
            out.push(format!("{at}: the name is used twice"));
        }
        let quantities = p
            .resources
            .iter()
            .flat_map(|r| [&r.requests, &r.limits])
            .flatten()
            .flat_map(|m| m.iter())
            .map(|(k, v)| (format!("resources {k}"), v))
            .chain(p.volume.size.iter().map(|q| ("volume.size".to_string(), q)))
            .chain(
                p.volume
                    .max_size
                    .iter()
                    .map(|q| ("volume.maxSize".to_string(), q)),
            )
            .chain(
                p.spark
                    .max_executor_memory
                    .iter()
                    .map(|q| ("spark.maxExecutorMemory".to_string(), q)),
            );
        for (field, q) in quantities {
            if quantity::parse(&q.0).is_none() {
                out.push(format!("{at}: {field} {:?} is not a quantity", q.0));
            }
        }
        let negative = [
            ("gpus", Some(p.gpus)),
            ("spark.maxExecutors", p.spark.max_executors),
            ("spark.maxExecutorCores", p.spark.max_executor_cores),
        ];
        for (field, n) in negative {
            if n.is_some_and(|n| n < 0) {
                out.push(format!("{at}: {field} is negative"));
            }
        }
        if let Some(Err(e)) = p.culling.as_ref().map(CullingSpec::idle_after) {
            out.push(format!("{at}: {}", e.replace("spec.culling", "culling")));
        }
    }
    out
}

/// The most of a resource (`cpu`, `memory`, ...) a profile lets a spec ask for: its limit, or its
/// request where it has no limit.
fn ceiling<'a>(r: &'a ResourceRequirements, resource: &str) -> Option<&'a Quantity> {
    let of = |m: &'a Option<BTreeMap<String, Quantity>>| m.as_ref()?.get(resource);
    of(&r.limits).or_else(|| of(&r.requests))
}

/// Whether quantity `a` is above `b`. One that cannot be read counts as above: the spec's own
/// check names it, and nothing unread passes a limit.
fn above(a: &Quantity, b: &Quantity) -> bool {
    match (quantity::parse(&a.0), quantity::parse(&b.0)) {
        (Some(a), Some(b)) => a > b,
        _ => true,
    }
}

/// The spec with what it leaves out filled from `profile`, and what it asks for beyond the profile.
pub fn apply(profile: &Profile, spec: &HapContainerSpec) -> (HapContainerSpec, Vec<Problem>) {
    let mut out = spec.clone();
    let mut problems = Vec::new();
    let name = &profile.name;
    let mut over = |field: &str, asked: String, most: String| {
        problems.push(Problem::new(
            field,
            format!("{field} is {asked}, more than the profile {name:?} allows ({most}): ask for less, or choose another profile"),
        ));
    };
    match (&spec.image, &profile.image) {
        (Some(asked), Some(theirs)) if asked != theirs => over(
            "spec.image",
            format!("{asked:?}"),
            format!("{theirs:?} only"),
        ),
        (None, Some(theirs)) => out.image = Some(theirs.clone()),
        _ => {}
    }
    // The profile's requests and limits, with the spec's own values over them, each within the
    // profile's ceiling: every limit the profile sets reaches the pod, whatever the spec leaves out.
    if let Some(theirs) = &profile.resources {
        let mut merged = theirs.clone();
        let asked = spec.resources.clone().unwrap_or_default();
        for (kind, map) in [("requests", &asked.requests), ("limits", &asked.limits)] {
            for (resource, q) in map.iter().flatten() {
                let field = format!("spec.resources.{kind}.{resource}");
                match ceiling(theirs, resource) {
                    Some(most) if above(q, most) => over(&field, q.0.clone(), most.0.clone()),
                    Some(_) => {
                        let into = if kind == "requests" {
                            &mut merged.requests
                        } else {
                            &mut merged.limits
                        };
                        into.get_or_insert_with(BTreeMap::new)
                            .insert(resource.clone(), q.clone());
                    }
                    None => over(&field, q.0.clone(), "none of it".into()),
                }
            }
        }
        // A spec that lowers a limit below the profile's request lowers that request with it.
        if let (Some(requests), Some(limits)) = (merged.requests.as_mut(), merged.limits.as_ref()) {
            for (resource, limit) in limits {
                if requests.get(resource).is_some_and(|r| above(r, limit)) {
                    requests.insert(resource.clone(), limit.clone());
                }
            }
        }
        out.resources = Some(merged);
    }
    match spec.gpus {
        Some(asked) if asked > profile.gpus => {
            over("spec.gpus", asked.to_string(), profile.gpus.to_string())
        }
        Some(_) => {}
        None => out.gpus = (profile.gpus > 0).then_some(profile.gpus),
    }
    if out.volume.size.is_none() {
        out.volume.size = profile.volume.size.clone();
    }
    if let (Some(asked), Some(most)) = (&out.volume.size, &profile.volume.max_size)
        && above(asked, most)
    {
        over("spec.volume.size", asked.0.clone(), most.0.clone());
    }
    if let Some(s) = &spec.spark {
        let limits = &profile.spark;
        if let Some(most) = limits.max_executors.filter(|m| s.executors > *m) {
            over(
                "spec.spark.executors",
                s.executors.to_string(),
                most.to_string(),
            );
        }
        if let Some(most) = limits
            .max_executor_cores
            .filter(|m| s.executors > 0 && s.executor_cores > *m)
        {
            over(
                "spec.spark.executorCores",
                s.executor_cores.to_string(),
                most.to_string(),
            );
        }
        if let Some(most) = &limits.max_executor_memory
            && s.executors > 0
            && above(&s.executor_memory, most)
        {
            over(
                "spec.spark.executorMemory",
                s.executor_memory.0.clone(),
                most.0.clone(),
            );
        }
    }
    if let (Some(theirs), Some(asked)) = (
        &profile.image,
        spec.spark.as_ref().and_then(|s| s.executor_image.as_ref()),
    ) && asked != theirs
    {
        over(
            "spec.spark.executorImage",
            format!("{asked:?}"),
            format!("{theirs:?} only"),
        );
    }
    // The profile's idle time is the longest a spec may ask for.
    match (&spec.culling, &profile.culling) {
        (None, theirs) => out.culling = theirs.clone(),
        (Some(asked), Some(theirs)) => {
            if let (Ok(a), Ok(t)) = (asked.idle_after(), theirs.idle_after())
                && a > t
            {
                over(
                    "spec.culling.idleAfter",
                    asked.idle_after.clone(),
                    theirs.idle_after.clone(),
                );
            }
        }
        (Some(_), None) => {}
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = "
- name: small
  displayName: Small (1 CPU, 4 GiB)
  image: hap-workspace:0.1.0
  resources: {requests: {cpu: 500m, memory: 2Gi}, limits: {cpu: '1', memory: 4Gi}}
  volume: {size: 5Gi, maxSize: 20Gi}
  spark: {maxExecutors: 2, maxExecutorCores: 1, maxExecutorMemory: 2Gi}
  culling: {idleAfter: 2h}
- name: gpu
  gpus: 1
";

    fn spec(yaml: &str) -> HapContainerSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn small() -> Profile {
        match Catalog::parse(CATALOG) {
            Catalog::Listed(p) => p[0].clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_the_spec_leaves_out_comes_from_the_profile() {
        let (out, problems) = apply(&small(), &spec("{size: 1}"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(out.image.as_deref(), Some("hap-workspace:0.1.0"));
        let limits = out.resources.unwrap().limits.unwrap();
        assert_eq!(limits["memory"].0, "4Gi");
        assert_eq!(out.volume.size.unwrap().0, "5Gi");
        assert_eq!(out.culling.unwrap().idle_after, "2h");
        assert_eq!(out.gpus, None);
    }

    #[test]
    fn the_spec_may_ask_for_less_and_its_own_choices_stand() {
        let asked = spec(
            "{size: 1, resources: {requests: {cpu: 250m}, limits: {memory: 1Gi}}, volume: {size: 20Gi}, culling: {idleAfter: 30m}, spark: {executors: 2, executorMemory: 1Gi}}",
        );
        let (out, problems) = apply(&small(), &asked);
        assert!(problems.is_empty(), "{problems:?}");
        // The spec's values over the profile's: every limit of the profile is still there, and a
        // request above the lowered limit comes down to it.
        let resources = out.resources.unwrap();
        let (requests, limits) = (resources.requests.unwrap(), resources.limits.unwrap());
        assert_eq!(
            (requests["cpu"].0.as_str(), requests["memory"].0.as_str()),
            ("250m", "1Gi")
        );
        assert_eq!(
            (limits["cpu"].0.as_str(), limits["memory"].0.as_str()),
            ("1", "1Gi")
        );
        assert_eq!(out.volume.size.unwrap().0, "20Gi");
        assert_eq!(out.culling.unwrap().idle_after, "30m");
    }

    #[test]
    fn what_is_beyond_the_profile_is_refused_field_by_field() {
        let asked = spec(
            "{size: 1, image: mine:1, gpus: 1, resources: {limits: {memory: 8Gi, ephemeral-storage: 1Gi}}, volume: {size: 21Gi}, spark: {executors: 3, executorCores: 2, executorMemory: 3Gi, executorImage: mine:1}, culling: {idleAfter: 3h}}",
        );
        let (_, problems) = apply(&small(), &asked);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.image",
                "spec.resources.limits.ephemeral-storage",
                "spec.resources.limits.memory",
                "spec.gpus",
                "spec.volume.size",
                "spec.spark.executors",
                "spec.spark.executorCores",
                "spec.spark.executorMemory",
                "spec.spark.executorImage",
                "spec.culling.idleAfter"
            ]
        );
        let memory = &problems[2].message;
        // An empty resources is the profile's, limits included; an unreadable quantity is refused.
        let (out, problems) = apply(&small(), &spec("{size: 1, resources: {}}"));
        assert!(problems.is_empty());
        assert_eq!(out.resources.unwrap().limits.unwrap()["memory"].0, "4Gi");
        let (_, problems) = apply(
            &small(),
            &spec("{size: 1, resources: {limits: {memory: '1e29'}}}"),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            memory.contains("8Gi") && memory.contains("\"small\"") && memory.contains("(4Gi)"),
            "{memory}"
        );
    }

    #[test]
    fn a_catalog_with_mistakes_names_each_and_a_missing_profile_lists_the_others() {
        let bad = Catalog::parse(
            "[{name: Big}, {name: a, image: 'x y'}, {name: a, volume: {size: lots}}, {name: c, culling: {idleAfter: 5s}}]",
        );
        let Catalog::Invalid(why) = bad else {
            panic!("{bad:?}")
        };
        for says in [
            "profile 0 (\"Big\"): name",
            "profile 1 (\"a\"): image",
            "profile 2 (\"a\"): the name is used twice",
            "volume.size \"lots\" is not a quantity",
            "culling.idleAfter is \"5s\"",
        ] {
            assert!(why.contains(says), "{says}: {why}");
        }
        let typo = Catalog::parse("[{name: a, gpu: 1}]");
        assert!(
            matches!(&typo, Catalog::Invalid(w) if w.contains("gpu")),
            "{typo:?}"
        );
        let listed = Catalog::parse(CATALOG);
        let missing = listed.find("large").unwrap_err();
        assert!(missing.contains("small, gpu"), "{missing}");
        assert!(
            Catalog::Absent
                .find("small")
                .unwrap_err()
                .contains(CONFIG_MAP)
        );
    }
}
