//! HapContainer: a workspace (Jupyter, Spark and TensorFlow in one pod, behind a Service), through
//! the shared pipeline. Its steps: `resolve`, `build`, `children` (the typed set, observed and
//! planned), `pod_plan` (its single pod and what is remembered of it), `status`; `names` gives the
//! original operator's names.

pub mod activity;
pub mod admission;
pub mod build;
pub mod children;
pub mod culling;
pub mod names;
pub mod pod_plan;
pub mod resolve;
pub mod status;

use std::time::Duration;

use hap_api::HapContainer;
use hap_api::hapcontainer::HapContainerStatus;
use hap_api::profile::Catalog;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;

use crate::pipeline::apply::Outcome;
use crate::pipeline::caches::Caches;
use crate::pipeline::conditions::Verdicts;
use crate::pipeline::config::BuildConfig;
use crate::pipeline::kinds::{Desired, Kind, Observed};
use crate::pipeline::pods;
use crate::pipeline::problem::Problem;
use crate::pipeline::references::{self, SecretReference};
use crate::pipeline::{Change, Plan, Planning, Reconciled, Seen};
use children::Children;
use pod_plan::Backoff;
use resolve::Resolved;

impl Reconciled for HapContainer {
    const PLURAL: &'static str = "hapcontainers";
    const APP: &'static str = names::APP;
    const ANNOUNCED: &'static [&'static str] = &[status::CONFIGURED];

    const CHILDREN: &'static [Kind] = &[
        Kind::Pod,
        Kind::Service,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::PersistentVolumeClaim,
        Kind::ServiceAccount,
        Kind::Role,
        Kind::RoleBinding,
        Kind::NetworkPolicy,
    ];

    type Resolved = Resolved;
    type Desired = Children<Desired>;
    type Observed = Children<Observed>;
    type Memory = pod_plan::Memory;
    type Checked = culling::Reading;
    type Status = HapContainerStatus;

    fn resolve(&self, cfg: &BuildConfig, profiles: &Catalog) -> Resolved {
        resolve::resolve(self, cfg, profiles)
    }

    fn profile(&self) -> Option<&str> {
        self.spec.profile.as_deref()
    }

    fn problems(r: &Resolved) -> Vec<Problem> {
        r.problems.clone()
    }

    fn secrets(r: &Resolved) -> Vec<SecretReference> {
        r.user_secrets()
    }

    /// The generated token's Secret must be this HapContainer's own: a token someone else chose
    /// would let them into the workspace. So must the Spark authentication Secret: whoever chose its
    /// value could pose as the workspace's executors to its driver.
    fn conflicts(&self, r: &Resolved, caches: &Caches) -> Vec<Problem> {
        let token = r
            .token
            .generated
            .then(|| references::foreign(caches, self, &r.token.secret, None));
        let spark_auth = r
            .executors
            .as_ref()
            .map(|_| references::foreign(caches, self, &names::spark_auth(&self.name_any()), None));
        [token, spark_auth]
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    }

    fn build(&self, r: &Resolved, cfg: &BuildConfig) -> Children<Desired> {
        build::build(self, r, cfg)
    }

    fn observe(&self, r: &Resolved, caches: &Caches) -> Children<Observed> {
        children::observe(caches, self, r)
    }

    /// The status's count of failed pods replaced in a row, until the operator knows better.
    fn memory(&self) -> pod_plan::Memory {
        pod_plan::Memory::seeded(
            self.status
                .as_ref()
                .and_then(|s| s.failed_pod_replacements)
                .unwrap_or(0),
        )
    }

    fn plan(&self, p: Planning<'_, Self>) -> Plan {
        if p.resolved.profile_missing {
            return Plan::default();
        }
        let history = p.memory.history(p.observed.pod.as_deref(), p.now);
        let backoff = Backoff {
            min: p.config.replace_min,
            max: p.config.replace_max,
            reset_after: p.config.replace_reset,
        };
        let plan = children::plan(
            p.observed,
            p.desired,
            p.resolved,
            self.uid().as_deref(),
            p.runnable,
            history,
            p.now,
            backoff,
        );
        p.memory.expect(
            &names::pod(&self.name_any()),
            p.observed.pod.as_deref(),
            &plan.pod,
        );
        Plan {
            steps: plan.steps,
            requeue: plan.requeue,
        }
    }

    fn remember(memory: &mut pod_plan::Memory, outcome: &Outcome) {
        memory.settle(outcome);
    }

    /// With culling on, the activity of a ready pod. Only of a runnable workspace: its token's
    /// Secret is then its own or one the spec may name, so the token read is never someone else's
    /// sent to this workspace's pod.
    async fn check(
        &self,
        client: &kube::Client,
        r: &Resolved,
        observed: &Children<Observed>,
        runnable: bool,
    ) -> culling::Reading {
        r.idle_after.filter(|_| runnable && r.runs)?;
        let pod = observed
            .pod
            .as_deref()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && pods::ready(p))?;
        let ip = pod.status.as_ref()?.pod_ip.as_deref()?;
        let namespace = self.namespace().unwrap_or_default();
        Some(activity::read(client, &namespace, &r.token, ip).await)
    }

    /// A running workspace idle for its `idleAfter` is stopped.
    fn change(&self, r: &Resolved, reading: &culling::Reading, now: Timestamp) -> Option<Change> {
        let idle_after = r.idle_after?;
        match reading {
            Some(Ok(a)) if self.spec.size == 1 && culling::idle(a, idle_after, now) => {
                Some(culling::stop(self, idle_after, a))
            }
            _ => None,
        }
    }

    /// With culling on, a running workspace is looked at every quarter of its idle time.
    fn poll(&self, r: &Resolved, _: &HapContainerStatus) -> Option<Duration> {
        r.idle_after
            .filter(|_| self.spec.size == 1)
            .map(culling::poll_interval)
    }

    /// What the status sees of the pod and the Service: each as written now, or as observed.
    fn status(&self, seen: Seen<'_, Self>) -> (HapContainerStatus, Verdicts) {
        let name = self.name_any();
        let (pod_name, service_name) = (names::pod(&name), names::service(&name));
        let outcome = seen.outcome;
        let pod = match outcome.written::<Pod>(&pod_name) {
            Some(p) => Some(p),
            None if outcome.removed::<Pod>(&pod_name) => None,
            None => seen.observed.pod.as_deref(),
        };
        let service = match outcome.written::<Service>(&service_name) {
            Some(s) => Some(s),
            None if outcome.failed::<Service>(&service_name) => None,
            None => seen.observed.service.as_deref(),
        };
        let observed = status::Observed {
            pod,
            service,
            claim: seen.observed.volume.as_deref(),
            executor_image: seen.resolved.executors.as_ref().map(|e| e.image.as_str()),
            problems: seen.problems,
            replacements: seen.memory.replacements(),
            culling: seen.resolved.idle_after.map(|idle_after| status::Culling {
                idle_after,
                reading: seen.checked,
                changed: seen.changed,
            }),
        };
        status::compute(self, &observed, seen.now)
    }

    fn status_now(&self) -> Option<&HapContainerStatus> {
        self.status.as_ref()
    }

    fn conditions(status: &HapContainerStatus) -> &[Condition] {
        &status.conditions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::caches::testing;
    use crate::pipeline::reason::Reason;
    use k8s_openapi::api::core::v1::Secret;

    /// A Secret `name` of namespace `ns` whose controller is the HapContainer of uid `owner`.
    fn secret(name: &str, owner: &str) -> kube::core::PartialObjectMeta<Secret> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "ns", "ownerReferences": [
                {"apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer", "name": "w",
                 "uid": owner, "controller": true}]}
        }))
        .unwrap()
    }

    fn conflicts_of(
        spec: &str,
        secrets: Vec<kube::core::PartialObjectMeta<Secret>>,
    ) -> Vec<String> {
        let hc = crate::testing::hapcontainer(spec);
        let caches = Caches {
            secrets: testing::store(secrets),
            ..testing::empty()
        };
        hc.conflicts(
            &hc.resolve(&BuildConfig::default(), &Catalog::Absent),
            &caches,
        )
        .into_iter()
        .inspect(|p| assert_eq!((p.reason, p.blocking), (Reason::NameConflict, true)))
        .map(|p| p.message)
        .collect()
    }

    #[test]
    fn a_spark_authentication_secret_someone_else_made_is_a_conflict_with_executors() {
        let own = || vec![secret("w-jupyter", "u-1"), secret("w-spark-auth", "u-1")];
        assert!(conflicts_of("{spark: {executors: 2}}", own()).is_empty());
        let squatted = vec![
            secret("w-jupyter", "u-1"),
            secret("w-spark-auth", "someone"),
        ];
        let found = conflicts_of("{spark: {executors: 2}}", squatted.clone());
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("\"w-spark-auth\""), "{}", found[0]);
        // Without executors the name is not the workspace's to use.
        assert!(conflicts_of("{spark: {executors: 0}}", squatted).is_empty());
    }
}
