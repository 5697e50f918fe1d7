//! A HapContainer's children: the one typed set of them, read from the caches, and planned. The plan
//! is the one place that lists them in the order they are applied, an order that lets each find what
//! it refers to (the Spark ServiceAccount before the pod that runs as it, the ConfigMap before the pod
//! that mounts it); `render` prints that plan made against nothing observed.

use std::time::Duration;

use hap_api::HapContainer;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;

use super::names;
use super::pod_plan::{self, Backoff, PodHistory};
use super::resolve::Resolved;
use crate::pipeline::caches::Caches;
use crate::pipeline::kinds::{Desired, Observed, Stage};
use crate::pipeline::plan::{self, Step};

/// Every child a HapContainer can have, at one stage: as the spec wants it (`Desired`, None where the
/// spec does not call for it) or as the caches hold it (`Observed`). The plan takes both apart without
/// `..`, so a child added here does not compile until it is planned, applied and rendered.
#[derive(Default)]
pub struct Children<S: Stage> {
    /// The generated Jupyter token's Secret (not desired when the user supplies one).
    pub token_secret: S::Of<Secret>,
    /// What lets the workspace start Spark executors (desired with executors only).
    pub spark_service_account: S::Of<ServiceAccount>,
    pub spark_role: S::Of<Role>,
    pub spark_role_binding: S::Of<RoleBinding>,
    /// The executors' copy of the S3 keys (desired with executors and keys).
    pub spark_keys: S::Of<Secret>,
    /// The user's S3 Secret that the copy follows: observed only (for its version), never desired.
    pub s3_source: S::Of<Secret>,
    /// The secret the Spark driver and its executors authenticate each other with (desired with
    /// executors only).
    pub spark_auth: S::Of<Secret>,
    pub spark_conf: S::Of<ConfigMap>,
    /// The operator's CA bundle, which the workspace image trusts when mounted.
    pub trusted_ca: S::Of<ConfigMap>,
    pub volume: S::Of<PersistentVolumeClaim>,
    pub service: S::Of<Service>,
    pub spark_driver_service: S::Of<Service>,
    /// Who may connect to the workspace pod, and (with executors) to its executors.
    pub workspace_policy: S::Of<NetworkPolicy>,
    pub executors_policy: S::Of<NetworkPolicy>,
    /// Not desired while the workspace is suspended (size 0).
    pub pod: S::Of<Pod>,
}

/// What the caches hold of the workspace's children. A pod of the same name that the HapContainer does
/// not own is not its pod (the plan creates one, and the apply finds the name taken).
pub fn observe(caches: &Caches, hc: &HapContainer, r: &Resolved) -> Children<Observed> {
    let (namespace, name) = (hc.namespace().unwrap_or_default(), hc.name_any());
    let ns = namespace.as_str();
    let uid = hc.uid();
    let owned = |p: &std::sync::Arc<Pod>| {
        p.owner_references()
            .iter()
            .any(|r| Some(&r.uid) == uid.as_ref())
    };
    let rbac = names::spark_rbac(&name);
    Children {
        token_secret: caches.get::<Secret>(ns, &r.token.secret),
        spark_service_account: caches.get::<ServiceAccount>(ns, &rbac),
        spark_role: caches.get::<Role>(ns, &rbac),
        spark_role_binding: caches.get::<RoleBinding>(ns, &rbac),
        spark_keys: caches.get::<Secret>(ns, &names::spark_keys(&name)),
        s3_source: r
            .s3
            .as_ref()
            .and_then(|s3| s3.credentials.as_ref())
            .and_then(|c| caches.get::<Secret>(ns, &c.secret)),
        spark_auth: caches.get::<Secret>(ns, &names::spark_auth(&name)),
        spark_conf: caches.get::<ConfigMap>(ns, &names::spark_conf(&name)),
        trusted_ca: caches.get::<ConfigMap>(ns, &names::trusted_ca(&name)),
        volume: caches.get::<PersistentVolumeClaim>(ns, &names::volume(&name)),
        service: caches.get::<Service>(ns, &names::service(&name)),
        spark_driver_service: caches.get::<Service>(ns, &names::spark_driver_service(&name)),
        workspace_policy: caches.get::<NetworkPolicy>(ns, &names::workspace_policy(&name)),
        executors_policy: caches.get::<NetworkPolicy>(ns, &names::executors_policy(&name)),
        pod: caches.get::<Pod>(ns, &names::pod(&name)).filter(owned),
    }
}

/// The steps for every child, in apply order, and what follows from the pod's.
pub struct Plan {
    pub steps: Vec<Step>,
    /// When to look again, if sooner than the resync.
    pub requeue: Option<Duration>,
    pub pod: pod_plan::PodPlan,
}

/// The desired home claim, never smaller than the claim as it is: a spec or profile that now asks
/// for less keeps the claim's size (Kubernetes refuses to shrink a claim, and the files stay).
fn never_smaller(
    desired: Option<&PersistentVolumeClaim>,
    live: Option<&PersistentVolumeClaim>,
) -> Option<PersistentVolumeClaim> {
    let storage = |c: &PersistentVolumeClaim| {
        let q = c
            .spec
            .as_ref()?
            .resources
            .as_ref()?
            .requests
            .as_ref()?
            .get("storage")?;
        Some((q.clone(), hap_api::quantity::parse(&q.0)?))
    };
    let mut out = desired?.clone();
    if let (Some((_, wanted)), Some((held, held_bytes))) = (storage(&out), live.and_then(storage))
        && held_bytes > wanted
        && let Some(requests) = out
            .spec
            .as_mut()
            .and_then(|s| s.resources.as_mut())
            .and_then(|r| r.requests.as_mut())
    {
        requests.insert("storage".into(), held);
    }
    Some(out)
}

/// Plans every child (pure). `owner_uid` is the HapContainer's (None when rendered from a file);
/// when the HapContainer is not `runnable` (a configuration problem), no pod is created or replaced.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    observed: &Children<Observed>,
    desired: &Children<Desired>,
    r: &Resolved,
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
        spark_keys,
        s3_source: _,
        spark_auth,
        spark_conf,
        trusted_ca,
        volume,
        service,
        spark_driver_service,
        workspace_policy,
        executors_policy,
        pod,
    } = desired;
    let Children {
        token_secret: live_token_secret,
        spark_service_account: live_spark_service_account,
        spark_role: live_spark_role,
        spark_role_binding: live_spark_role_binding,
        spark_keys: live_spark_keys,
        s3_source: live_s3_source,
        spark_auth: live_spark_auth,
        spark_conf: live_spark_conf,
        trusted_ca: live_trusted_ca,
        volume: live_volume,
        service: live_service,
        spark_driver_service: live_spark_driver_service,
        workspace_policy: live_workspace_policy,
        executors_policy: live_executors_policy,
        pod: live_pod,
    } = observed;
    let pod_plan = pod_plan::pod(
        live_pod.as_deref(),
        pod.as_ref(),
        runnable,
        history,
        now,
        backoff,
    );
    let keys_source = super::build::spark::executor_keys_source(r);
    let in_apply_order = vec![
        plan::create_once(
            live_token_secret.as_deref(),
            token_secret.as_ref(),
            &[r.token.key.as_str()],
            "a generated Jupyter token",
        ),
        plan::ensure_or_remove(
            live_spark_service_account.as_deref(),
            spark_service_account.as_ref(),
            owner_uid,
        ),
        plan::ensure_or_remove(live_spark_role.as_deref(), spark_role.as_ref(), owner_uid),
        plan::ensure_or_remove(
            live_spark_role_binding.as_deref(),
            spark_role_binding.as_ref(),
            owner_uid,
        ),
        plan::copy(
            live_spark_keys.as_deref(),
            spark_keys.as_ref().zip(keys_source.as_ref()),
            live_s3_source.as_deref().map(|s| &s.metadata),
            runnable,
            owner_uid,
        ),
        // Made once, before the pod and the settings that name it; removed with the executors, as
        // nothing reads it then (a workspace scaled out again gets a new one).
        match spark_auth {
            Some(secret) => plan::create_once(
                live_spark_auth.as_deref(),
                Some(secret),
                &[names::SPARK_AUTH_KEY],
                "a generated Spark authentication secret",
            ),
            None => plan::ensure_or_remove::<Secret>(live_spark_auth.as_deref(), None, owner_uid),
        },
        plan::ensure_if_desired(live_spark_conf.as_deref(), spark_conf.as_ref()),
        plan::ensure_if_desired(live_trusted_ca.as_deref(), trusted_ca.as_ref()),
        plan::ensure_if_desired(
            live_volume.as_deref(),
            never_smaller(volume.as_ref(), live_volume.as_deref()).as_ref(),
        ),
        plan::ensure_if_desired(live_service.as_deref(), service.as_ref()),
        plan::ensure_or_remove(
            live_spark_driver_service.as_deref(),
            spark_driver_service.as_ref(),
            owner_uid,
        ),
        // Before the pod and the executors it starts, so neither runs unguarded.
        plan::ensure_if_desired(live_workspace_policy.as_deref(), workspace_policy.as_ref()),
        plan::ensure_or_remove(
            live_executors_policy.as_deref(),
            executors_policy.as_ref(),
            owner_uid,
        ),
        pod_plan.step.clone(),
    ];
    Plan {
        steps: plan::in_order(in_apply_order),
        requeue: pod_plan.requeue,
        pod: pod_plan,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::hapcontainer::resolve::resolve;
    use crate::pipeline::config::BuildConfig;
    use crate::pipeline::kinds::Object;
    use crate::pipeline::plan::Action;
    use hap_api::profile::Catalog;

    use crate::testing::{applied, hapcontainer as hc};
    use serde_json::json;

    const ORDER: [&str; 10] = [
        "ServiceAccount w-spark",
        "Role w-spark",
        "RoleBinding w-spark",
        "ConfigMap w-spark-conf",
        "PersistentVolumeClaim w-workspace",
        "Service w-hapservice",
        "Service w-spark-driver",
        "NetworkPolicy w-workspace-ingress",
        "NetworkPolicy w-spark-executors",
        "Pod w-happod",
    ];

    fn desired(hc: &HapContainer) -> Children<Desired> {
        let cfg = BuildConfig::default();
        crate::hapcontainer::build::build(hc, &resolve(hc, &cfg, &Catalog::Absent), &cfg)
    }

    fn plan_of(observed: &Children<Observed>, hc: &HapContainer) -> Plan {
        let history = PodHistory::default();
        let backoff = Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(1),
            reset_after: Duration::from_secs(600),
        };
        plan(
            observed,
            &desired(hc),
            &resolve(hc, &BuildConfig::default(), &Catalog::Absent),
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
                Action::Apply(o) | Action::Create(o) | Action::Delete(o) | Action::Replace(o) => {
                    Some(o)
                }
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
    fn executors_get_an_authentication_secret_made_once_before_the_pod_and_never_rewritten() {
        let scaled = hc("{spark: {executors: 2}}");
        let plan = plan_of(&Children::default(), &scaled);
        let made = |name: &str| {
            plan.steps.iter().position(|s| matches!(&s.action, Action::CreateOnce(secret, _) if secret.metadata.name.as_deref() == Some(name)))
        };
        let auth = made("w-spark-auth").expect("the Secret is made");
        let Action::CreateOnce(secret, keys) = &plan.steps[auth].action else {
            unreachable!()
        };
        assert_eq!(keys, &["secret"], "one generated key, the file Spark reads");
        assert!(
            secret.data.is_none() && secret.string_data.is_none(),
            "no value is planned"
        );
        let pod = plan
            .steps
            .iter()
            .position(|s| matches!(&s.action, Action::Create(Object::Pod(_))))
            .unwrap();
        assert!(auth < pod, "made before the pod that mounts it");
        // Without executors, none is made.
        assert!(
            plan_of(&Children::default(), &hc("{spark: {executors: 0}}"))
                .steps
                .iter()
                .all(|s| !matches!(&s.action, Action::CreateOnce(secret, _) if secret.metadata.name.as_deref() == Some("w-spark-auth")))
        );
        // Once made (here by someone else, even), it is never written again.
        let observed = Children::<Observed> {
            spark_auth: Some(Arc::new(
                serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "w-spark-auth", "namespace": "ns"}
                }))
                .unwrap(),
            )),
            ..Default::default()
        };
        let again = plan_of(&observed, &scaled);
        assert!(again.steps.iter().all(|s| !matches!(&s.action, Action::CreateOnce(secret, _) | Action::Delete(Object::Secret(secret)) if secret.metadata.name.as_deref() == Some("w-spark-auth"))));
        // Nor deleted when executors go, unless it is the HapContainer's own.
        let scaled_in = plan_of(&observed, &hc("{spark: {executors: 0}}"));
        assert!(!writes(&scaled_in).contains(&"Secret w-spark-auth".to_string()));
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
            spark_role: built.spark_role.map(|r| applied(&r, json!(null))),
            spark_role_binding: built.spark_role_binding.map(|b| applied(&b, json!(null))),
            spark_keys: None,
            s3_source: None,
            // As the operator made it: owned by the HapContainer.
            spark_auth: built.spark_auth.as_ref().map(|s| Arc::new(serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": crate::pipeline::hash::hashed(s.clone()).metadata
            })).unwrap())),
            spark_conf: None,
            trusted_ca: None,
            volume: built.volume.as_ref().map(|v| {
                Arc::new(serde_json::from_value(serde_json::json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": crate::pipeline::hash::hashed(v.clone()).metadata
                })).unwrap())
            }),
            service: built.service.map(|s| applied(&s, json!(null))),
            spark_driver_service: built.spark_driver_service.map(|s| applied(&s, json!(null))),
            workspace_policy: built.workspace_policy.map(|p| applied(&p, json!(null))),
            executors_policy: built.executors_policy.map(|p| applied(&p, json!(null))),
            pod: None,
        };
        let plan = plan_of(&observed, &hc("{spark: {executors: 0}}"));
        assert_eq!(
            writes(&plan),
            [
                "ConfigMap w-spark-conf",
                // The driver's ports closed to executors.
                "NetworkPolicy w-workspace-ingress",
                "Pod w-happod",
                // Removed last, in reverse apply order.
                "NetworkPolicy w-spark-executors",
                "Service w-spark-driver",
                // Nothing reads the authentication secret without executors.
                "Secret w-spark-auth",
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
        assert_eq!(
            deletes, 6,
            "the RBAC, the driver service, the executors' policy and the authentication secret are removed"
        );
        assert!(
            matches!(&plan.steps[0].action, Action::Keep),
            "the token is never rewritten"
        );
        assert!(plan.steps.iter().all(|s| !matches!(&s.action, Action::Apply(Object::Service(svc)) if svc.metadata.name.as_deref() == Some("w-hapservice"))), "an unchanged service is kept");
    }
}
