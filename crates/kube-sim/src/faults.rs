//! Fault injection and request accounting for tests: fail the next N matching requests, slow requests
//! down, and count every request by user, verb and resource (which is how "zero writes on resync" is
//! proven).

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which requests a fault applies to. Empty fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// An API verb: get, list, watch, create, update, patch, delete, deletecollection.
    #[serde(default)]
    pub verb: Option<String>,
    /// A resource, optionally with its subresource: `pods`, `hapcontainers/status`.
    #[serde(default)]
    pub resource: Option<String>,
    /// Only requests by this user (e.g. `system:serviceaccount:default:hap-operator`).
    #[serde(default)]
    pub user: Option<String>,
}

impl Matcher {
    pub fn new(verb: &str, resource: &str) -> Self {
        Matcher {
            verb: Some(verb.into()),
            resource: Some(resource.into()),
            user: None,
        }
    }

    fn matches(&self, r: &RequestRecord) -> bool {
        self.verb.as_ref().is_none_or(|v| *v == r.verb)
            && self
                .resource
                .as_ref()
                .is_none_or(|x| *x == r.resource_with_sub())
            && self.user.as_ref().is_none_or(|u| *u == r.user)
    }
}

/// One request as the simulator saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub user: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The HTTP status code of the response (200 for a watch that started).
    pub code: u16,
}

impl RequestRecord {
    pub fn resource_with_sub(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailRule {
    pub matcher: Matcher,
    pub remaining: u32,
    pub code: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyRule {
    pub matcher: Matcher,
    pub millis: u64,
}

#[derive(Default)]
pub struct Faults {
    fail: Mutex<Vec<FailRule>>,
    latency: Mutex<Vec<LatencyRule>>,
    log: Mutex<Vec<RequestRecord>>,
}

impl Faults {
    /// Fails the next `count` requests that match with HTTP `code` (and the apiserver's reason for it).
    pub fn fail_next(&self, matcher: Matcher, count: u32, code: u16) {
        self.fail.lock().expect("faults").push(FailRule {
            matcher,
            remaining: count,
            code,
        });
    }

    /// Delays every matching request by `delay`.
    pub fn add_latency(&self, matcher: Matcher, delay: Duration) {
        self.latency.lock().expect("faults").push(LatencyRule {
            matcher,
            millis: delay.as_millis() as u64,
        });
    }

    pub fn clear(&self) {
        self.fail.lock().expect("faults").clear();
        self.latency.lock().expect("faults").clear();
    }

    /// The injected failure code for this request, consuming one use of the first matching rule.
    pub fn take_failure(&self, r: &RequestRecord) -> Option<u16> {
        let mut rules = self.fail.lock().expect("faults");
        let rule = rules
            .iter_mut()
            .find(|rule| rule.remaining > 0 && rule.matcher.matches(r))?;
        rule.remaining -= 1;
        let code = rule.code;
        rules.retain(|rule| rule.remaining > 0);
        Some(code)
    }

    pub fn delay_for(&self, r: &RequestRecord) -> Duration {
        let rules = self.latency.lock().expect("faults");
        Duration::from_millis(
            rules
                .iter()
                .filter(|rule| rule.matcher.matches(r))
                .map(|rule| rule.millis)
                .sum(),
        )
    }

    pub fn record(&self, r: RequestRecord) {
        self.log.lock().expect("request log").push(r);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.lock().expect("request log").clone()
    }

    pub fn reset_requests(&self) {
        self.log.lock().expect("request log").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(verb: &str, resource: &str, sub: &str) -> RequestRecord {
        RequestRecord {
            user: "u".into(),
            verb: verb.into(),
            group: String::new(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "default".into(),
            name: "x".into(),
            code: 200,
        }
    }

    #[test]
    fn failures_are_consumed_in_order() {
        let f = Faults::default();
        f.fail_next(Matcher::new("patch", "pods"), 2, 500);
        assert_eq!(f.take_failure(&rec("get", "pods", "")), None);
        assert_eq!(f.take_failure(&rec("patch", "pods", "status")), None);
        assert_eq!(f.take_failure(&rec("patch", "pods", "")), Some(500));
        assert_eq!(f.take_failure(&rec("patch", "pods", "")), Some(500));
        assert_eq!(f.take_failure(&rec("patch", "pods", "")), None);
    }

    #[test]
    fn latency_adds_up_and_clears() {
        let f = Faults::default();
        f.add_latency(Matcher::default(), Duration::from_millis(5));
        f.add_latency(Matcher::new("list", "pods"), Duration::from_millis(10));
        assert_eq!(
            f.delay_for(&rec("list", "pods", "")),
            Duration::from_millis(15)
        );
        assert_eq!(
            f.delay_for(&rec("get", "pods", "")),
            Duration::from_millis(5)
        );
        f.clear();
        assert_eq!(f.delay_for(&rec("list", "pods", "")), Duration::ZERO);
    }
}
