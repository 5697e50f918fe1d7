//! The resolve step (pure): a HapContainer's spec read once into what the later steps need. The build
//! step, the reference check, the Secret watch and `render` all take their Secrets, image and
//! switches from here, so no step works them out on its own.

use hap_api::HapContainer;
use hap_api::hapcontainer::DEFAULT_TOKEN_KEY;
use hap_api::validation;
use kube::ResourceExt;

use crate::config::BuildConfig;
use crate::names;

/// The spec, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// size 1: the workspace pod runs; size 0: it is suspended.
    pub runs: bool,
    /// The workspace image: the spec's, or the installation's default.
    pub image: String,
    /// Where Jupyter's login token comes from.
    pub token: TokenSource,
    /// The Secret with the S3 access key pair; requests are anonymous without one.
    pub s3_credentials: Option<S3Credentials>,
    /// Spark on Kubernetes, when the spec asks for executors; Spark runs locally otherwise.
    pub executors: Option<Executors>,
    /// The spec's own problems, each saying what to fix.
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TokenSource {
    pub secret: String,
    pub key: String,
    /// Whether the operator generates the Secret (the user named none).
    pub generated: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct S3Credentials {
    pub secret: String,
    pub access_key_id_key: String,
    pub secret_access_key_key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Executors {
    pub count: i32,
    pub cores: i32,
    /// Memory per executor in mebibytes, as Spark wants it.
    pub memory_mib: u64,
    pub image: String,
}

/// A Secret the user supplies, with the keys the workspace reads from it.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretReference {
    pub name: String,
    pub keys: Vec<String>,
    /// The spec field that names it, for messages.
    pub field: &'static str,
    /// The Configured reasons when the Secret, or one of its keys, is missing.
    pub missing_reason: &'static str,
    pub key_missing_reason: &'static str,
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
    let s3_credentials = spec
        .s3
        .as_ref()
        .and_then(|s| s.credentials_secret.as_ref())
        .map(|c| S3Credentials {
            secret: c.name.clone(),
            access_key_id_key: c.access_key_id_key.clone(),
            secret_access_key_key: c.secret_access_key_key.clone(),
        });
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
        s3_credentials,
        executors,
        problems: validation::problems(spec),
    }
}

impl Resolved {
    /// The Secrets the user supplies, in the order their problems are reported.
    pub fn user_secrets(&self) -> Vec<SecretReference> {
        let mut out = Vec::new();
        if let Some(c) = &self.s3_credentials {
            out.push(SecretReference {
                name: c.secret.clone(),
                keys: vec![c.access_key_id_key.clone(), c.secret_access_key_key.clone()],
                field: "spec.s3.credentialsSecret",
                missing_reason: "S3CredentialsSecretNotFound",
                key_missing_reason: "S3CredentialsKeyMissing",
            });
        }
        if !self.token.generated {
            out.push(SecretReference {
                name: self.token.secret.clone(),
                keys: vec![self.token.key.clone()],
                field: "spec.jupyter.tokenSecret",
                missing_reason: "JupyterTokenSecretNotFound",
                key_missing_reason: "JupyterTokenKeyMissing",
            });
        }
        out
    }

    /// Whether the spec names this Secret as one the user supplies.
    pub fn refers_to(&self, secret: &str) -> bool {
        self.user_secrets().iter().any(|s| s.name == secret)
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
        assert_eq!((&r.s3_credentials, &r.executors), (&None, &None));
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
        assert!(r.refers_to("keys") && r.refers_to("tok") && !r.refers_to("w-jupyter"));
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
