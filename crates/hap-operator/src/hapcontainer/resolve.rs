//! The resolve step (pure): a HapContainer's spec read once into what the later steps need. The build
//! step, the observe step, the reference check, the Secret watch and `render` all take their Secrets,
//! image, store and switches from here, so no step works them out on its own.

use crate::pipeline::authority::Trust;
use hap_api::HapContainer;
use std::collections::BTreeMap;

use hap_api::HapContainerSpec;
use hap_api::hapcontainer::{DEFAULT_TOKEN_KEY, DEFAULT_VOLUME_SIZE};
use hap_api::profile::{self, Catalog};
use hap_api::validation;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use super::names;
use crate::pipeline::config::{BuildConfig, Limits};
use crate::pipeline::problem::Problem;
use crate::pipeline::reason::Reason;
use crate::pipeline::references::SecretReference;
use crate::pipeline::s3::S3;

/// The spec, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// size 1: the workspace pod runs; size 0: it is suspended.
    pub runs: bool,
    /// The workspace image: the spec's, or the installation's default.
    pub image: String,
    /// Where Jupyter's login token comes from.
    pub token: TokenSource,
    /// The store, when the spec names one.
    pub s3: Option<S3>,
    /// Spark on Kubernetes, when the spec asks for executors; Spark runs locally otherwise.
    pub executors: Option<Executors>,
    /// The home directory's claim; None when the spec asks for an ephemeral home.
    pub home: Option<HomeClaim>,
    /// The Secrets the spec's own environment variables name (`spec.env[].valueFrom.secretKeyRef`).
    pub env_secrets: Vec<SecretReference>,
    /// The spec's own problems, each saying what to fix.
    pub problems: Vec<Problem>,
    /// The operator's CA, which the workspace trusts (None in `render`).
    pub trust: Option<Trust>,
    /// How long without activity before the workspace is stopped, with culling on (and valid).
    pub idle_after: Option<std::time::Duration>,
    /// The workspace container's requests and limits, GPUs included.
    pub resources: ResourceRequirements,
    /// The spec names a profile that could not be found: nothing is built from a spec without its
    /// profile's values (they would shrink the claim, change the Spark settings), so nothing is
    /// written until it is there.
    pub profile_missing: bool,
}

/// The PersistentVolumeClaim that holds the home directory.
#[derive(Clone, Debug, PartialEq)]
pub struct HomeClaim {
    pub name: String,
    pub size: k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    pub storage_class: Option<String>,
    /// Kept when the HapContainer is deleted (no owner reference).
    pub keep_on_delete: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TokenSource {
    pub secret: String,
    pub key: String,
    /// Whether the operator generates the Secret (the user named none).
    pub generated: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Executors {
    pub count: i32,
    pub cores: i32,
    /// Memory per executor in mebibytes, as Spark wants it.
    pub memory_mib: u64,
    pub image: String,
}

/// What an executor gets when `spec.spark.executorMemory` is not a memory quantity (the validation
/// step reports that as a problem).
const DEFAULT_EXECUTOR_MEMORY_MIB: u64 = 2048;

/// The workspace container's requests when neither the spec nor its profile sets any.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("500m".into())),
            ("memory".to_string(), Quantity("2Gi".into())),
        ])),
        ..Default::default()
    }
}

/// The spec as it applies: with `spec.profile`, what it leaves out filled from that profile, and
/// what it asks for beyond the profile (or a profile that is not there) as problems.
fn with_profile(
    spec: &HapContainerSpec,
    profiles: &Catalog,
) -> (HapContainerSpec, Vec<hap_api::Problem>, Option<Problem>) {
    let Some(name) = spec.profile.as_deref() else {
        return (spec.clone(), Vec::new(), None);
    };
    match profiles.find(name) {
        Ok(p) => {
            let (filled, beyond) = profile::apply(p, spec);
            (filled, beyond, None)
        }
        Err(message) => (
            spec.clone(),
            Vec::new(),
            Some(Problem {
                reason: Reason::ProfileNotFound,
                message,
                blocking: true,
                component: None,
            }),
        ),
    }
}

pub fn resolve(hc: &HapContainer, cfg: &BuildConfig, profiles: &Catalog) -> Resolved {
    let (spec, beyond_profile, no_profile) = with_profile(&hc.spec, profiles);
    let spec = &spec;
    let mut resources = spec.resources.clone().unwrap_or_else(default_resources);
    if let Some(gpus) = spec.gpus.filter(|g| *g > 0) {
        resources
            .limits
            .get_or_insert_with(BTreeMap::new)
            .insert("nvidia.com/gpu".into(), Quantity(gpus.to_string()));
    }
    let image = spec
        .image
        .clone()
        .unwrap_or_else(|| cfg.default_image.clone());
    let token = match spec.jupyter.as_ref().and_then(|j| j.token_secret.as_ref()) {
        Some(s) => TokenSource {
            secret: s.name.clone(),
            key: s.key.clone(),
            generated: false,
        },
        None => TokenSource {
            secret: names::token_secret(&hc.name_any()),
            key: DEFAULT_TOKEN_KEY.to_string(),
            generated: true,
        },
    };
    let executors = spec
        .spark
        .as_ref()
        .filter(|s| s.executors > 0)
        .map(|s| Executors {
            count: s.executors,
            cores: s.executor_cores,
            memory_mib: hap_api::quantity::mebibytes(&s.executor_memory.0)
                .unwrap_or(DEFAULT_EXECUTOR_MEMORY_MIB),
            image: s.executor_image.clone().unwrap_or_else(|| image.clone()),
        });
    let home = (!spec.volume.ephemeral).then(|| HomeClaim {
        name: names::volume(&hc.name_any()),
        size: spec
            .volume
            .size
            .clone()
            .unwrap_or_else(|| Quantity(DEFAULT_VOLUME_SIZE.into())),
        storage_class: spec.volume.storage_class_name.clone(),
        keep_on_delete: spec.volume.keep_on_delete,
    });
    let env_secrets = spec
        .env
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
            Some(SecretReference {
                name: r.name.clone(),
                // An optional key may be missing; the Secret must still be one the spec may name.
                keys: if r.optional == Some(true) {
                    Vec::new()
                } else {
                    vec![r.key.clone()]
                },
                field: format!("spec.env[{i}].valueFrom.secretKeyRef"),
                missing: Reason::EnvSecretNotFound,
                key_missing: Reason::EnvSecretKeyMissing,
                components: vec![],
            })
        })
        .collect();
    let mut problems = validation::problems(&hc.name_any(), spec);
    problems.extend(beyond_profile);
    problems.extend(over_limits(spec, executors.as_ref(), &cfg.limits));
    let mut problems = Problem::from_spec(problems);
    let profile_missing = no_profile.is_some();
    problems.extend(no_profile);
    Resolved {
        runs: spec.size > 0,
        image,
        token,
        s3: spec.s3.as_ref().map(S3::resolve),
        executors,
        home,
        env_secrets,
        problems,
        resources,
        profile_missing,
        trust: cfg.trust.clone(),
        idle_after: spec.culling.as_ref().and_then(|c| c.idle_after().ok()),
    }
}

/// What the spec asks for beyond the installation's limits, each naming the flag that sets it.
fn over_limits(
    spec: &hap_api::HapContainerSpec,
    executors: Option<&Executors>,
    limits: &Limits,
) -> Vec<hap_api::Problem> {
    let mut out = Vec::new();
    let mut over = |field: &str, asked: String, limit: String, flag: &str| {
        out.push(hap_api::Problem::new(
            field,
            format!("{field} is {asked}, above this installation's limit of {limit} (the operator's {flag}): ask for less, or ask an administrator to raise the limit"),
        ));
    };
    if let Some(e) = executors {
        if e.count > limits.executors {
            over(
                "spec.spark.executors",
                e.count.to_string(),
                limits.executors.to_string(),
                "--max-executors",
            );
        }
        if e.cores > limits.executor_cores {
            over(
                "spec.spark.executorCores",
                e.cores.to_string(),
                limits.executor_cores.to_string(),
                "--max-executor-cores",
            );
        }
        if e.memory_mib > limits.executor_memory_mib {
            over(
                "spec.spark.executorMemory",
                format!("{}Mi", e.memory_mib),
                format!("{}Mi", limits.executor_memory_mib),
                "--max-executor-memory",
            );
        }
    }
    if let Some(gpus) = spec.gpus.filter(|g| *g > limits.gpus) {
        over(
            "spec.gpus",
            gpus.to_string(),
            limits.gpus.to_string(),
            "--max-gpus",
        );
    }
    out
}

impl Resolved {
    /// The Secrets the user supplies, in the order their problems are reported.
    pub fn user_secrets(&self) -> Vec<SecretReference> {
        let mut out: Vec<_> = self.s3.iter().filter_map(|s3| s3.reference(&[])).collect();
        out.extend(self.env_secrets.iter().cloned());
        if !self.token.generated {
            out.push(SecretReference {
                name: self.token.secret.clone(),
                keys: vec![self.token.key.clone()],
                field: "spec.jupyter.tokenSecret".into(),
                missing: Reason::JupyterTokenSecretNotFound,
                key_missing: Reason::JupyterTokenKeyMissing,
                components: vec![],
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::hapcontainer as hc;

    #[test]
    fn a_bare_spec_generates_its_token_and_runs_the_default_image_locally() {
        let r = resolve(&hc("{}"), &BuildConfig::default(), &Catalog::Absent);
        assert!(r.runs);
        assert_eq!(r.image, hap_api::hapcontainer::DEFAULT_IMAGE);
        assert_eq!(
            r.token,
            TokenSource {
                secret: "w-jupyter".into(),
                key: "token".into(),
                generated: true
            }
        );
        assert_eq!((&r.s3, &r.executors), (&None, &None));
        assert!(r.user_secrets().is_empty(), "the generated token is ours");
    }

    #[test]
    fn user_secrets_carry_their_keys_and_executors_inherit_the_image() {
        let r = resolve(
            &hc(
                "{image: mine:1, s3: {endpoint: 'http://s3:80', credentialsSecret: {name: keys}}, jupyter: {tokenSecret: {name: tok, key: t}}, spark: {executors: 2, executorMemory: 1Gi}}",
            ),
            &BuildConfig::default(),
            &Catalog::Absent,
        );
        let secrets = r.user_secrets();
        assert_eq!(secrets.len(), 2);
        assert_eq!(
            (secrets[0].name.as_str(), secrets[0].keys.clone()),
            (
                "keys",
                vec![
                    "AWS_ACCESS_KEY_ID".to_string(),
                    "AWS_SECRET_ACCESS_KEY".to_string()
                ]
            )
        );
        assert_eq!(
            (secrets[1].name.as_str(), secrets[1].keys.clone()),
            ("tok", vec!["t".to_string()])
        );
        let executors = r.executors.expect("executors");
        assert_eq!((executors.count, executors.memory_mib), (2, 1024));
        assert_eq!(executors.image, "mine:1");
    }

    #[test]
    fn a_profile_fills_what_the_spec_leaves_out_and_bounds_the_rest() {
        let profiles = Catalog::parse(
            "[{name: small, image: 'hap-workspace:small', gpus: 1, resources: {limits: {cpu: '1', memory: 4Gi}}, volume: {size: 5Gi, maxSize: 8Gi}, culling: {idleAfter: 2h}}]",
        );
        let cfg = BuildConfig::default();
        let r = resolve(&hc("{profile: small}"), &cfg, &profiles);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.image, "hap-workspace:small");
        assert_eq!(r.home.unwrap().size.0, "5Gi");
        assert_eq!(r.idle_after, Some(std::time::Duration::from_secs(7200)));
        let limits = r.resources.limits.unwrap();
        assert_eq!(
            (
                limits["memory"].0.as_str(),
                limits["nvidia.com/gpu"].0.as_str()
            ),
            ("4Gi", "1")
        );
        // Beyond the profile: refused, as a spec problem that keeps the pod from starting.
        let r = resolve(
            &hc("{profile: small, volume: {size: 9Gi}}"),
            &cfg,
            &profiles,
        );
        assert_eq!(r.problems.len(), 1);
        assert_eq!(
            (r.problems[0].reason, r.problems[0].blocking),
            (Reason::InvalidSpec, true)
        );
        assert!(r.problems[0].message.contains("spec.volume.size is 9Gi"));
        // A profile that is not there.
        let r = resolve(&hc("{profile: large}"), &cfg, &profiles);
        assert_eq!(r.problems[0].reason, Reason::ProfileNotFound);
        assert!(r.problems[0].message.contains("the profiles are: small"));
        // No profile named: the defaults, whatever the profiles.
        let r = resolve(&hc("{}"), &cfg, &profiles);
        assert_eq!(r.home.unwrap().size.0, "10Gi");
        assert_eq!(r.resources.requests.unwrap()["memory"].0, "2Gi");
    }

    #[test]
    fn zero_executors_and_size_zero_switch_things_off() {
        let r = resolve(
            &hc("{size: 0, spark: {executors: 0}}"),
            &BuildConfig::default(),
            &Catalog::Absent,
        );
        assert!(!r.runs);
        assert_eq!(r.executors, None);
    }
}
