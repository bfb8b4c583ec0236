//! The moments an abort's order is judged by: traffic back on stable (written, and accepted
//! by the fake gateway) and the candidate's Deployment scaled to 0. Both are
//! resourceVersions, comparable across objects since every object of the test cluster is
//! stored in one etcd; so "no candidate scaled down before every route was back" holds
//! across Microservices too.

use super::super::eventually;
use super::super::gateway::{FakeGateway, RouteRecorder, RouteState};
use super::{DEADLINE, Entry, Recorder, SlotView};

/// Traffic back on stable after a release: the route state that first gave the candidate
/// no weight after it had some, and the resourceVersion of the gateway's acceptance of it.
#[derive(Clone, Debug)]
pub struct Back {
    pub written: Entry<Option<RouteState>>,
    pub accepted: u64,
}

impl Back {
    /// The resourceVersion from which traffic was back: written and accepted.
    pub fn resource_version(&self) -> u64 {
        self.written.resource_version.max(self.accepted)
    }
}

/// Waits until route `name` gives `backend` (the candidate's Service) no weight, and the
/// fake gateway accepted a generation of it that gives none; returns when that began: the
/// first state without weight after one with weight. Call once the candidate had weight
/// since the recorder started.
pub async fn traffic_back(
    route: &RouteRecorder,
    gateway: &FakeGateway,
    name: &str,
    backend: &str,
) -> Back {
    route
        .wait_route(&format!("no weight on {backend}"), |r| {
            r.weight(backend) == 0
        })
        .await;
    let on = |r: &Option<RouteState>| r.as_ref().is_some_and(|r| r.weight(backend) > 0);
    let (up, _) = route
        .find(0, on)
        .unwrap_or_else(|| panic!("{backend} never had weight: {:#?}", route.states()));
    let (_, written) = route
        .find_weight(up, backend, 0)
        .expect("the route back on stable");
    let generation = written.value.as_ref().expect("the route").generation;
    let accepted = eventually(
        DEADLINE,
        &format!("the gateway to accept route {name} back on stable"),
        || async {
            gateway
                .accepted()
                .into_iter()
                .find(|a| {
                    a.route == name
                        && a.generation >= generation
                        && a.weights.get(backend).copied().unwrap_or(0) == 0
                })
                .map(|a| a.resource_version)
        },
    )
    .await;
    Back { written, accepted }
}

/// Waits until a candidate's Deployment, which ran pods, asks for none (or is gone);
/// returns the first such state.
pub async fn scaled_down(candidate: &Recorder<Option<SlotView>>) -> Entry<Option<SlotView>> {
    let stopped = |d: &Option<SlotView>| d.as_ref().is_none_or(|d| d.replicas == 0);
    let (ran, _) = candidate
        .wait_seen("the candidate ran", |d| {
            d.as_ref().is_some_and(|d| d.replicas > 0)
        })
        .await;
    candidate
        .wait_until("the candidate scaled to 0", stopped)
        .await;
    let (_, entry) = candidate.find(ran, stopped).expect("the state at 0");
    entry
}
