//! Names and labels of a HapContainer's children. The pod and service names are the original
//! operator's; the others follow `<name>-<role>`.

use std::collections::BTreeMap;

use crate::pipeline::MANAGER;

/// `app.kubernetes.io/name` of every child of a HapContainer.
pub const APP: &str = crate::pipeline::network::WORKSPACE_APP;

/// The ports Jupyter and the Spark UI listen on, in the pod and on the Service.
pub const JUPYTER_PORT: i32 = 8888;
pub const SPARK_UI_PORT: i32 = 4040;
/// The port the Spark driver listens on for executors, and its block manager's.
pub const DRIVER_PORT: i32 = 7078;
pub const BLOCK_MANAGER_PORT: i32 = 7079;
/// The last port either may take: a second application of the workspace (another notebook) finds
/// 7078 and 7079 taken and moves up, one port per try, for up to `spark.port.maxRetries` (16) tries.
pub const LAST_DRIVER_PORT: i32 = BLOCK_MANAGER_PORT + 16;

/// Where the Spark ConfigMap is mounted, and what SPARK_CONF_DIR points at.
pub const SPARK_CONF_DIR: &str = "/opt/hap/spark-conf";

/// Where the Spark authentication Secret is mounted, in the driver and in its executors, and the
/// key (and file) that holds the secret.
pub const SPARK_AUTH_DIR: &str = "/opt/hap/spark-auth";
pub const SPARK_AUTH_KEY: &str = "secret";

pub fn pod(name: &str) -> String {
    format!("{name}-happod")
}

pub fn service(name: &str) -> String {
    format!("{name}-hapservice")
}

/// The generated Jupyter token's Secret (only `resolve` names it; everything else takes the name
/// from there).
pub fn token_secret(name: &str) -> String {
    format!("{name}-jupyter")
}

/// The operator's CA bundle, mounted in the workspace for its clients to trust (Trino's HTTPS).
pub fn trusted_ca(name: &str) -> String {
    format!("{name}-trusted-ca")
}
pub fn spark_conf(name: &str) -> String {
    format!("{name}-spark-conf")
}

pub fn volume(name: &str) -> String {
    format!("{name}-workspace")
}

/// The ServiceAccount, Role and RoleBinding that let the workspace start Spark executors.
pub fn spark_rbac(name: &str) -> String {
    format!("{name}-spark")
}

/// The headless Service that makes the Spark driver (the workspace pod) reachable from executors.
pub fn spark_driver_service(name: &str) -> String {
    format!("{name}-spark-driver")
}

/// The copy of the workspace's S3 keys that its Spark executors read (see `build::spark::executor_keys`).
pub fn spark_keys(name: &str) -> String {
    format!("{name}-spark-s3")
}

/// The generated secret a workspace's Spark driver and its executors authenticate each other with
/// (see `build::spark::auth_secret`).
pub fn spark_auth(name: &str) -> String {
    format!("{name}-spark-auth")
}

/// The NetworkPolicies of the workspace pod and of its executors (see `build::network`).
pub fn workspace_policy(name: &str) -> String {
    format!("{name}-workspace-ingress")
}

pub fn executors_policy(name: &str) -> String {
    format!("{name}-spark-executors")
}

/// The label Spark puts on a workspace's executors (`spark.kubernetes.executor.label.*`), which the
/// admission policy lets a driver set to its own workspace's name only.
pub const WORKSPACE_LABEL: &str = "hap.cloudian.com/workspace";

/// What selects a workspace's executors: Spark's own role label and the workspace's.
pub fn executor_selector(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("spark-role".to_string(), "executor".to_string()),
        (WORKSPACE_LABEL.to_string(), name.to_string()),
    ])
}

/// Labels of every child. `app: <name>` is the original operator's selector label.
pub fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP.to_string()),
        ("app.kubernetes.io/instance".to_string(), name.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGER.to_string(),
        ),
        ("app".to_string(), name.to_string()),
    ])
}

/// What the Service selects: the workspace pod only, never Spark executors.
pub fn pod_selector(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_string(), name.to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "workspace".to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_names_are_kept() {
        assert_eq!(pod("example-hapcontainer"), "example-hapcontainer-happod");
        assert_eq!(
            service("example-hapcontainer"),
            "example-hapcontainer-hapservice"
        );
        assert_eq!(labels("x")["app"], "x");
    }
}
