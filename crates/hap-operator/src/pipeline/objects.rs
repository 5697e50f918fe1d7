//! Small builders every resource's children are made of: metadata with an owner, environment
//! variables, ports, the pod security settings, volumes of files, probes. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, ServicePort, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

/// Metadata of a child: its name, the owner's namespace, `labels`, and a controller owner reference
/// when the owner has a uid (it has none when rendered from a file).
pub fn meta<O: Resource<DynamicType = ()>>(
    owner: &O,
    name: &str,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: owner.namespace(),
        labels: Some(labels),
        owner_references: owner.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// The project's pod and container security settings for an image's unprivileged user: non-root,
/// no privilege escalation, every capability dropped, RuntimeDefault seccomp.
pub fn security_as(user: i64, group: i64) -> (PodSecurityContext, SecurityContext) {
    (
        PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(user),
            run_as_group: Some(group),
            fs_group: Some(group),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}

pub fn service_port(name: &str, port: i32, node_port: Option<i32>) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        node_port,
        ..Default::default()
    }
}

/// The node port the cluster gave a Service's port named `name`.
pub fn node_port(svc: &k8s_openapi::api::core::v1::Service, name: &str) -> Option<i32> {
    svc.spec
        .as_ref()?
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.name.as_deref() == Some(name))?
        .node_port
}

/// Where a server may write besides its volumes.
#[derive(Clone, Copy, Debug)]
pub enum Root {
    /// A read-only root file system, with an emptyDir on /tmp and on each of these directories.
    ReadOnly(&'static [&'static str]),
    /// A writable one, for a program this project cannot run to learn what it writes (say why).
    Writable,
}

/// A pod spec with the project's security settings for an image's unprivileged user (non-root, no
/// privilege escalation, every capability dropped, RuntimeDefault seccomp), the root file system as
/// `root` says, and no API token, which none of these programs needs.
pub fn pod_spec(
    user: i64,
    group: i64,
    mut containers: Vec<Container>,
    mut volumes: Vec<Volume>,
    root: Root,
) -> PodSpec {
    let (pod_security, mut container_security) = security_as(user, group);
    if let Root::ReadOnly(dirs) = root {
        container_security.read_only_root_filesystem = Some(true);
        for dir in std::iter::once("/tmp").chain(dirs.iter().copied()) {
            // The volume is named after its directory: `/run/mysqld` is `run-mysqld`.
            let name = dir.trim_matches('/').replace(['/', '_'], "-");
            for c in &mut containers {
                c.volume_mounts
                    .get_or_insert_with(Vec::new)
                    .push(VolumeMount {
                        name: name.clone(),
                        mount_path: dir.into(),
                        ..Default::default()
                    });
            }
            volumes.push(Volume {
                name,
                empty_dir: Some(Default::default()),
                ..Default::default()
            });
        }
    }
    for c in &mut containers {
        c.security_context = Some(container_security.clone());
    }
    PodSpec {
        containers,
        volumes: (!volumes.is_empty()).then_some(volumes),
        security_context: Some(pod_security),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        ..Default::default()
    }
}

/// The files of a ConfigMap's or a Secret's volume: each key as a file of its name, or every key
/// (None) when `keys` is empty.
fn items(keys: &[&str]) -> Option<Vec<KeyToPath>> {
    (!keys.is_empty()).then(|| {
        keys.iter()
            .map(|k| KeyToPath {
                key: k.to_string(),
                path: k.to_string(),
                ..Default::default()
            })
            .collect()
    })
}

/// A volume of a ConfigMap's files (all of them, or `keys` only).
pub fn config_volume(volume: &str, config_map: &str, keys: &[&str]) -> Volume {
    Volume {
        name: volume.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.into(),
            items: items(keys),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Secret's keys (all when `keys` is empty) as files readable by the pod's user and group only.
pub fn secret_volume(volume: &str, secret: &str, keys: &[&str]) -> Volume {
    Volume {
        name: volume.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            items: items(keys),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// The three probes of a server that passes `check` once it is up. A startup probe asks every
/// second, for up to `start_limit` seconds, and holds the other two back until it passes: the pod is
/// Ready within a second of the server answering (a readiness probe every 10 s alone kept it
/// waiting up to 10 s more), and a slow start is not taken for a dead server. Then readiness and
/// liveness every 10 s, each giving up after six failures.
pub struct Probes {
    pub startup: Probe,
    pub readiness: Probe,
    pub liveness: Probe,
}

pub fn probes(check: Probe, start_limit: i32) -> Probes {
    let every_10_s = Probe {
        period_seconds: Some(10),
        failure_threshold: Some(6),
        ..check.clone()
    };
    Probes {
        startup: Probe {
            period_seconds: Some(1),
            failure_threshold: Some(start_limit),
            ..check
        },
        readiness: every_10_s.clone(),
        liveness: every_10_s,
    }
}

/// A TCP connection to the named port.
pub fn tcp_check(port: &str) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An HTTP GET of `path` on the named port.
pub fn http_check(path: &str, port: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A pod template from its metadata and spec.
pub fn template(metadata: ObjectMeta, spec: PodSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(metadata),
        spec: Some(spec),
    }
}
