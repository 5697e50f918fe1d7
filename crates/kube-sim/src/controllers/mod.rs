//! The simulated control plane: scheduler, kubelet, endpoints, workload controllers, garbage collector and
//! the namespace, CRD and volume housekeeping. They work on the store directly, but every write goes
//! through admission like an API write would, so their objects look like a real cluster's.

pub mod endpoints;
pub mod gc;
pub mod housekeeping;
pub mod kubelet;
pub mod scheduler;
pub mod workloads;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::admission::{self, FieldValidation, Managed, Write};
use crate::clock;
use crate::core::Core;
use crate::errors::ApiError;
use crate::lifecycle::{self, DeleteOptions, Deleted};
use crate::rbac::User;
use crate::registry::{ResourceType, StorageKey};
use crate::store::{Event, meta_str, resource_version};

/// Writes on behalf of one simulated component, recorded under its field manager name.
pub struct Writer<'a> {
    pub core: &'a Core,
    pub manager: &'static str,
}

impl Writer<'_> {
    fn user(&self) -> User {
        User {
            name: format!("system:{}", self.manager),
            groups: vec!["system:masters".into()],
        }
    }

    async fn admit(
        &self,
        rt: &ResourceType,
        old: Option<&Value>,
        new: Value,
        subresource: &str,
    ) -> Result<Value, ApiError> {
        let user = self.user();
        let write = Write {
            rt,
            user: &user,
            subresource,
            validation: FieldValidation::Ignore,
            manager: self.manager,
            managed: Managed::Record,
        };
        Ok(admission::admit(self.core, write, old, new).await?.object)
    }

    pub async fn create(&self, rt: &ResourceType, obj: Value) -> Result<Value, ApiError> {
        admission::namespace_lifecycle(self.core, rt, &obj)?;
        let admitted = self.admit(rt, None, obj, "").await?;
        lifecycle::create(self.core, rt, admitted)
    }

    /// Replaces `old` with `new` (main resource); a conflict means someone else wrote first.
    pub async fn update(
        &self,
        rt: &ResourceType,
        old: &Value,
        new: Value,
    ) -> Result<Value, ApiError> {
        let admitted = self.admit(rt, Some(old), new, "").await?;
        if admission::unchanged(old, &admitted) {
            return Ok(old.clone());
        }
        lifecycle::update(self.core, rt, admitted, resource_version(old))
    }

    /// Writes `status` through the status subresource.
    pub async fn update_status(
        &self,
        rt: &ResourceType,
        old: &Value,
        status: Value,
    ) -> Result<Value, ApiError> {
        let mut new = old.clone();
        new["status"] = status;
        let subresource = if rt.has_status() { "status" } else { "" };
        let admitted = self.admit(rt, Some(old), new, subresource).await?;
        if admission::unchanged(old, &admitted) {
            return Ok(old.clone());
        }
        lifecycle::update(self.core, rt, admitted, resource_version(old))
    }

    pub fn delete(
        &self,
        rt: &ResourceType,
        obj: &Value,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let ns = if rt.namespaced {
            meta_str(obj, "namespace")
        } else {
            ""
        };
        lifecycle::delete(self.core, rt, ns, meta_str(obj, "name"), opts)
    }
}

/// A core/v1 Event about `involved`, as components record them for `kubectl describe`.
pub async fn record_event(
    core: &Core,
    involved: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = meta_str(involved, "namespace");
    let ns = if ns.is_empty() { "default" } else { ns };
    let now = clock::now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{:016x}", meta_str(involved, "name"), rand::random::<u64>()),
            "namespace": ns,
        },
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta_str(involved, "name"),
            "namespace": meta_str(involved, "namespace"),
            "uid": meta_str(involved, "uid"),
            "resourceVersion": meta_str(involved, "resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": "",
    });
    let rt = core.built_in("", "events");
    let writer = Writer {
        core,
        manager: "kube-sim",
    };
    if let Err(e) = writer.create(&rt, event).await {
        tracing::debug!(reason, error = %e.message, "event not recorded");
    }
}

/// An owner reference that makes `owner` the controller of a new object.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Whether `obj` is controlled by the object with `uid`.
pub fn controlled_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["uid"] == uid && r["controller"].as_bool() == Some(true))
}

/// Runs `reconcile` on every store event and on a timer, so missed or lagged events heal on the next tick.
pub async fn run_loop<F, Fut>(core: Arc<Core>, every: Duration, mut reconcile: F)
where
    F: FnMut(Arc<Core>, Option<Arc<Event>>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut events = core.store.subscribe();
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(e) => reconcile(core.clone(), Some(e)).await,
                Err(broadcast::error::RecvError::Lagged(_)) => reconcile(core.clone(), None).await,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => reconcile(core.clone(), None).await,
        }
    }
}

pub fn storage(group: &str, resource: &str) -> StorageKey {
    StorageKey::new(group, resource)
}

/// Starts every simulated controller on the current runtime.
pub fn spawn_all(core: &Arc<Core>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(scheduler::run(core.clone())),
        tokio::spawn(kubelet::run(core.clone())),
        tokio::spawn(endpoints::run(core.clone())),
        tokio::spawn(workloads::run(core.clone())),
        tokio::spawn(gc::run(core.clone())),
        tokio::spawn(housekeeping::run(core.clone())),
    ]
}
