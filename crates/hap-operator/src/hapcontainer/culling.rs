//! Idle culling (pure): whether a workspace has been idle for its `spec.culling.idleAfter`, the change
//! that stops it (size 0, everything else kept), how often to look, and the `Culled` condition.
//! `activity` reads what this decides on.

use std::time::Duration;

use hap_api::HapContainer;
use jiff::{SignedDuration, Timestamp};
use json_patch::{AddOperation, Patch, PatchOperation, ReplaceOperation, TestOperation};
use kube::ResourceExt;
use serde_json::json;

use crate::pipeline::Change;
use crate::pipeline::conditions::Verdict;
use crate::pipeline::events::Note;
use crate::pipeline::reason::Reason;

/// The condition type.
pub const CULLED: &str = "Culled";

/// What is going on right now that counts as activity whatever the times say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ongoing {
    BusyKernel,
    SparkJob,
    /// An open connection to a kernel (a notebook open in a browser).
    Connection,
}

/// A workspace's activity as Jupyter and the Spark UI showed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// The latest of: Jupyter's start, its last API request, each kernel's and terminal's last
    /// activity.
    pub last: Timestamp,
    pub ongoing: Option<Ongoing>,
}

/// What was read of a workspace this reconcile: nothing (culling off, or no ready pod), its
/// activity, or why it could not be read.
pub type Reading = Option<Result<Activity, String>>;

/// When the workspace was last active, counting what is ongoing as active now.
pub fn last_active(activity: &Activity, now: Timestamp) -> Timestamp {
    match activity.ongoing {
        Some(_) => now,
        None => activity.last,
    }
}

/// Whether the workspace has been idle for `idle_after` at `now`.
pub fn idle(activity: &Activity, idle_after: Duration, now: Timestamp) -> bool {
    let quiet = now.duration_since(last_active(activity, now));
    quiet >= SignedDuration::try_from(idle_after).unwrap_or(SignedDuration::MAX)
}

/// How often a running workspace's activity is read: a quarter of the idle time, from 15 s to a
/// minute, so a workspace is stopped at most that late.
pub fn poll_interval(idle_after: Duration) -> Duration {
    (idle_after / 4).clamp(Duration::from_secs(15), Duration::from_secs(60))
}

/// `status.lastActivity`: to the minute, so that an active workspace's status is written at most
/// once a minute.
pub fn recorded(activity: &Activity, now: Timestamp) -> Timestamp {
    let t = last_active(activity, now);
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(60)).unwrap_or(t)
}

/// An idle time for messages: `1h 30m`.
fn text(idle_after: Duration) -> String {
    humantime::format_duration(idle_after).to_string()
}

/// The annotation a stop leaves: the generation the stop makes. While the workspace is at that
/// generation (nobody changed its spec since), it is stopped for idleness, not by hand.
pub const CULLED_GENERATION: &str = "hap.cloudian.com/culled-generation";

fn pointer(path: &str) -> json_patch::jsonptr::PointerBuf {
    json_patch::jsonptr::PointerBuf::parse(path).expect("a JSON pointer")
}

/// The change that stops an idle workspace: size 1 becomes 0, and the annotation says so; only if
/// the workspace is still at the generation the decision was made on (a spec changed meanwhile, its
/// size or its idle time, makes the patch fail instead).
pub fn stop(hc: &HapContainer, idle_after: Duration, activity: &Activity) -> Change {
    let generation = hc.metadata.generation.unwrap_or_default();
    let marker = json!((generation + 1).to_string());
    let annotate = match &hc.metadata.annotations {
        Some(_) => PatchOperation::Add(AddOperation {
            path: pointer(&format!(
                "/metadata/annotations/{}",
                CULLED_GENERATION.replace('/', "~1")
            )),
            value: marker,
        }),
        None => PatchOperation::Add(AddOperation {
            path: pointer("/metadata/annotations"),
            value: json!({ CULLED_GENERATION: marker }),
        }),
    };
    let patch = Patch(vec![
        PatchOperation::Test(TestOperation {
            path: pointer("/metadata/generation"),
            value: json!(generation),
        }),
        PatchOperation::Test(TestOperation {
            path: pointer("/spec/size"),
            value: json!(1),
        }),
        PatchOperation::Replace(ReplaceOperation {
            path: pointer("/spec/size"),
            value: json!(0),
        }),
        annotate,
    ]);
    let note = Note::normal(
        Reason::Culled,
        format!(
            "Stopped after {} without activity in Jupyter (last at {}): size is now 0, the home volume and everything else kept; set size to 1 to start {} again",
            text(idle_after),
            activity.last.strftime("%Y-%m-%dT%H:%M:%SZ"),
            hc.name_any()
        ),
    );
    Change { patch, note }
}

/// Whether the workspace stands stopped by a cull: size 0 at the generation the stop made.
fn culled(hc: &HapContainer) -> bool {
    let marked = hc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CULLED_GENERATION))
        .and_then(|g| g.parse::<i64>().ok());
    hc.spec.size == 0 && marked.is_some() && marked == hc.metadata.generation
}

/// The `Culled` condition, with culling on: true from the stop until the workspace's spec changes
/// (started again, say).
pub fn condition(
    hc: &HapContainer,
    idle_after: Duration,
    reading: &Reading,
    changed: Option<&Result<(), String>>,
) -> Verdict {
    let after = text(idle_after);
    let stopped = || {
        Verdict::ok(
            Reason::Culled,
            format!(
                "Stopped after {after} without activity in Jupyter: set spec.size to 1 to start it again; the home volume is kept"
            ),
        )
    };
    match (changed, reading) {
        (Some(Ok(())), _) => stopped(),
        (Some(Err(e)), _) => Verdict::not(
            Reason::CullFailed,
            format!("Idle for {after}, but stopping it failed ({e}); tried again at the next look"),
        ),
        (None, _) if culled(hc) => stopped(),
        (None, _) if hc.spec.size == 0 => {
            Verdict::not(Reason::Suspended, "size is 0: nothing to cull")
        }
        (None, Some(Ok(_))) => Verdict::not(
            Reason::Active,
            format!(
                "Stopped after {after} without activity in Jupyter; status.lastActivity says when it last saw some"
            ),
        ),
        (None, Some(Err(e))) => Verdict::not(
            Reason::ActivityUnknown,
            format!(
                "Jupyter's activity could not be read ({e}); the workspace is not stopped while it cannot be"
            ),
        ),
        (None, None) => Verdict::not(
            Reason::NotRunning,
            format!(
                "Stopped after {after} without activity in Jupyter, which is read while the pod is ready and the Configured condition true"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::hapcontainer;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn quiet_since(t: &str) -> Activity {
        Activity {
            last: at(t),
            ongoing: None,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_workspace_is_idle_once_nothing_happened_for_the_idle_time() {
        let now = at("2026-12-07T12:00:00Z");
        assert!(idle(&quiet_since("2026-12-07T11:59:00Z"), MINUTE, now));
        assert!(!idle(&quiet_since("2026-12-07T11:59:01Z"), MINUTE, now));
    }

    #[test]
    fn what_is_ongoing_counts_as_activity_now_however_old_the_times() {
        let now = at("2026-12-07T12:00:00Z");
        for ongoing in [Ongoing::BusyKernel, Ongoing::SparkJob, Ongoing::Connection] {
            let a = Activity {
                last: at("2026-12-01T00:00:00Z"),
                ongoing: Some(ongoing),
            };
            assert!(!idle(&a, MINUTE, now), "{ongoing:?}");
            assert_eq!(last_active(&a, now), now);
        }
    }

    #[test]
    fn the_look_comes_every_quarter_of_the_idle_time_within_bounds() {
        assert_eq!(poll_interval(MINUTE), Duration::from_secs(15));
        assert_eq!(poll_interval(MINUTE * 3), Duration::from_secs(45));
        assert_eq!(poll_interval(MINUTE * 600), Duration::from_secs(60));
    }

    #[test]
    fn the_recorded_activity_moves_once_a_minute() {
        let now = at("2026-12-07T12:00:59Z");
        let a = quiet_since("2026-12-07T11:58:31.5Z");
        assert_eq!(recorded(&a, now), at("2026-12-07T11:58:00Z"));
    }

    #[test]
    fn the_stop_sets_size_zero_and_marks_it_only_if_nothing_changed() {
        let mut hc = hapcontainer("{culling: {idleAfter: 30m}}");
        hc.metadata.generation = Some(4);
        let change = stop(&hc, MINUTE * 30, &quiet_since("2026-12-07T11:00:00Z"));
        assert_eq!(
            serde_json::to_value(&change.patch).unwrap(),
            json!([
                {"op": "test", "path": "/metadata/generation", "value": 4},
                {"op": "test", "path": "/spec/size", "value": 1},
                {"op": "replace", "path": "/spec/size", "value": 0},
                {"op": "add", "path": "/metadata/annotations", "value": {CULLED_GENERATION: "5"}}
            ])
        );
        assert_eq!(change.note.reason, Reason::Culled);
        assert!(
            change.note.message.contains("after 30m"),
            "{}",
            change.note.message
        );
        assert!(change.note.message.contains("2026-12-07T11:00:00Z"));
        hc.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
        let change = stop(&hc, MINUTE * 30, &quiet_since("2026-12-07T11:00:00Z"));
        assert_eq!(
            serde_json::to_value(&change.patch.0[3]).unwrap(),
            json!({"op": "add", "path": "/metadata/annotations/hap.cloudian.com~1culled-generation", "value": "5"})
        );
    }

    #[test]
    fn the_condition_is_true_from_the_stop_until_the_spec_changes() {
        let running = hapcontainer("{culling: {idleAfter: 1m}}");
        let read: Reading = Some(Ok(quiet_since("2026-12-07T11:00:00Z")));
        let just = condition(&running, MINUTE, &read, Some(&Ok(())));
        assert!(just.ok);
        assert_eq!(just.reason, Reason::Culled);
        // The stop's generation, size 0: culled, whatever the last status said.
        let mut stopped = hapcontainer("{size: 0, culling: {idleAfter: 1m}}");
        stopped.metadata.generation = Some(5);
        stopped.metadata.annotations =
            Some([(CULLED_GENERATION.to_string(), "5".to_string())].into());
        let kept = condition(&stopped, MINUTE, &None, None);
        assert_eq!(
            (kept.ok, kept.message.as_str()),
            (true, just.message.as_str())
        );
        // Suspended by hand afterwards (a later generation), or never culled: not culled.
        stopped.metadata.generation = Some(7);
        let by_hand = condition(&stopped, MINUTE, &None, None);
        assert_eq!((by_hand.ok, by_hand.reason), (false, Reason::Suspended));
        // Started again: active once read.
        let again = condition(&running, MINUTE, &read, None);
        assert_eq!((again.ok, again.reason), (false, Reason::Active));
        let unknown = condition(&running, MINUTE, &Some(Err("refused".into())), None);
        assert_eq!(unknown.reason, Reason::ActivityUnknown);
        assert!(unknown.message.contains("refused"));
        let failed = condition(&running, MINUTE, &read, Some(&Err("conflict".into())));
        assert_eq!((failed.ok, failed.reason), (false, Reason::CullFailed));
    }
}
