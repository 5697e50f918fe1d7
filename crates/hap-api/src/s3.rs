//! The S3 connection: one definition shared by HapContainer (the workspace's AWS settings) and
//! HapQuery (the metastore's s3a and Trino's native S3 file system).

use kube::KubeSchema;

use crate::bounds;
use serde::{Deserialize, Serialize};

pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCESS_KEY_ID_KEY: &str = "AWS_ACCESS_KEY_ID";
pub const DEFAULT_SECRET_ACCESS_KEY_KEY: &str = "AWS_SECRET_ACCESS_KEY";

fn default_region() -> String {
    DEFAULT_REGION.into()
}

fn default_true() -> bool {
    true
}

/// The S3 connection, passed to Jupyter, Spark and the data jobs as standard AWS settings.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// The store's endpoint URL, e.g. `http://s3-region1.hyperstore.example.com:80`.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = bounds::ENDPOINT.rule("spec.s3.endpoint"))]
    pub endpoint: String,

    /// The region to sign requests for.
    #[serde(default = "default_region")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = bounds::REGION.rule("spec.s3.region"))]
    pub region: String,

    /// The bucket to use (a workspace's HAP_S3_BUCKET; HapQuery's tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[x_kube(validation = bounds::BUCKET.rule("spec.s3.bucket"))]
    pub bucket: Option<String>,

    /// Path-style addressing (`endpoint/bucket/key`), which HyperStore and most on-premises stores need.
    #[serde(default = "default_true")]
    pub path_style: bool,

    /// Verify the endpoint's TLS certificate.
    #[serde(default = "default_true")]
    pub verify_tls: bool,

    /// The Secret holding the access key pair. Without it, requests are anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<S3CredentialsSecret>,
}

fn default_access_key_id_key() -> String {
    DEFAULT_ACCESS_KEY_ID_KEY.into()
}

fn default_secret_access_key_key() -> String {
    DEFAULT_SECRET_ACCESS_KEY_KEY.into()
}

/// A Secret in the resource's namespace with the S3 access key pair.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3CredentialsSecret {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = bounds::SECRET_NAME.rule("spec.s3.credentialsSecret.name"))]
    pub name: String,
    /// The key holding the access key ID.
    #[serde(default = "default_access_key_id_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::SECRET_KEY.rule("spec.s3.credentialsSecret.accessKeyIdKey"))]
    pub access_key_id_key: String,
    /// The key holding the secret access key.
    #[serde(default = "default_secret_access_key_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::SECRET_KEY.rule("spec.s3.credentialsSecret.secretAccessKeyKey"))]
    pub secret_access_key_key: String,
}
