//! OpenAPI documents, as far as kubectl reads them.
//!
//! - v3 (`/openapi/v3` and one document per group-version): kubectl 1.27+ looks up each PATCH operation by
//!   its `x-kubernetes-group-version-kind` to see whether the server supports the `fieldValidation` query
//!   parameter; when it does, kubectl leaves validation to the server, as it does with a real apiserver.
//!   The documents list paths and operations but no component schemas, so kubectl computes strategic merge
//!   patches from its compiled-in types (their patch metadata is the same as the published schemas').
//! - v2 (`/openapi/v2`, protobuf): older kubectl (1.20, Debian's kubernetes-client) refuses to apply without
//!   it. The document has no definitions, so such a kubectl skips client-side schema validation.

use std::collections::BTreeMap;

use prost::Message;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::api::discovery::GIT_VERSION;
use crate::registry::{Registry, ResourceType};

/// The group-version path of a type: `api/v1` or `apis/apps/v1`.
fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn gvk_extension(t: &ResourceType) -> Value {
    json!({"group": t.group, "version": t.version, "kind": t.kind})
}

fn operation(
    t: &ResourceType,
    action: &str,
    id: &str,
    params: Vec<Value>,
    body_types: &[&str],
) -> Value {
    let mut op = json!({
        "operationId": id,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk_extension(t),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
    });
    if !body_types.is_empty() {
        let content: BTreeMap<&str, Value> = body_types
            .iter()
            .map(|ct| (*ct, json!({"schema": {"type": "object"}})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

/// The content types a PATCH accepts for `t`. Strategic merge patch is accepted by the server for
/// built-in types but not advertised; see the module comment.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];

fn paths_of(t: &ResourceType) -> Vec<(String, Value)> {
    let base = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let collection = if t.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{base}/{}", t.plural)
    };
    let item = format!("{collection}/{{name}}");
    let name = &t.kind;
    let write_params = || {
        vec![
            query_param(
                "dryRun",
                "When present, indicates that modifications should not be persisted.",
            ),
            query_param(
                "fieldManager",
                "The name of the actor or entity making these changes.",
            ),
            query_param(
                "fieldValidation",
                "How the server handles unknown or duplicate fields: Ignore, Warn or Strict.",
            ),
        ]
    };
    let mut patch_params = write_params();
    patch_params.push(query_param(
        "force",
        "Force is going to \"force\" Apply requests.",
    ));
    let mut out = vec![
        (
            collection,
            json!({
                "get": operation(t, "list", &format!("list{name}"), vec![], &[]),
                "post": operation(t, "post", &format!("create{name}"), write_params(), &["application/json"]),
            }),
        ),
        (
            item.clone(),
            json!({
                "get": operation(t, "get", &format!("read{name}"), vec![], &[]),
                "put": operation(t, "put", &format!("replace{name}"), write_params(), &["application/json"]),
                "patch": operation(t, "patch", &format!("patch{name}"), patch_params.clone(), PATCH_TYPES),
                "delete": operation(t, "delete", &format!("delete{name}"), vec![], &[]),
            }),
        ),
    ];
    for sub in &t.subresources {
        if *sub == "status" || *sub == "scale" {
            out.push((
                format!("{item}/{sub}"),
                json!({
                    "get": operation(t, "get", &format!("read{name}{sub}"), vec![], &[]),
                    "patch": operation(t, "patch", &format!("patch{name}{sub}"), patch_params.clone(), PATCH_TYPES),
                }),
            ));
        }
    }
    out
}

/// The OpenAPI v3 document of every served group-version, keyed by `api/v1` or `apis/GROUP/VERSION`.
pub fn v3_documents(registry: &Registry) -> BTreeMap<String, Value> {
    let mut docs: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for t in registry.all() {
        if t.verbs == ["create"] {
            continue; // review-style types have no PATCH to advertise
        }
        docs.entry(gv_path(&t)).or_default().extend(paths_of(&t));
    }
    docs.into_iter()
        .map(|(gv, paths)| {
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": GIT_VERSION},
                "paths": paths,
                "components": {"schemas": {}},
            });
            (gv, doc)
        })
        .collect()
}

fn hash_of(doc: &Value) -> String {
    let digest = Sha512::digest(doc.to_string().as_bytes());
    digest.iter().take(32).map(|b| format!("{b:02X}")).collect()
}

/// `/openapi/v3`: where each group-version's document is, with a content hash clients cache by.
pub fn v3_index(registry: &Registry) -> Value {
    let paths: BTreeMap<String, Value> = v3_documents(registry)
        .into_iter()
        .map(|(gv, doc)| {
            let url = format!("/openapi/v3/{gv}?hash={}", hash_of(&doc));
            (gv, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

// The gnostic OpenAPIv2 messages kube-openapi decodes, reduced to the fields this document sets. Written
// out here because the published definitions need protoc to build; prost's derive does the encoding.
#[derive(Clone, PartialEq, Message)]
struct Document {
    #[prost(string, tag = "1")]
    swagger: String,
    #[prost(message, optional, tag = "2")]
    info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    definitions: Option<Definitions>,
}

#[derive(Clone, PartialEq, Message)]
struct Info {
    #[prost(string, tag = "1")]
    title: String,
    #[prost(string, tag = "2")]
    version: String,
}

#[derive(Clone, PartialEq, Message)]
struct Paths {}

#[derive(Clone, PartialEq, Message)]
struct Definitions {}

/// `/openapi/v2` in protobuf, the form kubectl requests.
pub fn v2_protobuf() -> Vec<u8> {
    Document {
        swagger: "2.0".into(),
        info: Some(Info {
            title: "Kubernetes".into(),
            version: GIT_VERSION.into(),
        }),
        paths: Some(Paths {}),
        definitions: Some(Definitions {}),
    }
    .encode_to_vec()
}

/// `/openapi/v2` in JSON, for clients that ask for it.
pub fn v2_json() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": {},
        "definitions": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_advertise_field_validation_per_kind() {
        let r = Registry::default();
        let docs = v3_documents(&r);
        let apps = &docs["apis/apps/v1"];
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        let index = v3_index(&r);
        let url = index["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/api/v1?hash="));
    }

    #[test]
    fn v2_protobuf_decodes_as_a_document() {
        let doc = Document::decode(v2_protobuf().as_slice()).unwrap();
        assert_eq!(doc.swagger, "2.0");
        assert_eq!(doc.info.unwrap().title, "Kubernetes");
    }
}
