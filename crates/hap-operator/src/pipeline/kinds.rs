//! The kinds of children a controller writes, shared by every resource's pipeline: what the cache
//! holds of each, how a live copy is compared with the desired one, and the stages a typed set of
//! children goes through (desired from build, observed from the caches).

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Resource;
use kube::core::PartialObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::drift;

/// The kind's name, as the API and events spell it (`ConfigMap`).
pub fn kind<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_string()
}

/// A kind of child.
pub trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Default
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// What the cache holds: the whole object where its content is compared or reported, its
    /// metadata only where the spec-hash annotation is enough (so no Secret data is held in memory).
    type Live: Resource<DynamicType = ()> + Clone + Send + Sync + 'static;

    /// Whether the live copy still says what the operator applied. An edit keeps the spec-hash
    /// annotation, so this is what notices it.
    fn unchanged(live: &Self::Live, desired: &Self) -> bool;

    fn into_object(self) -> Object;

    /// The child inside `obj`, if it is of this kind.
    fn from_object(obj: &Object) -> Option<&Self>;
}

/// One child of any kind, as the plan hands it to the executor and `render` prints it (as itself).
// A pod is much larger than the rest, but a reconcile holds a handful of these: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    Secret(Secret),
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
    ConfigMap(ConfigMap),
    PersistentVolumeClaim(PersistentVolumeClaim),
    Service(Service),
    Pod(Pod),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
    Job(Job),
    NetworkPolicy(NetworkPolicy),
}

/// Implements `Child` for each kind: what its cache holds, and how its content is compared.
macro_rules! children {
    ($($kind:ident: $live:ty => $unchanged:path),* $(,)?) => {$(
        impl Child for $kind {
            type Live = $live;
            fn unchanged(live: &Self::Live, desired: &Self) -> bool {
                $unchanged(live, desired)
            }
            fn into_object(self) -> Object {
                Object::$kind(self)
            }
            fn from_object(obj: &Object) -> Option<&Self> {
                match obj {
                    Object::$kind(o) => Some(o),
                    _ => None,
                }
            }
        }
    )*};
}
children!(
    // The hash annotation says it all for these, and a generated Secret is never rewritten.
    Secret: PartialObjectMeta<Secret> => drift::always,
    ServiceAccount: PartialObjectMeta<ServiceAccount> => drift::always,
    // Cached whole: whether it is bound is what a waiting workspace's status says.
    PersistentVolumeClaim: PersistentVolumeClaim => drift::always,
    ConfigMap: ConfigMap => drift::config_map,
    Role: Role => drift::role,
    RoleBinding: RoleBinding => drift::role_binding,
    Service: Service => drift::service,
    // Pods are immutable: a changed pod has another hash and is replaced, never applied over.
    Pod: Pod => drift::always,
    // Cached whole: their status is what a HapQuery's conditions report.
    StatefulSet: StatefulSet => drift::stateful_set,
    Deployment: Deployment => drift::deployment,
    // Jobs are immutable too: a Job whose template changed is replaced.
    Job: Job => drift::always,
    NetworkPolicy: NetworkPolicy => drift::network_policy,
);

/// A stage of a typed set of children: what each child is at that stage (None by default, so a set
/// can derive `Default`: nothing desired, or nothing observed).
pub trait Stage {
    type Of<K: Child>: Default;
}

/// What the spec calls for: the child, or None when it should not exist.
#[derive(Default)]
pub struct Desired;
impl Stage for Desired {
    type Of<K: Child> = Option<K>;
}

/// What the caches hold: the live child, or None when there is none.
#[derive(Default)]
pub struct Observed;
impl Stage for Observed {
    type Of<K: Child> = Option<Arc<K::Live>>;
}

/// The kinds of children, as named in a resource's list of what it reads (`Reconciled::CHILDREN`):
/// the operator watches the kinds that the resources it serves read, and each controller waits for
/// the caches of its own kinds only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Service,
    ConfigMap,
    Secret,
    PersistentVolumeClaim,
    ServiceAccount,
    Role,
    RoleBinding,
    StatefulSet,
    Deployment,
    Job,
    NetworkPolicy,
}
