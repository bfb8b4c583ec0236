//! A Lease lock with optimistic concurrency, as client-go's leader election does it.
//!
//! Every change to the Lease is a patch that carries the resourceVersion it was read at, so
//! of two replicas that find it expired only one can take it: the other gets a conflict. A
//! lease counts as expired when its record has not changed for its duration *as this replica
//! observed it* (a monotonic clock, no trust in the writer's clock).

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

/// The outcome of one attempt to take or renew the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This replica holds the lease until its duration has passed from now.
    Held,
    /// Another replica holds it (its identity, when known).
    HeldBy(String),
}

/// What to do with the Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Claim {
    Renew,
    TakeOver,
    Wait(String),
}

/// Decides from the Lease as read: renew it when ours, take it when its holder let it go
/// or it expired, else wait.
fn claim(spec: &LeaseSpec, me: &str, expired: bool) -> Claim {
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        Claim::Renew
    } else if holder.is_empty() || expired {
        Claim::TakeOver
    } else {
        Claim::Wait(holder)
    }
}

pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    me: String,
    ttl: Duration,
    /// The last record seen and when this replica first saw it.
    observed: Mutex<Option<(LeaseSpec, Instant)>>,
}

impl LeaseLock {
    pub fn new(client: Client, namespace: &str, name: &str, me: &str, ttl: Duration) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            me: me.to_string(),
            ttl,
            observed: Mutex::new(None),
        }
    }

    /// True when the record has not changed for its duration since this replica saw it.
    fn expired(&self, spec: &LeaseSpec) -> bool {
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let since = match observed.as_ref() {
            Some((seen, at)) if seen == spec => *at,
            _ => {
                *observed = Some((spec.clone(), now));
                now
            }
        };
        let seconds = spec.lease_duration_seconds.unwrap_or(0).max(0) as u64;
        now >= since + Duration::from_secs(seconds)
    }

    fn spec(&self, acquired: MicroTime, transitions: i32, now: MicroTime) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.me.clone()),
            acquire_time: Some(acquired),
            renew_time: Some(now),
            lease_duration_seconds: Some(self.ttl.as_secs() as i32),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Takes the lease if it is free or expired, renews it if it is ours.
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: kube::api::ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now.clone(), 0, now)),
            };
            return conflict_is_lost(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let wanted = match claim(&spec, &self.me, self.expired(&spec)) {
            Claim::Wait(holder) => return Ok(Attempt::HeldBy(holder)),
            Claim::Renew => self.spec(
                spec.acquire_time.clone().unwrap_or(now.clone()),
                spec.lease_transitions.unwrap_or(0),
                now,
            ),
            Claim::TakeOver => self.spec(now.clone(), spec.lease_transitions.unwrap_or(0) + 1, now),
        };
        self.write(&lease, wanted).await
    }

    /// Patches the lease to `spec`, provided nobody changed it since `read`.
    async fn write(&self, read: &Lease, spec: LeaseSpec) -> Result<Attempt, kube::Error> {
        let patch = json!({
            "metadata": {"resourceVersion": read.metadata.resource_version},
            "spec": spec,
        });
        let written = self
            .api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        conflict_is_lost(written)
    }

    /// Hands the lease back (holder empty, expiring at once) if this replica holds it.
    pub async fn step_down(&self) -> Result<(), kube::Error> {
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(&self.me) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            renew_time: Some(now),
            ..spec
        };
        self.write(&lease, released).await.map(|_| ())
    }
}

/// A write that lost a race (409 Conflict, or 404 after a delete) means another replica
/// got there first.
fn conflict_is_lost(result: Result<Lease, kube::Error>) -> Result<Attempt, kube::Error> {
    match result {
        Ok(_) => Ok(Attempt::Held),
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
            Ok(Attempt::HeldBy(String::new()))
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn claims_follow_the_holder_and_expiry() {
        assert_eq!(claim(&held_by("a"), "a", false), Claim::Renew);
        assert_eq!(claim(&held_by("a"), "a", true), Claim::Renew);
        assert_eq!(claim(&held_by("b"), "a", false), Claim::Wait("b".into()));
        assert_eq!(claim(&held_by("b"), "a", true), Claim::TakeOver);
        assert_eq!(claim(&held_by(""), "a", false), Claim::TakeOver);
    }
}
