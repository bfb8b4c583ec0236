//! What a decision reads besides the Microservice, and what it returns.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::ManualAction;
use crate::api::{MicroserviceStatus, Release, Slot, TemplatedMetric};
use crate::build::traffic::Split;

/// What one slot's Deployment shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlotState {
    pub exists: bool,
    /// The revision its pod template carries (`weir.dev/revision`).
    pub revision: Option<String>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// Ready pods that run its current template (0 while a template change rolls), never
    /// more than `replicas`.
    pub ready: i32,
    /// Every pod runs the current template, the count equals `replicas`, and all are ready.
    pub settled: bool,
    /// The Deployment controller has seen the latest spec; until then `ready` is unknown.
    pub observed: bool,
}

/// How the traffic is routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// HTTPRoute weights.
    GatewayApi,
    /// Ready pods behind Service `<name>`.
    ReplicaRatio,
}

/// Where traffic should go: the split, and for Service `<name>`, which pods it selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficPlan {
    pub split: Split,
    /// Service `<name>` selects both slots (a replica-ratio canary), else only `split.stable`
    /// (or, once a blue/green switch without a router is under way, `split.candidate`).
    pub service_slot: Option<Slot>,
    /// Service `<name>-preview` selects the candidate (a blue/green release).
    pub preview: bool,
}

/// What the cluster shows besides the Microservice.
pub struct Inputs<'a> {
    pub now: Timestamp,
    /// The revision the spec asks for.
    pub revision: String,
    /// Why releases are frozen (the namespace's `weir.dev/freeze`, or the operator's flag).
    pub freeze: Option<String>,
    /// The other members of the spec's release group, as their statuses show them.
    pub group: Option<super::group::Group>,
    pub blue: SlotState,
    pub green: SlotState,
    /// True when the live route (or Service) already carries `traffic`, confirmed.
    pub verified: &'a (dyn Fn(&TrafficPlan) -> bool + Sync),
    pub action: Option<ManualAction>,
    /// The spec's metrics that name a MetricTemplate, resolved from the templates as they
    /// are now (recorded when a release starts), or why the analysis cannot run.
    pub templates: Result<Vec<TemplatedMetric>, HoldBack>,
}

impl Inputs<'_> {
    pub(super) fn slot(&self, slot: Slot) -> &SlotState {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }
}

/// Why a release cannot start: a condition reason and a sentence.
pub type HoldBack = (&'static str, String);

/// What a slot's Deployment should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotPlan {
    /// Built from the spec (the wanted revision) with this many pods.
    Template(i32),
    /// Keeps its pod template (an older revision); only the pod count is set.
    Scale(i32),
    /// Left as it is (the old slot, warm until `scaleDownAt`).
    Keep,
    /// Not wanted.
    Delete,
}

/// Both slots and the traffic, as one decision wants them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// The slot `fields.active_slot` names.
    pub active: SlotPlan,
    pub other: SlotPlan,
    pub traffic: TrafficPlan,
}

/// A notable moment, for an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Note {
    pub fn normal(reason: &'static str, message: String) -> Self {
        Note {
            warning: false,
            reason,
            message,
        }
    }

    pub fn warning(reason: &'static str, message: String) -> Self {
        Note {
            warning: true,
            reason,
            message,
        }
    }
}

/// The status fields the release machine owns. The status computation takes them whole,
/// destructured without `..`, so a field added here and forgotten there fails to compile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseFields {
    pub active_slot: Slot,
    pub stable_revision: Option<String>,
    pub candidate_revision: Option<String>,
    pub aborted_revision: Option<String>,
    pub release: Option<Release>,
    pub scale_down_at: Option<Time>,
}

impl ReleaseFields {
    pub(super) fn from_status(status: MicroserviceStatus) -> Self {
        ReleaseFields {
            active_slot: status.active_slot.unwrap_or_default(),
            stable_revision: status.stable_revision,
            candidate_revision: status.candidate_revision,
            aborted_revision: status.aborted_revision,
            release: status.release,
            scale_down_at: status.scale_down_at,
        }
    }

    /// Writes these fields over `status`, leaving the fields others own.
    pub fn write_into(self, status: &mut MicroserviceStatus) {
        let ReleaseFields {
            active_slot,
            stable_revision,
            candidate_revision,
            aborted_revision,
            release,
            scale_down_at,
        } = self;
        status.active_slot = Some(active_slot);
        status.stable_revision = stable_revision;
        status.candidate_revision = candidate_revision;
        status.aborted_revision = aborted_revision;
        status.release = release;
        status.scale_down_at = scale_down_at;
    }
}

/// Why a release was just aborted, for the conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abort {
    /// A condition reason (`Aborted`, `AnalysisFailed`, `ProgressDeadlineExceeded`).
    pub reason: String,
    /// A sentence for a person.
    pub message: String,
}

/// The decision of one reconcile.
pub struct Decision {
    /// The release machine's status fields; `fields.active_slot` serves.
    pub fields: ReleaseFields,
    pub active_plan: SlotPlan,
    pub other_plan: SlotPlan,
    pub traffic: TrafficPlan,
    pub requeue: Option<Duration>,
    pub notes: Vec<Note>,
    /// Set when the release was just aborted: the reason and message for the conditions.
    pub abort: Option<(String, String)>,
    /// Set when the wanted revision's release cannot start: why, for the conditions.
    pub held_back: Option<HoldBack>,
    /// Set when a freeze or the release windows hold the release where it is (or keep it
    /// from starting): the reason and a sentence, for phase Paused.
    pub gate: Option<HoldBack>,
}

#[cfg(test)]
impl Decision {
    /// Nothing moves: blue serves everything, both slots kept, no note, no abort.
    pub fn at_rest(fields: ReleaseFields) -> Decision {
        Decision {
            fields,
            active_plan: SlotPlan::Keep,
            other_plan: SlotPlan::Keep,
            traffic: TrafficPlan {
                split: Split {
                    stable: Slot::Blue,
                    candidate: Slot::Green,
                    weight: 0,
                    header_route: vec![],
                    mirror_percent: 0,
                },
                service_slot: None,
                preview: false,
            },
            requeue: None,
            notes: vec![],
            abort: None,
            held_back: None,
            gate: None,
        }
    }
}
