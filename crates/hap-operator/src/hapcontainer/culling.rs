//! Idle culling (pure): whether a workspace has been idle for its `spec.culling.idleAfter`, the change
//! that stops it (size 0, everything else kept), how often to look, and the `Culled` condition.
//! `activity` reads what this decides on.

use std::time::Duration;

use hap_api::HapContainer;
use jiff::{SignedDuration, Timestamp};
use json_patch::{Patch, PatchOperation, ReplaceOperation, TestOperation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
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

/// The change that stops an idle workspace: size 1 becomes 0, and only if it is still 1 (a patch
/// that would meet a workspace someone just changed fails instead).
pub fn stop(hc: &HapContainer, idle_after: Duration, activity: &Activity) -> Change {
    let patch = Patch(vec![
        PatchOperation::Test(TestOperation {
            path: "/spec/size".parse().expect("a JSON pointer"),
            value: json!(1),
        }),
        PatchOperation::Replace(ReplaceOperation {
            path: "/spec/size".parse().expect("a JSON pointer"),
            value: json!(0),
        }),
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

/// The `Culled` condition, with culling on: true from the stop until the workspace runs again.
pub fn condition(
    hc: &HapContainer,
    idle_after: Duration,
    reading: &Reading,
    changed: Option<&Result<(), String>>,
    previous: &[Condition],
) -> Verdict {
    let after = text(idle_after);
    let was_culled = previous
        .iter()
        .find(|c| c.type_ == CULLED && c.status == "True");
    match (changed, reading) {
        (Some(Ok(())), _) => Verdict::ok(
            Reason::Culled,
            format!(
                "Stopped after {after} without activity in Jupyter: set spec.size to 1 to start it again; the home volume is kept"
            ),
        ),
        (Some(Err(e)), _) => Verdict::not(
            Reason::CullFailed,
            format!("Idle for {after}, but stopping it failed ({e}); tried again at the next look"),
        ),
        (None, _) if hc.spec.size == 0 => match was_culled {
            Some(c) => Verdict::ok(Reason::Culled, c.message.clone()),
            None => Verdict::not(Reason::Suspended, "size is 0: nothing to cull"),
        },
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
                "Stopped after {after} without activity in Jupyter, which is read once the pod is ready"
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
    fn the_stop_sets_size_zero_only_if_it_is_still_one() {
        let hc = hapcontainer("{culling: {idleAfter: 30m}}");
        let change = stop(&hc, MINUTE * 30, &quiet_since("2026-12-07T11:00:00Z"));
        assert_eq!(
            serde_json::to_value(&change.patch).unwrap(),
            json!([
                {"op": "test", "path": "/spec/size", "value": 1},
                {"op": "replace", "path": "/spec/size", "value": 0}
            ])
        );
        assert_eq!(change.note.reason, Reason::Culled);
        assert!(
            change.note.message.contains("after 30m"),
            "{}",
            change.note.message
        );
        assert!(change.note.message.contains("2026-12-07T11:00:00Z"));
    }

    #[test]
    fn the_condition_is_true_from_the_stop_until_the_workspace_runs_again() {
        let running = hapcontainer("{culling: {idleAfter: 1m}}");
        let stopped = hapcontainer("{size: 0, culling: {idleAfter: 1m}}");
        let read: Reading = Some(Ok(quiet_since("2026-12-07T11:00:00Z")));
        let just = condition(&running, MINUTE, &read, Some(&Ok(())), &[]);
        assert!(just.ok);
        assert_eq!(just.reason, Reason::Culled);
        let culled = Condition {
            type_: CULLED.into(),
            status: "True".into(),
            reason: "Culled".into(),
            message: just.message.clone(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::now(),
            ),
            observed_generation: None,
        };
        let kept = condition(&stopped, MINUTE, &None, None, std::slice::from_ref(&culled));
        assert_eq!(
            (kept.ok, kept.message.as_str()),
            (true, just.message.as_str())
        );
        // Started again: active, whatever the condition was.
        let again = condition(&running, MINUTE, &read, None, &[culled]);
        assert_eq!((again.ok, again.reason), (false, Reason::Active));
        // Suspended by hand: not culled.
        let by_hand = condition(&stopped, MINUTE, &None, None, &[]);
        assert_eq!((by_hand.ok, by_hand.reason), (false, Reason::Suspended));
        let unknown = condition(&running, MINUTE, &Some(Err("refused".into())), None, &[]);
        assert_eq!(unknown.reason, Reason::ActivityUnknown);
        assert!(unknown.message.contains("refused"));
        let failed = condition(&running, MINUTE, &read, Some(&Err("conflict".into())), &[]);
        assert_eq!((failed.ok, failed.reason), (false, Reason::CullFailed));
    }
}
