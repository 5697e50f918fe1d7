//! A workspace's children: read from the caches, and planned. This is the one place that lists them
//! in the order they are applied, an order that lets each find what it refers to (the Spark
//! ServiceAccount before the pod that runs as it, the ConfigMap before the pod that mounts it).

use std::time::Duration;

use hap_api::HapContainer;
use hap_api::hapcontainer::DEFAULT_TOKEN_KEY;
use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::Caches;
use crate::build::Children;
use crate::kinds::{Desired, Observed};
use crate::names;
use crate::plan::{self, Backoff, PodHistory, Step};

/// The steps for every child, in apply order, and what follows from the pod's.
pub struct Plan {
    pub steps: Vec<Step>,
    /// When to look again, if sooner than the resync.
    pub requeue: Option<Duration>,
    /// Failed pods replaced in a row once the steps are done.
    pub replacements: i32,
    /// The same count should the pod's step not take effect (it failed, or found the pod gone).
    pub replacements_if_pod_step_undone: i32,
}

fn cached<L: kube::Resource<DynamicType = ()> + Clone>(
    store: &Store<L>,
    namespace: &str,
    name: &str,
) -> Option<std::sync::Arc<L>> {
    store.get(&ObjectRef::new(name).within(namespace))
}

/// What the caches hold of the workspace's children. A pod of the same name that the HapContainer does
/// not own is not its pod (it is taken over by the next apply).
pub fn observe(caches: &Caches, hc: &HapContainer) -> Children<Observed> {
    let (namespace, name) = (hc.namespace().unwrap_or_default(), hc.name_any());
    let ns = namespace.as_str();
    let uid = hc.uid();
    let owned = |p: &std::sync::Arc<k8s_openapi::api::core::v1::Pod>| {
        p.owner_references()
            .iter()
            .any(|r| Some(&r.uid) == uid.as_ref())
    };
    let rbac = names::spark_rbac(&name);
    Children {
        token_secret: cached(&caches.secrets, ns, &names::token_secret(&name)),
        spark_service_account: cached(&caches.service_accounts, ns, &rbac),
        spark_role: cached(&caches.roles, ns, &rbac),
        spark_role_binding: cached(&caches.role_bindings, ns, &rbac),
        spark_conf: cached(&caches.config_maps, ns, &names::spark_conf(&name)),
        volume: cached(&caches.claims, ns, &names::volume(&name)),
        service: cached(&caches.services, ns, &names::service(&name)),
        spark_driver_service: cached(&caches.services, ns, &names::spark_driver_service(&name)),
        pod: cached(&caches.pods, ns, &names::pod(&name)).filter(owned),
    }
}

/// Plans every child (pure). `owner_uid` is the HapContainer's (None when rendered from a file);
/// when the HapContainer is not `runnable` (a configuration problem), no pod is created or replaced.
pub fn plan(
    observed: &Children<Observed>,
    desired: Children<Desired>,
    owner_uid: Option<&str>,
    runnable: bool,
    history: PodHistory,
    now: Timestamp,
    backoff: Backoff,
) -> Plan {
    let Children {
        token_secret,
        spark_service_account,
        spark_role,
        spark_role_binding,
        spark_conf,
        volume,
        service,
        spark_driver_service,
        pod,
    } = desired;
    let Children {
        token_secret: live_token_secret,
        spark_service_account: live_spark_service_account,
        spark_role: live_spark_role,
        spark_role_binding: live_spark_role_binding,
        spark_conf: live_spark_conf,
        volume: live_volume,
        service: live_service,
        spark_driver_service: live_spark_driver_service,
        pod: live_pod,
    } = observed;
    let pod_plan = plan::pod(live_pod.as_deref(), pod, runnable, history, now, backoff);
    let in_apply_order = vec![
        plan::create_once(
            live_token_secret.as_deref(),
            token_secret,
            &[DEFAULT_TOKEN_KEY],
            "a generated Jupyter token",
        ),
        plan::ensure_or_remove(
            live_spark_service_account.as_deref(),
            spark_service_account,
            owner_uid,
        ),
        plan::ensure_or_remove(live_spark_role.as_deref(), spark_role, owner_uid),
        plan::ensure_or_remove(
            live_spark_role_binding.as_deref(),
            spark_role_binding,
            owner_uid,
        ),
        plan::ensure_if_desired(live_spark_conf.as_deref(), spark_conf),
        plan::ensure_if_desired(live_volume.as_deref(), volume),
        plan::ensure_if_desired(live_service.as_deref(), service),
        plan::ensure_or_remove(
            live_spark_driver_service.as_deref(),
            spark_driver_service,
            owner_uid,
        ),
        pod_plan.step,
    ];
    // Deletions go last, in reverse apply order: whatever refers to a child (a RoleBinding to its Role)
    // goes before it.
    let (mut deletes, mut steps): (Vec<_>, Vec<_>) = in_apply_order
        .into_iter()
        .partition(|s| matches!(s.action, plan::Action::Delete(_)));
    deletes.reverse();
    steps.extend(deletes);
    Plan {
        steps,
        requeue: pod_plan.requeue,
        replacements: pod_plan.replacements,
        replacements_if_pod_step_undone: pod_plan.replacements_if_undone,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::BuildConfig;
    use crate::kinds::Object;
    use crate::plan::Action;
    use crate::resolve::resolve;

    use crate::testing::hapcontainer as hc;

    const ORDER: [&str; 7] = [
        "ServiceAccount w-spark",
        "Role w-spark",
        "RoleBinding w-spark",
        "ConfigMap w-spark-conf",
        "Service w-hapservice",
        "Service w-spark-driver",
        "Pod w-happod",
    ];

    fn desired(hc: &HapContainer) -> Children<Desired> {
        let cfg = BuildConfig::default();
        crate::build::build(hc, &resolve(hc, &cfg), &cfg)
    }

    fn plan_of(observed: &Children<Observed>, hc: &HapContainer) -> Plan {
        let history = PodHistory::default();
        let backoff = Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(1),
        };
        plan(
            observed,
            desired(hc),
            hc.metadata.uid.as_deref(),
            true,
            history,
            Timestamp::UNIX_EPOCH,
            backoff,
        )
    }

    /// The kind and name of what each step writes, in order.
    fn writes(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Apply(o) | Action::Delete(o) | Action::Replace(o) => Some(o),
                _ => None,
            })
            .map(|o| {
                let v = serde_json::to_value(o).unwrap();
                format!(
                    "{} {}",
                    v["kind"].as_str().unwrap_or("?"),
                    v["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn an_empty_namespace_gets_every_child_in_apply_order() {
        let scaled = hc("{spark: {executors: 2}}");
        let plan = plan_of(&Children::default(), &scaled);
        assert!(
            matches!(&plan.steps[0].action, Action::CreateOnce(s, keys) if s.metadata.name.as_deref() == Some("w-jupyter") && keys == &["token"])
        );
        assert_eq!(writes(&plan), ORDER);
    }

    #[test]
    fn spark_children_go_when_executors_go_and_what_is_in_place_is_kept() {
        let scaled = hc("{spark: {executors: 2}}");
        let built = desired(&scaled);
        let meta_of = |sa: &k8s_openapi::api::core::v1::ServiceAccount| {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": sa.metadata
            }))
            .unwrap()
        };
        let observed = Children::<Observed> {
            token_secret: Some(Arc::new(serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "w-jupyter", "namespace": "ns"}
            })).unwrap())),
            spark_service_account: built.spark_service_account.as_ref().map(|sa| Arc::new(meta_of(sa))),
            spark_role: built.spark_role.map(Arc::new),
            spark_role_binding: built.spark_role_binding.map(Arc::new),
            spark_conf: None,
            volume: None,
            service: built.service.map(Arc::new),
            spark_driver_service: built.spark_driver_service.map(Arc::new),
            pod: None,
        };
        let plan = plan_of(&observed, &hc("{spark: {executors: 0}}"));
        assert_eq!(
            writes(&plan),
            [
                "ConfigMap w-spark-conf",
                "Pod w-happod",
                // Removed last, in reverse apply order.
                "Service w-spark-driver",
                "RoleBinding w-spark",
                "Role w-spark",
                "ServiceAccount w-spark",
            ]
        );
        let deletes = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Delete(_)))
            .count();
        assert_eq!(deletes, 4, "the RBAC and the driver service are removed");
        assert!(
            matches!(&plan.steps[0].action, Action::Keep),
            "the token is never rewritten"
        );
        assert!(plan.steps.iter().all(|s| !matches!(&s.action, Action::Apply(Object::Service(svc)) if svc.metadata.name.as_deref() == Some("w-hapservice"))), "an unchanged service is kept");
    }
}
