//! The operator's Prometheus metrics (prometheus-client): reconciles, failures by step and API reason,
//! durations, leadership, and whether the process is ready. `crate::endpoints` serves them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

pub struct Metrics {
    registry: Mutex<Registry>,
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

    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry");
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
        let text = m.render();
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
