//! The one protobuf request body kube-sim decodes: SelfSubjectAccessReview, which `kubectl auth can-i`
//! always sends as protobuf. Every other protobuf body is refused with 415 (see `Req::json_body`).
//!
//! The messages follow the published wire schema of k8s.io/api (field numbers and types); prost's
//! derive does the decoding.

use prost::Message;
use serde_json::{Value, json};

/// What precedes every protobuf-encoded Kubernetes object.
const MAGIC: &[u8] = &[0x6b, 0x38, 0x73, 0x00];

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

/// runtime.Unknown: the envelope around an encoded object.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct SelectorAttributes {
    #[prost(string, tag = "1")]
    raw_selector: String,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceAttributes {
    #[prost(string, tag = "1")]
    namespace: String,
    #[prost(string, tag = "2")]
    verb: String,
    #[prost(string, tag = "3")]
    group: String,
    #[prost(string, tag = "4")]
    version: String,
    #[prost(string, tag = "5")]
    resource: String,
    #[prost(string, tag = "6")]
    subresource: String,
    #[prost(string, tag = "7")]
    name: String,
    #[prost(message, optional, tag = "8")]
    field_selector: Option<SelectorAttributes>,
    #[prost(message, optional, tag = "9")]
    label_selector: Option<SelectorAttributes>,
}

#[derive(Clone, PartialEq, Message)]
struct NonResourceAttributes {
    #[prost(string, tag = "1")]
    path: String,
    #[prost(string, tag = "2")]
    verb: String,
}

#[derive(Clone, PartialEq, Message)]
struct SelfSubjectAccessReviewSpec {
    #[prost(message, optional, tag = "1")]
    resource_attributes: Option<ResourceAttributes>,
    #[prost(message, optional, tag = "2")]
    non_resource_attributes: Option<NonResourceAttributes>,
}

/// Metadata (field 1) and status (field 3) are not read: a review's request is all in its spec.
#[derive(Clone, PartialEq, Message)]
struct SelfSubjectAccessReview {
    #[prost(message, optional, tag = "2")]
    spec: Option<SelfSubjectAccessReviewSpec>,
}

/// The JSON form of a protobuf body, for the kinds kube-sim decodes; None for any other body.
pub fn decode(body: &[u8]) -> Option<Value> {
    let envelope = Unknown::decode(body.strip_prefix(MAGIC)?).ok()?;
    let type_meta = envelope.type_meta?;
    if type_meta.api_version != "authorization.k8s.io/v1"
        || type_meta.kind != "SelfSubjectAccessReview"
    {
        return None;
    }
    let review = SelfSubjectAccessReview::decode(envelope.raw.as_slice()).ok()?;
    let spec = review.spec.unwrap_or_default();
    let mut spec_json = json!({});
    if let Some(r) = spec.resource_attributes {
        spec_json["resourceAttributes"] = json!({
            "namespace": r.namespace, "verb": r.verb, "group": r.group, "version": r.version,
            "resource": r.resource, "subresource": r.subresource, "name": r.name,
        });
    }
    if let Some(n) = spec.non_resource_attributes {
        spec_json["nonResourceAttributes"] = json!({"path": n.path, "verb": n.verb});
    }
    Some(json!({
        "apiVersion": type_meta.api_version,
        "kind": type_meta.kind,
        "metadata": {},
        "spec": spec_json,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_access_review_and_nothing_else() {
        let review = SelfSubjectAccessReview {
            spec: Some(SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: "default".into(),
                    verb: "list".into(),
                    resource: "pods".into(),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            }),
        };
        let envelope = Unknown {
            type_meta: Some(TypeMeta {
                api_version: "authorization.k8s.io/v1".into(),
                kind: "SelfSubjectAccessReview".into(),
            }),
            raw: review.encode_to_vec(),
        };
        let mut body = MAGIC.to_vec();
        body.extend(envelope.encode_to_vec());
        let v = decode(&body).unwrap();
        assert_eq!(v["spec"]["resourceAttributes"]["verb"], "list");
        assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "default");

        let other = Unknown {
            type_meta: Some(TypeMeta {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
            }),
            raw: vec![],
        };
        let mut body = MAGIC.to_vec();
        body.extend(other.encode_to_vec());
        assert!(decode(&body).is_none());
        assert!(decode(b"not protobuf").is_none());
    }
}
