//! Events on a custom resource, about it or about one of its children. Every event is also a log line,
//! so the operator's own log tells what it did to whom. A failure to record is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::MANAGER;
use super::reason::Reason;

/// An event the plan or a failure calls for.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub kind: EventType,
    pub reason: Reason,
    pub message: String,
    /// The child it is about. Naming it also keeps events about different children from being
    /// folded into one series (the recorder groups by reason and related object, not by message).
    pub about: Option<ObjectReference>,
}

impl Note {
    pub fn normal(reason: Reason, message: String) -> Self {
        Note {
            kind: EventType::Normal,
            reason,
            message,
            about: None,
        }
    }

    pub fn warning(reason: Reason, message: String) -> Self {
        Note {
            kind: EventType::Warning,
            ..Note::normal(reason, message)
        }
    }

    pub fn about(self, child: ObjectReference) -> Self {
        Note {
            about: Some(child),
            ..self
        }
    }
}

pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: kube::Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: Some(instance.to_string()),
        };
        Events {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Records `note` on `owner`.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, owner: &K, note: &Note) {
        let (reason, message) = (note.reason.as_str(), note.message.as_str());
        match note.kind {
            EventType::Normal => tracing::info!(reason, note = message, "event"),
            EventType::Warning => tracing::warn!(reason, note = message, "event"),
        }
        let event = Event {
            type_: note.kind,
            reason: reason.into(),
            note: Some(message.into()),
            action: "Reconcile".into(),
            secondary: note.about.clone(),
        };
        if let Err(e) = self.recorder.publish(&event, &owner.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not record event");
        }
    }
}
