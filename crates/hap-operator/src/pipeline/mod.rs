//! The pipeline every resource goes through, and the neutral core it is made of. A resource
//! (`crate::hapcontainer`, `crate::hapquery`) implements [`Reconciled`]: its pure steps (resolve,
//! build, observe, plan, status) and what it names (its Secrets, its problems). The one generic
//! reconcile (`reconcile`) runs them with the shared I/O steps (the Secret check in `references`, the
//! executor in `apply`, the status write), and `crate::controller` wires any `Reconciled` to the
//! shared watches. A resource imports from here and from `hap_api`, never from another resource.
//!
//! - What children are and how they are compared: `kinds`, `hash`, `drift`, `caches`.
//! - Building them: `objects`, `s3`; generated values: `generated`.
//! - Planning and applying: `plan`, `apply`, `events`, `error`, `backoff`.
//! - Reporting: `reason`, `problem`, `references`, `conditions`, `pods`.
//! - Running: `reconcile`, `context`, `readiness`, `config`.

pub mod apply;
pub mod authority;
pub mod backoff;
pub mod caches;
pub mod conditions;
pub mod config;
pub mod context;
pub mod drift;
pub mod error;
pub mod events;
pub mod generated;
pub mod hash;
pub mod kinds;
pub mod metrics;
pub mod network;
pub mod objects;
pub mod plan;
pub mod pods;
pub mod problem;
pub mod readiness;
pub mod reason;
pub mod reconcile;
pub mod references;
pub mod s3;
pub mod tenancy;

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

use apply::Outcome;
use caches::Caches;
use conditions::Verdicts;
use config::{BuildConfig, RunConfig};
use hap_api::profile::Catalog;
use plan::Step;
use problem::Problem;
use references::SecretReference;

/// The field manager of every write, and the `managed-by` label value.
pub const MANAGER: &str = "hap-operator";
/// The label every child carries, with [`MANAGER`] as its value.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The annotation holding the hash of a child's desired state: a child whose hash matches is not
/// written again, and a pod or Job whose hash differs is replaced (they are immutable).
pub const SPEC_HASH: &str = "hap.cloudian.com/spec-hash";

/// A custom resource reconciled through the pipeline. The associated types are its stages: the spec
/// resolved, its children as built and as observed, what it remembers between reconciles, what it
/// checks beyond the API, and its status.
pub trait Reconciled:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Its plural name, as the API serves it (what its watch is called in logs and warnings).
    const PLURAL: &'static str;
    /// `app.kubernetes.io/name` of its children. A pod labelled with it and with the object's name as
    /// `app.kubernetes.io/instance` triggers the object's reconcile, whoever owns the pod (a
    /// ReplicaSet, a Job).
    const APP: &'static str;
    /// The condition types whose failures are told as Warning events.
    const ANNOUNCED: &'static [&'static str];
    /// The kinds of children it reads (Pods and Secrets included): their caches must be filled
    /// before it is reconciled, and their changes trigger its reconcile.
    const CHILDREN: &'static [kinds::Kind];

    type Resolved: Send + Sync;
    type Desired: Send + Sync;
    /// What the caches hold of its children (default: nothing, what `render` plans against).
    type Observed: Default + Send + Sync;
    /// What is kept of one object between reconciles.
    type Memory: Clone + Default + Send + Sync + 'static;
    /// What is checked beyond the API (a server's reachability).
    type Checked: Send + Sync;
    type Status: Clone + Serialize + PartialEq + Debug + Send + Sync;

    /// Resolve (pure): the spec read once into what every later step needs, with the workspace
    /// profiles it may name.
    fn resolve(&self, cfg: &BuildConfig, profiles: &Catalog) -> Self::Resolved;
    /// The workspace profile the spec names, if it names one: the object is reconciled again when
    /// the profiles change.
    fn profile(&self) -> Option<&str> {
        None
    }
    /// The spec's own problems, each saying what to fix.
    fn problems(resolved: &Self::Resolved) -> Vec<Problem>;
    /// The Secrets the user supplies, checked by the read step.
    fn secrets(resolved: &Self::Resolved) -> Vec<SecretReference>;
    /// What the caches show that keeps the object from running: a Secret of a name it generates
    /// that someone else made (`references::foreign`).
    fn conflicts(&self, _resolved: &Self::Resolved, _caches: &Caches) -> Vec<Problem> {
        Vec::new()
    }
    /// Build (pure): every child as the spec wants it.
    fn build(&self, resolved: &Self::Resolved, cfg: &BuildConfig) -> Self::Desired;
    /// Read the children from the caches.
    fn observe(&self, resolved: &Self::Resolved, caches: &Caches) -> Self::Observed;
    /// What is kept of an object first seen (or seen again after a restart).
    fn memory(&self) -> Self::Memory {
        Self::Memory::default()
    }
    /// Plan (pure): a step for every child, in the one apply order. When the object is not
    /// `runnable` (a problem the user must fix first, or a Secret not checked), the resource holds
    /// back what must not start on it: all of a HapQuery, a HapContainer's pod.
    fn plan(&self, input: Planning<'_, Self>) -> Plan;
    /// Keeps what the executed plan left to remember.
    fn remember(_memory: &mut Self::Memory, _outcome: &Outcome) {}
    /// Checks what the API cannot tell (I/O): a server's reachability, a workspace's activity.
    fn check(
        &self,
        client: &kube::Client,
        resolved: &Self::Resolved,
        observed: &Self::Observed,
        runnable: bool,
    ) -> impl Future<Output = Self::Checked> + Send;
    /// A change to the object itself, decided (pure) from what `check` saw: a workspace stopped for
    /// idleness. The reconcile applies it as a JSON patch and tells it with the change's event.
    fn change(
        &self,
        _resolved: &Self::Resolved,
        _checked: &Self::Checked,
        _now: Timestamp,
    ) -> Option<Change> {
        None
    }
    /// Status (pure): from what was observed and done, with a typed verdict per condition.
    fn status(&self, seen: Seen<'_, Self>) -> (Self::Status, Verdicts);
    /// The status the object carries now.
    fn status_now(&self) -> Option<&Self::Status>;
    fn conditions(status: &Self::Status) -> &[Condition];
    /// How soon to look again while something is on its way that no watch reports (a server
    /// coming up, a workspace going idle).
    fn poll(&self, _resolved: &Self::Resolved, _status: &Self::Status) -> Option<Duration> {
        None
    }
    /// The child a condition's events are about, which keeps two conditions' events of one reason
    /// apart (the recorder folds events with one reason and one related object into a series).
    fn about(&self, _condition: &str) -> Option<ObjectReference> {
        None
    }
}

/// What the plan step is given.
pub struct Planning<'a, R: Reconciled> {
    pub resolved: &'a R::Resolved,
    pub observed: &'a R::Observed,
    pub desired: &'a R::Desired,
    pub runnable: bool,
    pub memory: &'a mut R::Memory,
    pub now: Timestamp,
    pub config: &'a RunConfig,
}

/// A plan: a step for every child, in order, and when to look again if sooner than the resync.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub requeue: Option<Duration>,
}

/// A change the operator makes to the object it reconciles: a JSON patch whose `test` operations
/// make it fail, rather than overwrite, when someone changed the object meanwhile; and the event
/// that tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub patch: json_patch::Patch,
    pub note: events::Note,
}

/// What the status step is given: everything observed and done in this reconcile.
pub struct Seen<'a, R: Reconciled> {
    pub resolved: &'a R::Resolved,
    pub observed: &'a R::Observed,
    pub desired: &'a R::Desired,
    pub outcome: &'a Outcome,
    pub problems: &'a [Problem],
    pub memory: &'a R::Memory,
    pub checked: &'a R::Checked,
    /// The change to the object itself, when one was decided: applied, or why not.
    pub changed: Option<&'a Result<(), String>>,
    pub now: &'a Time,
}
