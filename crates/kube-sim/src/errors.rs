//! API errors as the apiserver returns them: a `Status` object with the real code, reason and wording.

use serde_json::{Value, json};

use crate::registry::ResourceType;

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// One field error inside a 422 Invalid, worded as apimachinery's field.Error.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FieldErrorKind {
    Required,
    Invalid(Value),
    Forbidden,
    Duplicate(Value),
    NotSupported(Value, Vec<String>),
    NotFound(Value),
    TooLong,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required,
            detail: detail.into(),
        }
    }
    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid(value),
            detail: detail.into(),
        }
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Forbidden,
            detail: detail.into(),
        }
    }
    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Duplicate(value),
            detail: String::new(),
        }
    }
    pub fn not_found(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotFound(value),
            detail: String::new(),
        }
    }
    pub fn too_long(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::TooLong,
            detail: detail.into(),
        }
    }
    pub fn not_supported(field: impl Into<String>, value: Value, valid: &[&str]) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported(
                value,
                valid.iter().map(|s| s.to_string()).collect(),
            ),
            detail: String::new(),
        }
    }

    fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorKind::NotFound(_) => "FieldValueNotFound",
            FieldErrorKind::TooLong => "FieldValueTooLong",
        }
    }

    /// The error without its field: `Required value`, `Invalid value: "x": detail`.
    fn body(&self) -> String {
        let with_detail = |s: String| {
            if self.detail.is_empty() {
                s
            } else {
                format!("{s}: {}", self.detail)
            }
        };
        match &self.kind {
            FieldErrorKind::Required => with_detail("Required value".into()),
            FieldErrorKind::Invalid(v) => with_detail(format!("Invalid value: {}", go_value(v))),
            FieldErrorKind::Forbidden => with_detail("Forbidden".into()),
            FieldErrorKind::Duplicate(v) => format!("Duplicate value: {}", go_value(v)),
            FieldErrorKind::NotSupported(v, valid) => {
                let quoted: Vec<String> = valid.iter().map(|s| format!("{s:?}")).collect();
                format!(
                    "Unsupported value: {}: supported values: {}",
                    go_value(v),
                    quoted.join(", ")
                )
            }
            FieldErrorKind::NotFound(v) => format!("Not found: {}", go_value(v)),
            FieldErrorKind::TooLong => with_detail("Too long".into()),
        }
    }

    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

/// How apimachinery prints a bad value: strings quoted, numbers bare.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Option<Value>) -> Self {
        ApiError {
            code,
            reason,
            message,
            details,
        }
    }

    fn details(rt: &ResourceType, name: &str) -> Value {
        let mut d = json!({"kind": rt.plural});
        if !name.is_empty() {
            d["name"] = json!(name);
        }
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        d
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
            Some(Self::details(rt, name)),
        )
    }

    /// 404 for a URL that names no served type.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(json!({})),
        )
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            Some(json!({"name": ns, "kind": "namespaces"})),
        )
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
            Some(Self::details(rt, name)),
        )
    }

    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified()
            ),
            Some(Self::details(rt, name)),
        )
    }

    pub fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> Self {
        Self::invalid_kind(&rt.group, &rt.kind, name, errors)
    }

    /// apimachinery's NewInvalid for a group and kind (which some callers fill with a resource name,
    /// as the apiserver does for a few errors).
    pub fn invalid_kind(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let messages: Vec<String> = errors.iter().map(FieldError::message).collect();
        let joined = if messages.len() == 1 {
            messages[0].clone()
        } else {
            format!("[{}]", messages.join(", "))
        };
        // Empty fields of StatusDetails are omitted, as Go's omitempty does.
        let mut details = json!({"kind": kind});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        let mut qualified_kind = kind.to_string();
        if !group.is_empty() {
            details["group"] = json!(group);
            qualified_kind = format!("{kind}.{group}");
        }
        details["causes"] = errors
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
            Some(details),
        )
    }

    /// An invalid request option (`ListOptions`, `PatchOptions`...), reported against meta.k8s.io.
    pub fn invalid_options(kind: &str, errors: &[FieldError]) -> Self {
        Self::invalid_kind("meta.k8s.io", kind, "", errors)
    }

    /// 422 as `crdcheck serve` returned it: the apiserver's own Status, passed through verbatim.
    pub fn from_status(status: &Value) -> Self {
        let reason = match status["reason"].as_str() {
            Some("Invalid") => "Invalid",
            Some("BadRequest") => "BadRequest",
            _ => "Invalid",
        };
        Self::new(
            status["code"].as_u64().unwrap_or(422) as u16,
            reason,
            status["message"].as_str().unwrap_or_default().to_string(),
            status.get("details").cloned(),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    pub fn forbidden(message: impl Into<String>, details: Option<Value>) -> Self {
        Self::new(403, "Forbidden", message.into(), details)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// 405 for a method the URL has no route for, worded as the apiserver's router answers.
    pub fn no_method() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            Some(json!({})),
        )
    }

    pub fn method_not_supported(rt: &ResourceType, verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                rt.qualified()
            ),
            Some(Self::details(rt, "")),
        )
    }

    /// 504 for a resourceVersion the store has not reached, as the watch cache gives up waiting for it.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
            Some(
                json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
            ),
        )
    }

    pub fn gone(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
            None,
        )
    }

    /// 415 for a body in a media type the endpoint cannot decode; `accepted` lists those it can.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// apimachinery's NewGenericServerResponse for a 422: the apiserver reports failed JSON patch
    /// operations this way, keeping its generic message rather than the cause.
    pub fn unprocessable() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request".into(),
            Some(json!({})),
        )
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml"
                .into(),
            None,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
            None,
        )
    }

    /// A plain Go error from storage, which the apiserver turns into a 500 with no reason.
    pub fn internal_unknown(message: impl Into<String>) -> Self {
        Self::new(500, "", message.into(), None)
    }

    /// An error with an arbitrary code, for fault injection: the reason matches the code as the
    /// apiserver's would.
    pub fn injected(code: u16) -> Self {
        let (reason, message) = match code {
            409 => ("Conflict", "injected conflict"),
            429 => (
                "TooManyRequests",
                "too many requests, please try again later",
            ),
            500 => ("InternalError", "Internal error occurred: injected failure"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            _ => ("", "injected failure"),
        };
        Self::new(code, reason, message.into(), None)
    }

    pub fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let r = Registry::default();
        let deploy = r.find("apps", "v1", "deployments").unwrap();
        let e = ApiError::not_found(&deploy, "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        assert_eq!(
            e.to_status()["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let pods = r.find("", "v1", "pods").unwrap();
        assert_eq!(
            ApiError::not_found(&pods, "p").message,
            "pods \"p\" not found"
        );
    }

    #[test]
    fn invalid_lists_causes_like_apimachinery() {
        let r = Registry::default();
        let pods = r.find("", "v1", "pods").unwrap();
        let one = ApiError::invalid(
            &pods,
            "p",
            &[FieldError::required("spec.containers[0].image", "")],
        );
        assert_eq!(
            one.message,
            "Pod \"p\" is invalid: spec.containers[0].image: Required value"
        );
        let two = ApiError::invalid(
            &pods,
            "p",
            &[
                FieldError::invalid("metadata.name", json!("P"), "must be lowercase"),
                FieldError::not_supported(
                    "spec.restartPolicy",
                    json!("Sometimes"),
                    &["Always", "Never"],
                ),
            ],
        );
        assert_eq!(
            two.message,
            "Pod \"p\" is invalid: [metadata.name: Invalid value: \"P\": must be lowercase, spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\"]"
        );
        assert_eq!(
            two.to_status()["details"]["causes"][0]["reason"],
            "FieldValueInvalid"
        );
    }
}
