//! The build step (pure): what a HapContainer's children should look like, from the spec and its
//! resolved form. One builder per child (`pod`, `service`, `spark` for `spark-defaults.conf`, `rbac`,
//! `volume`, `token`). Nothing here talks to the API; everything is unit-tested from YAML.

pub mod network;
pub mod parts;
pub mod pod;
pub mod rbac;
pub mod service;
pub mod spark;
pub mod token;
pub mod volume;

use std::collections::BTreeMap;

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

use super::children::Children;
use super::names;
use super::resolve::Resolved;
use crate::pipeline::config::BuildConfig;
use crate::pipeline::kinds::Desired;
use parts::meta;

pub fn spark_conf(hc: &HapContainer, r: &Resolved, cfg: &BuildConfig) -> ConfigMap {
    let name = hc.name_any();
    let auth = r.executors.as_ref().map(|_| (name.as_str(), cfg));
    let template = serde_saphyr::to_string(&spark::executor_pod_template(auth))
        .expect("a built pod serializes");
    ConfigMap {
        metadata: meta(hc, &names::spark_conf(&name)),
        data: Some(BTreeMap::from([
            (
                "spark-defaults.conf".to_string(),
                spark::defaults_conf(hc, r, cfg),
            ),
            (spark::EXECUTOR_TEMPLATE.to_string(), template),
        ])),
        ..Default::default()
    }
}

/// Every child the spec calls for.
pub fn build(hc: &HapContainer, r: &Resolved, cfg: &BuildConfig) -> Children<Desired> {
    let executors = r.executors.is_some();
    Children {
        token_secret: r.token.generated.then(|| token::build(hc, &r.token)),
        spark_keys: spark::executor_keys(hc, r),
        spark_auth: executors.then(|| spark::auth_secret(hc)),
        s3_source: None,
        spark_conf: Some(spark_conf(hc, r, cfg)),
        trusted_ca: r.trust.as_ref().map(|t| ConfigMap {
            metadata: meta(hc, &names::trusted_ca(&hc.name_any())),
            data: Some(crate::pipeline::authority::bundle_data(t)),
            ..Default::default()
        }),
        service: Some(service::workspace(hc)),
        volume: r.home.as_ref().map(|claim| volume::build(hc, claim)),
        spark_service_account: executors.then(|| rbac::service_account(hc)),
        spark_role: executors.then(|| rbac::role(hc)),
        spark_role_binding: executors.then(|| rbac::role_binding(hc)),
        spark_driver_service: executors.then(|| service::spark_driver(hc)),
        workspace_policy: Some(network::workspace(hc, executors)),
        executors_policy: executors.then(|| network::executors(hc)),
        pod: r.runs.then(|| pod::build(hc, r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hapcontainer::resolve::resolve;
    use crate::pipeline::hash::hash_of;
    use hap_api::profile::Catalog;
    use k8s_openapi::api::core::v1::Pod;

    fn build_of(hc: &HapContainer, cfg: &BuildConfig) -> Children<Desired> {
        build(hc, &resolve(hc, cfg, &Catalog::Absent), cfg)
    }

    fn conf_of(hc: &HapContainer, cfg: &BuildConfig) -> String {
        spark::defaults_conf(hc, &resolve(hc, cfg, &Catalog::Absent), cfg)
    }

    fn hc(yaml: &str) -> HapContainer {
        let mut hc: HapContainer = serde_saphyr::from_str(yaml).unwrap();
        hc.metadata.namespace = Some("ns".into());
        hc
    }

    const MINIMAL: &str = "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: w}\nspec: {}\n";

    #[test]
    fn the_workspace_mounts_the_operators_ca_where_its_image_looks() {
        let w = hc(
            "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\nmetadata: {name: w}\nspec: {}\n",
        );
        let trust = crate::pipeline::authority::Trust {
            bundle: "-----BEGIN CERTIFICATE-----\n".into(),
            id: "abc".into(),
        };
        let cfg = BuildConfig {
            trust: Some(trust.clone()),
            ..Default::default()
        };
        let built = build_of(&w, &cfg);
        let ca = built.trusted_ca.unwrap();
        assert_eq!(ca.metadata.name.as_deref(), Some("w-trusted-ca"));
        assert_eq!(ca.data.unwrap()["ca.crt"], trust.bundle);
        let pod = built.pod.unwrap().spec.unwrap();
        let mount = pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "trusted-ca")
            .unwrap();
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            ("/etc/hap/ca", Some(true))
        );
        // Without the CA (as `render` builds), neither.
        let bare = build_of(&w, &BuildConfig::default());
        assert!(bare.trusted_ca.is_none());
        assert!(
            !bare
                .pod
                .unwrap()
                .spec
                .unwrap()
                .volumes
                .unwrap()
                .iter()
                .any(|v| v.name == "trusted-ca")
        );
    }

    #[test]
    fn the_original_resource_gets_the_original_names_and_a_generated_token() {
        let d = build_of(&hc(MINIMAL), &BuildConfig::default());
        let pod = d.pod.expect("size defaults to 1");
        assert_eq!(pod.metadata.name.as_deref(), Some("w-happod"));
        assert_eq!(
            d.service.unwrap().metadata.name.as_deref(),
            Some("w-hapservice")
        );
        assert_eq!(
            d.token_secret.unwrap().metadata.name.as_deref(),
            Some("w-jupyter")
        );
        assert!(d.spark_role.is_none() && d.spark_driver_service.is_none());
        // The home volume, by default: 10Gi, kept when the HapContainer goes (no owner).
        let claim = d.volume.expect("a home volume by default");
        assert_eq!(claim.metadata.name.as_deref(), Some("w-workspace"));
        assert_eq!(claim.metadata.owner_references, None);
        let size = &claim.spec.unwrap().resources.unwrap().requests.unwrap()["storage"];
        assert_eq!(size.0, "10Gi");
        let c = &pod.spec.unwrap().containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some(hap_api::hapcontainer::DEFAULT_IMAGE)
        );
    }

    #[test]
    fn the_home_is_a_volume_unless_asked_to_be_ephemeral_and_goes_with_it_when_asked() {
        let cfg = BuildConfig::default();
        let mounts =
            |hc: &HapContainer| {
                let pod = build_of(hc, &cfg).pod.unwrap().spec.unwrap();
                let home = pod
                    .volumes
                    .unwrap()
                    .into_iter()
                    .find(|v| v.name == "home")
                    .unwrap();
                let c = &pod.containers[0];
                let env = c.env.clone().unwrap();
                assert!(env.iter().any(|e| e.name == "PYTHONUSERBASE"
                    && e.value.as_deref() == Some(pod::PYTHON_USER_BASE)));
                assert!(
                    c.volume_mounts
                        .as_ref()
                        .unwrap()
                        .iter()
                        .any(|m| m.name == "home" && m.mount_path == pod::HOME_DIR)
                );
                assert_eq!(
                    c.security_context
                        .as_ref()
                        .unwrap()
                        .read_only_root_filesystem,
                    Some(true)
                );
                home
            };
        let kept = hc(MINIMAL);
        assert_eq!(
            mounts(&kept).persistent_volume_claim.unwrap().claim_name,
            "w-workspace"
        );
        let ephemeral = hc(&MINIMAL.replace("spec: {}", "spec: {volume: {ephemeral: true}}"));
        assert!(mounts(&ephemeral).empty_dir.is_some());
        assert!(build_of(&ephemeral, &cfg).volume.is_none());
        let mut discarded =
            hc(&MINIMAL.replace("spec: {}", "spec: {volume: {keepOnDelete: false}}"));
        discarded.metadata.uid = Some("u-1".into());
        let claim = build_of(&discarded, &cfg).volume.unwrap();
        assert_eq!(claim.metadata.owner_references.unwrap()[0].uid, "u-1");
    }

    #[test]
    fn size_zero_builds_everything_but_the_pod() {
        let d = build_of(
            &hc(&MINIMAL.replace("spec: {}", "spec: {size: 0}")),
            &BuildConfig::default(),
        );
        assert!(d.pod.is_none());
        assert!(d.token_secret.is_some());
    }

    #[test]
    fn hashes_follow_content() {
        let cfg = BuildConfig::default();
        let a = build_of(&hc(MINIMAL), &cfg).pod.unwrap();
        let b = build_of(&hc(MINIMAL), &cfg).pod.unwrap();
        let c = build_of(
            &hc(&MINIMAL.replace("spec: {}", "spec: {image: other:1}")),
            &cfg,
        )
        .pod
        .unwrap();
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_ne!(hash_of(&a), hash_of(&c));
        assert_eq!(hash_of(&a).len(), 16);
    }

    #[test]
    fn spark_runs_locally_without_executors_and_on_kubernetes_with_them() {
        let cfg = BuildConfig::default();
        let local = conf_of(&hc(MINIMAL), &cfg);
        assert!(local.lines().any(|l| l == "spark.master local[*]"));
        assert!(!local.contains("podTemplateFile"));
        let scaled = hc(&MINIMAL.replace("spec: {}", "spec: {spark: {executors: 2}}"));
        let conf = conf_of(&scaled, &cfg);
        assert!(
            conf.lines()
                .any(|l| l == "spark.master k8s://https://kubernetes.default.svc:443")
        );
        assert!(conf.lines().any(|l| l == "spark.kubernetes.executor.podTemplateFile /opt/hap/spark-conf/executor-pod-template.yaml"));
        assert!(
            conf.lines().any(|l| l == "spark.executor.memory 2048m"),
            "the 2Gi default"
        );
    }

    #[test]
    fn executors_run_as_restricted_as_the_workspace() {
        let (h, cfg) = (hc(MINIMAL), BuildConfig::default());
        let cm = spark_conf(&h, &resolve(&h, &cfg, &Catalog::Absent), &cfg);
        let template: Pod =
            serde_saphyr::from_str(&cm.data.unwrap()[spark::EXECUTOR_TEMPLATE]).unwrap();
        let spec = template.spec.unwrap();
        let (pod_security, container_security) = pod::security();
        assert_eq!(spec.security_context, Some(pod_security));
        assert_eq!(
            spec.containers[0].security_context,
            Some(container_security)
        );
        assert_eq!(spec.automount_service_account_token, Some(false));
    }

    #[test]
    fn spark_authenticates_and_encrypts_with_the_secret_from_a_file_mounted_in_driver_and_executors()
     {
        let cfg = BuildConfig::default();
        let scaled = hc(&MINIMAL.replace("spec: {}", "spec: {spark: {executors: 2}}"));
        let d = build_of(&scaled, &cfg);
        let secret = d.spark_auth.expect("a Secret with executors");
        assert_eq!(secret.metadata.name.as_deref(), Some("w-spark-auth"));
        assert!(
            secret.data.is_none() && secret.string_data.is_none(),
            "its value is drawn at creation, never built"
        );
        let conf = conf_of(&scaled, &cfg);
        for line in [
            "spark.authenticate true",
            "spark.network.crypto.enabled true",
            "spark.authenticate.secret.file /opt/hap/spark-auth/secret",
        ] {
            assert!(conf.lines().any(|l| l == line), "{line}");
        }
        assert!(
            !conf.contains("spark.authenticate.secret ") && !conf.contains("_SPARK_AUTH_SECRET"),
            "no secret value, and no way for Spark to make one of its own"
        );
        let auth_volume = |volumes: &[k8s_openapi::api::core::v1::Volume]| {
            let v = volumes.iter().find(|v| v.name == "spark-auth").cloned()?;
            let s = v.secret?;
            Some((s.secret_name?, s.default_mode?))
        };
        let auth_mount = |c: &k8s_openapi::api::core::v1::Container| {
            c.volume_mounts.iter().flatten().any(|m| {
                m.name == "spark-auth"
                    && m.mount_path == "/opt/hap/spark-auth"
                    && m.read_only == Some(true)
            })
        };
        // The driver: the workspace pod.
        let pod = d.pod.unwrap().spec.unwrap();
        assert_eq!(
            auth_volume(pod.volumes.as_deref().unwrap()),
            Some(("w-spark-auth".to_string(), 0o440))
        );
        assert!(auth_mount(&pod.containers[0]));
        assert_eq!(
            pod.security_context.as_ref().unwrap().fs_group,
            Some(pod::GROUP_ID),
            "the file's group, which the workspace's user is in"
        );
        // The executors: the template Spark starts them from.
        let cm = d.spark_conf.unwrap();
        let template: Pod =
            serde_saphyr::from_str(&cm.data.as_ref().unwrap()[spark::EXECUTOR_TEMPLATE]).unwrap();
        let spec = template.spec.unwrap();
        assert_eq!(
            auth_volume(spec.volumes.as_deref().unwrap()),
            Some(("w-spark-auth".to_string(), 0o440))
        );
        assert!(auth_mount(&spec.containers[0]));
        let env = spec.containers[0].env.clone().unwrap();
        assert!(
            env.iter().any(|e| e.name == "JAVA_TOOL_OPTIONS"
                && e.value.as_deref()
                    == Some("-Dspark.master=k8s://https://kubernetes.default.svc:443")),
            "an executor's first connection needs the master to read the file"
        );
        assert!(env.iter().all(|e| e.value_from.is_none()));
        // Without executors: no Secret, nothing mounted, Spark local and unauthenticated.
        let local = build_of(&hc(MINIMAL), &cfg);
        assert!(local.spark_auth.is_none());
        let pod = local.pod.unwrap().spec.unwrap();
        assert_eq!(auth_volume(pod.volumes.as_deref().unwrap()), None);
        assert!(!auth_mount(&pod.containers[0]));
        assert!(!conf_of(&hc(MINIMAL), &cfg).contains("spark.authenticate"));
        let cm = local.spark_conf.unwrap();
        assert!(!cm.data.unwrap()[spark::EXECUTOR_TEMPLATE].contains("spark-auth"));
    }

    #[test]
    fn the_store_reaches_the_pod_as_aws_settings_with_keys_from_the_secret() {
        let s3 = hc(&MINIMAL.replace(
            "spec: {}",
            "spec: {s3: {endpoint: 'http://s3.local:80', bucket: b, credentialsSecret: {name: keys, accessKeyIdKey: id}}}",
        ));
        let pod = build_of(&s3, &BuildConfig::default()).pod.unwrap();
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        let get = |n: &str| env.iter().find(|e| e.name == n).cloned().unwrap();
        let id = get("AWS_ACCESS_KEY_ID")
            .value_from
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!((id.name.as_str(), id.key.as_str()), ("keys", "id"));
        assert_eq!(
            get("AWS_ENDPOINT_URL").value.as_deref(),
            Some("http://s3.local:80")
        );
        assert_eq!(get("AWS_REGION").value.as_deref(), Some("us-east-1"));
        assert_eq!(get("HAP_S3_BUCKET").value.as_deref(), Some("b"));
        assert!(
            env.iter().all(|e| e.value.as_deref() != Some("id")),
            "no key value is inlined"
        );
    }
}
