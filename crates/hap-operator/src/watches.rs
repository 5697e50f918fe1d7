//! The operator's watches: one per kind, each filling one cache and feeding every controller that
//! subscribes to it, so both resources' controllers share a single watch of Pods, Services,
//! ConfigMaps, Secrets and the rest.
//!
//! kube-runtime has shared streams of its own (`Writer::subscribe`, behind `unstable-runtime-subscribe`),
//! but in 5.0 they pass on applied objects only, not deletions, so a deleted child (a ConfigMap, a
//! Service) would trigger no reconcile until the next resync. This fan-out passes on every object a
//! watch event touches, created, changed or deleted, as `touched_objects` does for an unshared
//! watch; the controllers take the streams through `owns_shared_stream` and `watches_shared_stream`.
//! Each subscriber has an unbounded channel: the controllers poll their triggers continuously, and a
//! bounded one would let one busy controller hold up every cache.

use std::fmt::Debug;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::{WatchStreamExt, controller};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch as signal;

use crate::pipeline::MANAGER;
use crate::pipeline::caches::Caches;
use crate::pipeline::readiness::{self, Flag, Readiness, Setter};

/// One watch: its cache, the flag set once its first list is in the cache, and the controllers it
/// feeds.
pub struct Watch<K: Resource<DynamicType = ()> + Clone + 'static> {
    resource: &'static str,
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    writer: reflector::store::Writer<K>,
    filled: Setter,
    flag: Flag,
    subscribers: Vec<mpsc::UnboundedSender<Arc<K>>>,
}

impl<K> Watch<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(resource: &'static str, api: Api<K>, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store();
        let (filled, flag) = readiness::flag(resource);
        Watch {
            resource,
            api,
            config,
            store,
            writer,
            filled,
            flag,
            subscribers: Vec::new(),
        }
    }

    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    pub fn flag(&self) -> Flag {
        self.flag.clone()
    }

    /// Every object the watch's events touch from now on (created, changed or deleted), once it is in
    /// the cache. Ends when the watch stops.
    pub fn subscribe(&mut self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded();
        self.subscribers.push(tx);
        rx
    }

    /// Watches until `stopping` turns true: lists, then follows changes, with back-off after a
    /// failure (each logged as a warning), keeping the cache and telling the subscribers.
    pub async fn run(self, stopping: signal::Receiver<bool>) {
        let Watch {
            resource,
            api,
            config,
            writer,
            filled,
            subscribers,
            ..
        } = self;
        let events = reflector::reflector(writer, watcher(api, config)).default_backoff();
        let mut events = std::pin::pin!(events.take_until(crate::shutdown::when_true(stopping)));
        while let Some(event) = events.next().await {
            let touched = match event {
                Ok(watcher::Event::InitDone) => {
                    // After the reflector, so the flag is set once the list is in the cache.
                    filled.set();
                    None
                }
                Ok(watcher::Event::Init) => None,
                Ok(
                    watcher::Event::InitApply(obj)
                    | watcher::Event::Apply(obj)
                    | watcher::Event::Delete(obj),
                ) => Some(obj),
                Err(e) => {
                    tracing::warn!(resource, error = %e, "watch failed; retrying");
                    None
                }
            };
            if let Some(obj) = touched {
                tracing::trace!(
                    resource,
                    name = obj.meta().name.as_deref().unwrap_or_default(),
                    version = obj.meta().resource_version.as_deref().unwrap_or_default(),
                    "watch event"
                );
                let obj = Arc::new(obj);
                for s in &subscribers {
                    // A controller that stopped has dropped its end: nothing to tell it.
                    let _ = s.unbounded_send(obj.clone());
                }
            }
        }
    }
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The children the operator wrote: everything it creates carries its `managed-by` label.
fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"))
}

/// One watch per kind of child, in the namespace watched (or every namespace).
pub struct Watches {
    pub pods: Watch<Pod>,
    pub services: Watch<Service>,
    pub config_maps: Watch<ConfigMap>,
    /// Every Secret, not only the operator's: a resource waits for the Secrets its user names too.
    pub secrets: Watch<PartialObjectMeta<Secret>>,
    pub claims: Watch<PartialObjectMeta<PersistentVolumeClaim>>,
    pub service_accounts: Watch<PartialObjectMeta<ServiceAccount>>,
    pub roles: Watch<Role>,
    pub role_bindings: Watch<RoleBinding>,
    pub stateful_sets: Watch<StatefulSet>,
    pub deployments: Watch<Deployment>,
    pub jobs: Watch<Job>,
}

impl Watches {
    /// Whole objects where their content is compared or reported; metadata only, through an Api
    /// over PartialObjectMeta, where the hash annotation is all that is needed.
    pub fn new(client: &Client, namespace: &Option<String>) -> Self {
        let ns = namespace;
        Watches {
            pods: Watch::new("pods", api(client, ns), managed()),
            services: Watch::new("services", api(client, ns), managed()),
            config_maps: Watch::new("configmaps", api(client, ns), managed()),
            secrets: Watch::new("secrets", api(client, ns), watcher::Config::default()),
            claims: Watch::new("persistentvolumeclaims", api(client, ns), managed()),
            service_accounts: Watch::new("serviceaccounts", api(client, ns), managed()),
            roles: Watch::new("roles", api(client, ns), managed()),
            role_bindings: Watch::new("rolebindings", api(client, ns), managed()),
            stateful_sets: Watch::new("statefulsets", api(client, ns), managed()),
            deployments: Watch::new("deployments", api(client, ns), managed()),
            jobs: Watch::new("jobs", api(client, ns), managed()),
        }
    }

    pub fn caches(&self) -> Caches {
        Caches {
            pods: self.pods.store(),
            services: self.services.store(),
            config_maps: self.config_maps.store(),
            secrets: self.secrets.store(),
            claims: self.claims.store(),
            service_accounts: self.service_accounts.store(),
            roles: self.roles.store(),
            role_bindings: self.role_bindings.store(),
            stateful_sets: self.stateful_sets.store(),
            deployments: self.deployments.store(),
            jobs: self.jobs.store(),
        }
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new(vec![
            self.pods.flag(),
            self.services.flag(),
            self.config_maps.flag(),
            self.secrets.flag(),
            self.claims.flag(),
            self.service_accounts.flag(),
            self.roles.flag(),
            self.role_bindings.flag(),
            self.stateful_sets.flag(),
            self.deployments.flag(),
            self.jobs.flag(),
        ])
    }

    /// Makes `controller` reconcile an owner when a child it owns (by controller owner reference) is
    /// touched, of every kind but Pods and Secrets, which map to their owners otherwise.
    pub fn owned_by<R>(
        &mut self,
        controller: controller::Controller<R>,
    ) -> controller::Controller<R>
    where
        R: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        controller
            .owns_shared_stream(self.services.subscribe())
            .owns_shared_stream(self.config_maps.subscribe())
            .owns_shared_stream(self.claims.subscribe())
            .owns_shared_stream(self.service_accounts.subscribe())
            .owns_shared_stream(self.roles.subscribe())
            .owns_shared_stream(self.role_bindings.subscribe())
            .owns_shared_stream(self.stateful_sets.subscribe())
            .owns_shared_stream(self.deployments.subscribe())
            .owns_shared_stream(self.jobs.subscribe())
    }

    /// Runs every watch until `stopping` turns true.
    pub async fn run(self, stopping: signal::Receiver<bool>) {
        let Watches {
            pods,
            services,
            config_maps,
            secrets,
            claims,
            service_accounts,
            roles,
            role_bindings,
            stateful_sets,
            deployments,
            jobs,
        } = self;
        // Each on the heap: eleven watch streams side by side make a future too large for a stack.
        let runs: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = vec![
            Box::pin(pods.run(stopping.clone())),
            Box::pin(services.run(stopping.clone())),
            Box::pin(config_maps.run(stopping.clone())),
            Box::pin(secrets.run(stopping.clone())),
            Box::pin(claims.run(stopping.clone())),
            Box::pin(service_accounts.run(stopping.clone())),
            Box::pin(roles.run(stopping.clone())),
            Box::pin(role_bindings.run(stopping.clone())),
            Box::pin(stateful_sets.run(stopping.clone())),
            Box::pin(deployments.run(stopping.clone())),
            Box::pin(jobs.run(stopping)),
        ];
        futures::future::join_all(runs).await;
    }
}
