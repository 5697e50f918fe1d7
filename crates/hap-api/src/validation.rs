//! Checks of a HapContainer's spec, each failure a message that says what to fix; in the operator it
//! becomes the `Configured=False` condition (reason `InvalidSpec`).
//!
//! Most are what the OpenAPI schema and CEL rules cannot express (reserved env names, quantities that
//! must parse). The size and endpoint checks repeat CEL rules on purpose: `hap-operator render` reads
//! files that no API server admitted, and an object admitted under an older CRD skipped those rules.

use crate::hapcontainer::HapContainerSpec;
use crate::problem::Problem;
use crate::quantity;

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

/// Every problem found, each phrased as what is wrong and what to do.
pub fn problems(spec: &HapContainerSpec) -> Vec<Problem> {
    let mut out = Vec::new();
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
    if let Some(v) = &spec.volume
        && quantity::parse(&v.size.0).is_none_or(|b| b <= 0.0)
    {
        out.push(Problem::new(
            "spec.volume.size",
            format!(
                "spec.volume.size {:?} is not a positive quantity such as 10Gi",
                v.size.0
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
    if let Some(s3) = &spec.s3
        && !(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://"))
    {
        out.push(Problem::new(
            "spec.s3.endpoint",
            format!(
                "spec.s3.endpoint {:?} must be an http:// or https:// URL",
                s3.endpoint
            ),
        ));
    }
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
        assert!(problems(&spec).is_empty());
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
            volume: Some(VolumeSpec {
                size: Quantity("big".into()),
                storage_class_name: None,
            }),
            spark: Some(SparkSpec {
                executors: 2,
                executor_cores: 1,
                executor_memory: Quantity("0".into()),
                executor_image: None,
            }),
            ..Default::default()
        };
        let p = problems(&spec);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p[0].message.contains("spec.spark.executors"));
        assert_eq!(p[0].field, "spec.size");
        assert!(p[1].message.contains("JUPYTER_TOKEN") && p[1].message.contains("remove it"));
        assert_eq!(p[1].field, "spec.env[0].name");
        assert!(p[2].message.contains("10Gi"));
        assert!(p[3].message.contains("2Gi"));
        assert!(p.iter().all(|p| p.component.is_none()));
    }
}
