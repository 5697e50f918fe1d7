//! The operator's Prometheus metrics (prometheus-client): reconciles, failures by step and API reason,
//! durations, leadership, and whether the process is ready. `crate::endpoints` serves them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::freshness::Freshness;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The step that failed: `read`, `apply`, `create`, `delete` or `status`.
    pub step: &'static str,
    /// The API's reason (`Forbidden`, `Conflict`, ...), `HTTP<code>`, or `Transport`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    /// The resource watched: `pods`, `hapcontainers`, ...
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The HTTP status: 429 (too many requests, the API server's priority and fairness), 500-504.
    pub code: u16,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    refusals: Family<RefusalLabels, Counter>,
    freshness: Arc<Freshness>,
    watch_silence: Family<WatchLabels, Gauge<f64, AtomicU64>>,
    watch_failures: Family<WatchLabels, Counter>,
    watch_lists: Family<WatchLabels, Counter>,
    reconciles: Family<ResultLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Histogram,
    leader: Gauge,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hap_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let leader = Gauge::default();
        let watch_silence = Family::<WatchLabels, Gauge<f64, AtomicU64>>::default();
        let watch_failures = Family::<WatchLabels, Counter>::default();
        let watch_lists = Family::<WatchLabels, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "api_refusals",
            "Answers of the API server that refused a request for now (429 throttled, 5xx unavailable), \
             each attempt counted, including those the client retries by itself",
            refusals.clone(),
        );
        registry.register(
            "watch_seconds_since_heard",
            "Seconds since each running watch last heard from the API server (an event, a bookmark or the answer to a re-watch)",
            watch_silence.clone(),
        );
        registry.register(
            "watch_failures",
            "Failures of each watch (connection lost or refused, or an error answer), each retried with back-off",
            watch_failures.clone(),
        );
        registry.register(
            "watch_lists",
            "Full lists of each watch: the first, and one each time the API server no longer knew the watch's place",
            watch_lists.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciliations of HapContainers, by result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Failures within reconciliations, one per failed read or write, by step and reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long a reconciliation takes",
            duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance holds the leader lease",
            leader.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            refusals,
            freshness: Arc::default(),
            watch_silence,
            watch_failures,
            watch_lists,
            reconciles,
            failures,
            duration,
            leader,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// Records one reconciliation and each of its failures (none when it succeeded).
    pub fn observe(&self, took: Duration, failures: &[FailureLabels]) {
        self.duration.observe(took.as_secs_f64());
        let result = if failures.is_empty() {
            "success"
        } else {
            "error"
        };
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        for f in failures {
            self.failures.get_or_create(f).inc();
        }
    }

    /// Counts one answer with HTTP status `code` that refused a request for now.
    pub fn refused(&self, code: u16) {
        self.refusals.get_or_create(&RefusalLabels { code }).inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Ready once the process is up and either leads or stands by; /readyz answers 503 before.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether the process is up and either leads or stands by.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Where the watches note what they hear: the client's layer and the watch streams alike.
    pub fn freshness(&self) -> Arc<Freshness> {
        self.freshness.clone()
    }

    /// Why the operator is not ready, in words; empty when it is: not started yet, or a cache the
    /// controllers read is stale (see [`Freshness::stale`]).
    pub fn unready(&self, now: Instant) -> Vec<String> {
        if !self.is_ready() {
            return vec!["starting".into()];
        }
        self.freshness.stale(now)
    }

    /// Copies the watches' figures into their metrics, just before they are read.
    fn update_watches(&self, now: Instant) {
        for (f, running) in self.freshness.figures(now) {
            let labels = WatchLabels {
                resource: f.resource,
            };
            if running {
                self.watch_silence
                    .get_or_create(&labels)
                    .set(f.seconds_since_heard);
            } else {
                self.watch_silence.remove(&labels);
            }
            let failures = self.watch_failures.get_or_create(&labels);
            failures.inc_by(f.failures.saturating_sub(failures.get()));
            let lists = self.watch_lists.get_or_create(&labels);
            lists.inc_by(f.lists.saturating_sub(lists.get()));
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Held across the update too: two scrapes at once would otherwise both add the same
        // difference to the counters.
        let registry = self.registry.lock().expect("metrics registry");
        self.update_watches(Instant::now());
        encode(&mut out, &registry).expect("text encoding never fails into a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_are_counted_by_result_and_reason() {
        let m = Metrics::default();
        m.observe(Duration::from_millis(3), &[]);
        let forbidden = |step| FailureLabels {
            step,
            reason: "Forbidden".into(),
        };
        m.observe(
            Duration::from_millis(5),
            &[forbidden("apply"), forbidden("delete")],
        );
        m.set_leader(true);
        m.refused(429);
        m.refused(429);
        let text = m.render();
        assert!(
            text.contains("hap_operator_api_refusals_total{code=\"429\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hap_operator_reconciles_total{result=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hap_operator_reconciles_total{result=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "hap_operator_reconcile_failures_total{step=\"apply\",reason=\"Forbidden\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "hap_operator_reconcile_failures_total{step=\"delete\",reason=\"Forbidden\"} 1"
            ),
            "every failure is counted: {text}"
        );
        assert!(
            text.contains("hap_operator_reconcile_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.lines().any(|l| l == "hap_operator_leader 1"), "{text}");
        m.set_leader(false);
        assert!(m.render().lines().any(|l| l == "hap_operator_leader 0"));
    }
}
