//! Errors, worded and classified as the apiserver reports them.

use crate::gofmt;
use crate::managed::{self, ManagerInfo};
use crate::updater::ConflictSets;

/// A strategic-merge-patch failure. The variant is the HTTP status the apiserver answers with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// 400 Bad Request (malformed directives, a patch that is not a JSON object, ...).
    #[error("{0}")]
    BadRequest(String),
    /// 422 Unprocessable Entity (lists of lists, patch content not matching `$retainKeys`).
    #[error("{0}")]
    Unprocessable(String),
    /// 500: upstream passes these through as plain errors (e.g. a list item missing its merge
    /// key), so the Status has code 500, an empty reason, and this message.
    #[error("{0}")]
    Internal(String),
}

impl PatchError {
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub fn code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::Internal(_) => 500,
        }
    }
}

/// A server-side apply failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// 409 Conflict: fields other managers own would change. Ordered by manager, then path.
    Conflicts(Vec<Conflict>),
    /// 400 Bad Request: wrong apiVersion/kind, `metadata.managedFields` set in the config.
    Invalid(String),
    /// 500: upstream reports these as plain errors, e.g. a configuration with duplicate or
    /// missing list keys ("failed to create typed patch object (...): ...").
    Internal(String),
}

/// One field another manager owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    /// The API version the other manager used (for appliers, the version of their last apply).
    pub api_version: String,
    /// The path as the apiserver prints it, e.g. `.spec.replicas`.
    pub field: String,
    /// `"Apply"` or `"Update"`.
    pub operation: String,
    pub subresource: Option<String>,
}

/// An entry of `Status.details.causes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// Always `"FieldManagerConflict"`.
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl Conflict {
    /// How upstream names the manager: `"name"`, plus ` with subresource "s"`, plus
    /// ` using <apiVersion>` for update managers.
    pub fn manager_description(&self) -> String {
        let mut out = gofmt::quote(&self.manager);
        if let Some(sub) = self.subresource.as_deref().filter(|s| !s.is_empty()) {
            out.push_str(&format!(" with subresource {}", gofmt::quote(sub)));
        }
        if self.operation == managed::UPDATE {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

impl ApplyError {
    pub fn message(&self) -> String {
        match self {
            ApplyError::Conflicts(conflicts) => conflict_message(conflicts),
            ApplyError::Invalid(m) | ApplyError::Internal(m) => m.clone(),
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::Invalid(_) => 400,
            ApplyError::Internal(_) => 500,
        }
    }

    /// What goes into `Status.details.causes` (empty for non-conflict errors).
    pub fn causes(&self) -> Vec<Cause> {
        let ApplyError::Conflicts(conflicts) = self else {
            return vec![];
        };
        conflicts
            .iter()
            .map(|c| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {}", c.manager_description()),
                field: c.field.clone(),
            })
            .collect()
    }
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ApplyError {}

/// Flattens conflict sets into one conflict per path: managers by identifier, each manager's
/// paths in set order.
pub(crate) fn conflicts_from_sets(sets: &ConflictSets) -> Vec<Conflict> {
    let mut out = Vec::new();
    for (id, vs) in sets {
        let ManagerInfo {
            manager,
            operation,
            subresource,
            ..
        } = managed::parse_identifier(id);
        for path in vs.set.paths() {
            out.push(Conflict {
                manager: manager.clone(),
                api_version: vs.api_version.clone(),
                field: path.to_string(),
                operation: operation.clone(),
                subresource: Some(subresource.clone()).filter(|s| !s.is_empty()),
            });
        }
    }
    out
}

/// The 409 message (upstream `getConflictMessage`).
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_description(),
            only.field
        );
    }
    // Grouped by manager; managers are sorted by identifier, which begins with the name.
    let mut groups: Vec<(String, String, Vec<&str>)> = Vec::new();
    for c in conflicts {
        let key = managed::identifier(
            &c.manager,
            &c.operation,
            &c.api_version,
            c.subresource.as_deref().unwrap_or(""),
        );
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, paths)) => paths.push(&c.field),
            None => groups.push((key, c.manager_description(), vec![&c.field])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = Vec::new();
    for (_, description, paths) in groups {
        lines.push(format!("conflicts with {description}:"));
        lines.extend(paths.into_iter().map(|p| format!("- {p}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict(
        manager: &str,
        operation: &str,
        subresource: Option<&str>,
        field: &str,
    ) -> Conflict {
        Conflict {
            manager: manager.into(),
            api_version: "v1".into(),
            field: field.into(),
            operation: operation.into(),
            subresource: subresource.map(str::to_string),
        }
    }

    #[test]
    fn managers_are_described_as_upstream_prints_them() {
        let kubelet = conflict("kubelet", "Update", Some("status"), ".status.phase");
        assert_eq!(
            kubelet.manager_description(),
            r#""kubelet" with subresource "status" using v1"#
        );
        let applier = conflict("helm", "Apply", None, ".spec.replicas");
        assert_eq!(applier.manager_description(), r#""helm""#);
        let err = ApplyError::Conflicts(vec![kubelet]);
        assert_eq!(
            err.message(),
            r#"Apply failed with 1 conflict: conflict with "kubelet" with subresource "status" using v1: .status.phase"#
        );
        assert_eq!(err.code(), 409);
    }
}
