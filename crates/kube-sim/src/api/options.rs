//! The request options the apiserver validates before it touches any object (ListOptions, CreateOptions,
//! UpdateOptions, PatchOptions), reported as 422s against meta.k8s.io with apimachinery's wording.

use serde_json::json;

use super::Req;
use crate::errors::{ApiError, FieldError};

const FIELD_MANAGER_MAX_LENGTH: usize = 128;

fn all<'a>(req: &'a Req, key: &str) -> Vec<&'a str> {
    req.query
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn field_manager(req: &Req, errs: &mut Vec<FieldError>) {
    let manager = req.q("fieldManager").unwrap_or_default();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::too_long(
            "fieldManager",
            format!("may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"),
        ));
    }
    for (i, c) in manager.chars().enumerate() {
        if c.is_control() {
            errs.push(FieldError::invalid(
                "fieldManager",
                json!(manager),
                format!("invalid character U+{:04X} (at position {i})", u32::from(c)),
            ));
        }
    }
}

fn dry_run(req: &Req, errs: &mut Vec<FieldError>) {
    let values = all(req, "dryRun");
    if values.iter().any(|v| *v != "All") {
        errs.push(FieldError::not_supported("dryRun", json!(values), &["All"]));
    }
}

fn field_validation(req: &Req, errs: &mut Vec<FieldError>) {
    if let Some(v) = req.q("fieldValidation")
        && !matches!(v, "" | "Ignore" | "Strict" | "Warn")
    {
        errs.push(FieldError::not_supported(
            "fieldValidation",
            json!(v),
            &["", "Ignore", "Strict", "Warn"],
        ));
    }
}

fn check(kind: &str, errs: Vec<FieldError>) -> Result<(), ApiError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_options(kind, &errs))
    }
}

/// CreateOptions or UpdateOptions (`kind` names which).
pub fn write(req: &Req, kind: &str) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    field_manager(req, &mut errs);
    dry_run(req, &mut errs);
    field_validation(req, &mut errs);
    check(kind, errs)
}

/// PatchOptions: apply needs a field manager; only apply may be forced.
pub fn patch(req: &Req, apply: bool) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    if apply {
        if req.q("fieldManager").is_none_or(str::is_empty) {
            errs.push(FieldError::required(
                "fieldManager",
                "is required for apply patch",
            ));
        }
    } else if req.q("force").is_some() {
        errs.push(FieldError::forbidden(
            "force",
            "may not be specified for non-apply patch",
        ));
    }
    field_manager(req, &mut errs);
    dry_run(req, &mut errs);
    field_validation(req, &mut errs);
    check("PatchOptions", errs)
}

/// ListOptions of a list or a watch.
pub fn list(req: &Req, watch: bool) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    let rv = req.q("resourceVersion").unwrap_or_default();
    let has_continue = req.q("continue").is_some_and(|c| !c.is_empty());
    let send_initial = req.q("sendInitialEvents").is_some();
    let path = "resourceVersionMatch";
    let rv_match = req.q(path).unwrap_or_default();
    if watch {
        if send_initial && rv_match != "NotOlderThan" {
            errs.push(FieldError::forbidden(
                path,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !rv_match.is_empty() {
            if !send_initial {
                errs.push(FieldError::forbidden(path, "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"));
            }
            if rv_match != "NotOlderThan" {
                errs.push(FieldError::not_supported(
                    path,
                    json!(rv_match),
                    &["NotOlderThan"],
                ));
            }
            if has_continue {
                errs.push(FieldError::forbidden(
                    path,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if !rv_match.is_empty() {
            if rv.is_empty() {
                errs.push(FieldError::forbidden(
                    path,
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if has_continue {
                errs.push(FieldError::forbidden(
                    path,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if rv_match != "Exact" && rv_match != "NotOlderThan" {
                errs.push(FieldError::not_supported(
                    path,
                    json!(rv_match),
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if rv_match == "Exact" && rv == "0" {
                errs.push(FieldError::forbidden(
                    path,
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if send_initial {
            errs.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
    }
    check("ListOptions", errs)
}
