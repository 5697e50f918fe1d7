//! The HapContainer's status, computed from what was observed (pure), and written only when it changed.

use hap_api::HapContainer;
use hap_api::hapcontainer::{HapContainerStatus, Phase, ServiceType};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::culling;
use super::names::{self, JUPYTER_PORT, SPARK_UI_PORT};
use crate::pipeline::conditions::{self, Verdict, Verdicts};
use crate::pipeline::objects::node_port;
use crate::pipeline::pods::{self, condition as pod_condition, waiting_reason};
use crate::pipeline::problem::Problem;
use crate::pipeline::reason::Reason;

/// The condition types: whether Jupyter answers, and whether the spec and its Secrets are in order.
pub const READY: &str = "Ready";
pub const CONFIGURED: &str = "Configured";

/// What the status is computed from.
pub struct Observed<'a> {
    pub pod: Option<&'a Pod>,
    pub service: Option<&'a Service>,
    /// The home volume's claim, as cached.
    pub claim: Option<&'a PersistentVolumeClaim>,
    /// The image Spark's executors run, with executors.
    pub executor_image: Option<&'a str>,
    pub problems: &'a [Problem],
    /// Failed pods replaced in a row so far.
    pub replacements: i32,
    /// With culling on: what was read of the workspace's activity, and the stop if one was tried.
    pub culling: Option<Culling<'a>>,
}

pub struct Culling<'a> {
    pub idle_after: std::time::Duration,
    pub reading: &'a culling::Reading,
    pub changed: Option<&'a Result<(), String>>,
}

fn load_balancer_address(svc: &Service) -> Option<String> {
    let ingress = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?;
    ingress.ip.clone().or_else(|| ingress.hostname.clone())
}

/// Where Jupyter and the Spark UI answer, as far as can be told from the pod and the service.
fn urls(
    hc: &HapContainer,
    pod: Option<&Pod>,
    svc: Option<&Service>,
) -> (Option<String>, Option<String>) {
    let Some(svc) = svc else { return (None, None) };
    let kind = hc
        .spec
        .service
        .as_ref()
        .map(|s| s.type_)
        .unwrap_or_default();
    match kind {
        ServiceType::NodePort => {
            let host = pod.and_then(|p| p.status.as_ref()?.host_ip.clone());
            let url = |port: Option<i32>| Some(format!("http://{}:{}/", host.clone()?, port?));
            (
                url(node_port(svc, "jupyter")),
                url(node_port(svc, "spark-ui")),
            )
        }
        ServiceType::LoadBalancer => match load_balancer_address(svc) {
            Some(addr) => (
                Some(format!("http://{addr}:{JUPYTER_PORT}/")),
                Some(format!("http://{addr}:{SPARK_UI_PORT}/")),
            ),
            None => (None, None),
        },
        ServiceType::ClusterIP => {
            let host = format!(
                "{}.{}.svc",
                svc.metadata.name.as_deref().unwrap_or_default(),
                svc.metadata.namespace.as_deref().unwrap_or_default()
            );
            (
                Some(format!("http://{host}:{JUPYTER_PORT}/")),
                Some(format!("http://{host}:{SPARK_UI_PORT}/")),
            )
        }
    }
}

/// Whether a claim exists and is not bound to a volume.
fn unbound(claim: Option<&PersistentVolumeClaim>) -> bool {
    claim.is_some_and(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound"))
}

pub fn compute(
    hc: &HapContainer,
    observed: &Observed<'_>,
    now: &Time,
) -> (HapContainerStatus, Verdicts) {
    let name = hc.metadata.name.clone().unwrap_or_default();
    let desired = hc.spec.size.clamp(0, 1);
    let pod = observed
        .pod
        .filter(|p| p.metadata.deletion_timestamp.is_none());
    let ready = pod.is_some_and(pods::ready);
    // A blocking problem keeps the workspace from running; others keep the last change from applying.
    let blocked = observed.problems.iter().any(|p| p.blocking);

    let configured = match observed.problems.first() {
        None => Verdict::ok(
            Reason::Valid,
            "The spec is valid and the Secrets it references are in place",
        ),
        Some(first) => {
            let all: Vec<&str> = observed
                .problems
                .iter()
                .map(|p| p.message.as_str())
                .collect();
            Verdict::not(first.reason, all.join("; "))
        }
    };

    let (phase, verdict) = if blocked {
        (
            Phase::Failed,
            Verdict::not(
                Reason::NotConfigured,
                "The workspace cannot run until the Configured condition is fixed",
            ),
        )
    } else if desired == 0 {
        (
            Phase::Suspended,
            Verdict::not(
                Reason::Suspended,
                "size is 0: the workspace pod is removed and everything else kept; set size to 1 to resume",
            ),
        )
    } else {
        match pod {
            None => (
                Phase::Pending,
                Verdict::not(
                    Reason::PodMissing,
                    format!("The pod {} is being created", names::pod(&name)),
                ),
            ),
            Some(_) if ready => (
                Phase::Running,
                Verdict::ok(
                    Reason::PodReady,
                    format!("The pod {} is ready", names::pod(&name)),
                ),
            ),
            Some(p) if pods::ended(p) => {
                let why = pods::failure_reason(p);
                (
                    Phase::Degraded,
                    Verdict::not(
                        Reason::PodFailed,
                        format!(
                            "The pod {} failed ({why}); it is replaced with back-off (replacement {} so far)",
                            names::pod(&name),
                            observed.replacements
                        ),
                    ),
                )
            }
            Some(p) => match waiting_reason(p)
                .and_then(|(r, m)| Some((Reason::broken_container(&r)?, m)))
            {
                Some((reason, message)) => (
                    Phase::Degraded,
                    Verdict::not(
                        reason,
                        format!("The container is waiting: {reason}: {message}"),
                    ),
                ),
                None => match pod_condition(p, "PodScheduled").filter(|c| c.status == "False") {
                    // With a claim not bound yet: the scheduler waits for a volume, or binds the claim
                    // only once it has placed the pod; only the former is the volume's doing.
                    Some(c)
                        if unbound(observed.claim)
                            && c.message
                                .as_deref()
                                .is_some_and(|m| m.to_lowercase().contains("volume")) =>
                    {
                        (
                            Phase::Pending,
                            Verdict::not(
                                Reason::VolumePending,
                                format!(
                                    "The home volume {claim} is not bound yet, so the pod waits ({}): see kubectl describe pvc {claim}. A cluster without a default StorageClass needs spec.volume.storageClassName (or spec.volume.ephemeral: true, whose files go with the pod)",
                                    c.message.clone().unwrap_or_default(),
                                    claim = observed
                                        .claim
                                        .and_then(|c| c.metadata.name.as_deref())
                                        .unwrap_or_default()
                                ),
                            ),
                        )
                    }
                    Some(c) => (
                        Phase::Pending,
                        Verdict::not(
                            Reason::unscheduled(c.reason.as_deref()),
                            c.message.clone().unwrap_or_default(),
                        ),
                    ),
                    None => (
                        Phase::Pending,
                        Verdict::not(
                            Reason::PodNotReady,
                            format!("The pod {} is starting", names::pod(&name)),
                        ),
                    ),
                },
            },
        }
    };
    // Ready is true only for a ready pod of a workspace that is not blocked.
    let mut verdicts: Verdicts = vec![(READY, verdict), (CONFIGURED, configured)];
    let previous = hc
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let mut last_activity = hc.status.as_ref().and_then(|s| s.last_activity.clone());
    if let Some(c) = &observed.culling {
        verdicts.push((
            culling::CULLED,
            culling::condition(hc, c.idle_after, c.reading, c.changed),
        ));
        if let Some(Ok(activity)) = c.reading {
            last_activity = Some(Time(culling::recorded(activity, now.0)));
        }
    }
    let conditions = conditions::conditions(&verdicts, hc.metadata.generation, now, previous);

    let service = observed.service;
    // A running workspace whose latest change could not be applied is degraded, not running as asked.
    let phase = if phase == Phase::Running && !observed.problems.is_empty() {
        Phase::Degraded
    } else {
        phase
    };
    let (jupyter_url, spark_ui_url) = if !blocked && desired > 0 {
        urls(hc, pod, service)
    } else {
        (None, None)
    };
    let status = HapContainerStatus {
        phase: Some(phase),
        ready: Some(format!("{}/{desired}", i32::from(ready && desired > 0))),
        observed_generation: hc.metadata.generation,
        conditions,
        pod_name: pod.and_then(|p| p.metadata.name.clone()),
        service_name: service.and_then(|s| s.metadata.name.clone()),
        node_ip: pod.and_then(|p| p.status.as_ref()?.host_ip.clone()),
        jupyter_node_port: service.and_then(|s| node_port(s, "jupyter")),
        spark_ui_node_port: service.and_then(|s| node_port(s, "spark-ui")),
        jupyter_url,
        spark_ui_url,
        failed_pod_replacements: (observed.replacements > 0).then_some(observed.replacements),
        spark_executor_image: observed.executor_image.map(str::to_string),
        last_activity: observed.culling.as_ref().and(last_activity),
    };
    (status, verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use serde_json::json;

    /// The status alone, as the tests read it.
    fn status_of(hc: &HapContainer, observed: &Observed<'_>, now: Time) -> HapContainerStatus {
        compute(hc, observed, &now).0
    }

    fn hc(spec: serde_json::Value) -> HapContainer {
        serde_json::from_value(json!({
            "apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer",
            "metadata": {"name": "w", "namespace": "ns", "generation": 3}, "spec": spec
        }))
        .unwrap()
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "w-happod"}, "status": status})).unwrap()
    }

    fn ready_pod() -> Pod {
        pod(
            json!({"phase": "Running", "hostIP": "10.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]}),
        )
    }

    fn service(spec: serde_json::Value, status: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "w-hapservice", "namespace": "ns"}, "spec": spec, "status": status})).unwrap()
    }

    fn node_port_service() -> Service {
        service(
            json!({"type": "NodePort", "ports": [
                {"name": "jupyter", "port": 8888, "nodePort": 31000},
                {"name": "spark-ui", "port": 4040, "nodePort": 31001}
            ]}),
            json!({}),
        )
    }

    fn now() -> Time {
        Time(jiff::Timestamp::now())
    }

    fn observe<'a>(
        pod: Option<&'a Pod>,
        svc: Option<&'a Service>,
        problems: &'a [Problem],
    ) -> Observed<'a> {
        Observed {
            pod,
            service: svc,
            claim: None,
            executor_image: None,
            problems,
            replacements: 0,
            culling: None,
        }
    }

    fn condition<'a>(s: &'a HapContainerStatus, kind: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn a_ready_pod_behind_a_node_port_is_running_with_urls() {
        let (p, svc) = (ready_pod(), node_port_service());
        let s = status_of(&hc(json!({})), &observe(Some(&p), Some(&svc), &[]), now());
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(s.ready.as_deref(), Some("1/1"));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.jupyter_url.as_deref(), Some("http://10.0.0.5:31000/"));
        assert_eq!(s.spark_ui_url.as_deref(), Some("http://10.0.0.5:31001/"));
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(condition(&s, "Configured").reason, "Valid");
    }

    #[test]
    fn load_balancer_and_cluster_ip_urls() {
        let p = ready_pod();
        let lb = service(
            json!({"type": "LoadBalancer", "ports": []}),
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}),
        );
        let s = status_of(
            &hc(json!({"service": {"type": "LoadBalancer"}})),
            &observe(Some(&p), Some(&lb), &[]),
            now(),
        );
        assert_eq!(s.jupyter_url.as_deref(), Some("http://192.0.2.9:8888/"));
        let pending_lb = service(json!({"type": "LoadBalancer", "ports": []}), json!({}));
        let s = status_of(
            &hc(json!({"service": {"type": "LoadBalancer"}})),
            &observe(Some(&p), Some(&pending_lb), &[]),
            now(),
        );
        assert_eq!(s.jupyter_url, None, "no address yet");
        let cip = service(json!({"type": "ClusterIP", "ports": []}), json!({}));
        let s = status_of(
            &hc(json!({"service": {"type": "ClusterIP"}})),
            &observe(Some(&p), Some(&cip), &[]),
            now(),
        );
        assert_eq!(
            s.spark_ui_url.as_deref(),
            Some("http://w-hapservice.ns.svc:4040/")
        );
    }

    #[test]
    fn phases_from_what_was_observed() {
        let svc = node_port_service();
        let missing = Problem {
            reason: Reason::S3CredentialsSecretNotFound,
            message: "make it".into(),
            blocking: true,
            component: None,
        };
        let refused = Problem {
            reason: Reason::ChildRejected,
            message: "port taken".into(),
            blocking: false,
            component: None,
        };
        let p = ready_pod();
        let s = status_of(
            &hc(json!({})),
            &observe(Some(&p), Some(&svc), std::slice::from_ref(&missing)),
            now(),
        );
        assert_eq!(
            (s.phase, s.jupyter_url.is_none()),
            (Some(Phase::Failed), true)
        );
        assert_eq!(
            condition(&s, "Configured").reason,
            "S3CredentialsSecretNotFound"
        );
        assert_eq!(condition(&s, "Ready").reason, "NotConfigured");
        let s = status_of(
            &hc(json!({})),
            &observe(Some(&p), Some(&svc), std::slice::from_ref(&refused)),
            now(),
        );
        assert_eq!(s.phase, Some(Phase::Degraded), "running, but not as asked");
        assert_eq!(condition(&s, "Ready").status, "True");
        let s = status_of(
            &hc(json!({"size": 0})),
            &observe(None, Some(&svc), &[]),
            now(),
        );
        assert_eq!(
            (s.phase, s.ready.as_deref()),
            (Some(Phase::Suspended), Some("0/0"))
        );
        let s = status_of(&hc(json!({})), &observe(None, Some(&svc), &[]), now());
        assert_eq!(
            (s.phase, condition(&s, "Ready").reason.as_str()),
            (Some(Phase::Pending), "PodMissing")
        );
        let pulling = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}]}),
        );
        let s = status_of(
            &hc(json!({})),
            &observe(Some(&pulling), Some(&svc), &[]),
            now(),
        );
        assert_eq!(
            (s.phase, condition(&s, "Ready").reason.as_str()),
            (Some(Phase::Degraded), "ImagePullBackOff")
        );
        let unschedulable = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}]}),
        );
        let volume_wait = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims"}]}),
        );
        let s = status_of(
            &hc(json!({})),
            &observe(Some(&unschedulable), Some(&svc), &[]),
            now(),
        );
        assert_eq!(
            (s.phase, condition(&s, "Ready").message.as_str()),
            (Some(Phase::Pending), "0/1 nodes")
        );
        let pending: PersistentVolumeClaim = serde_json::from_value(
            json!({"metadata": {"name": "w-workspace"}, "status": {"phase": "Pending"}}),
        )
        .unwrap();
        let other_reason = Observed {
            claim: Some(&pending),
            ..observe(Some(&unschedulable), Some(&svc), &[])
        };
        let s = status_of(&hc(json!({})), &other_reason, now());
        assert_eq!(
            condition(&s, "Ready").reason,
            "Unschedulable",
            "a claim waits for its pod's node"
        );
        let waiting = Observed {
            claim: Some(&pending),
            ..observe(Some(&volume_wait), Some(&svc), &[])
        };
        let s = status_of(&hc(json!({})), &waiting, now());
        let ready = condition(&s, "Ready");
        assert_eq!(
            (s.phase, ready.reason.as_str()),
            (Some(Phase::Pending), "VolumePending")
        );
        assert!(
            ready.message.contains("kubectl describe pvc w-workspace")
                && ready.message.contains("storageClassName"),
            "{}",
            ready.message
        );
        let evicted = pod(json!({"phase": "Failed", "reason": "Evicted"}));
        let s = status_of(
            &hc(json!({})),
            &observe(Some(&evicted), Some(&svc), &[]),
            now(),
        );
        assert_eq!(
            (s.phase, condition(&s, "Ready").reason.as_str()),
            (Some(Phase::Degraded), "PodFailed")
        );
    }

    #[test]
    fn transition_times_move_only_when_a_condition_flips() {
        let (p, svc) = (ready_pod(), node_port_service());
        let earlier = Time(jiff::Timestamp::from_second(1_700_000_000).unwrap());
        let first = status_of(
            &hc(json!({})),
            &observe(Some(&p), Some(&svc), &[]),
            earlier.clone(),
        );
        let mut again = hc(json!({}));
        again.status = Some(first.clone());
        let second = status_of(&again, &observe(Some(&p), Some(&svc), &[]), now());
        assert_eq!(
            second, first,
            "nothing changed: the same status, so no write"
        );
        let gone = status_of(&again, &observe(None, Some(&svc), &[]), now());
        assert_ne!(
            condition(&gone, "Ready").last_transition_time,
            earlier,
            "Ready flipped"
        );
        assert_eq!(
            condition(&gone, "Configured").last_transition_time,
            earlier,
            "Configured held"
        );
    }
}
