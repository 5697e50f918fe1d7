//! `HapContainer` (hap.cloudian.com/v1alpha1): one analytics workspace — Jupyter, Spark and TensorFlow in a
//! pod — wired to an S3 store.
//!
//! The original resource had only `spec.size` and `spec.image`; both keep their meaning, and every field
//! added since is optional with a default, so the original custom resource is accepted unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bounds;

// The S3 connection is shared with HapQuery; these names keep the workspace's paths working.
pub use crate::s3::{
    DEFAULT_ACCESS_KEY_ID_KEY, DEFAULT_REGION, DEFAULT_SECRET_ACCESS_KEY_KEY, S3CredentialsSecret,
    S3Spec,
};

/// The workspace image used when `spec.image` is not set.
pub const DEFAULT_IMAGE: &str = concat!("hap-workspace:", env!("CARGO_PKG_VERSION"));
pub const DEFAULT_TOKEN_KEY: &str = "token";
/// The home volume's size when `spec.volume.size` is not set.
pub const DEFAULT_VOLUME_SIZE: &str = "10Gi";
pub const NODE_PORT_MIN: i32 = 30000;
pub const NODE_PORT_MAX: i32 = 32767;

/// The message of the rule that keeps `size` at 0 or 1, which says how to scale out instead.
pub const SIZE_RULE_MESSAGE: &str = "size must be 0 (suspended) or 1 (running): a workspace is one pod. To scale out, set spec.spark.executors and Spark on Kubernetes runs that many executor pods";

fn default_size() -> i32 {
    1
}

/// An analytics workspace: Jupyter, Spark and TensorFlow in one pod, wired to an S3 store.
// The printer columns repeat `type_ = "string"`, which the lint mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "hap.cloudian.com",
    version = "v1alpha1",
    kind = "HapContainer",
    plural = "hapcontainers",
    singular = "hapcontainer",
    shortname = "hapc",
    namespaced,
    status = "HapContainerStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Phase",
        type_ = "string",
        description = "Pending, Running, Suspended, Failed or Degraded",
        json_path = ".status.phase"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Ready workspace pods out of desired",
        json_path = ".status.ready"
    ),
    printcolumn(
        name = "Jupyter",
        type_ = "string",
        description = "Where Jupyter answers (node IP and node port)",
        json_path = ".status.jupyterUrl"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = bounds::HAPCONTAINER_NAME.name_rule())]
#[serde(rename_all = "camelCase")]
pub struct HapContainerSpec {
    /// 1 runs the workspace pod; 0 suspends it: the pod is deleted and everything else (service,
    /// secrets, volume) is kept, so scaling back to 1 resumes where it stopped.
    #[serde(default = "default_size")]
    #[schemars(range(min = 0))]
    #[x_kube(validation = Rule::new("self <= 1").message(SIZE_RULE_MESSAGE))]
    pub size: i32,

    /// The profile (one of the administrator's kinds of workspace) whose image, resources, GPUs, home
    /// volume size and idle culling apply where this spec sets none, and whose limits bound it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = bounds::PROFILE_NAME.rule("spec.profile"))]
    pub profile: Option<String>,

    /// The workspace image (Jupyter, Spark, TensorFlow). Defaults to the project's workspace image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = bounds::IMAGE.rule("spec.image"))]
    pub image: Option<String>,

    /// Always, IfNotPresent or Never. Defaults as Kubernetes does for the image's tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// CPU and memory for the workspace container. Defaults to requests of 500m CPU and 2Gi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// GPUs for the workspace container, as an `nvidia.com/gpu` limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub gpus: Option<i32>,

    /// The S3 store the workspace reads and writes (Cloudian HyperStore or any S3-compatible store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,

    /// How Jupyter authenticates users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jupyter: Option<JupyterSpec>,

    /// The home directory's volume (`/home/jovyan`: notebooks, and packages installed with
    /// `pip install --user`): a PersistentVolumeClaim `<name>-workspace` of 10Gi by default, kept when
    /// the HapContainer is deleted.
    #[serde(default)]
    pub volume: VolumeSpec,

    /// How Jupyter and the Spark UI are exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,

    /// Spark on Kubernetes: executors run as pods next to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkSpec>,

    /// Node labels the workspace pod must be scheduled on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the workspace pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Extra environment variables for the workspace container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Idle culling: stop the workspace (size 0, everything else kept) after a time with no
    /// activity in Jupyter. Off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culling: Option<CullingSpec>,
}

/// The shortest and longest `spec.culling.idleAfter`: a minute (the operator looks at Jupyter's
/// activity every quarter of it, at most once a minute), and 30 days.
pub const IDLE_AFTER_MIN: Duration = Duration::from_secs(60);
pub const IDLE_AFTER_MAX: Duration = Duration::from_secs(720 * 3600);

/// When a workspace counts as idle. Activity is any of: a kernel busy or recently active, a terminal
/// with recent input or output, an open connection to a kernel, a Spark application with a running
/// job, or a request to Jupyter's API.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CullingSpec {
    /// How long without activity before the workspace is stopped: a duration such as 30m, 2h or
    /// 1h30m, from 1m to 720h. Setting size back to 1 starts it again, home volume included.
    #[schemars(length(min = 2, max = 18))]
    #[x_kube(validation = bounds::DURATION.rule("spec.culling.idleAfter"))]
    #[x_kube(validation = Rule::new(format!("!self.matches('{}') || (duration(self) >= duration('1m') && duration(self) <= duration('720h'))", bounds::DURATION.pattern)).message("spec.culling.idleAfter must be from 1m to 720h"))]
    pub idle_after: String,
}

impl CullingSpec {
    /// `idleAfter` as a duration, or what is wrong with it.
    pub fn idle_after(&self) -> Result<Duration, String> {
        let what = "spec.culling.idleAfter";
        if let Some(p) = bounds::DURATION.check(what, &self.idle_after) {
            return Err(p.message);
        }
        // humantime reads the same h/m/s sums the bound allows (and the API server's CEL `duration`).
        let d = humantime::parse_duration(&self.idle_after)
            .map_err(|e| format!("{what} {:?} is not a duration: {e}", self.idle_after))?;
        if !(IDLE_AFTER_MIN..=IDLE_AFTER_MAX).contains(&d) {
            return Err(format!(
                "{what} is {:?}; it must be from 1m to 720h",
                self.idle_after
            ));
        }
        Ok(d)
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JupyterSpec {
    /// A Secret with the token users log in with. Without it, the operator generates a random token in
    /// the Secret `<name>-jupyter` (key `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<SecretKeySelector>,
}

fn default_token_key() -> String {
    DEFAULT_TOKEN_KEY.into()
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = bounds::SECRET_NAME.rule("spec.jupyter.tokenSecret.name"))]
    pub name: String,
    #[serde(default = "default_token_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::SECRET_KEY.rule("spec.jupyter.tokenSecret.key"))]
    pub key: String,
}

fn default_true() -> bool {
    true
}

/// The home directory's volume. The rules compare with the previous volume, so they hold from the
/// second write on: a claim's class cannot change (set, unset or other), and its size can only grow,
/// as Kubernetes allows.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("storageClassName cannot change; to move the workspace to another class, delete the PersistentVolumeClaim <name>-workspace first"))]
#[x_kube(validation = Rule::new("!has(oldSelf.size) || (has(self.size) && quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0)").message("size cannot shrink or be removed once set: a PersistentVolumeClaim can only grow"))]
pub struct VolumeSpec {
    /// The size of the PersistentVolumeClaim `<name>-workspace`, mounted on the home directory:
    /// the profile's when unset (with `spec.profile`), else 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// The StorageClass to provision it from; the cluster's default when unset. It cannot change later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::STORAGE_CLASS.rule("spec.volume.storageClassName"))]
    pub storage_class_name: Option<String>,
    /// Keep the claim, and the files and packages on it, when the HapContainer is deleted (the
    /// default): a HapContainer made again under the same name finds them. false deletes it too.
    #[serde(default = "default_true")]
    pub keep_on_delete: bool,
    /// No claim: the home directory is an emptyDir that lives and dies with the pod, and everything
    /// on it is lost when the pod is replaced (a spec change, an eviction, an operator upgrade).
    #[serde(default)]
    pub ephemeral: bool,
}

impl Default for VolumeSpec {
    fn default() -> Self {
        VolumeSpec {
            size: None,
            storage_class_name: None,
            keep_on_delete: true,
            ephemeral: false,
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ServiceType {
    #[default]
    NodePort,
    ClusterIP,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::NodePort => "NodePort",
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The Service `<name>-hapservice`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'ClusterIP' || (!has(self.jupyterNodePort) && !has(self.sparkUiNodePort))").message("jupyterNodePort and sparkUiNodePort need service.type NodePort or LoadBalancer"))]
#[x_kube(validation = Rule::new("!has(self.jupyterNodePort) || !has(self.sparkUiNodePort) || self.jupyterNodePort != self.sparkUiNodePort").message("jupyterNodePort and sparkUiNodePort must differ"))]
pub struct ServiceSpec {
    /// NodePort (the default, as in the original), ClusterIP or LoadBalancer.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// A fixed node port for Jupyter (30000-32767); allocated by the cluster when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30000, max = 32767))]
    pub jupyter_node_port: Option<i32>,
    /// A fixed node port for the Spark UI (30000-32767); allocated by the cluster when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30000, max = 32767))]
    pub spark_ui_node_port: Option<i32>,
}

fn default_executor_cores() -> i32 {
    1
}

fn default_executor_memory() -> Quantity {
    Quantity("2Gi".into())
}

/// Spark on Kubernetes from the workspace: the pod is the driver (client mode) and executors run as pods.
/// The operator's settings may set lower limits than the schema's (see docs/hapcontainer.md).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SparkSpec {
    /// Executor pods per Spark application. 0 keeps Spark local (`local[*]`) in the workspace pod.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub executors: i32,
    /// CPU cores per executor.
    #[serde(default = "default_executor_cores")]
    #[schemars(range(min = 1, max = 64))]
    pub executor_cores: i32,
    /// Memory per executor (Kubernetes quantity, e.g. 2Gi); Spark adds its own overhead on top.
    #[serde(default = "default_executor_memory")]
    pub executor_memory: Quantity,
    /// The executor image; defaults to the workspace image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = bounds::IMAGE.rule("spec.spark.executorImage"))]
    pub executor_image: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// The pod is being created, scheduled or started.
    Pending,
    /// The workspace pod is ready.
    Running,
    /// size is 0: no pod, everything else kept.
    Suspended,
    /// The workspace cannot run until its configuration is fixed (e.g. a referenced Secret is missing).
    Failed,
    /// The pod failed or its container cannot run (crash loop, image pull error), or the latest
    /// change to the spec could not be applied while the workspace runs as it was.
    Degraded,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Suspended => "Suspended",
            Phase::Failed => "Failed",
            Phase::Degraded => "Degraded",
        }
    }
}

/// What the operator observed, written through the status subresource.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HapContainerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Ready workspace pods out of desired, e.g. `1/1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `Configured`, with reasons and messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The IP of the node the pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jupyter_node_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_ui_node_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jupyter_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_ui_url: Option<String>,
    /// How many times the operator replaced a failed workspace pod in a row; reset once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_pod_replacements: Option<i32>,
    /// The image Spark's executors run, with executors: the one image the API server lets this
    /// workspace's Spark driver start pods from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_executor_image: Option<String>,
    /// With culling: when Jupyter last saw activity, as the operator last read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}
