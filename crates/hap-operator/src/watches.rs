//! The operator's watches: one per kind of child that a resource it serves reads, each filling one
//! cache and feeding every controller that subscribes to it, so both resources' controllers share a
//! single watch of Pods, Services, ConfigMaps and Secrets.
//!
//! kube-runtime has shared streams of its own (`Writer::subscribe`, behind `unstable-runtime-subscribe`),
//! but in 5.0 they pass on applied objects only, not deletions, so a deleted child (a ConfigMap, a
//! Service) would trigger no reconcile until the next resync. This fan-out passes on every object a
//! watch event touches, created, changed or deleted, once the cache holds what the event says:
//! - a change or a deletion as it comes;
//! - a list (the first one, or a re-list after the watch failed) once it is whole, when the reflector
//!   swaps it into the cache: every object in it, and every object the cache held before and the list
//!   no longer has (deleted while the watch was down, with no event of its own).
//!
//! Each watch asks the API server to end it after [`WATCH_TIMEOUT`] and then watches again from where
//! it was, retries a failure after a short back-off ([`RETRY_MIN`] doubling to [`RETRY_MAX`]), and
//! notes what it hears in [`Freshness`] (see `crate::connection` for how a dead connection is noticed).
//!
//! The controllers take the streams through `owns_shared_stream` and `watches_shared_stream`. Each
//! subscriber has an unbounded channel: kube-runtime's controller drains and de-duplicates its
//! triggers continuously, and a bounded one would let one busy controller hold up every cache.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch as signal;

use crate::freshness::Freshness;
use crate::pipeline::backoff::delay;
use crate::pipeline::caches::Caches;
use crate::pipeline::kinds::Kind;
use crate::pipeline::readiness::{self, Flag, Readiness, Setter};
use crate::pipeline::{MANAGED_BY, MANAGER};
use crate::shutdown::when_true;

/// An Api on every namespace, or on the one the operator is limited to.
pub fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// How long the API server keeps one watch request open before the watch asks again (kube-rs's
/// default is 290 s); with bookmarks in between, a healthy watch hears something at least this often.
pub const WATCH_TIMEOUT: u32 = 60;
/// The first retry of a failed watch waits this long; each failure in a row doubles it.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// The longest wait between retries: the API server back, a watch lists again within this.
/// (kube-rs's default back-off goes to 30 s, and after an outage left the caches blind that long.)
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// The back-off of one watch: [`RETRY_MIN`] doubling to [`RETRY_MAX`], from the start again after
/// anything the watch yields that is not an error.
#[derive(Default)]
struct Retry {
    failures: u32,
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        Some(delay(self.failures - 1, RETRY_MIN, RETRY_MAX))
    }
}

impl Backoff for Retry {
    fn reset(&mut self) {
        self.failures = 0;
    }
}

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
    freshness: Arc<Freshness>,
    trim: fn(&mut K),
}

/// The annotation `kubectl apply` keeps a copy of the whole object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from an object what no decision of the operator reads, before it is cached: its managed
/// fields (the server-side apply bookkeeping, often larger than the object itself) and the copy of the
/// object `kubectl apply` keeps in an annotation.
pub fn unread_metadata<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The same for a pod, and of its spec all but the restart policy (whether a pod's exit is a
/// failure): a pod's state is read from its status, and its spec's edits from the hash annotation.
pub fn unread_pod_parts(pod: &mut Pod) {
    unread_metadata(pod);
    pod.spec = pod.spec.take().map(|spec| PodSpec {
        restart_policy: spec.restart_policy,
        ..PodSpec::default()
    });
}

impl<K> Watch<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(
        resource: &'static str,
        api: Api<K>,
        config: watcher::Config,
        freshness: Arc<Freshness>,
    ) -> Self {
        let (store, writer) = reflector::store();
        let (filled, flag) = readiness::flag(resource);
        Watch {
            resource,
            api,
            config: config.timeout(WATCH_TIMEOUT),
            store,
            writer,
            filled,
            flag,
            subscribers: Vec::new(),
            freshness,
            trim: unread_metadata::<K>,
        }
    }

    /// Trims each object with `trim` before it is cached, instead of [`unread_metadata`].
    pub fn trimmed(self, trim: fn(&mut K)) -> Self {
        Watch { trim, ..self }
    }

    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    pub fn flag(&self) -> Flag {
        self.flag.clone()
    }

    /// Every object the watch's events touch from now on (created, changed or deleted), once the
    /// cache holds what the event says. Ends when the watch stops.
    pub fn subscribe(&mut self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded();
        self.subscribers.push(tx);
        rx
    }

    /// Watches until `stopping` turns true: lists, then follows changes, with back-off after a
    /// failure (the first of a spell logged as a warning), keeping the cache and telling the
    /// subscribers.
    pub async fn run(self, stopping: signal::Receiver<bool>) {
        let Watch {
            resource,
            api,
            config,
            store,
            writer,
            filled,
            subscribers,
            freshness,
            trim,
            ..
        } = self;
        freshness.started(resource, Instant::now());
        let tell = |obj: Arc<K>| {
            tracing::trace!(
                resource,
                name = obj.meta().name.as_deref().unwrap_or_default(),
                version = obj.meta().resource_version.as_deref().unwrap_or_default(),
                "watch event"
            );
            for s in &subscribers {
                // A controller that stopped has dropped its end: nothing to tell it.
                let _ = s.unbounded_send(obj.clone());
            }
        };
        let events = watcher(api, config).modify(trim);
        let events = reflector::reflector(writer, events).backoff(Retry::default());
        let mut events = std::pin::pin!(events.take_until(when_true(stopping)));
        // During a list: what the cache held before it, and what the list has brought so far.
        let mut before: HashMap<ObjectRef<K>, Arc<K>> = HashMap::new();
        let mut listed: Vec<Arc<K>> = Vec::new();
        // Failures in a row: the first is a warning, the rest debug lines (an outage would otherwise
        // log one warning per watch every retry), and the first answer after them says how many.
        let mut failures = 0u32;
        while let Some(event) = events.next().await {
            let now = Instant::now();
            match &event {
                Ok(watcher::Event::Init) => freshness.listing(resource, now),
                Ok(watcher::Event::InitDone) => freshness.listed(resource, now),
                Ok(_) => freshness.heard(resource, now),
                Err(_) => freshness.failed(resource, now),
            }
            if event.is_ok() && failures > 0 {
                tracing::info!(resource, failures, "watch answers again");
                failures = 0;
            }
            match event {
                Ok(watcher::Event::Init) => {
                    before = store
                        .state()
                        .into_iter()
                        .map(|o| (ObjectRef::from_obj(&*o), o))
                        .collect();
                    listed.clear();
                }
                Ok(watcher::Event::InitApply(obj)) => {
                    before.remove(&ObjectRef::from_obj(&obj));
                    listed.push(Arc::new(obj));
                }
                // The reflector has swapped the whole list into the cache by now.
                Ok(watcher::Event::InitDone) => {
                    filled.set();
                    listed.drain(..).for_each(&tell);
                    before.drain().for_each(|(_, gone)| tell(gone));
                }
                Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => tell(Arc::new(obj)),
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(resource, error = %e, "watch failed; retrying");
                    } else {
                        tracing::debug!(resource, error = %e, failures, "watch failed again");
                    }
                }
            }
        }
        freshness.stopped(resource);
    }
}

/// The children the operator wrote: everything it creates carries its `managed-by` label.
fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}"))
}

/// One watch per kind of child the served resources read (None for the others), in the namespace
/// watched or every namespace.
pub struct Watches {
    pub pods: Option<Watch<Pod>>,
    pub services: Option<Watch<Service>>,
    pub config_maps: Option<Watch<ConfigMap>>,
    /// Every Secret, not only the operator's: a resource waits for the Secrets its user names too.
    pub secrets: Option<Watch<PartialObjectMeta<Secret>>>,
    pub claims: Option<Watch<PersistentVolumeClaim>>,
    pub service_accounts: Option<Watch<PartialObjectMeta<ServiceAccount>>>,
    pub roles: Option<Watch<Role>>,
    pub role_bindings: Option<Watch<RoleBinding>>,
    pub stateful_sets: Option<Watch<StatefulSet>>,
    pub deployments: Option<Watch<Deployment>>,
    pub jobs: Option<Watch<Job>>,
    pub network_policies: Option<Watch<NetworkPolicy>>,
    /// Every namespace's labels, in the multi-tenant install (a tenant's namespace must enforce the
    /// restricted Pod Security Standard).
    pub namespaces: Option<Watch<PartialObjectMeta<Namespace>>>,
    /// The workspace profiles' ConfigMap, alone, in the operator's namespace (when it is known).
    pub profiles: Option<Watch<ConfigMap>>,
}

/// The store of a watch, or an empty one for a kind not watched (no served resource reads it).
fn store_of<K>(watch: &Option<Watch<K>>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watch
        .as_ref()
        .map_or_else(|| reflector::store().0, Watch::store)
}

impl Watches {
    /// Watches for the kinds in `wanted`: whole objects where their content is compared or
    /// reported; metadata only, through an Api over PartialObjectMeta, where the hash annotation is
    /// all that is needed (so no Secret data is held in memory). With `namespaces`, the namespaces'
    /// labels too.
    pub fn new(
        client: &Client,
        namespace: &Option<String>,
        wanted: &[Kind],
        namespaces: bool,
        profiles_namespace: Option<&str>,
        freshness: &Arc<Freshness>,
    ) -> Self {
        let ns = namespace;
        let on = |kind: Kind| wanted.contains(&kind);
        let f = || freshness.clone();
        Watches {
            pods: on(Kind::Pod).then(|| {
                Watch::new("pods", api(client, ns), managed(), f()).trimmed(unread_pod_parts)
            }),
            services: on(Kind::Service)
                .then(|| Watch::new("services", api(client, ns), managed(), f())),
            config_maps: on(Kind::ConfigMap)
                .then(|| Watch::new("configmaps", api(client, ns), managed(), f())),
            secrets: on(Kind::Secret)
                .then(|| Watch::new("secrets", api(client, ns), watcher::Config::default(), f())),
            claims: on(Kind::PersistentVolumeClaim)
                .then(|| Watch::new("persistentvolumeclaims", api(client, ns), managed(), f())),
            service_accounts: on(Kind::ServiceAccount)
                .then(|| Watch::new("serviceaccounts", api(client, ns), managed(), f())),
            roles: on(Kind::Role).then(|| Watch::new("roles", api(client, ns), managed(), f())),
            role_bindings: on(Kind::RoleBinding)
                .then(|| Watch::new("rolebindings", api(client, ns), managed(), f())),
            stateful_sets: on(Kind::StatefulSet)
                .then(|| Watch::new("statefulsets", api(client, ns), managed(), f())),
            deployments: on(Kind::Deployment)
                .then(|| Watch::new("deployments", api(client, ns), managed(), f())),
            jobs: on(Kind::Job).then(|| Watch::new("jobs", api(client, ns), managed(), f())),
            network_policies: on(Kind::NetworkPolicy)
                .then(|| Watch::new("networkpolicies", api(client, ns), managed(), f())),
            namespaces: namespaces.then(|| {
                Watch::new(
                    "namespaces",
                    Api::all(client.clone()),
                    watcher::Config::default(),
                    f(),
                )
            }),
            profiles: profiles_namespace.map(|ns| {
                let named = format!("metadata.name={}", hap_api::profile::CONFIG_MAP);
                Watch::new(
                    "profiles",
                    Api::namespaced(client.clone(), ns),
                    watcher::Config::default().fields(&named),
                    f(),
                )
            }),
        }
    }

    pub fn caches(&self) -> Caches {
        Caches {
            pods: store_of(&self.pods),
            services: store_of(&self.services),
            config_maps: store_of(&self.config_maps),
            secrets: store_of(&self.secrets),
            claims: store_of(&self.claims),
            service_accounts: store_of(&self.service_accounts),
            roles: store_of(&self.roles),
            role_bindings: store_of(&self.role_bindings),
            stateful_sets: store_of(&self.stateful_sets),
            deployments: store_of(&self.deployments),
            jobs: store_of(&self.jobs),
            network_policies: store_of(&self.network_policies),
            namespaces: store_of(&self.namespaces),
            profile_config: store_of(&self.profiles),
        }
    }

    /// The flag of a kind's watch, if it is watched.
    fn flag(&self, kind: Kind) -> Option<Flag> {
        match kind {
            Kind::Pod => self.pods.as_ref().map(Watch::flag),
            Kind::Service => self.services.as_ref().map(Watch::flag),
            Kind::ConfigMap => self.config_maps.as_ref().map(Watch::flag),
            Kind::Secret => self.secrets.as_ref().map(Watch::flag),
            Kind::PersistentVolumeClaim => self.claims.as_ref().map(Watch::flag),
            Kind::ServiceAccount => self.service_accounts.as_ref().map(Watch::flag),
            Kind::Role => self.roles.as_ref().map(Watch::flag),
            Kind::RoleBinding => self.role_bindings.as_ref().map(Watch::flag),
            Kind::StatefulSet => self.stateful_sets.as_ref().map(Watch::flag),
            Kind::Deployment => self.deployments.as_ref().map(Watch::flag),
            Kind::Job => self.jobs.as_ref().map(Watch::flag),
            Kind::NetworkPolicy => self.network_policies.as_ref().map(Watch::flag),
        }
    }

    /// Whether the caches of these kinds (and the namespaces' and the profiles', when watched)
    /// have had their first list.
    pub fn readiness(&self, kinds: &[Kind]) -> Readiness {
        let namespaces = self.namespaces.as_ref().map(Watch::flag);
        let profiles = self.profiles.as_ref().map(Watch::flag);
        Readiness::new(
            kinds
                .iter()
                .filter_map(|k| self.flag(*k))
                .chain(namespaces)
                .chain(profiles)
                .collect(),
        )
    }

    /// Makes `controller` reconcile an owner when a child of one of `kinds` that it owns (by
    /// controller owner reference) is touched. Pods and Secrets map to their owners otherwise (see
    /// `crate::controller`), so they are not among these.
    pub fn owned<R>(&mut self, controller: Controller<R>, kinds: &[Kind]) -> Controller<R>
    where
        R: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        fn owns<R, K>(c: Controller<R>, watch: &mut Option<Watch<K>>) -> Controller<R>
        where
            R: Resource<DynamicType = ()>
                + Clone
                + DeserializeOwned
                + Debug
                + Send
                + Sync
                + 'static,
            K: Resource<DynamicType = ()>
                + Clone
                + DeserializeOwned
                + Debug
                + Send
                + Sync
                + 'static,
        {
            match watch {
                Some(w) => c.owns_shared_stream(w.subscribe()),
                None => c,
            }
        }
        kinds.iter().fold(controller, |c, kind| match kind {
            Kind::Pod | Kind::Secret => c,
            Kind::Service => owns(c, &mut self.services),
            Kind::ConfigMap => owns(c, &mut self.config_maps),
            Kind::PersistentVolumeClaim => owns(c, &mut self.claims),
            Kind::ServiceAccount => owns(c, &mut self.service_accounts),
            Kind::Role => owns(c, &mut self.roles),
            Kind::RoleBinding => owns(c, &mut self.role_bindings),
            Kind::StatefulSet => owns(c, &mut self.stateful_sets),
            Kind::Deployment => owns(c, &mut self.deployments),
            Kind::Job => owns(c, &mut self.jobs),
            Kind::NetworkPolicy => owns(c, &mut self.network_policies),
        })
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
            network_policies,
            namespaces,
            profiles,
        } = self;
        type Run = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
        fn run<K>(watch: Option<Watch<K>>, stopping: &signal::Receiver<bool>) -> Option<Run>
        where
            K: Resource<DynamicType = ()>
                + Clone
                + DeserializeOwned
                + Debug
                + Send
                + Sync
                + 'static,
        {
            // On the heap: twelve watch streams side by side make a future too large for a stack.
            watch.map(|w| Box::pin(w.run(stopping.clone())) as Run)
        }
        let runs: Vec<Run> = [
            run(pods, &stopping),
            run(services, &stopping),
            run(config_maps, &stopping),
            run(secrets, &stopping),
            run(claims, &stopping),
            run(service_accounts, &stopping),
            run(roles, &stopping),
            run(role_bindings, &stopping),
            run(stateful_sets, &stopping),
            run(deployments, &stopping),
            run(jobs, &stopping),
            run(network_policies, &stopping),
            run(namespaces, &stopping),
            run(profiles, &stopping),
        ]
        .into_iter()
        .flatten()
        .collect();
        futures::future::join_all(runs).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_pod_keeps_what_decisions_read_and_nothing_else() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "w", "namespace": "n",
                "labels": {"app.kubernetes.io/instance": "w"},
                "annotations": {
                    "hap.cloudian.com/spec-hash": "abc",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"
                },
                "managedFields": [{"manager": "hap-operator", "operation": "Apply"}]
            },
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}]}]},
            "status": {"phase": "Running", "hostIP": "10.0.0.1"}
        }))
        .unwrap();
        unread_pod_parts(&mut pod);
        let meta = &pod.metadata;
        assert_eq!(meta.managed_fields, None);
        let annotations = meta.annotations.as_ref().unwrap();
        assert_eq!(annotations.len(), 1, "{annotations:?}");
        assert_eq!(annotations["hap.cloudian.com/spec-hash"], "abc");
        assert_eq!(
            meta.labels.as_ref().unwrap()["app.kubernetes.io/instance"],
            "w"
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert!(spec.containers.is_empty());
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.host_ip.as_deref(), Some("10.0.0.1"));
    }
}
