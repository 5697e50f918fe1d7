//! What every resource's reconcile has alike, whatever it reconciles: the client and settings, the
//! event recorder and metrics, whether the caches are filled, the shutdown signal, and the failures in
//! a row per object, for back-off.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::backoff::Retries;
use crate::config::RunConfig;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::readiness::Readiness;

pub struct Shared {
    pub client: Client,
    pub config: RunConfig,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    /// Whether each of the controller's caches has had its first list (see `readiness`).
    readiness: Readiness,
    /// Turns true when the controller shuts down: its watches stop, so caches not filled by then never
    /// will be.
    stopping: watch::Receiver<bool>,
    /// Consecutive failures per object, for exponential back-off.
    pub retries: Retries,
}

impl Shared {
    pub fn new(
        client: Client,
        config: RunConfig,
        readiness: Readiness,
        metrics: Arc<Metrics>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let events = Events::new(client.clone(), &config.instance);
        Shared {
            client,
            config,
            events,
            metrics,
            readiness,
            stopping,
            retries: Retries::default(),
        }
    }

    /// Waits until every cache has its first full list (so that a reconcile right after start-up
    /// does not take children it has not seen yet for missing ones), unless the controller is
    /// shutting down: its watches no longer run then, and a cache not yet filled never will be.
    /// False if it is shutting down first.
    pub async fn caches_ready(&self) -> bool {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            biased;
            _ = self.readiness.all() => true,
            _ = stopping.wait_for(|v| *v) => false,
        }
    }

    /// The delay before retrying `obj` after one more failure.
    pub fn next_backoff<K: Resource>(&self, obj: &K) -> Duration {
        let (min, max) = (self.config.backoff_min, self.config.backoff_max);
        self.retries.next(&key(obj), min, max)
    }

    /// Forgets the failures of objects whose keys are not in `alive` (deleted while failing, say).
    pub fn forget_all_but(&self, alive: &HashSet<String>) {
        self.retries.retain(|k| alive.contains(k));
    }
}

/// In-memory state is kept by uid: an object deleted and made again under the same name starts with
/// no failures behind it.
pub fn key<K: Resource>(obj: &K) -> String {
    obj.uid()
        .unwrap_or_else(|| format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()))
}

/// The keys of the objects a controller's store holds.
pub fn alive<K: Resource + Clone>(store: &kube::runtime::reflector::Store<K>) -> HashSet<String>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.state().iter().map(|o| key(o.as_ref())).collect()
}
