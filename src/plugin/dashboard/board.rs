//! What the dashboard knows: the Microservices, their events and slot Deployments as the
//! watches last saw them, plus what only a watcher sees over time (the weight as it moved,
//! every measurement). Pure: the watches feed it, the pages read views of it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::{Measurement, Microservice};
use crate::build::REVISION_ANNOTATION;
use crate::build::labels::{INSTANCE_LABEL, SLOT_LABEL};
use crate::plugin::summary::last_seen;

/// Points of weight history kept per Microservice; older ones are dropped first.
pub const WEIGHT_POINTS_KEPT: usize = 500;
/// Measurements kept per Microservice (all metrics together).
pub const MEASUREMENTS_KEPT: usize = 500;
/// Events kept per Microservice.
pub const EVENTS_KEPT: usize = 20;

/// `(namespace, name)`.
pub type Key = (String, String);

/// The weight of one release at one moment, as the dashboard saw it change.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WeightPoint {
    pub at: Timestamp,
    pub revision: String,
    /// Percent of traffic the new version receives, as applied.
    pub weight: i32,
    /// The router (or the ready pods) confirmed `weight`.
    pub verified: bool,
}

/// One measurement and the release it judged.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordedMeasurement {
    pub revision: String,
    #[serde(flatten)]
    pub measurement: Measurement,
}

/// One slot's Deployment, as its pods stand.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlotDeployment {
    pub slot: String,
    pub revision: Option<String>,
    pub image: Option<String>,
    pub replicas: i32,
    pub ready: i32,
}

#[derive(Default)]
pub struct Tracked {
    pub microservice: Option<Microservice>,
    pub weights: Vec<WeightPoint>,
    pub measurements: Vec<RecordedMeasurement>,
    pub events: Vec<Event>,
    pub slots: BTreeMap<String, SlotDeployment>,
}

#[derive(Default)]
pub struct Board {
    pub tracked: BTreeMap<Key, Tracked>,
}

impl Board {
    /// A Microservice as the watch delivered it, seen at `now`.
    pub fn apply_microservice(&mut self, ms: Microservice, now: Timestamp) {
        let key = (ms.namespace().unwrap_or_default(), ms.name_any());
        let tracked = self.tracked.entry(key).or_default();
        let status = ms.status.as_ref();
        if let Some(point) = weight_point(status, tracked.weights.last(), now) {
            push_bounded(&mut tracked.weights, point, WEIGHT_POINTS_KEPT);
        }
        if let Some(release) = status.and_then(|s| s.release.as_ref()) {
            let measured = release.analysis.iter().flat_map(|a| a.last.iter());
            for measurement in measured {
                let known = tracked.measurements.iter().any(|m| {
                    m.measurement.metric == measurement.metric && m.measurement.at == measurement.at
                });
                if !known {
                    let recorded = RecordedMeasurement {
                        revision: release.revision.clone(),
                        measurement: measurement.clone(),
                    };
                    push_bounded(&mut tracked.measurements, recorded, MEASUREMENTS_KEPT);
                }
            }
        }
        tracked.microservice = Some(ms);
    }

    /// The Microservice is gone: so is everything about it.
    pub fn delete_microservice(&mut self, key: &Key) {
        self.tracked.remove(key);
    }

    /// Keeps only the Microservices in `keep` (after a watch restarted and re-listed).
    pub fn retain_microservices(&mut self, keep: &std::collections::BTreeSet<Key>) {
        self.tracked
            .retain(|key, t| keep.contains(key) || t.microservice.is_none());
    }

    /// An event about a Microservice: kept newest last, at most [`EVENTS_KEPT`].
    pub fn apply_event(&mut self, event: Event) {
        let Some(key) = event_key(&event) else { return };
        let events = &mut self.tracked.entry(key).or_default().events;
        events.retain(|e| e.metadata.uid != event.metadata.uid);
        events.push(event);
        events.sort_by_key(last_seen);
        let skip = events.len().saturating_sub(EVENTS_KEPT);
        events.drain(..skip);
    }

    pub fn delete_event(&mut self, event: &Event) {
        if let Some(tracked) = event_key(event).and_then(|key| self.tracked.get_mut(&key)) {
            tracked
                .events
                .retain(|e| e.metadata.uid != event.metadata.uid);
        }
    }

    /// A slot Deployment of a Microservice (found by Weir's labels).
    pub fn apply_deployment(&mut self, deployment: &Deployment) {
        let Some((key, slot)) = deployment_key(deployment) else {
            return;
        };
        let status = deployment.status.clone().unwrap_or_default();
        let image = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        let view = SlotDeployment {
            slot: slot.clone(),
            revision: deployment.annotations().get(REVISION_ANNOTATION).cloned(),
            image,
            replicas: deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
        };
        self.tracked
            .entry(key)
            .or_default()
            .slots
            .insert(slot, view);
    }

    pub fn delete_deployment(&mut self, deployment: &Deployment) {
        if let Some((key, slot)) = deployment_key(deployment)
            && let Some(tracked) = self.tracked.get_mut(&key)
        {
            tracked.slots.remove(&slot);
        }
    }
}

/// The weight now, when it differs from the `last` point seen. Once a release has ended, its
/// revision has all the traffic (promoted: it is the stable one) or none (aborted, replaced):
/// the end of its plot.
fn weight_point(
    status: Option<&crate::api::MicroserviceStatus>,
    last: Option<&WeightPoint>,
    now: Timestamp,
) -> Option<WeightPoint> {
    let release = status.and_then(|s| s.release.as_ref());
    let point = match (release, last) {
        (Some(release), _) => WeightPoint {
            at: now,
            revision: release.revision.clone(),
            weight: release.weight,
            verified: release.weight_verified,
        },
        (None, Some(last)) => {
            let stable = status.and_then(|s| s.stable_revision.as_deref());
            WeightPoint {
                at: now,
                revision: last.revision.clone(),
                weight: if stable == Some(&last.revision) {
                    100
                } else {
                    0
                },
                verified: true,
            }
        }
        (None, None) => return None,
    };
    let changed = last.is_none_or(|last| {
        (last.revision.as_str(), last.weight, last.verified)
            != (point.revision.as_str(), point.weight, point.verified)
    });
    changed.then_some(point)
}

fn push_bounded<T>(items: &mut Vec<T>, item: T, kept: usize) {
    items.push(item);
    let skip = items.len().saturating_sub(kept);
    items.drain(..skip);
}

fn event_key(event: &Event) -> Option<Key> {
    let object = &event.involved_object;
    (object.kind.as_deref() == Some("Microservice")).then_some(())?;
    Some((
        object
            .namespace
            .clone()
            .or_else(|| event.namespace())
            .unwrap_or_default(),
        object.name.clone()?,
    ))
}

/// The Microservice and slot of one of Weir's Deployments: the instance label, and the slot
/// from the Deployment's selector (its own labels do not carry it).
fn deployment_key(deployment: &Deployment) -> Option<(Key, String)> {
    let name = deployment.labels().get(INSTANCE_LABEL)?.clone();
    let selector = deployment.spec.as_ref()?.selector.match_labels.as_ref()?;
    let slot = selector.get(SLOT_LABEL)?.clone();
    Some(((deployment.namespace().unwrap_or_default(), name), slot))
}
