//! What every controller's reconciles share, whatever they reconcile: the client and settings, the
//! event recorder and metrics, whether the caches are filled, and the shutdown signal.

use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;

use super::config::RunConfig;
use super::events::Events;
use super::readiness::Readiness;
use crate::metrics::Metrics;

pub struct Shared {
    pub client: Client,
    pub config: RunConfig,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    /// Whether each of the caches has had its first list (see `readiness`).
    readiness: Readiness,
    /// Turns true when the controllers shut down: the watches stop, so caches not filled by then
    /// never will be.
    stopping: watch::Receiver<bool>,
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
        }
    }

    /// Waits until every cache has its first full list (so that a reconcile right after start-up
    /// does not take children it has not seen yet for missing ones), unless the controllers are
    /// shutting down: the watches no longer run then, and a cache not yet filled never will be.
    /// False if they are shutting down first.
    pub async fn caches_ready(&self) -> bool {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            biased;
            _ = self.readiness.all() => true,
            _ = stopping.wait_for(|v| *v) => false,
        }
    }
}
