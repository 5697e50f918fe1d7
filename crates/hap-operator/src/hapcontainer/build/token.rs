//! The Secret that holds the generated Jupyter token. The builder gives its shape only: the token is
//! drawn when the Secret is first created (`pipeline::generated`) and never rebuilt, so it never
//! appears in built or rendered objects.

use hap_api::HapContainer;
use k8s_openapi::api::core::v1::Secret;

use super::parts::meta;
use crate::hapcontainer::resolve::TokenSource;

pub fn build(hc: &HapContainer, token: &TokenSource) -> Secret {
    Secret {
        metadata: meta(hc, &token.secret),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}
