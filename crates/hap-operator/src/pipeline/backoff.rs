//! Exponential back-off: one delay function, for retrying failed reconciliations and for replacing
//! failed pods alike, and the per-object failure counts the retries go by.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The delay after `n` earlier attempts in a row: `min`, doubling with each, capped at `max`.
pub fn delay(n: u32, min: Duration, max: Duration) -> Duration {
    min.saturating_mul(2u32.saturating_pow(n.min(16))).min(max)
}

/// Consecutive failures per object, by uid: an object made again under the same name starts afresh.
#[derive(Default)]
pub struct Retries {
    failures: Mutex<HashMap<String, u32>>,
}

impl Retries {
    /// The delay before retrying `key` after one more failure.
    pub fn next(&self, key: &str, min: Duration, max: Duration) -> Duration {
        let mut failures = self.failures.lock().expect("failure counts");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n += 1;
        delay(*n - 1, min, max)
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("failure counts").remove(key);
    }

    /// Forgets the objects `alive` says are gone (deleted while failing).
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        self.failures
            .lock()
            .expect("failure counts")
            .retain(|k, _| alive(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_minimum_up_to_the_cap() {
        let (min, max) = (Duration::from_secs(10), Duration::from_secs(300));
        assert_eq!(delay(0, min, max), Duration::from_secs(10));
        assert_eq!(delay(1, min, max), Duration::from_secs(20));
        assert_eq!(delay(3, min, max), Duration::from_secs(80));
        assert_eq!(delay(10, min, max), max);
        assert_eq!(delay(u32::MAX, min, max), max);
    }

    #[test]
    fn retries_grow_per_object_and_start_over_after_a_success() {
        let r = Retries::default();
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(r.next("ns/a", min, max), Duration::from_secs(1));
        assert_eq!(r.next("ns/a", min, max), Duration::from_secs(2));
        assert_eq!(r.next("ns/b", min, max), Duration::from_secs(1));
        r.succeeded("ns/a");
        assert_eq!(r.next("ns/a", min, max), Duration::from_secs(1));
    }

    #[test]
    fn the_counts_of_objects_gone_are_forgotten() {
        let r = Retries::default();
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        r.next("a", min, max);
        r.next("b", min, max);
        r.retain(|k| k == "b");
        assert_eq!(r.next("a", min, max), Duration::from_secs(1));
        assert_eq!(r.next("b", min, max), Duration::from_secs(2));
    }
}
