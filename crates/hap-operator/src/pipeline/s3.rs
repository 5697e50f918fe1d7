//! The S3 connection as every resource's children use it, read once from the spec's `s3`: where the
//! store is, and which Secret holds its keys. Both resources resolve it here, so the endpoint and the
//! credentials come from one place.

use hap_api::Component;
use hap_api::s3::S3Spec;
use k8s_openapi::api::core::v1::EnvVar;

use super::objects::secret_env;
use super::reason::Reason;
use super::references::SecretReference;

#[derive(Clone, Debug, PartialEq)]
pub struct S3 {
    pub endpoint: String,
    pub region: String,
    pub bucket: Option<String>,
    pub path_style: bool,
    pub verify_tls: bool,
    /// The Secret with the access key pair; requests are anonymous without one.
    pub credentials: Option<S3Credentials>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct S3Credentials {
    pub secret: String,
    pub access_key_id_key: String,
    pub secret_access_key_key: String,
}

impl S3 {
    pub fn resolve(spec: &S3Spec) -> S3 {
        S3 {
            endpoint: spec.endpoint.clone(),
            region: spec.region.clone(),
            bucket: spec.bucket.clone(),
            path_style: spec.path_style,
            verify_tls: spec.verify_tls,
            credentials: spec.credentials_secret.as_ref().map(|c| S3Credentials {
                secret: c.name.clone(),
                access_key_id_key: c.access_key_id_key.clone(),
                secret_access_key_key: c.secret_access_key_key.clone(),
            }),
        }
    }

    /// Whether the endpoint is reached over TLS.
    pub fn tls(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// The credentials Secret as a reference to check, reported by `components`.
    pub fn reference(&self, components: &[Component]) -> Option<SecretReference> {
        self.credentials.as_ref().map(|c| SecretReference {
            name: c.secret.clone(),
            keys: vec![c.access_key_id_key.clone(), c.secret_access_key_key.clone()],
            field: "spec.s3.credentialsSecret".into(),
            missing: Reason::S3CredentialsSecretNotFound,
            key_missing: Reason::S3CredentialsKeyMissing,
            components: components.to_vec(),
        })
    }

    /// The keys, from the credentials Secret at container start, under the names the AWS SDKs (and
    /// Trino's `${ENV:...}`) read. None without a Secret.
    pub fn credentials_env(&self) -> Vec<EnvVar> {
        self.credentials
            .iter()
            .flat_map(|c| {
                [
                    secret_env("AWS_ACCESS_KEY_ID", &c.secret, &c.access_key_id_key),
                    secret_env("AWS_SECRET_ACCESS_KEY", &c.secret, &c.secret_access_key_key),
                ]
            })
            .collect()
    }
}
