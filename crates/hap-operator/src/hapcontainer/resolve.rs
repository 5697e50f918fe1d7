//! The resolve step (pure): a HapContainer's spec read once into what the later steps need. The build
//! step, the observe step, the reference check, the Secret watch and `render` all take their Secrets,
//! image, store and switches from here, so no step works them out on its own.

use hap_api::HapContainer;
use hap_api::hapcontainer::DEFAULT_TOKEN_KEY;
use hap_api::validation;
use kube::ResourceExt;

use super::names;
use crate::pipeline::config::BuildConfig;
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
    /// The spec's own problems, each saying what to fix.
    pub problems: Vec<Problem>,
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

pub fn resolve(hc: &HapContainer, cfg: &BuildConfig) -> Resolved {
    let spec = &hc.spec;
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
    Resolved {
        runs: spec.size > 0,
        image,
        token,
        s3: spec.s3.as_ref().map(S3::resolve),
        executors,
        problems: Problem::from_spec(validation::problems(spec)),
    }
}

impl Resolved {
    /// The Secrets the user supplies, in the order their problems are reported.
    pub fn user_secrets(&self) -> Vec<SecretReference> {
        let mut out: Vec<_> = self.s3.iter().filter_map(|s3| s3.reference(&[])).collect();
        if !self.token.generated {
            out.push(SecretReference {
                name: self.token.secret.clone(),
                keys: vec![self.token.key.clone()],
                field: "spec.jupyter.tokenSecret",
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
        let r = resolve(&hc("{}"), &BuildConfig::default());
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
    fn zero_executors_and_size_zero_switch_things_off() {
        let r = resolve(
            &hc("{size: 0, spark: {executors: 0}}"),
            &BuildConfig::default(),
        );
        assert!(!r.runs);
        assert_eq!(r.executors, None);
    }
}
