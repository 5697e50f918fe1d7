//! What the operator remembers of each owner's single pod between reconciles, for the pod plan:
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

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::plan::PodHistory;
use crate::pods;

#[derive(Default)]
struct Remembered {
    replacements: i32,
    /// The failed pod's uid and when it was first seen failed.
    failure: Option<(String, Timestamp)>,
    /// The uid of the pod deleted last, while the cache still shows it.
    deleted: Option<String>,
}

#[derive(Default)]
pub struct PodMemory {
    by_owner: Mutex<HashMap<String, Remembered>>,
}

impl PodMemory {
    /// The history of `owner`'s pod as of `now`, with `live` its pod as observed and
    /// `status_replacements` what its status says (used until the operator knows better).
    pub fn history(
        &self,
        owner: &str,
        live: Option<&Pod>,
        status_replacements: i32,
        now: Timestamp,
    ) -> PodHistory {
        let mut memory = self.by_owner.lock().expect("pod memory");
        let r = memory
            .entry(owner.to_string())
            .or_insert_with(|| Remembered {
                replacements: status_replacements,
                ..Default::default()
            });
        let live_uid = live.and_then(|p| p.metadata.uid.as_deref());
        if r.deleted.as_deref() != live_uid {
            r.deleted = None;
        }
        let failed_uid = live.filter(|p| pods::ended(p)).and_then(|p| p.uid());
        r.failure = match (failed_uid, r.failure.take()) {
            (Some(uid), Some((seen, at))) if seen == uid => Some((seen, at)),
            (Some(uid), _) => Some((uid, now)),
            (None, _) => None,
        };
        PodHistory {
            replacements: r.replacements,
            failed_since: r.failure.as_ref().map(|(_, at)| *at),
            deleted: r.deleted.clone(),
        }
    }

    /// Forgets the owners `alive` says are gone.
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        self.by_owner
            .lock()
            .expect("pod memory")
            .retain(|k, _| alive(k));
    }

    /// Keeps the count of replacements in a row once a plan was carried out, and the uid of the pod
    /// it deleted, if it did.
    pub fn record(&self, owner: &str, replacements: i32, deleted: Option<String>) {
        let mut memory = self.by_owner.lock().expect("pod memory");
        let r = memory.entry(owner.to_string()).or_default();
        r.replacements = replacements;
        if deleted.is_some() {
            r.deleted = deleted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, phase: &str) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "uid": uid}, "status": {"phase": phase}}),
        )
        .unwrap()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn a_failure_is_dated_when_first_seen_and_forgotten_with_its_pod() {
        let m = PodMemory::default();
        let running = pod("a", "Running");
        let failed = pod("a", "Failed");
        assert_eq!(
            m.history("ns/w", Some(&running), 0, at(0)).failed_since,
            None
        );
        assert_eq!(
            m.history("ns/w", Some(&failed), 0, at(3)).failed_since,
            Some(at(3))
        );
        assert_eq!(
            m.history("ns/w", Some(&failed), 0, at(9)).failed_since,
            Some(at(3)),
            "the same failure keeps its first sighting"
        );
        let successor = pod("b", "Failed");
        assert_eq!(
            m.history("ns/w", Some(&successor), 0, at(12)).failed_since,
            Some(at(12))
        );
        assert_eq!(m.history("ns/w", None, 0, at(13)).failed_since, None);
    }

    #[test]
    fn the_count_is_seeded_from_the_status_then_kept_even_if_the_status_lags() {
        let m = PodMemory::default();
        assert_eq!(m.history("ns/w", None, 2, at(0)).replacements, 2);
        m.record("ns/w", 3, None);
        assert_eq!(
            m.history("ns/w", None, 2, at(1)).replacements,
            3,
            "a stale cached status does not reset it"
        );
    }

    #[test]
    fn owners_gone_are_forgotten() {
        let m = PodMemory::default();
        m.record("u1", 3, None);
        m.record("u2", 2, None);
        m.retain(|k| k == "u2");
        assert_eq!(m.history("u1", None, 0, at(0)).replacements, 0);
        assert_eq!(m.history("u2", None, 0, at(0)).replacements, 2);
    }

    #[test]
    fn a_deleted_pod_is_remembered_until_the_cache_no_longer_shows_it() {
        let m = PodMemory::default();
        let failed = pod("a", "Failed");
        m.history("ns/w", Some(&failed), 0, at(0));
        m.record("ns/w", 1, Some("a".into()));
        assert_eq!(
            m.history("ns/w", Some(&failed), 0, at(1))
                .deleted
                .as_deref(),
            Some("a"),
            "the cache is behind"
        );
        m.record("ns/w", 1, None);
        assert_eq!(
            m.history("ns/w", Some(&failed), 0, at(2))
                .deleted
                .as_deref(),
            Some("a")
        );
        assert_eq!(m.history("ns/w", None, 0, at(3)).deleted, None);
        assert_eq!(
            m.history("ns/w", Some(&failed), 0, at(4)).deleted,
            None,
            "forgotten once gone"
        );
    }
}
