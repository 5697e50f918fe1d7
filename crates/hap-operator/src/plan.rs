//! The plan step (pure): from a live child (as cached) and the desired one, what to do and which event
//! to send once it is done. Every resource's pipeline plans its children with these functions, and
//! the executor (`apply`) only carries the steps out. Time comes in as an argument, so the rules for
//! when to replace a failed pod are tested without a cluster or a clock.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::{Resource, ResourceExt};

use crate::backoff;
use crate::events::{Note, reason};
use crate::hash::hash_on;
use crate::kinds::{Child, Object};
use crate::pods;

/// How long to wait before looking again at a pod that is going away.
pub const GONE_POLL: Duration = Duration::from_secs(2);

/// What to do about one child.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Nothing: it is as it should be, or it is not the operator's to touch.
    Keep,
    /// Server-side apply: it is missing, changed, or was edited.
    Apply(Object),
    /// Create this Secret once, with a fresh random value for each of these keys, and never write it
    /// again.
    CreateOnce(Secret, Vec<String>),
    /// Delete it: the spec no longer calls for it.
    Delete(Object),
    /// Delete it to create it anew once it is gone (a pod that failed, or whose spec changed).
    Replace(Object),
    /// Leave it for now and look again after this long.
    Wait(Duration),
}

/// One child's action and the event to send once it is done.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub action: Action,
    pub note: Option<Note>,
}

impl Step {
    pub fn keep() -> Self {
        Step {
            action: Action::Keep,
            note: None,
        }
    }
}

fn kind<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_string()
}

/// The live child as a target for a delete: its kind, name and uid (the uid makes sure the delete
/// removes the child that was observed, not a successor of the same name).
fn target<K: Child>(meta: &ObjectMeta) -> Object {
    let mut obj = K::default();
    *obj.meta_mut() = ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        ..Default::default()
    };
    obj.into_object()
}

fn owned_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == owner_uid)
}

/// A child that should exist as built: applied when it is missing, when its hash differs, or when it
/// was edited since.
pub fn ensure<K: Child>(live: Option<&K::Live>, desired: K) -> Step {
    if let Some(l) = live
        && hash_on(l) == hash_on(&desired)
        && K::unchanged(l, &desired)
    {
        return Step::keep();
    }
    let verb = if live.is_some() {
        reason::UPDATED
    } else {
        reason::CREATED
    };
    let note = Note::normal(
        verb,
        format!("{verb} {} {}", kind::<K>(), desired.name_any()),
    )
    .about(desired.object_ref(&()));
    Step {
        action: Action::Apply(desired.into_object()),
        note: Some(note),
    }
}

/// A child the spec may stop calling for (Spark's RBAC after executors went to 0): ensured while it is
/// desired, deleted after, if it is the owner's.
pub fn ensure_or_remove<K: Child>(
    live: Option<&K::Live>,
    desired: Option<K>,
    owner_uid: Option<&str>,
) -> Step {
    match (desired, live) {
        (Some(d), _) => ensure(live, d),
        (None, Some(l)) if owner_uid.is_some_and(|uid| owned_by(l.meta(), uid)) => Step {
            action: Action::Delete(target::<K>(l.meta())),
            note: Some(
                Note::normal(
                    reason::DELETED,
                    format!("Deleted {} {}: no longer needed", kind::<K>(), l.name_any()),
                )
                .about(l.object_ref(&())),
            ),
        },
        (None, _) => Step::keep(),
    }
}

/// A child the spec may stop calling for, kept when it does (a volume holds the user's notebooks).
pub fn ensure_if_desired<K: Child>(live: Option<&K::Live>, desired: Option<K>) -> Step {
    desired.map_or_else(Step::keep, |d| ensure(live, d))
}

/// A Secret created once with generated values (`generate` names their keys) and never rewritten:
/// rotating a generated token would log every user out. `what` says what was generated, for the event.
pub fn create_once(
    live: Option<&PartialObjectMeta<Secret>>,
    desired: Option<Secret>,
    generate: &[&str],
    what: &str,
) -> Step {
    match (desired, live) {
        (Some(d), None) => {
            let note = Note::normal(
                reason::CREATED,
                format!("Created Secret {} with {what}", d.name_any()),
            )
            .about(d.object_ref(&()));
            Step {
                action: Action::CreateOnce(d, generate.iter().map(|k| k.to_string()).collect()),
                note: Some(note),
            }
        }
        _ => Step::keep(),
    }
}

/// A run-to-completion child (a Job): created when missing, and, its template being immutable,
/// deleted to be created anew once its hash changes. One that finished is kept as it is: it is
/// the record that the work was done. Deleted when the spec stops calling for it, if it is the owner's.
pub fn job<K: Child>(live: Option<&K::Live>, desired: Option<K>, owner_uid: Option<&str>) -> Step {
    match (desired, live) {
        (Some(d), Some(l)) if hash_on(l) != hash_on(&d) => Step {
            action: Action::Replace(target::<K>(l.meta())),
            note: Some(
                Note::normal(
                    reason::REPLACING,
                    format!(
                        "Deleted {} {} to run its changed template; it is created again once gone",
                        kind::<K>(),
                        l.name_any()
                    ),
                )
                .about(l.object_ref(&())),
            ),
        },
        (Some(_), Some(_)) => Step::keep(),
        (desired, live) => ensure_or_remove(live, desired, owner_uid),
    }
}

/// A child that must wait for another to be done first (a server for its schema Job): until `ready`,
/// it is not created, and one that exists is kept at what it was, not changed to what it will be.
pub fn ensure_when<K: Child>(live: Option<&K::Live>, desired: Option<K>, ready: bool) -> Step {
    if ready {
        ensure_if_desired(live, desired)
    } else {
        Step::keep()
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

/// The back-off before replacing a failed pod: the first delay and the cap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
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
    desired: Option<Pod>,
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
            plan.step = ensure::<Pod>(None, d);
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
    if pods::ready(live) {
        plan.replacements = 0;
        plan.replacements_if_undone = 0;
    }
    let Some(desired) = desired else {
        plan.step = Step {
            action: Action::Delete(target::<Pod>(&live.metadata)),
            note: Some(
                Note::normal(reason::SUSPENDED, format!("Deleted Pod {name}: size is 0"))
                    .about(about),
            ),
        };
        return plan;
    };
    if hash_on(live) != hash_on(&desired) && runnable {
        plan.step = Step {
            action: Action::Replace(target::<Pod>(&live.metadata)),
            note: Some(
                Note::normal(
                    reason::REPLACING,
                    format!(
                        "Deleted Pod {name} to apply the changed spec; it is created again once gone"
                    ),
                )
                .about(about),
            ),
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
            note: Some(Note::warning(reason::POD_FAILED, note).about(about)),
        };
        plan.requeue = Some(GONE_POLL);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hashed;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    fn at(seconds: f64) -> Timestamp {
        Timestamp::from_nanosecond((1_700_000_000.0 * 1e9 + seconds * 1e9) as i128).unwrap()
    }

    const BACKOFF: Backoff = Backoff {
        min: Duration::from_secs(5),
        max: Duration::from_secs(60),
    };

    fn desired_pod(image: &str) -> Pod {
        hashed(
            serde_json::from_value(json!({
                "metadata": {"name": "w-happod", "namespace": "ns"},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }))
            .unwrap(),
        )
    }

    /// The desired pod as it runs, in `phase`, with the uid `uid`.
    fn live_pod(phase: &str, ready: bool, uid: &str) -> Pod {
        let mut p = desired_pod("img:1");
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
            Some(desired_pod("img:1")),
            true,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert!(matches!(plan.step.action, Action::Apply(Object::Pod(_))));
        assert_eq!(plan.step.note.unwrap().message, "Created Pod w-happod");
        let blocked = pod(
            None,
            Some(desired_pod("img:1")),
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
                Some(desired_pod("img:1")),
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
        assert_eq!(note.reason, "PodFailed");
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
            Some(desired_pod("img:1")),
            true,
            after.clone(),
            at(500.0),
            BACKOFF,
        );
        assert_eq!(
            plan.step,
            Step {
                action: Action::Wait(GONE_POLL),
                note: None
            }
        );
        assert_eq!(plan.replacements, 3, "counted once");
        let successor = live_pod("Failed", false, "u2");
        let next = pod(
            Some(&successor),
            Some(desired_pod("img:1")),
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
            Some(desired_pod("img:1")),
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
            Some(desired_pod("img:1")),
            true,
            history(0, Some(at(10.0))),
            at(9.0),
            BACKOFF,
        );
        assert_eq!(plan.step.action, Action::Wait(Duration::from_secs(5)));
    }

    #[test]
    fn a_ready_pod_resets_the_count_and_a_changed_spec_replaces_it_at_once() {
        let ready = live_pod("Running", true, "u1");
        let same = pod(
            Some(&ready),
            Some(desired_pod("img:1")),
            true,
            history(4, None),
            at(0.0),
            BACKOFF,
        );
        assert_eq!((same.step, same.replacements), (Step::keep(), 0));
        let changed = pod(
            Some(&ready),
            Some(desired_pod("img:2")),
            true,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert!(matches!(changed.step.action, Action::Replace(_)));
        assert_eq!(changed.step.note.unwrap().reason, "Replacing");
        assert_eq!(changed.requeue, Some(GONE_POLL));
        let blocked = pod(
            Some(&ready),
            Some(desired_pod("img:2")),
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
        assert_eq!(suspended.step.note.unwrap().reason, "Suspended");
        let mut going = live_pod("Running", true, "u1");
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(0.0)),
        );
        let plan = pod(
            Some(&going),
            Some(desired_pod("img:1")),
            true,
            history(0, None),
            at(0.0),
            BACKOFF,
        );
        assert_eq!(plan.step.action, Action::Wait(GONE_POLL));
    }

    fn config_map(data: &str) -> ConfigMap {
        hashed(ConfigMap {
            metadata: ObjectMeta {
                name: Some("w-spark-conf".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some([("k".to_string(), data.to_string())].into()),
            ..Default::default()
        })
    }

    #[test]
    fn children_are_applied_when_missing_changed_or_edited() {
        let desired = config_map("a");
        let created = ensure::<ConfigMap>(None, desired.clone());
        assert!(matches!(
            created.action,
            Action::Apply(Object::ConfigMap(_))
        ));
        assert_eq!(
            created.note.unwrap().message,
            "Created ConfigMap w-spark-conf"
        );
        assert_eq!(ensure(Some(&desired), desired.clone()), Step::keep());
        let mut edited = desired.clone();
        edited.data = Some([("k".to_string(), "edited".to_string())].into());
        let undone = ensure(Some(&edited), desired.clone());
        assert_eq!(undone.note.unwrap().reason, "Updated");
        let changed = ensure(Some(&desired), config_map("b"));
        assert!(matches!(changed.action, Action::Apply(_)));
    }

    #[test]
    fn only_owned_children_are_removed() {
        let mut live = config_map("a");
        live.metadata.uid = Some("c1".into());
        live.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                uid: "owner".into(),
                ..Default::default()
            },
        ]);
        let removed = ensure_or_remove::<ConfigMap>(Some(&live), None, Some("owner"));
        assert!(
            matches!(removed.action, Action::Delete(Object::ConfigMap(ref c)) if c.metadata.uid.as_deref() == Some("c1"))
        );
        assert_eq!(
            removed.note.unwrap().message,
            "Deleted ConfigMap w-spark-conf: no longer needed"
        );
        assert_eq!(
            ensure_or_remove::<ConfigMap>(Some(&live), None, Some("someone else")),
            Step::keep()
        );
        assert_eq!(
            ensure_if_desired::<ConfigMap>(Some(&live), None),
            Step::keep()
        );
    }
}
