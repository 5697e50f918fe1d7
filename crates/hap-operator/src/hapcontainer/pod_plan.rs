//! A workspace's single pod, which no ReplicaSet keeps: when to create, replace or delete it
//! (pure, with time passed in), and what the operator remembers of it between reconciles:
//! - when it first saw the live pod failed, on its own clock. The back-off before a replacement runs
//!   from then, not from the pod's condition times: those come from the kubelet's clock in whole
//!   seconds, and a time rounded up lies ahead of the operator's clock, which once made the wait
//!   negative and a failed pod was replaced at once;
//! - the failed pods replaced in a row. The status keeps the count too, but the cached status can lag
//!   behind the operator's last write, and a reconcile working from it would reset the count. The
//!   status seeds it after a restart;
//! - the uid of the pod it deleted last, until the cache no longer shows that pod: a cache that is
//!   behind still shows it, failed and without its deletion mark, and the plan must not replace it
//!   (and count it) again.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::{Resource, ResourceExt};

use crate::pipeline::apply::Outcome;
use crate::pipeline::backoff;
use crate::pipeline::events::Note;
use crate::pipeline::hash::same_hash;
use crate::pipeline::plan::{Action, GONE_POLL, Step, target};
use crate::pipeline::pods;
use crate::pipeline::reason::Reason;

/// What the operator remembers of one workspace's pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    replacements: i32,
    /// The failed pod's uid and when it was first seen failed.
    failure: Option<(String, Timestamp)>,
    /// The uid of the pod deleted last, while the cache still shows it.
    deleted: Option<String>,
    /// What the last plan's pod step leads to, settled once it was carried out.
    pending: Option<Pending>,
}

#[derive(Clone, Debug, PartialEq)]
struct Pending {
    pod: String,
    /// The live pod's uid, deleted if the step takes effect and removes it.
    live_uid: Option<String>,
    replacements: i32,
    replacements_if_undone: i32,
}

impl Memory {
    /// What is known before the operator has seen the pod itself: the status's count.
    pub fn seeded(replacements: i32) -> Self {
        Memory {
            replacements,
            ..Default::default()
        }
    }

    /// Failed pods replaced in a row so far.
    pub fn replacements(&self) -> i32 {
        self.replacements
    }

    /// The pod's history as of `now`, with `live` the pod as observed.
    pub fn history(&mut self, live: Option<&Pod>, now: Timestamp) -> PodHistory {
        let live_uid = live.and_then(|p| p.metadata.uid.as_deref());
        if self.deleted.as_deref() != live_uid {
            self.deleted = None;
        }
        let failed_uid = live.filter(|p| pods::ended(p)).and_then(|p| p.uid());
        self.failure = match (failed_uid, self.failure.take()) {
            (Some(uid), Some((seen, at))) if seen == uid => Some((seen, at)),
            (Some(uid), _) => Some((uid, now)),
            (None, _) => None,
        };
        PodHistory {
            replacements: self.replacements,
            failed_since: self.failure.as_ref().map(|(_, at)| *at),
            deleted: self.deleted.clone(),
        }
    }

    /// Keeps what the plan for `pod` leads to, until it is carried out.
    pub fn expect(&mut self, pod: &str, live: Option<&Pod>, plan: &PodPlan) {
        self.pending = Some(Pending {
            pod: pod.to_string(),
            live_uid: live.and_then(|p| p.uid()),
            replacements: plan.replacements,
            replacements_if_undone: plan.replacements_if_undone,
        });
    }

    /// Settles the count of replacements in a row once the plan was carried out (a pod step that
    /// failed, or whose delete found the pod gone already, replaced nothing), and the uid of the pod
    /// it deleted, if it did.
    pub fn settle(&mut self, outcome: &Outcome) {
        let Some(p) = self.pending.take() else { return };
        let took_effect = outcome.took_effect::<Pod>(&p.pod);
        self.replacements = if took_effect {
            p.replacements
        } else {
            p.replacements_if_undone
        };
        if took_effect && outcome.removed::<Pod>(&p.pod) && p.live_uid.is_some() {
            self.deleted = p.live_uid;
        }
    }
}

/// What the pod plan knows of the past.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodHistory {
    /// Failed pods replaced in a row so far.
    pub replacements: i32,
    /// When the operator first saw the live pod failed, on its own clock. The pod's own timestamps
    /// come from the kubelet's clock in whole seconds, and can even lie ahead of the operator's.
    pub failed_since: Option<Timestamp>,
    /// The uid of the pod the operator deleted last, while the cache may still show it: a cache that
    /// is behind shows it without its deletion mark, and it must not be replaced (and counted) twice.
    pub deleted: Option<String>,
}

/// The back-off before replacing a failed pod: the first delay and the cap, and how long a pod
/// must have been ready to end a run of replacements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

/// What to do about a single pod (no ReplicaSet keeps it), and what follows.
#[derive(Clone, Debug, PartialEq)]
pub struct PodPlan {
    pub step: Step,
    /// When to look again, if sooner than the resync.
    pub requeue: Option<Duration>,
    /// Failed pods replaced in a row once the step is done: reset by a ready pod, one more when a
    /// failed pod is replaced now.
    pub replacements: i32,
    /// The same count should the step not take effect (it failed, or found the pod gone already):
    /// no failed pod was replaced then.
    pub replacements_if_undone: i32,
}

/// Brings a pod in line: create it, replace it when its spec changed or when it failed (after a
/// back-off that doubles with each replacement in a row), delete it when it is no longer desired, or
/// wait while a deleted pod goes away. When the owner is not `runnable` (a configuration problem), no
/// pod is created or replaced.
pub fn pod(
    live: Option<&Pod>,
    desired: Option<&Pod>,
    runnable: bool,
    history: PodHistory,
    now: Timestamp,
    backoff: Backoff,
) -> PodPlan {
    let mut plan = PodPlan {
        step: Step::keep(),
        requeue: None,
        replacements: history.replacements,
        replacements_if_undone: history.replacements,
    };
    let Some(live) = live else {
        if let (Some(d), true) = (desired, runnable) {
            plan.step = crate::pipeline::plan::ensure::<Pod>(None, d);
        }
        return plan;
    };
    let name = live.name_any();
    let about = live.object_ref(&());
    if live.metadata.deletion_timestamp.is_some()
        || (history.deleted.is_some() && history.deleted == live.metadata.uid)
    {
        // The pod keeps its name, so its successor waits until it is gone.
        plan.step.action = Action::Wait(GONE_POLL);
        plan.requeue = Some(GONE_POLL);
        return plan;
    }
    // Only a pod that stayed ready a while ends a run of replacements: one that fails seconds after
    // it became ready (evicted, killed for memory) fails in a row, and waits longer each time.
    if pods::ready_for(live, now) >= backoff.reset_after {
        plan.replacements = 0;
        plan.replacements_if_undone = 0;
    }
    let Some(desired) = desired else {
        plan.step = Step {
            action: Action::Delete(target::<Pod>(&live.metadata)),
            note: Some(
                Note::normal(Reason::Suspended, format!("Deleted Pod {name}: size is 0"))
                    .about(about),
            ),
            component: None,
        };
        return plan;
    };
    if !same_hash(live, desired) && runnable {
        plan.step = Step {
            action: Action::Replace(target::<Pod>(&live.metadata)),
            note: Some(
                Note::normal(
                    Reason::Replacing,
                    format!(
                        "Deleted Pod {name} to apply the changed spec; it is created again once gone"
                    ),
                )
                .about(about),
            ),
            component: None,
        };
        plan.requeue = Some(GONE_POLL);
        return plan;
    }
    if pods::ended(live) {
        let delay = backoff::delay(
            u32::try_from(plan.replacements).unwrap_or(0),
            backoff.min,
            backoff.max,
        );
        // Never seen failed before: the back-off starts now.
        let since = history.failed_since.unwrap_or(now);
        let waited = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
        if waited < delay {
            plan.step.action = Action::Wait(delay - waited);
            plan.requeue = Some(delay - waited);
            return plan;
        }
        plan.replacements += 1;
        let note = format!(
            "Pod {name} failed ({}); replacing it (replacement {} in a row)",
            pods::failure_reason(live),
            plan.replacements
        );
        plan.step = Step {
            action: Action::Replace(target::<Pod>(&live.metadata)),
            note: Some(Note::warning(Reason::PodFailed, note).about(about)),
            component: None,
        };
        plan.requeue = Some(GONE_POLL);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::hash::hashed;
    use crate::pipeline::kinds::Object;
    use serde_json::json;

    fn at(seconds: f64) -> Timestamp {
        Timestamp::from_nanosecond((1_700_000_000.0 * 1e9 + seconds * 1e9) as i128).unwrap()
    }

    const BACKOFF: Backoff = Backoff {
        min: Duration::from_secs(5),
        max: Duration::from_secs(60),
        reset_after: Duration::from_secs(600),
    };

    fn desired_pod(image: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "w-happod", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
        .unwrap()
    }

    /// The desired pod as it runs (stamped by the plan that created it), in `phase`, with the uid
    /// `uid`.
    fn live_pod(phase: &str, ready: bool, uid: &str) -> Pod {
        let mut p = hashed(desired_pod("img:1"));
        p.metadata.uid = Some(uid.into());
        p.status = Some(
            serde_json::from_value(json!({
                "phase": phase, "reason": (phase == "Failed").then_some("Evicted"),
                // The kubelet's clock, in whole seconds, a little ahead of the operator's.
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                                "lastTransitionTime": "2023-11-14T22:13:21Z"}]
            }))
            .unwrap(),
        );
        p
    }

    fn history(replacements: i32, failed_since: Option<Timestamp>) -> PodHistory {
        PodHistory {
            replacements,
            failed_since,
            deleted: None,
        }
    }

    #[test]
    fn a_missing_pod_is_created_only_when_runnable() {
        let plan = pod(
            None,
            Some(&desired_pod("img:1")),
            true,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert!(matches!(plan.step.action, Action::Create(Object::Pod(_))));
        assert_eq!(plan.step.note.unwrap().message, "Created Pod w-happod");
        let blocked = pod(
            None,
            Some(&desired_pod("img:1")),
            false,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert_eq!(blocked.step, Step::keep());
    }

    #[test]
    fn a_failed_pod_waits_out_its_back_off_on_the_operators_clock() {
        let failed = live_pod("Failed", false, "u1");
        // The kubelet's condition says 22:13:21, half a second ahead of the operator, which first saw
        // the failure at 22:13:20.5 (at(0.5)): the back-off runs from then, whatever the pod says.
        let seen = at(0.5);
        let look = |t: f64, replacements: i32| {
            pod(
                Some(&failed),
                Some(&desired_pod("img:1")),
                true,
                history(replacements, Some(seen)),
                at(t),
                BACKOFF,
            )
        };
        let first = look(0.5, 0);
        assert_eq!(first.step.action, Action::Wait(Duration::from_secs(5)));
        assert_eq!(first.requeue, Some(Duration::from_secs(5)));
        let later = look(4.0, 0);
        assert_eq!(later.step.action, Action::Wait(Duration::from_millis(1500)));
        let due = look(5.5, 0);
        assert!(
            matches!(due.step.action, Action::Replace(Object::Pod(ref p)) if p.metadata.uid.as_deref() == Some("u1"))
        );
        assert_eq!((due.replacements, due.replacements_if_undone), (1, 0));
        let note = due.step.note.unwrap();
        assert_eq!(note.kind, kube::runtime::events::EventType::Warning);
        assert_eq!(note.reason, Reason::PodFailed);
        assert_eq!(
            note.message,
            "Pod w-happod failed (Evicted); replacing it (replacement 1 in a row)"
        );
        // The third replacement in a row waits 5 s * 2^2.
        assert_eq!(
            look(19.0, 2).step.action,
            Action::Wait(Duration::from_millis(1500))
        );
        assert_eq!(look(20.5, 2).replacements, 3);
    }

    #[test]
    fn a_pod_deleted_already_is_awaited_even_if_the_cache_still_shows_it_failed() {
        // Replaced at the cap; the status write triggers a reconcile before the cache has caught up,
        // so the same failed pod shows up again with no deletion mark.
        let failed = live_pod("Failed", false, "u1");
        let after = PodHistory {
            deleted: Some("u1".into()),
            ..history(3, Some(at(0.0)))
        };
        let plan = pod(
            Some(&failed),
            Some(&desired_pod("img:1")),
            true,
            after.clone(),
            at(500.0),
            BACKOFF,
        );
        assert_eq!(
            plan.step,
            Step {
                action: Action::Wait(GONE_POLL),
                note: None,
                component: None
            }
        );
        assert_eq!(plan.replacements, 3, "counted once");
        let successor = live_pod("Failed", false, "u2");
        let next = pod(
            Some(&successor),
            Some(&desired_pod("img:1")),
            true,
            PodHistory {
                failed_since: None,
                ..after
            },
            at(500.0),
            BACKOFF,
        );
        assert_eq!(
            next.step.action,
            Action::Wait(Duration::from_secs(40)),
            "its failed successor waits out a back-off of its own (5 s * 2^3)"
        );
    }

    #[test]
    fn a_failure_seen_for_the_first_time_starts_a_whole_back_off() {
        let failed = live_pod("Failed", false, "u1");
        let plan = pod(
            Some(&failed),
            Some(&desired_pod("img:1")),
            true,
            history(0, None),
            at(100.0),
            BACKOFF,
        );
        assert_eq!(plan.step.action, Action::Wait(Duration::from_secs(5)));
    }

    #[test]
    fn a_clock_that_runs_backwards_never_cuts_the_back_off_short() {
        let failed = live_pod("Failed", false, "u1");
        let plan = pod(
            Some(&failed),
            Some(&desired_pod("img:1")),
            true,
            history(0, Some(at(10.0))),
            at(9.0),
            BACKOFF,
        );
        assert_eq!(plan.step.action, Action::Wait(Duration::from_secs(5)));
    }

    #[test]
    fn a_pod_ready_long_enough_resets_the_count_and_a_changed_spec_replaces_it_at_once() {
        // Ready since at(1.0) by the kubelet's clock.
        let ready = live_pod("Running", true, "u1");
        let just_ready = pod(
            Some(&ready),
            Some(&desired_pod("img:1")),
            true,
            history(4, None),
            at(0.0),
            BACKOFF,
        );
        assert_eq!(
            (just_ready.step, just_ready.replacements),
            (Step::keep(), 4),
            "a pod just ready (its time even ahead of ours) keeps the count"
        );
        let a_while = pod(
            Some(&ready),
            Some(&desired_pod("img:1")),
            true,
            history(4, None),
            at(300.0),
            BACKOFF,
        );
        assert_eq!(a_while.replacements, 4, "ready 5 minutes of the 10");
        let same = pod(
            Some(&ready),
            Some(&desired_pod("img:1")),
            true,
            history(4, None),
            at(601.0),
            BACKOFF,
        );
        assert_eq!((same.step, same.replacements), (Step::keep(), 0));
        let changed = pod(
            Some(&ready),
            Some(&desired_pod("img:2")),
            true,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert!(matches!(changed.step.action, Action::Replace(_)));
        assert_eq!(changed.step.note.unwrap().reason, Reason::Replacing);
        assert_eq!(changed.requeue, Some(GONE_POLL));
        let blocked = pod(
            Some(&ready),
            Some(&desired_pod("img:2")),
            false,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert_eq!(
            blocked.step,
            Step::keep(),
            "a configuration problem replaces nothing"
        );
    }

    #[test]
    fn a_suspended_pod_is_deleted_and_a_terminating_one_awaited() {
        let ready = live_pod("Running", true, "u1");
        let suspended = pod(Some(&ready), None, true, history(0, None), at(0.0), BACKOFF);
        assert!(matches!(suspended.step.action, Action::Delete(_)));
        assert_eq!(suspended.step.note.unwrap().reason, Reason::Suspended);
        let mut going = live_pod("Running", true, "u1");
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(0.0)),
        );
        let plan = pod(
            Some(&going),
            Some(&desired_pod("img:1")),
            true,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert_eq!(plan.step.action, Action::Wait(GONE_POLL));
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, phase: &str) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "w-happod", "uid": uid}, "status": {"phase": phase}}),
        )
        .unwrap()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn plan(replacements: i32, replacements_if_undone: i32) -> PodPlan {
        PodPlan {
            step: Step::keep(),
            requeue: None,
            replacements,
            replacements_if_undone,
        }
    }

    #[test]
    fn a_failure_is_dated_when_first_seen_and_forgotten_with_its_pod() {
        let mut m = Memory::default();
        let running = pod("a", "Running");
        let failed = pod("a", "Failed");
        assert_eq!(m.history(Some(&running), at(0)).failed_since, None);
        assert_eq!(m.history(Some(&failed), at(3)).failed_since, Some(at(3)));
        assert_eq!(
            m.history(Some(&failed), at(9)).failed_since,
            Some(at(3)),
            "the same failure keeps its first sighting"
        );
        let successor = pod("b", "Failed");
        assert_eq!(
            m.history(Some(&successor), at(12)).failed_since,
            Some(at(12))
        );
        assert_eq!(m.history(None, at(13)).failed_since, None);
    }

    #[test]
    fn the_count_is_seeded_from_the_status_and_settled_by_what_took_effect() {
        let mut m = Memory::seeded(2);
        assert_eq!(m.history(None, at(0)).replacements, 2);
        let failed = pod("a", "Failed");
        m.expect("w-happod", Some(&failed), &plan(3, 2));
        m.settle(&Outcome::default());
        assert_eq!(m.replacements(), 3, "the replacement took effect");
        m.expect("w-happod", Some(&failed), &plan(4, 3));
        let mut failed_step = Outcome::default();
        failed_step.failed.push(("Pod".into(), "w-happod".into()));
        m.settle(&failed_step);
        assert_eq!(m.replacements(), 3, "a failed step replaced nothing");
    }

    #[test]
    fn a_deleted_pod_is_remembered_until_the_cache_no_longer_shows_it() {
        let mut m = Memory::default();
        let failed = pod("a", "Failed");
        m.history(Some(&failed), at(0));
        m.expect("w-happod", Some(&failed), &plan(1, 0));
        let mut removed = Outcome::default();
        removed.removed.push(("Pod".into(), "w-happod".into()));
        m.settle(&removed);
        assert_eq!(
            m.history(Some(&failed), at(1)).deleted.as_deref(),
            Some("a"),
            "the cache is behind"
        );
        m.expect("w-happod", Some(&failed), &plan(1, 1));
        m.settle(&Outcome::default());
        assert_eq!(
            m.history(Some(&failed), at(2)).deleted.as_deref(),
            Some("a")
        );
        assert_eq!(m.history(None, at(3)).deleted, None);
        assert_eq!(
            m.history(Some(&failed), at(4)).deleted,
            None,
            "forgotten once gone"
        );
    }
}
