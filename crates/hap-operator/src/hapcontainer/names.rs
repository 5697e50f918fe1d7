//! Names and labels of a HapContainer's children. The pod and service names are the original
//! operator's; the others follow `<name>-<role>`.

use std::collections::BTreeMap;

use crate::pipeline::MANAGER;

/// `app.kubernetes.io/name` of every child of a HapContainer.
pub const APP: &str = "hap-workspace";

/// The ports Jupyter and the Spark UI listen on, in the pod and on the Service.
pub const JUPYTER_PORT: i32 = 8888;
pub const SPARK_UI_PORT: i32 = 4040;
/// The port the Spark driver listens on for executors, and its block manager's.
pub const DRIVER_PORT: i32 = 7078;
pub const BLOCK_MANAGER_PORT: i32 = 7079;

/// Where the Spark ConfigMap is mounted, and what SPARK_CONF_DIR points at.
pub const SPARK_CONF_DIR: &str = "/opt/hap/spark-conf";

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
