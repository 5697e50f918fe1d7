//! What every controller's reconciles share, whatever they reconcile: the client and settings, the
//! event recorder and metrics, and the shutdown signal.

use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;

use super::authority::Authority;
use super::config::RunConfig;
use super::events::Events;
use super::metrics::Metrics;
use super::readiness::Readiness;

pub struct Shared {
    pub client: Client,
    pub config: RunConfig,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    /// The operator's CA, which signs the servers' certificates.
    pub authority: Option<Arc<Authority>>,
    /// Turns true when the controllers shut down: the watches stop, so caches not filled by then
    /// never will be.
    stopping: watch::Receiver<bool>,
}

impl Shared {
    pub fn new(
        client: Client,
        config: RunConfig,
        metrics: Arc<Metrics>,
        authority: Option<Arc<Authority>>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let events = Events::new(client.clone(), &config.instance);
        Shared {
            client,
            config,
            events,
            metrics,
            authority,
            stopping,
        }
    }

    /// Waits until every cache `readiness` covers has its first full list (so that a reconcile right
    /// after start-up does not take children it has not seen yet for missing ones), unless the
    /// controllers are shutting down: the watches no longer run then, and a cache not yet filled
    /// never will be. False if they are shutting down first.
    pub async fn filled(&self, readiness: &Readiness) -> bool {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            biased;
            _ = readiness.all() => true,
            _ = stopping.wait_for(|v| *v) => false,
        }
    }
}
