//! The Secret `<name>-jupyter` that holds the generated Jupyter token. The builder gives its shape only:
//! the token is drawn when the Secret is first created and never rebuilt, so it never appears in built
//! or rendered objects.

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::meta;
use crate::names;

pub fn build(hc: &HapContainer) -> Secret {
    Secret {
        metadata: meta(hc, &names::token_secret(&hc.name_any())),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// A fresh token: 48 characters from 62 symbols, about 285 bits.
pub fn generate() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}
