//! `spark-defaults.conf` for the workspace: S3A wired to the store, and Spark on Kubernetes when the
//! HapContainer asks for executors. No secret goes in here: executors read the credentials from the same
//! Secret the workspace does, through `secretKeyRef` settings, and the driver and executors read the
//! secret they authenticate each other with from a file of a mounted Secret (`auth_secret`).

use std::collections::BTreeMap;

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, Pod, PodSpec, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use kube::ResourceExt;

use crate::hapcontainer::names::{
    self, BLOCK_MANAGER_PORT, DRIVER_PORT, SPARK_AUTH_DIR, SPARK_AUTH_KEY,
    SPARK_CONF_DIR as CONF_DIR,
};
use crate::hapcontainer::resolve::{Executors, Resolved};
use crate::pipeline::config::BuildConfig;
use crate::pipeline::objects::env;
use crate::pipeline::plan::{CopyFrom, CopyValues};

/// The ConfigMap key (and file) of the executors' pod template.
pub const EXECUTOR_TEMPLATE: &str = "executor-pod-template.yaml";

/// The CPU an executor pod requests per executor core: half a core, as the workspace pod's own
/// default request (500m) is half of what it may use. An interactive workspace's executors idle
/// between jobs; the request is what the scheduler sets aside for them, not a cap (there is no CPU
/// limit), and `spark.executor.cores` alone sets how many tasks an executor runs at once. Whole cores
/// would keep the defaults (a 500m workspace and two one-core executors, 2.5 cores) off a 2-core node.
pub const EXECUTOR_MILLICORES_PER_CORE: i32 = 500;

/// `spark.kubernetes.executor.request.cores` for executors of `cores` cores, e.g. `500m` for 1.
pub fn executor_cpu_request(cores: i32) -> String {
    format!("{}m", cores * EXECUTOR_MILLICORES_PER_CORE)
}

/// The settings, by key. Sorted, so the file (and its hash) only changes when a setting does.
pub fn settings(hc: &HapContainer, r: &Resolved, cfg: &BuildConfig) -> BTreeMap<String, String> {
    let name = hc.name_any();
    let namespace = hc.namespace().unwrap_or_default();
    let mut s = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        s.insert(k.to_string(), v);
    };
    set("spark.ui.port", "4040".into());
    // The UI is open to every pod (as the Service publishes it): its kill links would let anyone stop
    // this workspace's jobs.
    set("spark.ui.killEnabled", "false".into());
    if let Some(s3) = &r.s3 {
        set(
            "spark.hadoop.fs.s3a.impl",
            "org.apache.hadoop.fs.s3a.S3AFileSystem".into(),
        );
        set("spark.hadoop.fs.s3a.endpoint", s3.endpoint.clone());
        set("spark.hadoop.fs.s3a.endpoint.region", s3.region.clone());
        set(
            "spark.hadoop.fs.s3a.path.style.access",
            s3.path_style.to_string(),
        );
        set(
            "spark.hadoop.fs.s3a.connection.ssl.enabled",
            s3.tls().to_string(),
        );
        let provider = if s3.credentials.is_some() {
            // Hadoop 3.4 maps this SDK v1 name to its v2 equivalent, so one name serves Spark 3 and 4.
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
        } else {
            "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"
        };
        set(
            "spark.hadoop.fs.s3a.aws.credentials.provider",
            provider.into(),
        );
    }
    match &r.executors {
        Some(executors) => kubernetes(&mut set, r, executors, cfg, &name, &namespace),
        None => set("spark.master", "local[*]".into()),
    }
    s
}

fn kubernetes(
    set: &mut impl FnMut(&str, String),
    r: &Resolved,
    executors: &Executors,
    cfg: &BuildConfig,
    name: &str,
    namespace: &str,
) {
    let service_account = names::spark_rbac(name);
    set("spark.master", format!("k8s://{}", cfg.kubernetes_api));
    set("spark.submit.deployMode", "client".into());
    set("spark.kubernetes.namespace", namespace.into());
    set("spark.kubernetes.container.image", executors.image.clone());
    set(
        "spark.kubernetes.authenticate.driver.serviceAccountName",
        service_account,
    );
    // Spark gives executors the driver's account unless told otherwise; they need no API access,
    // and the admission policy (`admission.rs`) refuses any other.
    set(
        "spark.kubernetes.authenticate.executor.serviceAccountName",
        "default".into(),
    );
    set(
        "spark.kubernetes.authenticate.caCertFile",
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".into(),
    );
    set(
        "spark.kubernetes.authenticate.oauthTokenFile",
        "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
    );
    // Executors run as restricted as the workspace (see `executor_pod_template`).
    set(
        "spark.kubernetes.executor.podTemplateFile",
        format!("{CONF_DIR}/{EXECUTOR_TEMPLATE}"),
    );
    // Executors get the driver pod as their owner, so deleting the workspace pod removes them.
    // No `spark.kubernetes.executor.podNamePrefix`: Spark then names each application's executors
    // `<app name>-<unique id>-exec-<n>`, so two applications of one workspace (two notebooks) do not
    // both create `...-exec-1`, which the API server would refuse to the second.
    set("spark.kubernetes.driver.pod.name", names::pod(name));
    // What the NetworkPolicies know this workspace's executors by (see `build::network`).
    set(
        &format!("spark.kubernetes.executor.label.{}", names::WORKSPACE_LABEL),
        name.to_string(),
    );
    set(
        "spark.driver.host",
        format!(
            "{}.{}.{namespace}.svc.{}",
            names::pod(name),
            names::spark_driver_service(name),
            cfg.cluster_domain
        ),
    );
    set("spark.driver.bindAddress", "0.0.0.0".into());
    set("spark.driver.port", DRIVER_PORT.to_string());
    set(
        "spark.driver.blockManager.port",
        BLOCK_MANAGER_PORT.to_string(),
    );
    // The driver's ports are open to the workspace's executors only (see `build::network`), and
    // Spark's own authentication and encryption hold the rest: a pod that reaches them without the
    // workspace's secret is refused. Both sides read the secret from the operator's Secret, mounted
    // in the workspace pod and in every executor (`auth_volume`), so Spark neither generates one nor
    // puts it into an executor's environment, where the pod spec would show it to anyone who may
    // read pods.
    set("spark.authenticate", "true".into());
    set("spark.network.crypto.enabled", "true".into());
    set("spark.authenticate.secret.file", auth_secret_file());
    set("spark.executor.instances", executors.count.to_string());
    set("spark.executor.cores", executors.cores.to_string());
    set(
        "spark.kubernetes.executor.request.cores",
        executor_cpu_request(executors.cores),
    );
    set(
        "spark.executor.memory",
        format!("{}m", executors.memory_mib),
    );
    if let Some(s3) = &r.s3 {
        if s3.credentials.is_some() {
            // From the operator's copy of the keys, the one Secret the admission policy lets
            // executors read (see `executor_keys`).
            let keys = names::spark_keys(name);
            for key in EXECUTOR_KEYS {
                set(
                    &format!("spark.kubernetes.executor.secretKeyRef.{key}"),
                    format!("{keys}:{key}"),
                );
            }
        }
        set("spark.executorEnv.AWS_REGION", s3.region.clone());
        set("spark.executorEnv.AWS_ENDPOINT_URL", s3.endpoint.clone());
    }
}

/// The keys of the executors' copy of the S3 keys.
pub const EXECUTOR_KEYS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/// The Secret the executors read the workspace's S3 keys from: a copy, made by the operator, of the
/// Secret the spec names, once that was checked (it exists, has the keys, and in the shared
/// namespace is shared with HAP resources). Executors are held to `<name>-spark-s3` by the admission
/// policy, which can name it from the driver's account alone: naming the user's Secret itself, the
/// policy would have to trust the spec, which the user edits. The values are copied at the edge
/// (`apply`), never built here: `executor_keys_source` says where from. None without executors or
/// keys.
pub fn executor_keys(hc: &HapContainer, r: &Resolved) -> Option<Secret> {
    executor_keys_source(r)?;
    Some(Secret {
        metadata: super::parts::meta(hc, &names::spark_keys(&hc.name_any())),
        type_: Some("Opaque".into()),
        ..Default::default()
    })
}

/// Where the executors' copy of the S3 keys comes from (see `executor_keys`).
pub fn executor_keys_source(r: &Resolved) -> Option<CopyFrom> {
    let creds = r.s3.as_ref()?.credentials.as_ref()?;
    let _with_executors = r.executors.as_ref()?;
    Some(CopyFrom {
        secret: creds.secret.clone(),
        values: CopyValues::Keys(vec![
            (EXECUTOR_KEYS[0].into(), creds.access_key_id_key.clone()),
            (EXECUTOR_KEYS[1].into(), creds.secret_access_key_key.clone()),
        ]),
    })
}

/// The file the driver and the executors read the Spark authentication secret from.
pub fn auth_secret_file() -> String {
    format!("{SPARK_AUTH_DIR}/{SPARK_AUTH_KEY}")
}

/// The Secret holding the secret a workspace's Spark driver and its executors authenticate each other
/// with (`spark.authenticate`), and encrypt their traffic with (`spark.network.crypto.enabled`). The
/// builder gives its shape only: the value is drawn when it is first created (`pipeline::generated`),
/// never rebuilt or rotated, and removed with the executors. The admission policy lets a driver mount
/// this Secret, of its own workspace, in its executors, and no other.
pub fn auth_secret(hc: &HapContainer) -> Secret {
    Secret {
        metadata: super::parts::meta(hc, &names::spark_auth(&hc.name_any())),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The volume of the authentication Secret, the same in the driver and the executors: read-only, and
/// readable by the owner and the group only (the kubelet gives the files the pod's fsGroup, the
/// image's user's group).
pub fn auth_volume(name: &str) -> (Volume, VolumeMount) {
    let volume = "spark-auth";
    (
        Volume {
            name: volume.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names::spark_auth(name)),
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeMount {
            name: volume.into(),
            mount_path: SPARK_AUTH_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        },
    )
}

/// The pod template Spark starts executors from: the workspace's security settings (non-root, no
/// privilege escalation, no capabilities, RuntimeDefault seccomp), and no API token, which executors do
/// not need. Spark fills in the image, command, resources and environment. With `auth` (the
/// workspace's name, when it runs executors), the authentication Secret's volume too.
pub fn executor_pod_template(auth: Option<(&str, &BuildConfig)>) -> Pod {
    let workspace = super::pod::security();
    let tmp = "tmp";
    let mut volumes = vec![Volume {
        name: tmp.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }];
    // The root file system is read-only; Spark mounts its local directories itself.
    let mut mounts = vec![VolumeMount {
        name: tmp.into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }];
    let mut environment = None;
    if let Some((name, cfg)) = auth {
        let (volume, mount) = auth_volume(name);
        volumes.push(volume);
        mounts.push(mount);
        // Spark 4.0 reads `spark.authenticate.secret.file` only when `spark.master` names Kubernetes,
        // and an executor's first connection to its driver (to fetch the application's settings) is
        // made with the few settings Spark passes on the executor's command line, which do not
        // include the master: without it, the executor finds no secret and cannot start. The JVM
        // takes this one setting from the environment. It holds no secret.
        environment = Some(vec![env(
            "JAVA_TOOL_OPTIONS",
            format!("-Dspark.master=k8s://{}", cfg.kubernetes_api),
        )]);
    }
    Pod {
        metadata: Default::default(),
        spec: Some(PodSpec {
            automount_service_account_token: Some(false),
            security_context: Some(workspace.0),
            containers: vec![Container {
                name: "spark-kubernetes-executor".into(),
                security_context: Some(workspace.1),
                env: environment,
                volume_mounts: Some(mounts),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        }),
        status: None,
    }
}

/// The file itself.
pub fn defaults_conf(hc: &HapContainer, r: &Resolved, cfg: &BuildConfig) -> String {
    let mut out = format!(
        "# Written by hap-operator for HapContainer {}/{}; edits are overwritten.\n",
        hc.namespace().unwrap_or_default(),
        hc.name_any()
    );
    for (k, v) in settings(hc, r, cfg) {
        out.push_str(&format!("{k} {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hapcontainer::resolve::resolve;
    use hap_api::profile::Catalog;

    fn conf(spark: &str) -> BTreeMap<String, String> {
        let yaml = format!(
            "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {{name: w, namespace: ns}}\nspec: {{spark: {spark}}}\n"
        );
        let hc: HapContainer = serde_saphyr::from_str(&yaml).unwrap();
        let cfg = BuildConfig::default();
        settings(&hc, &resolve(&hc, &cfg, &Catalog::Absent), &cfg)
    }

    #[test]
    fn an_executor_requests_half_a_core_per_core_and_runs_one_task_per_core() {
        let one = conf("{executors: 2}");
        assert_eq!(one["spark.executor.cores"], "1");
        assert_eq!(one["spark.kubernetes.executor.request.cores"], "500m");
        let four = conf("{executors: 2, executorCores: 4}");
        assert_eq!(four["spark.executor.cores"], "4");
        assert_eq!(four["spark.kubernetes.executor.request.cores"], "2000m");
        assert!(!four.contains_key("spark.kubernetes.executor.limit.cores"));
    }

    #[test]
    fn the_default_workspace_and_two_default_executors_fit_a_two_core_node() {
        let request = conf("{executors: 2}")["spark.kubernetes.executor.request.cores"].clone();
        let millicores: i32 = request.trim_end_matches('m').parse().unwrap();
        // The workspace's default request is 500m (build::pod).
        assert!(500 + 2 * millicores <= 2000, "{request}");
    }

    #[test]
    fn the_ui_cannot_kill_jobs() {
        assert_eq!(conf("{executors: 0}")["spark.ui.killEnabled"], "false");
    }

    #[test]
    fn each_application_names_its_own_executors() {
        let s = conf("{executors: 2}");
        assert!(
            !s.contains_key("spark.kubernetes.executor.podNamePrefix"),
            "a fixed prefix gives every application of the workspace the same executor pod names"
        );
        assert_eq!(s["spark.kubernetes.driver.pod.name"], "w-happod");
        assert_eq!(
            s["spark.kubernetes.executor.label.hap.cloudian.com/workspace"], "w",
            "the label the NetworkPolicies select executors by"
        );
    }
}
