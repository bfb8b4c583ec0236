//! Leader election over a Lease, so that of several replicas only one writes.
//!
//! The leader renews every third of the lease. If it cannot renew for two thirds of the
//! lease it gives up leading *before* the lease expires, so no follower can take over while
//! the old leader still writes. SIGTERM releases the lease at once for a fast hand-over.

use std::time::Duration;

use std::sync::{Arc, Mutex};

use http::{Method, Request};
use kube::Client;
use kube::client::Body;

use super::lease::{Attempt, LeaseLock};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::filter::FilterLayer;

/// Until when this replica may write: open for good without leader election, else until
/// the renew deadline after the last renewal.
#[derive(Clone, Debug)]
pub struct Fence(Option<Arc<Mutex<Option<Instant>>>>);

impl Fence {
    /// A fence that never closes: without leader election this replica is the only writer.
    pub fn open() -> Fence {
        Fence(None)
    }

    /// A fence closed until the first renewal.
    pub fn closed() -> Fence {
        Fence(Some(Arc::new(Mutex::new(None))))
    }

    fn set(&self, until: Option<Instant>) {
        if let Some(lease) = &self.0 {
            *lease.lock().unwrap_or_else(|e| e.into_inner()) = until;
        }
    }

    fn close(&self) {
        self.set(None);
    }

    fn extend_to(&self, until: Instant) {
        self.set(Some(until));
    }

    /// True while a write may go out.
    pub fn allows_writes(&self) -> bool {
        self.0.as_ref().is_none_or(|lease| {
            let until = *lease.lock().unwrap_or_else(|e| e.into_inner());
            until.is_some_and(|until| Instant::now() < until)
        })
    }

    /// A layer for the API client that fails every request but reads once the fence has
    /// closed, before it is sent.
    pub fn layer(
        &self,
    ) -> FilterLayer<impl Fn(Request<Body>) -> Result<Request<Body>, Fenced> + Clone + use<>> {
        let fence = self.clone();
        FilterLayer::new(move |request: Request<Body>| {
            let read = matches!(
                *request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            );
            if read || fence.allows_writes() {
                Ok(request)
            } else {
                Err(Fenced)
            }
        })
    }
}

/// A write refused because this replica's lease may have run out.
#[derive(Debug, thiserror::Error)]
#[error("not sent: this replica's lease may have expired")]
pub struct Fenced;

/// A held lease, renewed in the background until dropped or lost.
pub struct Leadership {
    lock: std::sync::Arc<LeaseLock>,
    renewer: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<bool>,
    fence: Fence,
}

/// Waits until this replica leads, or until `stop` fires (then returns None).
pub async fn acquire(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    ttl: Duration,
    fence: Fence,
    mut stop: watch::Receiver<bool>,
) -> Option<Leadership> {
    let lock = std::sync::Arc::new(LeaseLock::new(client, namespace, name, identity, ttl));
    let retry = ttl / 3;
    loop {
        let sent = Instant::now();
        match lock.try_acquire_or_renew().await {
            Ok(Attempt::Held) => {
                fence.extend_to(sent + renew_deadline(ttl));
                break;
            }
            Ok(Attempt::HeldBy(holder)) => tracing::debug!(%holder, "waiting for the lease"),
            Err(error) => tracing::warn!(%error, "lease acquisition failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
    tracing::info!(lease = %name, %identity, "became leader");
    let (lost_tx, lost) = watch::channel(false);
    let renewer = tokio::spawn(renew(lock.clone(), ttl, fence.clone(), lost_tx));
    Some(Leadership {
        lock,
        renewer,
        lost,
        fence,
    })
}

/// How long after sending a renewal this replica may still write: two thirds of the lease,
/// so that it stops well before a follower may take over.
fn renew_deadline(ttl: Duration) -> Duration {
    ttl * 2 / 3
}

async fn renew(
    lock: std::sync::Arc<LeaseLock>,
    ttl: Duration,
    fence: Fence,
    lost: watch::Sender<bool>,
) {
    let renew_deadline = renew_deadline(ttl);
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let sent = Instant::now();
        match lock.try_acquire_or_renew().await {
            Ok(Attempt::Held) => {
                last_renewed = sent;
                fence.extend_to(sent + renew_deadline);
            }
            Ok(Attempt::HeldBy(_)) => {
                tracing::error!("the lease was taken over; stopping");
                fence.close();
                let _ = lost.send(true);
                return;
            }
            Err(error) => tracing::warn!(%error, "lease renewal failed"),
        }
        if last_renewed.elapsed() >= renew_deadline {
            tracing::error!("could not renew the lease in time; stopping before it expires");
            fence.close();
            let _ = lost.send(true);
            return;
        }
    }
}

impl Leadership {
    /// Resolves when leadership is lost.
    pub fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Stops renewing and, unless the lease was lost, releases it so a follower takes over
    /// without waiting for it to expire.
    pub async fn release(self) {
        self.renewer.abort();
        // Nothing may be written once a follower can take over, not even by a reconcile
        // still finishing.
        self.fence.close();
        if !*self.lost.borrow() {
            match self.lock.step_down().await {
                Ok(()) => tracing::info!("released the lease"),
                Err(error) => tracing::warn!(%error, "could not release the lease"),
            }
        }
    }
}
