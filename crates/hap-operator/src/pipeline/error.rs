//! Errors, one enum per pipeline step. A variant names what failed (which Secret, which child), sets
//! the event reason, and keeps the API's error as its source: the message never repeats it, so an error
//! chain (see `chain`) prints each cause once.

use super::events::Note;
use super::metrics::FailureLabels;
use super::reason::Reason;

/// The read step: a Secret the spec names could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read Secret {name:?} named in {field}")]
    Secret {
        name: String,
        field: String,
        #[source]
        source: kube::Error,
    },
}

/// The apply step: one child could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot apply {kind} {name}")]
    Apply {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot create {kind} {name}")]
    Create {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot delete {kind} {name}")]
    Delete {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// A Secret whose values the executor makes (a certificate, a password file) could not be made.
    #[error("cannot make the values of Secret {name}: {reason}")]
    Issue { name: String, reason: String },
}

/// The status step: the status could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot update the status of {kind} {name}")]
pub struct StatusError {
    pub kind: String,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

/// Why a reconciliation failed: every Secret that could not be read, every child that could not be
/// written and the status write, not only the first failure.
#[derive(Debug, Default, thiserror::Error)]
#[error("{}", self.all().map(chain).collect::<Vec<_>>().join("; "))]
pub struct Error {
    pub read: Vec<ReadError>,
    pub children: Vec<WriteError>,
    pub status: Option<StatusError>,
}

/// An error and its causes, outermost first: `cannot apply Pod w-happod: ApiError: ...`. A cause whose
/// text is already there is left out (the API's error prints its own status in its message).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// A short label for metrics: the API's reason, or what kind of failure it was.
fn api_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.reason.is_empty() => s.reason.clone(),
        kube::Error::Api(s) => format!("HTTP{}", s.code),
        _ => "Transport".into(),
    }
}

/// The metric's `step` label of a failure with this event reason.
fn step_of(reason: Reason) -> &'static str {
    match reason {
        Reason::ReadFailed => "read",
        Reason::ApplyFailed => "apply",
        Reason::CreateFailed => "create",
        Reason::DeleteFailed => "delete",
        _ => "status",
    }
}

fn labels<'a>(reason: Reason, e: impl Into<Option<&'a kube::Error>>) -> FailureLabels {
    FailureLabels {
        step: step_of(reason),
        reason: e.into().map_or_else(|| "ValuesNotMade".into(), api_reason),
    }
}

impl ReadError {
    pub fn event_reason(&self) -> Reason {
        match self {
            ReadError::Secret { .. } => Reason::ReadFailed,
        }
    }

    fn source_error(&self) -> &kube::Error {
        match self {
            ReadError::Secret { source, .. } => source,
        }
    }
}

impl WriteError {
    pub fn event_reason(&self) -> Reason {
        match self {
            WriteError::Apply { .. } => Reason::ApplyFailed,
            WriteError::Create { .. } => Reason::CreateFailed,
            WriteError::Delete { .. } => Reason::DeleteFailed,
            WriteError::Issue { .. } => Reason::ApplyFailed,
        }
    }

    /// The API's error, unless the write failed before any request (a certificate not issued).
    fn source_error(&self) -> Option<&kube::Error> {
        match self {
            WriteError::Apply { source, .. }
            | WriteError::Create { source, .. }
            | WriteError::Delete { source, .. } => Some(source),
            WriteError::Issue { .. } => None,
        }
    }

    /// Whether the API refused the request as it stands (400, 422): retrying it unchanged cannot
    /// succeed, so it is a problem for the user rather than an error to retry.
    pub fn is_rejection(&self) -> bool {
        matches!(self.source_error(), Some(kube::Error::Api(s)) if s.code == 400 || s.code == 422)
    }

    /// What the cluster ran out of, if the API server could not allocate a Service's node port or
    /// address because every one in its range is taken. It answers 500 then ("failed to allocate a
    /// nodePort: range is full"), but it is neither the request's fault nor the server's passing
    /// trouble: a person must act, and a retry helps only once others free some.
    pub fn exhausted(&self) -> Option<Exhausted> {
        let Some(kube::Error::Api(s)) = self.source_error() else {
            return None;
        };
        let full = s.code == 500 && s.message.contains("range is full");
        if !full {
            None
        } else if s.message.contains("nodePort") {
            Some(Exhausted::NodePorts)
        } else {
            Some(Exhausted::ServiceAddresses)
        }
    }
}

/// What a cluster can run out of for the Services the operator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// `--service-node-port-range` (30000-32767 by default; a workspace takes two: about 1,380 workspaces).
    NodePorts,
    /// The Service CIDR's addresses (`--service-cluster-ip-range` and any ServiceCIDR objects).
    ServiceAddresses,
}

/// Whether an error is the API server's own trouble rather than the request's: no answer at all
/// (refused, reset, timed out), too many requests, or a 5xx.
fn is_unavailable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

impl Error {
    /// Whether every failure is the API server's unavailability (see `is_unavailable`): once it
    /// answers again, a retry succeeds, so the retry should not wait long.
    pub fn api_unavailable(&self) -> bool {
        let read = self.read.iter().map(|e| Some(e.source_error()));
        let children = self.children.iter().map(WriteError::source_error);
        let status = self.status.iter().map(|e| Some(&e.source));
        let mut all = read.chain(children).chain(status).peekable();
        all.peek().is_some() && all.all(|e| e.is_some_and(is_unavailable))
    }

    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.children.is_empty() && self.status.is_none()
    }

    /// Each failure, in the order of the steps. Each one's message carries its own cause.
    fn all(&self) -> impl Iterator<Item = &dyn std::error::Error> {
        let read = self.read.iter().map(|e| e as &dyn std::error::Error);
        let children = self.children.iter().map(|e| e as &dyn std::error::Error);
        let status = self.status.iter().map(|e| e as &dyn std::error::Error);
        read.chain(children).chain(status)
    }

    /// The metric labels of each failure: the step, from the variant's event reason, and the API's
    /// reason.
    pub fn metric_labels(&self) -> Vec<FailureLabels> {
        let read = self
            .read
            .iter()
            .map(|e| labels(e.event_reason(), e.source_error()));
        let children = self
            .children
            .iter()
            .map(|e| labels(e.event_reason(), e.source_error()));
        let status = self
            .status
            .iter()
            .map(|e| labels(Reason::StatusUpdateFailed, &e.source));
        read.chain(children).chain(status).collect()
    }

    /// One warning event per failure, each with its own reason: distinct reasons keep different
    /// failures from being folded into one event series.
    pub fn notes(&self) -> Vec<Note> {
        let read = self
            .read
            .iter()
            .map(|e| Note::warning(e.event_reason(), chain(e)));
        let children = self
            .children
            .iter()
            .map(|e| Note::warning(e.event_reason(), chain(e)));
        let status = self
            .status
            .iter()
            .map(|e| Note::warning(Reason::StatusUpdateFailed, chain(e)));
        read.chain(children).chain(status).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, reason)
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn messages_name_the_object_and_print_the_cause_once() {
        let e = ReadError::Secret {
            name: "keys".into(),
            field: "spec.s3.credentialsSecret".into(),
            source: api(403, "Forbidden", "secrets \"keys\" is forbidden"),
        };
        assert_eq!(
            e.to_string(),
            "cannot read Secret \"keys\" named in spec.s3.credentialsSecret"
        );
        let cause = api(403, "Forbidden", "secrets \"keys\" is forbidden").to_string();
        assert_eq!(
            chain(&Error {
                read: vec![e],
                ..Default::default()
            }),
            format!("cannot read Secret \"keys\" named in spec.s3.credentialsSecret: {cause}")
        );
    }

    #[test]
    fn every_child_error_is_reported_with_its_own_reason() {
        let e = Error {
            children: vec![
                WriteError::Apply {
                    kind: "Pod".into(),
                    name: "w-happod".into(),
                    source: api(500, "InternalError", "boom"),
                },
                WriteError::Delete {
                    kind: "Role".into(),
                    name: "w-spark".into(),
                    source: api(403, "Forbidden", "no"),
                },
            ],
            ..Default::default()
        };
        let notes = e.notes();
        let reasons: Vec<_> = notes.iter().map(|n| n.reason).collect();
        assert_eq!(reasons, [Reason::ApplyFailed, Reason::DeleteFailed]);
        assert!(notes[1].message.starts_with("cannot delete Role w-spark: "));
        let steps: Vec<_> = e
            .metric_labels()
            .into_iter()
            .map(|l| (l.step, l.reason))
            .collect();
        assert_eq!(
            steps,
            [
                ("apply", "InternalError".to_string()),
                ("delete", "Forbidden".to_string())
            ]
        );
        let (boom, no) = (
            api(500, "InternalError", "boom").to_string(),
            api(403, "Forbidden", "no").to_string(),
        );
        assert_eq!(
            chain(&e),
            format!("cannot apply Pod w-happod: {boom}; cannot delete Role w-spark: {no}")
        );
    }

    #[test]
    fn refusals_are_told_apart_from_failures() {
        let refused = WriteError::Apply {
            kind: "Service".into(),
            name: "s".into(),
            source: api(422, "Invalid", "port taken"),
        };
        let failed = WriteError::Apply {
            kind: "Service".into(),
            name: "s".into(),
            source: api(500, "InternalError", "boom"),
        };
        assert!(refused.is_rejection() && !failed.is_rejection());
        assert_eq!(failed.exhausted(), None, "a 500 of another kind");
    }

    #[test]
    fn full_ranges_are_told_from_other_server_errors() {
        let write = |message: &str| WriteError::Create {
            kind: "Service".into(),
            name: "w".into(),
            source: api(500, "InternalError", message),
        };
        // As the API server words them (pkg/registry/core/service/storage).
        let ports = write("Internal error occurred: failed to allocate a nodePort: range is full");
        let addresses =
            write("Internal error occurred: failed to allocate a serviceIP: range is full");
        assert_eq!(ports.exhausted(), Some(Exhausted::NodePorts));
        assert_eq!(addresses.exhausted(), Some(Exhausted::ServiceAddresses));
        assert!(!ports.is_rejection());
    }

    #[test]
    fn only_the_api_servers_own_trouble_counts_as_unavailable() {
        let write = |code: u16| WriteError::Apply {
            kind: "Pod".into(),
            name: "w".into(),
            source: api(code, "", "x"),
        };
        let with = |children: Vec<WriteError>| Error {
            children,
            ..Error::default()
        };
        assert!(with(vec![write(503), write(429)]).api_unavailable());
        let refused = WriteError::Create {
            kind: "Pod".into(),
            name: "w".into(),
            source: kube::Error::Service("connection refused".into()),
        };
        assert!(with(vec![refused]).api_unavailable());
        assert!(!with(vec![write(503), write(403)]).api_unavailable());
        assert!(!Error::default().api_unavailable(), "no failure at all");
        let unsigned = WriteError::Issue {
            name: "t".into(),
            reason: "no CA".into(),
        };
        assert!(!with(vec![unsigned]).api_unavailable());
    }
}
