//! get and list: selectors, resourceVersion semantics, pagination with continue tokens, and the Table and
//! metadata-only forms.

use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::{Ctx, Output, json_response, negotiate, options, present};
use crate::errors::ApiError;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::meta_str;
use crate::tables;

pub fn metadata_only(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

pub fn get(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    if ctx.p.subresource == "scale" {
        return super::scale::get(ctx);
    }
    let output = negotiate(ctx.req)?;
    let obj = ctx
        .core
        .get(
            &ctx.rt.storage,
            &ctx.p.namespace_for_storage(ctx.rt),
            &ctx.p.name,
        )
        .ok_or_else(|| ApiError::not_found(ctx.rt, &ctx.p.name))?;
    let obj = present(ctx.rt, &obj);
    let body = match output {
        Output::Json => obj,
        Output::Metadata => metadata_only(&obj),
        Output::Table(include) => tables::table(
            ctx.rt,
            std::slice::from_ref(&obj),
            include,
            true,
            json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
        ),
    };
    Ok(json_response(200, &body, &[]))
}

/// The selectors of a list or watch.
pub struct Selection {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selection {
    pub fn from(ctx: &Ctx<'_>) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(ctx.req.q("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let mut field_text = ctx.req.q("fieldSelector").unwrap_or_default().to_string();
        if !ctx.p.name.is_empty() {
            // A watch on a named object (`?watch=true` or the legacy `/watch/` path) is a watch on the
            // collection pinned to that name.
            let pin = format!("metadata.name={}", ctx.p.name);
            field_text = if field_text.is_empty() {
                pin
            } else {
                format!("{field_text},{pin}")
            };
        }
        let fields = FieldSelector::parse(
            &field_text,
            &ctx.rt.group,
            &ctx.rt.plural,
            ctx.rt.crd.is_some(),
        )
        .map_err(ApiError::bad_request)?;
        Ok(Selection { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

/// The `continue` token: where the next page starts, and the resourceVersion of the list's snapshot
/// (-1: continue at the latest state, as after the snapshot expired).
fn encode_continue(rv: i64, after: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({"rv": rv, "start": after}).to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v["rv"].as_i64().ok_or_else(bad)?,
        v["start"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

const LIST_EXPIRED: &str = "The resourceVersion for the provided list is too old.";
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn expired(message: &str) -> ApiError {
    ApiError {
        code: 410,
        reason: "Expired",
        message: message.into(),
        details: None,
    }
}

fn key_of(obj: &Value) -> String {
    format!("{}/{}", meta_str(obj, "namespace"), meta_str(obj, "name"))
}

pub fn list(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    options::list(ctx.req, false)?;
    let output = negotiate(ctx.req)?;
    let selection = Selection::from(ctx)?;
    let ns = (!ctx.p.namespace.is_empty() && ctx.rt.namespaced).then_some(ctx.p.namespace.as_str());
    let (current, current_rv) = ctx.core.store.list(&ctx.rt.storage, ns);
    let requested = match ctx
        .req
        .q("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
    {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {v:?}")))?,
        ),
    };
    if let Some(requested) = requested.filter(|r| *r > current_rv) {
        return Err(ApiError::too_large_resource_version(requested, current_rv));
    }
    // Which snapshot to read: a continued list reads the snapshot of its first page, an exact list
    // the one it names; anything else the current state.
    let (items, rv, start) = match ctx.req.q("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, start) = decode_continue(token)?;
            if rv < 0 {
                (current, current_rv, Some(start))
            } else {
                match ctx.core.store.list_at(&ctx.rt.storage, ns, rv as u64) {
                    Ok(items) => (items, rv as u64, Some(start)),
                    Err(_) => {
                        // The snapshot is gone: the apiserver offers to continue at the latest state.
                        let mut status = expired(CONTINUE_EXPIRED).to_status();
                        status["metadata"]["continue"] = json!(encode_continue(-1, &start));
                        return Ok(json_response(410, &status, &[]));
                    }
                }
            }
        }
        None => match requested {
            Some(r) if ctx.req.q("resourceVersionMatch") == Some("Exact") => {
                let items = ctx
                    .core
                    .store
                    .list_at(&ctx.rt.storage, ns, r)
                    .map_err(|_| expired(LIST_EXPIRED))?;
                (items, r, None)
            }
            _ => (current, current_rv, None),
        },
    };
    let mut selected: Vec<Value> = items
        .into_iter()
        .filter(|o| start.as_ref().is_none_or(|s| key_of(o) > *s))
        .filter(|o| selection.matches(o))
        .collect();
    let limit: usize = ctx
        .req
        .q("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if selected.len() > limit {
        let remaining = selected.len() - limit;
        selected.truncate(limit);
        let last = key_of(selected.last().expect("limit > 0"));
        metadata["continue"] = json!(encode_continue(rv as i64, &last));
        metadata["remainingItemCount"] = json!(remaining);
    }
    let presented: Vec<Value> = selected.iter().map(|o| present(ctx.rt, o)).collect();
    let body = match output {
        Output::Table(include) => tables::table(ctx.rt, &presented, include, true, metadata),
        Output::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": presented.iter().map(metadata_only).collect::<Vec<_>>(),
        }),
        Output::Json => {
            let items: Vec<Value> = if ctx.rt.crd.is_some() {
                presented
            } else {
                // Items of built-in lists carry no apiVersion/kind, as typed lists encode them.
                presented
                    .into_iter()
                    .map(|mut o| {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("apiVersion");
                            m.remove("kind");
                        }
                        o
                    })
                    .collect()
            };
            json!({"kind": ctx.rt.list_kind, "apiVersion": ctx.rt.api_version(), "metadata": metadata, "items": items})
        }
    };
    Ok(json_response(200, &body, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "default/web");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "default/web".to_string())
        );
        assert!(decode_continue("not base64!").is_err());
    }
}
