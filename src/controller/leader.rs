//! Leader election over a Lease, so that of several replicas only one writes.
//!
//! The leader renews every third of the lease. If it cannot renew for two thirds of the
//! lease it gives up leading *before* the lease expires, so no follower can take over while
//! the old leader still writes. SIGTERM releases the lease at once for a fast hand-over.

use std::time::Duration;

use kube::Client;
use kube_leader_election::{LeaseLock, LeaseLockParams, LeaseLockResult};
use tokio::sync::watch;
use tokio::time::Instant;

/// A held lease, renewed in the background until dropped or lost.
pub struct Leadership {
    lock: std::sync::Arc<LeaseLock>,
    renewer: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<bool>,
}

/// Waits until this replica leads, or until `stop` fires (then returns None).
pub async fn acquire(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    ttl: Duration,
    mut stop: watch::Receiver<bool>,
) -> Option<Leadership> {
    let lock = std::sync::Arc::new(LeaseLock::new(
        client,
        namespace,
        LeaseLockParams {
            lease_name: name.to_string(),
            holder_id: identity.to_string(),
            lease_ttl: ttl,
        },
    ));
    let retry = ttl / 3;
    loop {
        match lock.try_acquire_or_renew().await {
            Ok(LeaseLockResult::Acquired(_)) => break,
            Ok(LeaseLockResult::NotAcquired(lease)) => {
                let holder = lease
                    .spec
                    .and_then(|s| s.holder_identity)
                    .unwrap_or_default();
                tracing::debug!(%holder, "waiting for the lease");
            }
            Err(error) => tracing::warn!(%error, "lease acquisition failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
    tracing::info!(lease = %name, %identity, "became leader");
    let (lost_tx, lost) = watch::channel(false);
    let renewer = tokio::spawn(renew(lock.clone(), ttl, lost_tx));
    Some(Leadership {
        lock,
        renewer,
        lost,
    })
}

async fn renew(lock: std::sync::Arc<LeaseLock>, ttl: Duration, lost: watch::Sender<bool>) {
    let renew_deadline = ttl * 2 / 3;
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        match lock.try_acquire_or_renew().await {
            Ok(LeaseLockResult::Acquired(_)) => last_renewed = Instant::now(),
            Ok(LeaseLockResult::NotAcquired(_)) => {
                tracing::error!("the lease was taken over; stopping");
                let _ = lost.send(true);
                return;
            }
            Err(error) => tracing::warn!(%error, "lease renewal failed"),
        }
        if last_renewed.elapsed() >= renew_deadline {
            tracing::error!("could not renew the lease in time; stopping before it expires");
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
        if !*self.lost.borrow() {
            match self.lock.step_down().await {
                Ok(()) => tracing::info!("released the lease"),
                Err(error) => tracing::warn!(%error, "could not release the lease"),
            }
        }
    }
}
