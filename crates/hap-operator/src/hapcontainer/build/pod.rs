//! The workspace pod: Jupyter, Spark and TensorFlow, non-root, with the store's settings in its
//! environment and the Jupyter token from a Secret.

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec,
    Probe, SecurityContext, Volume, VolumeMount,
};
use kube::ResourceExt;

use super::parts::{meta, with_labels};
use crate::hapcontainer::names::{
    self, BLOCK_MANAGER_PORT, DRIVER_PORT, SPARK_CONF_DIR as CONF_DIR,
};
use crate::hapcontainer::resolve::Resolved;
use crate::pipeline::objects::{env, http_check, port, secret_env, security_as, tcp_check};

pub use crate::hapcontainer::names::{JUPYTER_PORT, SPARK_UI_PORT};
/// The home directory of the workspace image's user, on the home volume.
pub const HOME_DIR: &str = "/home/jovyan";
/// The notebooks directory, in the home directory.
pub const WORK_DIR: &str = "/home/jovyan/work";
/// Where `pip install --user` puts packages: on the home volume, so they survive the pod.
pub const PYTHON_USER_BASE: &str = "/home/jovyan/.local";
/// The unprivileged user and group of those images (jovyan, users).
pub const USER_ID: i64 = 1000;
pub const GROUP_ID: i64 = 100;

fn environment(hc: &HapContainer, r: &Resolved) -> Vec<EnvVar> {
    let mut out = vec![
        secret_env("JUPYTER_TOKEN", &r.token.secret, &r.token.key),
        env("SPARK_CONF_DIR", CONF_DIR),
        env("PYTHONUSERBASE", PYTHON_USER_BASE),
        EnvVar {
            name: "POD_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    api_version: Some("v1".into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    if let Some(s3) = &r.s3 {
        out.extend(s3.credentials_env());
        out.push(env("AWS_REGION", s3.region.clone()));
        out.push(env("AWS_ENDPOINT_URL", s3.endpoint.clone()));
        out.push(env("AWS_ENDPOINT_URL_S3", s3.endpoint.clone()));
        out.push(env("HAP_S3_PATH_STYLE", s3.path_style.to_string()));
        out.push(env("HAP_S3_VERIFY_TLS", s3.verify_tls.to_string()));
        if let Some(bucket) = &s3.bucket {
            out.push(env("HAP_S3_BUCKET", bucket.clone()));
        }
    }
    out.extend(hc.spec.env.iter().cloned());
    out
}

/// The pod and container security settings of the workspace, shared with Spark's executors:
/// the image's unprivileged user, no privilege escalation, every capability dropped, RuntimeDefault
/// seccomp.
pub fn security() -> (PodSecurityContext, SecurityContext) {
    let (pod, mut container) = security_as(USER_ID, GROUP_ID);
    // Everything a workspace or an executor writes goes to its volumes (the home directory, /tmp,
    // Spark's local directories), never into the image.
    container.read_only_root_filesystem = Some(true);
    (pod, container)
}

/// Where the workspace image looks for a CA to trust (`ca.crt`).
pub const TRUSTED_CA_DIR: &str = "/etc/hap/ca";

pub fn build(hc: &HapContainer, r: &Resolved) -> Pod {
    let (pod_security, container_security) = security();
    let name = hc.name_any();
    let spark_on_k8s = r.executors.is_some();
    let mut ports = vec![
        port("jupyter", JUPYTER_PORT),
        port("spark-ui", SPARK_UI_PORT),
    ];
    if spark_on_k8s {
        ports.push(port("spark-driver", DRIVER_PORT));
        ports.push(port("spark-blockmgr", BLOCK_MANAGER_PORT));
    }
    // The home directory holds everything the user makes: notebooks and pip's user installs. The
    // root file system is read-only; /tmp is an emptyDir.
    let home_volume = match &r.home {
        Some(claim) => Volume {
            name: "home".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.name.clone(),
                read_only: None,
            }),
            ..Default::default()
        },
        None => Volume {
            name: "home".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    };
    let tmp_volume = Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    let mut mounts = vec![
        VolumeMount {
            name: "spark-conf".into(),
            mount_path: CONF_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        },
        VolumeMount {
            name: "home".into(),
            mount_path: HOME_DIR.into(),
            ..Default::default()
        },
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
    ];
    let mut volumes = vec![
        Volume {
            name: "spark-conf".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::spark_conf(&name),
                ..Default::default()
            }),
            ..Default::default()
        },
        home_volume,
        tmp_volume,
    ];
    // The operator's CA, where the image looks for it (it then trusts it beside the system's).
    if r.trust.is_some() {
        volumes.push(Volume {
            name: "trusted-ca".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::trusted_ca(&name),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: "trusted-ca".into(),
            mount_path: TRUSTED_CA_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    // The driver reads the secret it shares with its executors from the same Secret they mount.
    if spark_on_k8s {
        let (volume, mount) = super::spark::auth_volume(&name);
        volumes.push(volume);
        mounts.push(mount);
    }
    let container = Container {
        name: "workspace".into(),
        image: Some(r.image.clone()),
        image_pull_policy: hc.spec.image_pull_policy.map(|p| p.as_str().to_string()),
        ports: Some(ports),
        env: Some(environment(hc, r)),
        resources: Some(r.resources.clone()),
        volume_mounts: Some(mounts),
        // Jupyter's REST root answers without a token once the server is up. The startup probe
        // asks every second, so the pod is Ready (and reachable through its Service) within a
        // second of Jupyter answering, not up to a readiness period later; it allows three minutes
        // for a slow start, and holds the other two probes back until then.
        startup_probe: Some(Probe {
            period_seconds: Some(1),
            failure_threshold: Some(180),
            ..http_check("/api", "jupyter")
        }),
        readiness_probe: Some(Probe {
            period_seconds: Some(10),
            ..http_check("/api", "jupyter")
        }),
        liveness_probe: Some(Probe {
            period_seconds: Some(20),
            failure_threshold: Some(6),
            ..tcp_check("jupyter")
        }),
        security_context: Some(container_security),
        ..Default::default()
    };
    let spec = PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        security_context: Some(pod_security),
        // Only a Spark driver needs the API; otherwise the pod gets no token at all.
        service_account_name: spark_on_k8s.then(|| names::spark_rbac(&name)),
        automount_service_account_token: Some(spark_on_k8s),
        // Executors reach the driver at <pod>.<driver service>.
        hostname: spark_on_k8s.then(|| names::pod(&name)),
        subdomain: spark_on_k8s.then(|| names::spark_driver_service(&name)),
        enable_service_links: Some(false),
        restart_policy: Some("Always".into()),
        termination_grace_period_seconds: Some(30),
        node_selector: (!hc.spec.node_selector.is_empty()).then(|| hc.spec.node_selector.clone()),
        tolerations: (!hc.spec.tolerations.is_empty()).then(|| hc.spec.tolerations.clone()),
        ..Default::default()
    };
    let mut m = meta(hc, &names::pod(&name));
    with_labels(&mut m, names::pod_selector(&name));
    Pod {
        metadata: m,
        spec: Some(spec),
        status: None,
    }
}
