//! The traffic and pods a release asks for at its stage, capped by what the candidate's
//! ready pods can carry: pure functions, and the plan the walking stages end with.

use super::decision::{Plan, Router, SlotPlan, SlotState, TrafficPlan};
use super::machine::Machine;
use super::other;
use super::steps::Step;
use crate::api::{Release, Slot};
use crate::build::traffic::{Split, capacity};

/// Pods the candidate needs for `weight` percent of `total`: at least one.
pub fn capacity_for(total: i32, weight: i32) -> i32 {
    ((i64::from(total) * i64::from(weight) + 99) / 100).max(1) as i32
}

/// What the steps done so far and the current one ask for, before any safety cap.
pub(super) fn target_split(release: &Release, steps: &[Step], active: Slot) -> Split {
    let current = (release.step_index.max(0) as usize).min(steps.len());
    let mut split = Split {
        stable: active,
        candidate: other(active),
        weight: 0,
        header_route: vec![],
        mirror_percent: 0,
    };
    if release.promoting {
        split.weight = 100;
        return split;
    }
    for step in steps.iter().take(current + 1) {
        match step {
            Step::Weight(w) => split.weight = *w,
            Step::HeaderRoute(m) => split.header_route = m.clone(),
            Step::Mirror(p) => split.mirror_percent = *p,
            _ => {}
        }
    }
    split
}

/// The part of `target` the candidate can take now: a weight only once its ready pods carry
/// it, and at least `min_pods` of them are ready (until then the weight already `applied`, lowered if pods were lost), and header
/// routes or a mirror only once it has a ready pod.
pub(super) fn carried_split(
    mut target: Split,
    applied: &Release,
    candidate: &SlotState,
    total: i32,
    min_pods: i32,
) -> Split {
    // Ready pods are unknown until the Deployment controller has seen the last write
    // (a scale-up, say): meanwhile hold what is applied, whose pods were ready, and never
    // raise it. The candidate's template only changes while it has no traffic.
    let known = !candidate.exists || candidate.observed;
    let carried = |w: i32| carries(candidate, total, min_pods, w);
    if !known {
        target.weight = target.weight.min(applied.weight);
        target.header_route = applied.header_route.clone();
        target.mirror_percent = applied.mirror_percent;
    } else if !carried(target.weight) {
        target.weight = if carried(applied.weight) && applied.weight < target.weight {
            applied.weight
        } else {
            0
        };
    }
    if known && candidate.ready == 0 {
        target.header_route.clear();
        target.mirror_percent = 0;
    }
    target
}

/// Whether the candidate's ready pods carry `weight` percent of `total` (at least `min_pods`
/// of them for any weight).
fn carries(candidate: &SlotState, total: i32, min_pods: i32, weight: i32) -> bool {
    weight == 0 || candidate.ready >= capacity_for(total, weight).max(min_pods)
}

/// Pods the stable slot needs for its share when the candidate has `weight` percent: all of
/// them at 0, none at 100.
pub fn stable_pods(total: i32, weight: i32) -> i32 {
    match weight {
        ..=0 => total,
        100.. => 0,
        weight => capacity_for(total, 100 - weight),
    }
}

/// The lowest candidate weight the stable slot's ready pods can take the rest of: traffic
/// goes back to a shrunken stable slot only as fast as its pods become ready.
pub fn lowest_weight_for_stable(total: i32, stable_ready: i32) -> i32 {
    if total <= 0 || stable_ready >= total {
        return 0;
    }
    let share = i64::from(stable_ready.max(0)) * 100 / i64::from(total);
    (100 - share as i32).clamp(0, 100)
}

/// Without a router the weight is the share of ready pods behind Service `<name>`.
fn achieved_weight(
    candidate_ready: i32,
    stable_ready: i32,
    service_slot: Option<Slot>,
    candidate: Slot,
) -> i32 {
    match service_slot {
        Some(slot) if slot == candidate => 100,
        Some(_) => 0,
        None if candidate_ready + stable_ready == 0 => 0,
        None => {
            let total = i64::from(candidate_ready + stable_ready);
            ((i64::from(candidate_ready) * 100 + total / 2) / total) as i32
        }
    }
}

/// Pods per slot during a release.
struct SlotSizes {
    stable: i32,
    candidate: i32,
}

impl Machine<'_> {
    /// The traffic to apply now: what the steps ask for, as far as the candidate carries it.
    pub(super) fn wanted_traffic(&self, release: &Release, candidate: &SlotState) -> TrafficPlan {
        let active = self.active();
        let target = target_split(release, &self.wanted.steps, active);
        let wanted = &self.wanted;
        let mut split = carried_split(target, release, candidate, wanted.total, wanted.min_pods);
        if wanted.dynamic_stable && split.weight < release.weight {
            split.weight = self.lowered_as_stable_grows(split.weight, release, candidate);
        }
        let blue_green = self.wanted.blue_green;
        // Without a router, full weight is Service `<name>` switching to the candidate,
        // so the old slot's pods stay warm for `scaleDownDelaySeconds`.
        let service_slot = match self.wanted.router {
            Router::ReplicaRatio if blue_green || split.weight == 100 => {
                Some(if split.weight == 100 {
                    other(active)
                } else {
                    active
                })
            }
            Router::ReplicaRatio => None,
            Router::GatewayApi => Some(active),
        };
        TrafficPlan {
            split,
            service_slot,
            preview: blue_green,
        }
    }

    /// A step that lowers the weight hands traffic back to a stable slot shrunk to its share
    /// (`stableScale: Dynamic`): as on the way back, only as fast as the stable slot's ready
    /// pods can take it, while the candidate keeps the weight its pods carry.
    fn lowered_as_stable_grows(&self, lower: i32, release: &Release, candidate: &SlotState) -> i32 {
        let floor = self.lowest_weight_as_stable_grows(release);
        if floor > lower && carries(candidate, self.wanted.total, self.wanted.min_pods, floor) {
            floor
        } else {
            lower
        }
    }

    /// The lowest weight the candidate may go down to while a shrunken stable slot grows: what
    /// the stable slot's ready pods cannot take yet, and no more than the candidate had.
    pub(super) fn lowest_weight_as_stable_grows(&self, release: &Release) -> i32 {
        let stable_ready = self.inputs.slot(self.active()).ready;
        lowest_weight_for_stable(self.wanted.total, stable_ready).min(release.weight)
    }

    /// Pods per slot: the candidate gets its share of the wanted weight (all of them for
    /// blue/green); the stable slot keeps all its pods unless the ratio of pods is the router.
    fn slot_sizes(&self, release: &Release, traffic: &TrafficPlan) -> SlotSizes {
        let total = self.wanted.total;
        let blue_green = self.wanted.blue_green;
        let mut wanted = target_split(release, &self.wanted.steps, self.active());
        wanted.weight = wanted.weight.max(traffic.split.weight);
        let (_, candidate) = capacity(total, &wanted);
        let candidate = match (blue_green, candidate) {
            (true, _) => total,
            // An HA canary: never fewer than minPods while it takes any traffic.
            (false, 0) => 0,
            (false, n) => n.max(self.wanted.min_pods),
        };
        let stable = match self.wanted.router {
            Router::ReplicaRatio if !blue_green && traffic.split.weight < 100 => {
                capacity(total, &traffic.split).0
            }
            Router::ReplicaRatio if !blue_green => self.inputs.slot(self.active()).replicas,
            // Only the pods for the stable share, at the weight that is both wanted and
            // applied: it shrinks once a higher weight is confirmed, and grows before a
            // lower one is applied.
            Router::GatewayApi if self.wanted.dynamic_stable => {
                let target = target_split(release, &self.wanted.steps, self.active());
                let carried = traffic.split.weight.min(release.weight).min(target.weight);
                stable_pods(total, carried)
            }
            _ => total,
        };
        SlotSizes { stable, candidate }
    }

    /// Plans the slots and traffic of a release that stays where it is, and records in it
    /// the traffic as applied.
    pub(super) fn plan_release(&mut self, release: &mut Release, candidate: &SlotState) {
        let active = self.active();
        let traffic = self.wanted_traffic(release, candidate);
        let verified = (self.inputs.verified)(&traffic);
        let sizes = self.slot_sizes(release, &traffic);
        release.weight = match self.wanted.router {
            Router::GatewayApi => traffic.split.weight,
            Router::ReplicaRatio => achieved_weight(
                candidate.ready,
                self.inputs.slot(active).ready,
                traffic.service_slot,
                other(active),
            ),
        };
        release.mirror_percent = traffic.split.mirror_percent;
        release.header_route = traffic.split.header_route.clone();
        release.weight_verified = verified;
        self.plan = Some(Plan {
            active: SlotPlan::Scale(sizes.stable),
            other: SlotPlan::Template(sizes.candidate),
            traffic,
        });
    }
}
