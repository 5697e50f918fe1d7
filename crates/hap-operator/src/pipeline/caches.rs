//! The caches of every kind of child, one store each, filled by the operator's watches (one watch per
//! kind, shared by every resource's controller: see `crate::watches`). A resource's observe step reads
//! its children from here.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Resource;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::kinds::Child;
use hap_api::profile::{self, Catalog};

/// Services and claims are cached with their spec and status (their status is reported), and so are
/// the kinds whose content is compared for edits or whose status is reported (ConfigMaps, Roles,
/// RoleBindings, StatefulSets, Deployments, Jobs); pods with their status and of their spec only the
/// restart policy; Secrets and ServiceAccounts as metadata only, all a hash check needs, so no Secret
/// data is held in memory. No cached object keeps its managed fields or `kubectl apply`'s copy of it
/// (see `crate::watches::unread_metadata`).
#[derive(Clone)]
pub struct Caches {
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub secrets: Store<PartialObjectMeta<Secret>>,
    pub claims: Store<PersistentVolumeClaim>,
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    pub roles: Store<Role>,
    pub role_bindings: Store<RoleBinding>,
    pub stateful_sets: Store<StatefulSet>,
    pub deployments: Store<Deployment>,
    pub jobs: Store<Job>,
    pub network_policies: Store<NetworkPolicy>,
    /// The namespaces' labels, in the multi-tenant install (see `tenancy`); empty otherwise.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// The ConfigMap `hap-profiles` of the operator's namespace, alone (see `hap_api::profile`).
    pub profile_config: Store<ConfigMap>,
}

/// A kind of child with its cache.
pub trait Cached: Child {
    fn cache(caches: &Caches) -> &Store<Self::Live>;
}

macro_rules! cached {
    ($($kind:ident in $cache:ident),* $(,)?) => {$(
        impl Cached for $kind {
            fn cache(caches: &Caches) -> &Store<Self::Live> {
                &caches.$cache
            }
        }
    )*};
}
cached!(
    Pod in pods,
    Service in services,
    ConfigMap in config_maps,
    Secret in secrets,
    PersistentVolumeClaim in claims,
    ServiceAccount in service_accounts,
    Role in roles,
    RoleBinding in role_bindings,
    StatefulSet in stateful_sets,
    Deployment in deployments,
    Job in jobs,
    NetworkPolicy in network_policies,
);

impl Caches {
    /// The workspace profiles, as the ConfigMap `hap-profiles` holds them now.
    pub fn profiles(&self) -> Catalog {
        self.profile_config
            .state()
            .first()
            .map_or(Catalog::Absent, |cm| {
                let yaml = cm.data.as_ref().and_then(|d| d.get(profile::KEY));
                Catalog::parse(yaml.map(String::as_str).unwrap_or_default())
            })
    }

    /// The cached child of kind K named `name` in `namespace`.
    pub fn get<K: Cached>(&self, namespace: &str, name: &str) -> Option<Arc<K::Live>> {
        K::cache(self).get(&ObjectRef::new(name).within(namespace))
    }

    /// The same, if it is the child of the owner with uid `owner` as it is now: owned by it and not
    /// being deleted. An owner deleted and made again under the same name finds its predecessor's
    /// children going away under the same names; they are not its own (the next apply takes over one
    /// of the same name that someone else made).
    pub fn owned<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
    ) -> Option<Arc<K::Live>> {
        self.get::<K>(namespace, name)
            .filter(|live| current(live.meta(), owner))
    }

    /// The pods labelled `app.kubernetes.io/name=<app>`, `instance=<instance>` and `component=<component>`
    /// in `namespace`, except those going away.
    pub fn pods_of(
        &self,
        namespace: &str,
        app: &str,
        instance: &str,
        component: &str,
    ) -> Vec<Arc<Pod>> {
        let wanted = [
            ("app.kubernetes.io/name", app),
            ("app.kubernetes.io/instance", instance),
            ("app.kubernetes.io/component", component),
        ];
        self.pods
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && p.metadata.deletion_timestamp.is_none()
                    && wanted.iter().all(|(k, v)| {
                        p.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(*k))
                            .map(String::as_str)
                            == Some(*v)
                    })
            })
            .collect()
    }
}

/// Whether a child is its owner's as it is now: owned by `owner` (when known) and not being deleted.
fn current(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    owner: Option<&str>,
) -> bool {
    let owned =
        owner.is_none_or(|uid| meta.owner_references.iter().flatten().any(|r| r.uid == uid));
    owned && meta.deletion_timestamp.is_none()
}

/// Caches holding these objects and nothing else, as the watches would after their first list: for
/// unit tests of the observe steps.
#[cfg(test)]
pub mod testing {
    use super::*;
    use kube::runtime::{reflector, watcher};

    pub fn store<K>(objects: Vec<K>) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone,
    {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for o in objects {
            writer.apply_watcher_event(&watcher::Event::InitApply(o));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        store
    }

    /// Empty caches.
    pub fn empty() -> Caches {
        Caches {
            pods: store(vec![]),
            services: store(vec![]),
            config_maps: store(vec![]),
            secrets: store(vec![]),
            claims: store(vec![]),
            service_accounts: store(vec![]),
            roles: store(vec![]),
            role_bindings: store(vec![]),
            stateful_sets: store(vec![]),
            deployments: store(vec![]),
            jobs: store(vec![]),
            network_policies: store(vec![]),
            namespaces: store(vec![]),
            profile_config: store(vec![]),
        }
    }
}
