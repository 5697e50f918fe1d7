//! Checks of a HapContainer's spec, each failure a message that says what to fix; in the operator it
//! becomes the `Configured=False` condition (reason `InvalidSpec`).
//!
//! Most are what the OpenAPI schema and CEL rules cannot express (reserved env names, quantities that
//! must parse). The size check and the bounds (`bounds`) repeat CEL rules on purpose: `hap-operator
//! render` reads files that no API server admitted, and an object admitted under an older CRD skipped
//! those rules, so a value that would break a configuration file never reaches one.

use crate::bounds::{self, Bound};
use crate::hapcontainer::HapContainerSpec;
use crate::problem::Problem;
use crate::quantity;
use crate::s3::S3Spec;

/// Each (field, value) outside its bound.
pub fn outside(checks: &[(&Bound, String, Option<&str>)]) -> Vec<Problem> {
    checks
        .iter()
        .filter_map(|(bound, field, value)| bound.check(field, (*value)?))
        .collect()
}

/// The S3 connection's values that reach configuration files, checked.
pub fn s3_problems(s3: &S3Spec) -> Vec<Problem> {
    let credentials = s3.credentials_secret.as_ref();
    outside(&[
        (
            &bounds::ENDPOINT,
            "spec.s3.endpoint".into(),
            Some(&s3.endpoint),
        ),
        (&bounds::REGION, "spec.s3.region".into(), Some(&s3.region)),
        (
            &bounds::BUCKET,
            "spec.s3.bucket".into(),
            s3.bucket.as_deref(),
        ),
        (
            &bounds::SECRET_NAME,
            "spec.s3.credentialsSecret.name".into(),
            credentials.map(|c| c.name.as_str()),
        ),
        (
            &bounds::SECRET_KEY,
            "spec.s3.credentialsSecret.accessKeyIdKey".into(),
            credentials.map(|c| c.access_key_id_key.as_str()),
        ),
        (
            &bounds::SECRET_KEY,
            "spec.s3.credentialsSecret.secretAccessKeyKey".into(),
            credentials.map(|c| c.secret_access_key_key.as_str()),
        ),
    ])
}

/// Environment variables the operator sets itself; a user value would silently lose.
pub const RESERVED_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "JUPYTER_TOKEN",
    "SPARK_CONF_DIR",
    "HAP_S3_BUCKET",
    "HAP_S3_PATH_STYLE",
    "HAP_S3_VERIFY_TLS",
    "POD_IP",
];

/// The resource GPUs are asked for with (`spec.gpus` sets it).
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// Every problem found in a HapContainer named `name`, each phrased as what is wrong and what to do.
pub fn problems(name: &str, spec: &HapContainerSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    out.extend(bounds::HAPCONTAINER_NAME.check("metadata.name", name));
    if spec.size > 1 || spec.size < 0 {
        out.push(Problem::new(
            "spec.size",
            format!(
                "spec.size is {}: {}",
                spec.size,
                crate::hapcontainer::SIZE_RULE_MESSAGE
            ),
        ));
    }
    for (i, e) in spec.env.iter().enumerate() {
        if RESERVED_ENV.contains(&e.name.as_str()) {
            out.push(Problem::new(
                format!("spec.env[{i}].name"),
                format!(
                    "spec.env sets {}, which the operator sets from spec.s3, spec.jupyter and spec.spark; remove it and use those fields",
                    e.name
                ),
            ));
        }
    }
    let v = &spec.volume;
    if let Some(size) = v.size.as_ref().filter(|_| !v.ephemeral)
        && quantity::parse(&size.0).is_none_or(|b| b <= 0.0)
    {
        out.push(Problem::new(
            "spec.volume.size",
            format!(
                "spec.volume.size {:?} is not a positive quantity such as 10Gi",
                size.0
            ),
        ));
    }
    if let Some(s) = &spec.spark
        && quantity::mebibytes(&s.executor_memory.0).is_none_or(|m| m == 0)
    {
        out.push(Problem::new(
            "spec.spark.executorMemory",
            format!(
                "spec.spark.executorMemory {:?} is not a memory quantity such as 2Gi",
                s.executor_memory.0
            ),
        ));
    }
    if let Some(s3) = &spec.s3 {
        out.extend(s3_problems(s3));
    }
    for (kind, map) in spec
        .resources
        .iter()
        .flat_map(|r| [("requests", &r.requests), ("limits", &r.limits)])
    {
        for (resource, q) in map.iter().flatten() {
            let field = format!("spec.resources.{kind}.{resource}");
            if resource == GPU_RESOURCE {
                out.push(Problem::new(
                    &field,
                    format!("{field} is set: ask for GPUs with spec.gpus, which the installation's and the profile's limits bound"),
                ));
            } else if quantity::parse(&q.0).is_none() {
                out.push(Problem::new(
                    &field,
                    format!("{field} {:?} is not a quantity such as 500m, 2 or 4Gi", q.0),
                ));
            }
        }
    }
    if let Some(Err(message)) = spec.culling.as_ref().map(|c| c.idle_after()) {
        out.push(Problem::new("spec.culling.idleAfter", message));
    }
    let token = spec.jupyter.as_ref().and_then(|j| j.token_secret.as_ref());
    out.extend(outside(&[
        (&bounds::IMAGE, "spec.image".into(), spec.image.as_deref()),
        (
            &bounds::IMAGE,
            "spec.spark.executorImage".into(),
            spec.spark
                .as_ref()
                .and_then(|s| s.executor_image.as_deref()),
        ),
        (
            &bounds::STORAGE_CLASS,
            "spec.volume.storageClassName".into(),
            v.storage_class_name.as_deref(),
        ),
        (
            &bounds::SECRET_NAME,
            "spec.jupyter.tokenSecret.name".into(),
            token.map(|t| t.name.as_str()),
        ),
        (
            &bounds::SECRET_KEY,
            "spec.jupyter.tokenSecret.key".into(),
            token.map(|t| t.key.as_str()),
        ),
    ]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hapcontainer::{SparkSpec, VolumeSpec};
    use k8s_openapi::api::core::v1::EnvVar;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn a_default_spec_has_no_problems() {
        let spec = HapContainerSpec {
            size: 1,
            ..Default::default()
        };
        assert!(problems("w", &spec).is_empty());
    }

    #[test]
    fn an_idle_time_is_a_duration_from_a_minute_to_thirty_days() {
        use crate::hapcontainer::CullingSpec;
        let idle = |v: &str| {
            CullingSpec {
                idle_after: v.into(),
            }
            .idle_after()
        };
        assert_eq!(idle("1m"), Ok(std::time::Duration::from_secs(60)));
        assert_eq!(idle("1h30m"), Ok(std::time::Duration::from_secs(5400)));
        assert_eq!(idle("720h"), Ok(std::time::Duration::from_secs(720 * 3600)));
        for (bad, says) in [
            ("59s", "from 1m to 720h"),
            ("721h", "from 1m to 720h"),
            ("1 hour", "such as 30m"),
            ("1d", "such as 30m"),
            ("", "such as 30m"),
            ("-5m", "such as 30m"),
        ] {
            let e = idle(bad).unwrap_err();
            assert!(
                e.contains(says) && e.contains("spec.culling.idleAfter"),
                "{bad}: {e}"
            );
        }
        let spec = HapContainerSpec {
            size: 1,
            culling: Some(CullingSpec {
                idle_after: "10s".into(),
            }),
            ..Default::default()
        };
        let found = problems("w", &spec);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "spec.culling.idleAfter");
    }

    #[test]
    fn resources_are_readable_quantities_and_gpus_go_through_spec_gpus() {
        let spec: HapContainerSpec = serde_json::from_value(serde_json::json!({
            "resources": {"requests": {"cpu": "500m", "memory": "lots"},
                          "limits": {"nvidia.com/gpu": "8", "memory": "1e29"}}
        }))
        .unwrap();
        let found: Vec<String> = problems("w", &spec).into_iter().map(|p| p.field).collect();
        assert_eq!(
            found,
            [
                "spec.resources.requests.memory",
                "spec.resources.limits.memory",
                "spec.resources.limits.nvidia.com/gpu"
            ]
        );
    }

    #[test]
    fn problems_say_what_to_fix() {
        let spec = HapContainerSpec {
            size: 3,
            env: vec![EnvVar {
                name: "JUPYTER_TOKEN".into(),
                value: Some("x".into()),
                ..Default::default()
            }],
            volume: VolumeSpec {
                size: Some(Quantity("big".into())),
                ..Default::default()
            },
            spark: Some(SparkSpec {
                executors: 2,
                executor_cores: 1,
                executor_memory: Quantity("0".into()),
                executor_image: None,
            }),
            ..Default::default()
        };
        let p = problems("w", &spec);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p[0].message.contains("spec.spark.executors"));
        assert_eq!(p[0].field, "spec.size");
        assert!(p[1].message.contains("JUPYTER_TOKEN") && p[1].message.contains("remove it"));
        assert_eq!(p[1].field, "spec.env[0].name");
        assert!(p[2].message.contains("10Gi"));
        assert!(p[3].message.contains("2Gi"));
        assert!(p.iter().all(|p| p.component.is_none()));
    }

    #[test]
    fn values_that_reach_a_file_or_a_name_are_bounded() {
        let spec: HapContainerSpec = serde_json::from_value(serde_json::json!({
            "s3": {"endpoint": "http://s3:80\nfs.s3a.access.key=x", "region": "r\n", "bucket": "B"},
            "image": "img:1 --privileged",
            "spark": {"executors": 2, "executorImage": "x\ny"}
        }))
        .unwrap();
        let p = problems("my.workspace", &spec);
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.s3.endpoint",
                "spec.s3.region",
                "spec.s3.bucket",
                "spec.image",
                "spec.spark.executorImage"
            ]
        );
        assert!(p.iter().all(|p| !p.message.contains('\n')), "{p:#?}");
    }
}
