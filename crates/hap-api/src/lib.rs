//! The HAP custom resources (HapContainer, HapQuery): types, CRD generation and the checks a schema cannot express.
//! No I/O: the operator and the tests build on these.
#![forbid(unsafe_code)]

pub mod bounds;
pub mod hapcontainer;
pub mod hapquery;
pub mod problem;
pub mod profile;
pub mod quantity;
pub mod s3;
pub mod versions {
    //! The versions and default images of `versions.env`, generated at build time.
    include!(concat!(env!("OUT_DIR"), "/versions.rs"));
}
pub mod validation;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use hapcontainer::{HapContainer, HapContainerSpec, HapContainerStatus, Phase};
pub use hapquery::{HapQuery, HapQuerySpec, HapQueryStatus};
pub use problem::{Component, Problem};

/// Every CRD the project ships, in the order `hap-operator crd` prints them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![HapContainer::crd(), HapQuery::crd()]
}
