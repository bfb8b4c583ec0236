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
    let mut last_renewed = Instant::now();
    let mut next = last_renewed + ttl / 3;
    loop {
        tokio::time::sleep_until(next).await;
        let sent = Instant::now();
        let outcome = match tokio::time::timeout(ttl / 3, lock.try_acquire_or_renew()).await {
            Ok(Ok(Attempt::Held)) => Renewal::Renewed,
            Ok(Ok(Attempt::HeldBy(holder))) if !holder.is_empty() => Renewal::TakenBy(holder),
            // A conflict: the Lease changed since it was read. The next read tells by whom.
            Ok(Ok(Attempt::HeldBy(_))) => Renewal::Failed("the Lease changed meanwhile".into()),
            Ok(Err(error)) => Renewal::Failed(error.to_string()),
            Err(_) => Renewal::Failed("no answer in time".into()),
        };
        if outcome == Renewal::Renewed {
            last_renewed = sent;
            fence.extend_to(sent + renew_deadline(ttl));
        }
        match after_renewal(&outcome, sent, last_renewed, Instant::now(), ttl) {
            Some(at) => {
                if let Renewal::Failed(error) = &outcome {
                    tracing::warn!(%error, "lease renewal failed; retrying");
                }
                next = at;
            }
            None => {
                match outcome {
                    Renewal::TakenBy(holder) => {
                        tracing::error!(%holder, "the lease was taken over; stopping")
                    }
                    _ => tracing::error!(
                        "could not renew the lease in time; stopping before it expires"
                    ),
                }
                fence.close();
                let _ = lost.send(true);
                return;
            }
        }
    }
}

/// What one renewal attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Renewal {
    Renewed,
    TakenBy(String),
    Failed(String),
}

/// When to try the next renewal, or None when the lease is lost. A renewal is due a third
/// of the lease after the last one was sent (not answered, so a slow answer does not leave
/// the fence shut); a failed one is retried soon, often enough that one slow or refused
/// request does not cost the lease, until the renew deadline has passed.
fn after_renewal(
    outcome: &Renewal,
    sent: Instant,
    last_renewed: Instant,
    now: Instant,
    ttl: Duration,
) -> Option<Instant> {
    match outcome {
        Renewal::Renewed => Some(sent + ttl / 3),
        Renewal::TakenBy(_) => None,
        Renewal::Failed(_) if now >= last_renewed + renew_deadline(ttl) => None,
        // client-go retries every 2 s of a 15 s lease.
        Renewal::Failed(_) => Some(now + (ttl / 15).max(Duration::from_millis(200))),
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

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    fn failed() -> Renewal {
        Renewal::Failed("refused".into())
    }

    #[test]
    fn renewals_are_due_a_third_of_the_lease_after_the_last_was_sent() {
        let sent = Instant::now();
        let answered = sent + Duration::from_secs(4);
        assert_eq!(
            after_renewal(&Renewal::Renewed, sent, sent, answered, TTL),
            Some(sent + Duration::from_secs(5))
        );
    }

    #[test]
    fn a_failed_renewal_is_retried_soon_until_the_deadline_then_the_lease_is_lost() {
        let renewed = Instant::now();
        let sent = renewed + Duration::from_secs(5);
        let answered = sent + Duration::from_millis(100);
        assert_eq!(
            after_renewal(&failed(), sent, renewed, answered, TTL),
            Some(answered + Duration::from_secs(1)),
            "one refusal does not cost the lease"
        );
        let late = renewed + renew_deadline(TTL);
        assert_eq!(after_renewal(&failed(), late, renewed, late, TTL), None);
        assert_eq!(
            after_renewal(&Renewal::TakenBy("b".into()), sent, renewed, answered, TTL),
            None
        );
    }

    #[test]
    fn an_open_fence_allows_writes_and_a_closed_one_until_extended_does_not() {
        assert!(Fence::open().allows_writes());
        let fence = Fence::closed();
        assert!(!fence.allows_writes());
        fence.extend_to(Instant::now() + TTL);
        assert!(fence.allows_writes());
        fence.close();
        assert!(!fence.allows_writes());
    }
}
