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

/// The longest note an event keeps (the API server refuses one over 1 KiB).
pub const NOTE_MAX: usize = 1024;

/// The notes of one reconcile's steps as the events to send. The children created (or updated) at
/// once are told in one event per reason, their notes joined, rather than one event each: a new
/// workspace is one `Created` event, not five, which at a thousand workspaces is thousands of writes
/// fewer and reads better. A joined note longer than [`NOTE_MAX`] goes into several events. A joined
/// event keeps the first child's reference: kube's recorder folds an event into an earlier one with
/// the same reason and reference (as a series, keeping the earlier note), so without one every later
/// `Created` of the owner would be folded into its first. Every other note (a replacement, a
/// failure) stays an event of its own, about its child.
pub fn merged(notes: Vec<Note>) -> Vec<Note> {
    let joinable = |n: &Note| {
        n.kind == EventType::Normal && matches!(n.reason, Reason::Created | Reason::Updated)
    };
    let mut out: Vec<Note> = Vec::new();
    for note in notes {
        let open = out.iter_mut().rev().find(|o| {
            joinable(o)
                && o.reason == note.reason
                && o.message.len() + 2 + note.message.len() <= NOTE_MAX
        });
        match open {
            Some(o) if joinable(&note) => {
                o.message = format!("{}; {}", o.message, note.message);
            }
            _ => out.push(note),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn created(name: &str) -> Note {
        Note::normal(Reason::Created, format!("Created Pod {name}")).about(ObjectReference {
            name: Some(name.into()),
            ..ObjectReference::default()
        })
    }

    #[test]
    fn children_made_at_once_are_one_event_and_other_notes_stay_apart() {
        let failed = Note::warning(Reason::PodFailed, "Pod p failed".into());
        let sent = merged(vec![
            created("a"),
            failed.clone(),
            created("b"),
            created("c"),
        ]);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(
            sent[0].message,
            "Created Pod a; Created Pod b; Created Pod c"
        );
        assert_eq!(
            sent[0].about,
            created("a").about,
            "the first child's reference"
        );
        assert_eq!(sent[1], failed);
        let alone = merged(vec![created("a")]);
        assert_eq!(alone, vec![created("a")], "one child keeps its reference");
    }

    #[test]
    fn a_joined_note_never_passes_the_limit_and_loses_nothing() {
        let long = "x".repeat(300);
        let notes: Vec<Note> = (0..10).map(|i| created(&format!("{long}{i}"))).collect();
        let sent = merged(notes.clone());
        assert!(sent.len() > 1 && sent.len() < 10, "{}", sent.len());
        assert!(sent.iter().all(|n| n.message.len() <= NOTE_MAX));
        let joined = sent
            .iter()
            .map(|n| n.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let all = notes
            .iter()
            .map(|n| n.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        assert_eq!(joined, all);
    }
}
