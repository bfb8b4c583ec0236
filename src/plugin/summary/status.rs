//! Where one Microservice and its release stand: what `status` prints, as text or as the
//! structured summary of `-o json|yaml`.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use super::current_step;
use crate::api::{HeaderMatch, Measurement, Microservice, Returning, Slot};
use crate::release::{other, steps, strategy};

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    pub name: String,
    pub namespace: String,
    pub image: String,
    pub strategy: String,
    pub phase: Option<String>,
    pub message: Option<String>,
    pub active_slot: Option<Slot>,
    pub stable_revision: Option<String>,
    pub candidate_revision: Option<String>,
    pub aborted_revision: Option<String>,
    /// Absent when no release runs.
    pub release: Option<ReleaseSummary>,
    /// The steps of the strategy, as the controller walks them.
    pub steps: Vec<StepSummary>,
    /// Absent before the first deploy has an active slot.
    pub traffic: Option<TrafficSummary>,
    /// The latest measurements of the analysis.
    pub analysis: Vec<Measurement>,
    pub conditions: Vec<Condition>,
    /// The most recent events about the Microservice, newest last.
    pub events: Vec<EventSummary>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSummary {
    pub revision: String,
    /// The current step, counted from 1; `stepCount` once every step is done.
    pub step: i32,
    pub step_count: i32,
    /// Held by a `pause` action.
    pub paused: bool,
    /// Every step is done: the new version is taking all traffic.
    pub promoting: bool,
    /// Traffic is going back to the stable version.
    pub returning: Option<Returning>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    /// Counted from 1.
    pub number: usize,
    pub description: String,
    pub state: StepState,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum StepState {
    Done,
    Current,
    Pending,
}

/// Percent of requests each slot receives, as applied.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSummary {
    pub blue: i32,
    pub green: i32,
    /// The router (or, without one, the ready pods) confirmed the weights.
    pub verified: bool,
    /// The slot that receives the mirror and the header route during a release.
    pub candidate_slot: Option<Slot>,
    pub mirror_percent: i32,
    pub header_route: Vec<HeaderMatch>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<Timestamp>,
}

/// The summary of `ms` with its `events` (any order; the newest `keep` are kept).
pub fn summarize(ms: &Microservice, events: &[Event], keep: usize) -> StatusSummary {
    let status = ms.status.clone().unwrap_or_default();
    let release = status.release.as_ref();
    StatusSummary {
        name: ms.name_any(),
        namespace: ms.namespace().unwrap_or_default(),
        image: ms.spec.image.clone(),
        strategy: format!("{:?}", strategy(ms)),
        phase: status.phase.map(|p| p.as_str().to_string()),
        message: status.message.clone(),
        active_slot: status.active_slot,
        stable_revision: status.stable_revision.clone(),
        candidate_revision: status.candidate_revision.clone(),
        aborted_revision: status.aborted_revision.clone(),
        release: release.map(|r| ReleaseSummary {
            revision: r.revision.clone(),
            step: current_step(r),
            step_count: r.step_count,
            paused: r.paused,
            promoting: r.promoting,
            returning: r.returning.clone(),
        }),
        steps: step_list(ms),
        traffic: status.active_slot.map(|active| {
            let (weight, verified) = release.map_or((0, true), |r| (r.weight, r.weight_verified));
            let weight_of = |slot| if slot == active { 100 - weight } else { weight };
            TrafficSummary {
                blue: weight_of(Slot::Blue),
                green: weight_of(Slot::Green),
                verified,
                candidate_slot: release.map(|_| other(active)),
                mirror_percent: release.map_or(0, |r| r.mirror_percent),
                header_route: release.map(|r| r.header_route.clone()).unwrap_or_default(),
            }
        }),
        analysis: release
            .and_then(|r| r.analysis.as_ref())
            .map(|a| a.last.clone())
            .unwrap_or_default(),
        conditions: status.conditions.clone(),
        events: recent_events(events, keep),
    }
}

/// The steps of the strategy, each done, current or pending by the release's step index.
pub fn step_list(ms: &Microservice) -> Vec<StepSummary> {
    let release = ms.status.as_ref().and_then(|s| s.release.as_ref());
    let current = release.map(|r| {
        if r.promoting {
            usize::MAX
        } else {
            r.step_index.max(0) as usize
        }
    });
    steps(ms)
        .iter()
        .enumerate()
        .map(|(index, step)| StepSummary {
            number: index + 1,
            description: step.describe(),
            state: match current {
                Some(current) if index < current => StepState::Done,
                Some(current) if index == current => StepState::Current,
                _ => StepState::Pending,
            },
        })
        .collect()
}

/// The newest `keep` events, newest last.
pub fn recent_events(events: &[Event], keep: usize) -> Vec<EventSummary> {
    let mut events: Vec<EventSummary> = events
        .iter()
        .map(|e| EventSummary {
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            count: e
                .series
                .as_ref()
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1),
            last_seen: last_seen(e),
        })
        .collect();
    events.sort_by_key(|e| e.last_seen);
    let skip = events.len().saturating_sub(keep);
    events.split_off(skip)
}

/// When an event last happened, from whichever field its API filled in.
pub fn last_seen(event: &Event) -> Option<Timestamp> {
    let series = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref());
    series
        .map(|t| t.0)
        .or(event.last_timestamp.as_ref().map(|t| t.0))
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::fixtures::{canary, event, paused_at_second_step};

    #[test]
    fn weights_per_slot_follow_the_active_slot() {
        let summary = summarize(&paused_at_second_step(), &[], 5);
        let traffic = summary.traffic.unwrap();
        assert_eq!((traffic.blue, traffic.green), (80, 20));
        assert!(traffic.verified);
        assert_eq!(traffic.candidate_slot, Some(Slot::Green));
        let release = summary.release.unwrap();
        assert_eq!((release.step, release.step_count), (2, 4));
    }

    #[test]
    fn the_current_step_is_the_release_step_index() {
        let states: Vec<_> = step_list(&paused_at_second_step())
            .into_iter()
            .map(|s| (s.description, s.state))
            .collect();
        assert_eq!(
            states,
            [
                ("setWeight 20".to_string(), StepState::Done),
                ("pause until promoted".to_string(), StepState::Current),
                ("setWeight 60".to_string(), StepState::Pending),
                ("pause until promoted".to_string(), StepState::Pending),
            ]
        );
    }

    #[test]
    fn without_a_release_the_active_slot_has_everything_and_no_step_is_current() {
        let summary = summarize(&canary(), &[], 5);
        let traffic = summary.traffic.unwrap();
        assert_eq!((traffic.blue, traffic.green), (100, 0));
        assert_eq!(traffic.candidate_slot, None);
        assert!(summary.release.is_none());
        assert!(summary.steps.iter().all(|s| s.state == StepState::Pending));
    }

    #[test]
    fn a_promoting_release_has_done_every_step() {
        let mut ms = paused_at_second_step();
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.step_index = 4;
        release.promoting = true;
        let summary = summarize(&ms, &[], 5);
        assert!(summary.steps.iter().all(|s| s.state == StepState::Done));
        assert_eq!(summary.release.unwrap().step, 4);
    }

    #[test]
    fn the_newest_events_are_kept_newest_last() {
        let events = [event("C", 30), event("A", 10), event("B", 20)];
        let reasons: Vec<_> = recent_events(&events, 2)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(reasons, ["B", "C"]);
    }
}
