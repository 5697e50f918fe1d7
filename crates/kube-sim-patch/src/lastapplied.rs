//! Migration from client-side apply: when `kubectl apply --server-side` (field manager
//! "kubectl") conflicts only on fields its `kubectl.kubernetes.io/last-applied-configuration`
//! annotation says it set, the apply is forced; afterwards that annotation is kept in step with
//! what was applied (upstream `lastappliedmanager.go` and `lastappliedupdater.go`).

use crate::fieldpath::Set;
use crate::gofmt::{self, Escaper};
use crate::schema::Schema;
use crate::typed;
use serde_json::Value;

pub(crate) const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Only this field manager gets the migration treatment.
pub(crate) const KUBECTL: &str = "kubectl";
/// `TotalAnnotationSizeLimitB`: an annotation that would exceed it is dropped instead.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn annotation(obj: &Value) -> Option<&str> {
    obj.get("metadata")?
        .get("annotations")?
        .get(ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Fields the live object still holds exactly as the last client-side apply set them.
/// `None` when there is no usable annotation.
pub(crate) fn allowed_conflicts(schema: &Schema, live: &Value, api_version: &str) -> Option<Set> {
    let last: Value = serde_json::from_str(annotation(live)?).ok()?;
    if last.get("apiVersion").and_then(Value::as_str).unwrap_or("") != api_version {
        return None;
    }
    // Both sides are converted without allowing duplicate list keys.
    if !typed::validate(schema, &schema.root, &last, false).is_empty()
        || !typed::validate(schema, &schema.root, live, false).is_empty()
    {
        return None;
    }
    let set = typed::to_field_set(schema, &schema.root, &last);
    let diff = typed::compare(schema, &schema.root, &last, live);
    Some(
        set.difference(&diff.modified)
            .difference(&diff.added)
            .difference(&diff.removed),
    )
}

/// After a successful apply by "kubectl": if the object carries the annotation, it becomes the
/// applied configuration (without the annotation itself), JSON-encoded as Go encodes it.
pub(crate) fn update_annotation(result: &mut Value, config: &Value) {
    if annotation(result).is_none() {
        return;
    }
    let mut applied = config.clone();
    if let Some(annotations) = applied
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(ANNOTATION);
    }
    let mut encoded = gofmt::json(&applied, Escaper::Stdlib);
    encoded.push('\n');
    let Some(annotations) = result
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    annotations.insert(ANNOTATION.into(), Value::String(encoded));
    let total: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        annotations.remove(ANNOTATION);
    }
}
