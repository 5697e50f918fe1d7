//! Whether each watch has listed its resource once, told by the watch's own stream rather than by
//! `Store::wait_until_ready`.
//!
//! kube-runtime's `wait_until_ready` sits on a single-waker oneshot: of the tasks waiting on one
//! store at the same time, only the one that polled last is woken when the list completes, and any
//! poll with a no-op waker (`now_or_never`) steals the wake-up from the real waiter. Reconciles that
//! started together then waited forever for caches long filled, and a controller could sit idle
//! after taking over the Lease. So the only poller of a controller's own store is kube-runtime's
//! applier, and everything else reads these flags, which any number of tasks can wait on.

use std::future::Future;

use tokio::sync::watch;

/// Set once by a watch's stream, after its first full list is in the cache.
#[derive(Clone)]
pub struct Flag {
    pub resource: &'static str,
    rx: watch::Receiver<bool>,
}

/// The setting half, kept by the stream.
pub struct Setter(watch::Sender<bool>);

impl Setter {
    pub fn set(&self) {
        self.0
            .send_if_modified(|filled| !std::mem::replace(filled, true));
    }
}

pub fn flag(resource: &'static str) -> (Setter, Flag) {
    let (tx, rx) = watch::channel(false);
    (Setter(tx), Flag { resource, rx })
}

impl Flag {
    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once set (or never, if the watch's stream is gone without having set it).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            if rx.wait_for(|v| *v).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A controller's caches, each with its flag.
#[derive(Clone, Default)]
pub struct Readiness(Vec<Flag>);

impl Readiness {
    pub fn new(flags: Vec<Flag>) -> Self {
        Readiness(flags)
    }

    pub fn flags(&self) -> Vec<Flag> {
        self.0.clone()
    }

    /// Resolves once every cache has had its first full list.
    pub async fn all(&self) {
        for f in &self.0 {
            f.wait().await;
        }
    }

    /// The resources whose caches are still waiting for their first list.
    pub fn waiting(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .filter(|f| !f.is_set())
            .map(|f| f.resource)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_is_woken_not_only_the_last() {
        let (set, flag) = flag("pods");
        let readiness = Readiness::new(vec![flag]);
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let r = readiness.clone();
                tokio::spawn(async move { r.all().await })
            })
            .collect();
        // Let every waiter register before the flag is set.
        tokio::task::yield_now().await;
        assert_eq!(readiness.waiting(), ["pods"]);
        set.set();
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("each waiter woken")
                .unwrap();
        }
        assert!(readiness.waiting().is_empty());
    }
}
