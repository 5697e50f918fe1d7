//! How fresh each watch's cache is: when the watch last heard from the API server (an event, a
//! bookmark, or the answer to a re-watch), whether it is failing or re-listing and since when, and
//! how often each has happened. The leader election's tries of the Lease are followed the same way,
//! as `leases`: an instance that cannot reach the API server is not a standby either. The metrics
//! report it per watch, and `/readyz` fails while a cache the controllers read is stale, so an operator that cannot see the cluster shows as not ready in
//! `kubectl get pods` instead of acting on old state unnoticed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A watch that has heard nothing for this long is stale. Every watch asks the API server to end it
/// after `crate::watches::WATCH_TIMEOUT` and then watches again, and the server sends bookmarks in
/// between, so a healthy watch is never silent much longer than that timeout.
pub const SILENT_AFTER: Duration = Duration::from_secs(90);
/// A watch failing (connection refused, reset, or an error answer) for this long is stale.
pub const FAILING_AFTER: Duration = Duration::from_secs(10);
/// A cache being listed (the first time, or again after the API server forgot the watch's place)
/// for this long is stale: until the list is whole, the cache may miss objects.
pub const LISTING_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Watch {
    running: bool,
    heard: Instant,
    failing_since: Option<Instant>,
    listing_since: Option<Instant>,
    failures: u64,
    lists: u64,
}

/// What the metrics show of one watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub resource: String,
    pub seconds_since_heard: f64,
    pub failures: u64,
    pub lists: u64,
}

/// Every watch of this process, by the resource it watches (`pods`, `hapcontainers`, ...).
#[derive(Debug, Default)]
pub struct Freshness {
    watches: Mutex<BTreeMap<String, Watch>>,
}

impl Freshness {
    fn with<T>(&self, resource: &str, f: impl FnOnce(&mut Watch) -> T) -> Option<T> {
        let mut watches = self.watches.lock().expect("freshness");
        watches.get_mut(resource).filter(|w| w.running).map(f)
    }

    /// A watch starts: it has listed nothing yet. Its counts carry on from an earlier run.
    pub fn started(&self, resource: &str, now: Instant) {
        let mut watches = self.watches.lock().expect("freshness");
        let w = watches.entry(resource.to_string()).or_insert(Watch {
            running: true,
            heard: now,
            failing_since: None,
            listing_since: None,
            failures: 0,
            lists: 0,
        });
        w.running = true;
        w.heard = now;
        w.failing_since = None;
        w.listing_since = Some(now);
    }

    /// A watch stopped (shutdown, or the Lease lost): it no longer counts for readiness.
    pub fn stopped(&self, resource: &str) {
        if let Some(w) = self.watches.lock().expect("freshness").get_mut(resource) {
            w.running = false;
        }
    }

    /// The API server said something on the watch: it is alive.
    pub fn heard(&self, resource: &str, now: Instant) {
        self.with(resource, |w| {
            w.heard = now;
            w.failing_since = None;
        });
    }

    /// The watch failed; it is retried with back-off.
    pub fn failed(&self, resource: &str, now: Instant) {
        self.with(resource, |w| {
            w.failures += 1;
            w.failing_since.get_or_insert(now);
        });
    }

    /// A list begins (kube's watcher says so again before each retry of a failed list, so this
    /// neither counts a list nor ends a spell of failures).
    pub fn listing(&self, resource: &str, now: Instant) {
        self.with(resource, |w| {
            w.listing_since.get_or_insert(now);
        });
    }

    /// The list is whole, and in the cache.
    pub fn listed(&self, resource: &str, now: Instant) {
        self.with(resource, |w| {
            w.lists += 1;
            w.heard = now;
            w.failing_since = None;
            w.listing_since = None;
        });
    }

    /// Why each stale running watch is stale, in words; empty when every cache is fresh.
    pub fn stale(&self, now: Instant) -> Vec<String> {
        let age = |since: Instant| now.saturating_duration_since(since);
        let watches = self.watches.lock().expect("freshness");
        watches
            .iter()
            .filter(|(_, w)| w.running)
            .filter_map(|(resource, w)| {
                if let Some(since) = w.failing_since.filter(|s| age(*s) > FAILING_AFTER) {
                    Some(format!(
                        "{resource}: watch failing for {} s",
                        age(since).as_secs()
                    ))
                } else if let Some(since) = w.listing_since.filter(|s| age(*s) > LISTING_AFTER) {
                    Some(format!(
                        "{resource}: not listed for {} s",
                        age(since).as_secs()
                    ))
                } else if age(w.heard) > SILENT_AFTER {
                    Some(format!(
                        "{resource}: nothing heard for {} s",
                        age(w.heard).as_secs()
                    ))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Each watch's figures (a stopped one's counts too, so that counters never go back).
    pub fn figures(&self, now: Instant) -> Vec<(Figures, bool)> {
        let watches = self.watches.lock().expect("freshness");
        watches
            .iter()
            .map(|(resource, w)| {
                let f = Figures {
                    resource: resource.clone(),
                    seconds_since_heard: now.saturating_duration_since(w.heard).as_secs_f64(),
                    failures: w.failures,
                    lists: w.lists,
                };
                (f, w.running)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn a_watch_that_lists_and_hears_is_fresh() {
        let (f, t) = (Freshness::default(), Instant::now());
        f.started("pods", t);
        f.listing("pods", at(t, 1));
        f.listed("pods", at(t, 2));
        f.heard("pods", at(t, 80));
        assert!(f.stale(at(t, 160)).is_empty());
    }

    #[test]
    fn a_cache_never_listed_is_stale_after_the_bound() {
        let (f, t) = (Freshness::default(), Instant::now());
        f.started("pods", t);
        assert!(f.stale(at(t, 29)).is_empty());
        assert_eq!(f.stale(at(t, 31)), ["pods: not listed for 31 s"]);
    }

    #[test]
    fn a_failing_watch_is_stale_after_the_bound_until_it_hears_again() {
        let (f, t) = (Freshness::default(), Instant::now());
        f.started("services", t);
        f.listed("services", at(t, 1));
        for s in [10, 12, 16, 19] {
            f.failed("services", at(t, s));
        }
        assert!(f.stale(at(t, 19)).is_empty());
        assert_eq!(
            f.stale(at(t, 21)),
            ["services: watch failing for 11 s"],
            "failing since the first failure in a row"
        );
        f.heard("services", at(t, 22));
        assert!(f.stale(at(t, 23)).is_empty());
        assert_eq!(f.figures(at(t, 23))[0].0.failures, 4);
    }

    #[test]
    fn a_list_retried_after_failures_neither_ends_the_spell_nor_counts() {
        let (f, t) = (Freshness::default(), Instant::now());
        f.started("pods", t);
        f.listed("pods", at(t, 1));
        for s in [5, 7, 9, 13] {
            f.failed("pods", at(t, s));
            f.listing("pods", at(t, s));
        }
        assert_eq!(f.stale(at(t, 16)), ["pods: watch failing for 11 s"]);
        f.listed("pods", at(t, 17));
        assert!(f.stale(at(t, 17)).is_empty());
        assert_eq!(f.figures(at(t, 17))[0].0.lists, 2);
    }

    #[test]
    fn a_silent_watch_is_stale() {
        let (f, t) = (Freshness::default(), Instant::now());
        f.started("secrets", t);
        f.listed("secrets", at(t, 1));
        assert!(f.stale(at(t, 90)).is_empty());
        assert_eq!(f.stale(at(t, 92)), ["secrets: nothing heard for 91 s"]);
    }

    #[test]
    fn a_stopped_watch_counts_no_more_but_keeps_its_counts() {
        let (f, t) = (Freshness::default(), Instant::now());
        f.started("pods", t);
        f.listed("pods", t);
        f.stopped("pods");
        f.failed("pods", at(t, 1));
        assert!(f.stale(at(t, 500)).is_empty());
        f.started("pods", at(t, 600));
        let (figures, running) = f.figures(at(t, 600)).remove(0);
        assert!(running);
        assert_eq!((figures.lists, figures.failures), (1, 0));
    }

    #[test]
    fn what_no_watch_follows_is_ignored() {
        let (f, t) = (Freshness::default(), Instant::now());
        f.heard("leases", t);
        f.failed("leases", t);
        assert!(f.figures(t).is_empty());
    }
}
