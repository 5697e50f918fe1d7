//! The apply step: makes the live children match the desired ones. A child whose spec-hash annotation
//! matches and whose content was not edited since (see `drift`) is left alone, so a converged
//! HapContainer costs no writes; the rest is server-side applied with the operator's field manager.
//! Pods are immutable, so a changed pod is deleted and created again.
//!
//! Children are applied one by one and a failure of one does not stop the others: the pod keeps healing
//! and the status keeps being written. A child the API rejects (400, 422: e.g. a node port already
//! taken) becomes a problem on the status; other failures are retried with back-off.

use std::fmt::Debug;
use std::time::Duration;

use hap_api::HapContainer;
use hap_api::hapcontainer::DEFAULT_TOKEN_KEY;
use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::references::Problem;
use super::status::{pod_phase, pod_ready};
use super::{Context, Error, drift};
use crate::build::{self, Desired, hash_on};
use crate::names;

/// What the apply step leaves behind for the status step.
pub struct Applied {
    pub pod: Option<Pod>,
    pub service: Option<Service>,
    /// Failed pods replaced in a row, including any replaced now.
    pub replacements: i32,
    /// When to look again, if sooner than the resync.
    pub requeue: Option<Duration>,
    /// Children the API refused, as problems for the status.
    pub rejected: Vec<Problem>,
    /// Other failures, retried with back-off.
    pub errors: Vec<Error>,
}

impl Applied {
    /// Keeps the value of a child's step, or records why it failed and carries on.
    fn settle<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) if e.is_rejection() => {
                self.rejected.push(Problem {
                    reason: "ChildRejected",
                    message: e.to_string(),
                    blocking: false,
                });
                None
            }
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_string()
}

fn api<K>(ctx: &Context, namespace: &str) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    Api::namespaced(ctx.client.clone(), namespace)
}

fn apply_params() -> PatchParams {
    PatchParams::apply(names::MANAGER).force()
}

/// Applies `desired` unless the cached copy carries the same hash and `unchanged` says it was not
/// edited. Returns the object as applied, if it wrote.
async fn ensure<K, L>(
    ctx: &Context,
    hc: &HapContainer,
    cache: &Store<L>,
    desired: &K,
    unchanged: impl Fn(&L) -> bool,
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
    L: Resource<DynamicType = ()> + Clone,
{
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let live = cache.get(&ObjectRef::new(&name).within(&namespace));
    if let Some(l) = &live
        && hash_on(l.as_ref()) == hash_on(desired)
        && unchanged(l)
    {
        return Ok(None);
    }
    let applied = api::<K>(ctx, &namespace)
        .patch(&name, &apply_params(), &Patch::Apply(desired))
        .await
        .map_err(|e| Error::api("apply", kind_of::<K>(), &name, e))?;
    let verb = if live.is_some() { "Updated" } else { "Created" };
    let note = format!("{verb} {} {name}", kind_of::<K>());
    ctx.event_about(
        hc,
        Some(desired.object_ref(&())),
        EventType::Normal,
        verb,
        &note,
    )
    .await;
    Ok(Some(applied))
}

/// Removes a child the spec no longer calls for (e.g. Spark RBAC after executors went to 0).
async fn remove<K, L>(
    ctx: &Context,
    hc: &HapContainer,
    cache: &Store<L>,
    name: &str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    L: Resource<DynamicType = ()> + Clone,
{
    let namespace = hc.namespace().unwrap_or_default();
    let Some(live) = cache.get(&ObjectRef::new(name).within(&namespace)) else {
        return Ok(());
    };
    if !owned_by(live.meta(), hc) {
        return Ok(());
    }
    match api::<K>(ctx, &namespace)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(Error::api("delete", kind_of::<K>(), name, e)),
    }
    let note = format!("Deleted {} {name}: no longer needed", kind_of::<K>());
    ctx.event_about(
        hc,
        Some(live.object_ref(&())),
        EventType::Normal,
        "Deleted",
        &note,
    )
    .await;
    Ok(())
}

fn owned_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    hc: &HapContainer,
) -> bool {
    let uid = hc.uid();
    meta.owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| Some(&r.uid) == uid.as_ref()))
}

/// The generated token's Secret is created once, with a fresh token, and never rewritten: rotating it
/// would log every user out.
async fn ensure_token(ctx: &Context, hc: &HapContainer, desired: &Secret) -> Result<(), Error> {
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    if ctx
        .caches
        .secrets
        .get(&ObjectRef::new(&name).within(&namespace))
        .is_some()
    {
        return Ok(());
    }
    let mut secret = desired.clone();
    secret.string_data = Some([(DEFAULT_TOKEN_KEY.to_string(), build::token::generate())].into());
    let params = PostParams {
        field_manager: Some(names::MANAGER.into()),
        ..Default::default()
    };
    match api::<Secret>(ctx, &namespace)
        .create(&params, &secret)
        .await
    {
        Ok(_) => {
            let note = format!("Created Secret {name} with a generated Jupyter token");
            ctx.event_about(
                hc,
                Some(desired.object_ref(&())),
                EventType::Normal,
                "Created",
                &note,
            )
            .await;
            Ok(())
        }
        // The cache had not caught up with an earlier create: the token exists, which is all we need.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::api("create", "Secret".into(), &name, e)),
    }
}

/// When a failed pod last changed state: the latest transition among its conditions.
fn failed_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    let transitions = status
        .conditions
        .iter()
        .flatten()
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0));
    transitions
        .max()
        .or_else(|| status.start_time.as_ref().map(|t| t.0))
}

/// The back-off before replacing a failed pod for the `n`th time in a row: doubling from the minimum.
pub fn replacement_delay(n: i32, min: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(n.clamp(0, 16) as u32);
    min.saturating_mul(factor).min(max)
}

async fn delete_pod(ctx: &Context, pod: &Pod) -> Result<(), Error> {
    let name = pod.name_any();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api::<Pod>(ctx, &pod.namespace().unwrap_or_default())
        .delete(&name, &params)
        .await
    {
        Ok(_) => Ok(()),
        // Already gone, or replaced by someone else: either way this pod is no more.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(Error::api("delete", "Pod".into(), &name, e)),
    }
}

/// Brings the workspace pod in line: create, replace on spec change or failure (with back-off),
/// delete on suspend, or wait while a deleted pod goes away.
async fn sync_pod(
    ctx: &Context,
    hc: &HapContainer,
    desired: Option<&Pod>,
    runnable: bool,
    applied: &mut Applied,
) -> Result<(), Error> {
    let namespace = hc.namespace().unwrap_or_default();
    let name = names::pod(&hc.name_any());
    let live = ctx
        .caches
        .pods
        .get(&ObjectRef::new(&name).within(&namespace))
        .map(|p| (*p).clone());
    let live = live.filter(|p| owned_by(&p.metadata, hc));
    applied.pod = live.clone();
    let Some(live) = live else {
        if let (Some(d), true) = (desired, runnable) {
            let created = api::<Pod>(ctx, &namespace)
                .patch(&name, &apply_params(), &Patch::Apply(d))
                .await
                .map_err(|e| Error::api("apply", "Pod".into(), &name, e))?;
            ctx.event_about(
                hc,
                Some(d.object_ref(&())),
                EventType::Normal,
                "Created",
                &format!("Created Pod {name}"),
            )
            .await;
            applied.pod = Some(created);
        }
        return Ok(());
    };
    if live.metadata.deletion_timestamp.is_some() {
        // The pod keeps its name, so its successor waits until it is gone.
        applied.requeue = Some(Duration::from_secs(2));
        return Ok(());
    }
    if pod_ready(&live) {
        applied.replacements = 0;
    }
    let Some(desired) = desired else {
        delete_pod(ctx, &live).await?;
        applied.pod = None;
        let note = format!("Deleted Pod {name}: size is 0");
        ctx.event_about(
            hc,
            Some(live.object_ref(&())),
            EventType::Normal,
            "Suspended",
            &note,
        )
        .await;
        return Ok(());
    };
    if hash_on(&live) != hash_on(desired) && runnable {
        delete_pod(ctx, &live).await?;
        applied.pod = None;
        let note =
            format!("Deleted Pod {name} to apply the changed spec; it is created again once gone");
        ctx.event_about(
            hc,
            Some(live.object_ref(&())),
            EventType::Normal,
            "Replacing",
            &note,
        )
        .await;
        applied.requeue = Some(Duration::from_secs(2));
        return Ok(());
    }
    if pod_phase(&live) == "Failed" {
        let delay = replacement_delay(
            applied.replacements,
            ctx.config.replace_min,
            ctx.config.replace_max,
        );
        let since = failed_at(&live).map(|t| Timestamp::now().duration_since(t));
        let waited = since
            .and_then(|s| Duration::try_from(s).ok())
            .unwrap_or(delay);
        if waited < delay {
            applied.requeue = Some(delay - waited);
            return Ok(());
        }
        delete_pod(ctx, &live).await?;
        applied.pod = None;
        applied.replacements += 1;
        let why = live
            .status
            .as_ref()
            .and_then(|s| s.reason.clone())
            .unwrap_or_else(|| "Failed".into());
        let note = format!(
            "Pod {name} failed ({why}); replacing it (replacement {} in a row)",
            applied.replacements
        );
        ctx.event_about(
            hc,
            Some(live.object_ref(&())),
            EventType::Warning,
            "PodFailed",
            &note,
        )
        .await;
        applied.requeue = Some(Duration::from_secs(2));
    }
    Ok(())
}

/// Applies every child, in an order that lets each one find what it refers to (the Spark
/// ServiceAccount before the pod that runs as it, the ConfigMap before the pod that mounts it).
/// When the HapContainer is not `runnable` (a configuration problem), no pod is created or replaced.
pub async fn sync(ctx: &Context, hc: &HapContainer, desired: &Desired, runnable: bool) -> Applied {
    let caches = &ctx.caches;
    let name = hc.name_any();
    let mut applied = Applied {
        pod: None,
        service: None,
        replacements: hc
            .status
            .as_ref()
            .and_then(|s| s.failed_pod_replacements)
            .unwrap_or(0),
        requeue: None,
        rejected: Vec::new(),
        errors: Vec::new(),
    };
    if let Some(secret) = &desired.token_secret {
        let r = ensure_token(ctx, hc, secret).await;
        applied.settle(r);
    }
    let rbac = names::spark_rbac(&name);
    match (
        &desired.spark_service_account,
        &desired.spark_role,
        &desired.spark_role_binding,
    ) {
        (Some(sa), Some(role), Some(binding)) => {
            let r = ensure(ctx, hc, &caches.service_accounts, sa, |_| true).await;
            applied.settle(r);
            let r = ensure(ctx, hc, &caches.roles, role, |l| drift::role(l, role)).await;
            applied.settle(r);
            let r = ensure(ctx, hc, &caches.role_bindings, binding, |l| {
                drift::role_binding(l, binding)
            })
            .await;
            applied.settle(r);
        }
        _ => {
            let r = remove::<RoleBinding, _>(ctx, hc, &caches.role_bindings, &rbac).await;
            applied.settle(r);
            let r = remove::<Role, _>(ctx, hc, &caches.roles, &rbac).await;
            applied.settle(r);
            let r = remove::<ServiceAccount, _>(ctx, hc, &caches.service_accounts, &rbac).await;
            applied.settle(r);
        }
    }
    let conf = &desired.spark_conf;
    let r = ensure(ctx, hc, &caches.config_maps, conf, |l| {
        drift::config_map(l, conf)
    })
    .await;
    applied.settle(r);
    if let Some(pvc) = &desired.volume {
        let r = ensure(ctx, hc, &caches.claims, pvc, |_| true).await;
        applied.settle(r);
    }
    let r = ensure_service(ctx, hc, &desired.service).await;
    applied.service = applied.settle(r).flatten();
    match &desired.spark_driver_service {
        Some(svc) => {
            let r = ensure_service(ctx, hc, svc).await;
            applied.settle(r);
        }
        None => {
            let driver = names::spark_driver_service(&name);
            let r = remove::<Service, _>(ctx, hc, &caches.services, &driver).await;
            applied.settle(r);
        }
    }
    let r = sync_pod(ctx, hc, desired.pod.as_ref(), runnable, &mut applied).await;
    applied.settle(r);
    applied
}

/// Services are cached whole (their node ports feed the status), so they get their own `ensure`.
async fn ensure_service(
    ctx: &Context,
    hc: &HapContainer,
    desired: &Service,
) -> Result<Option<Service>, Error> {
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let live = ctx
        .caches
        .services
        .get(&ObjectRef::new(&name).within(&namespace));
    if let Some(l) = &live
        && hash_on(l.as_ref()) == hash_on(desired)
        && drift::service(l, desired)
    {
        return Ok(Some((**l).clone()));
    }
    let applied = api::<Service>(ctx, &namespace)
        .patch(&name, &apply_params(), &Patch::Apply(desired))
        .await
        .map_err(|e| Error::api("apply", "Service".into(), &name, e))?;
    let verb = if live.is_some() { "Updated" } else { "Created" };
    ctx.event_about(
        hc,
        Some(desired.object_ref(&())),
        EventType::Normal,
        verb,
        &format!("{verb} Service {name}"),
    )
    .await;
    Ok(Some(applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_back_off_doubles_up_to_the_cap() {
        let (min, max) = (Duration::from_secs(10), Duration::from_secs(300));
        assert_eq!(replacement_delay(0, min, max), Duration::from_secs(10));
        assert_eq!(replacement_delay(1, min, max), Duration::from_secs(20));
        assert_eq!(replacement_delay(3, min, max), Duration::from_secs(80));
        assert_eq!(replacement_delay(10, min, max), max);
        assert_eq!(replacement_delay(100, min, max), max);
    }
}
