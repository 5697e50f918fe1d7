//! The shutdown signal as a future, for the places that take one (kube-runtime's graceful shutdown,
//! the metrics server, the watches).

use futures::FutureExt;
use tokio::sync::watch;

/// Resolves once `rx` holds true. Built on a oneshot so it is Send + Sync, as the controller's
/// graceful shutdown requires.
pub fn when_true(
    mut rx: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + Sync + 'static {
    let (tx, done) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = rx.wait_for(|v| *v).await;
        let _ = tx.send(());
    });
    done.map(|_| ())
}
