//! Taking over a running Deployment and its Service without an outage (`spec.migrateFrom`),
//! pure: from the spec, the recorded takeover and what the cluster shows, the next step.
//!
//! ```text
//! WaitingForPods ──slot ready at the old size──▶ ScalingDown ──old at 0──▶ Completed
//!        │                                        │   ▲
//!        └──────────── abort ─────────────┐       │   │ the selector switched, then the old
//!                                         ▼       ▼   │ Deployment scaled down step by step
//!                           Aborted / RolledBack ─────┘ retry, or a spec change
//! ```
//!
//! Consent is explicit: the Microservice names the Deployment, and the Service of its name
//! carries `weir.dev/adopt: <microservice>`. Without both nothing here runs and the Service
//! stays a name conflict. The Service's selector is the only field written until the old
//! Deployment is gone; only then does Weir take the Service whole.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{MigrateFrom, MigrationPhase, MigrationStatus, ScaleDown};
use crate::release::{ManualAction, Note, SlotState};

/// The least time between two steps (the switch, each scale-down), so that gateways and
/// kube-proxy follow the Service's endpoints before the next pods go.
pub const STEP_INTERVAL: Duration = Duration::from_secs(10);
/// How soon a takeover under way is looked at again: the old Deployment is not watched.
pub const RECHECK: Duration = Duration::from_secs(2);

/// The Service of the Microservice's name, as it is now.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveService {
    /// It carries `weir.dev/adopt: <microservice>`.
    pub consent: bool,
    /// Weir owns it already.
    pub owned: bool,
    pub selector: BTreeMap<String, String>,
    /// How it differs from the Service Weir builds in what clients and gateways rely on
    /// (its type, its ports' names, numbers and targets); None when it does not. Taking it
    /// over as it is would change those under live traffic, so the switch waits.
    pub differs: Option<String>,
}

/// The old Deployment, as it is now.
#[derive(Clone, Debug, PartialEq)]
pub struct OldDeployment {
    /// `spec.replicas`.
    pub replicas: i32,
    /// Pods that exist (`status.replicas`): equal to `replicas` once a scale-down is done.
    pub pods: i32,
}

/// What the cluster shows, for one decision.
pub struct Inputs<'a> {
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub service: Option<&'a LiveService>,
    pub old: Option<&'a OldDeployment>,
    /// The active slot.
    pub slot: &'a SlotState,
    /// The selector Weir's Service has: the active slot's pods.
    pub slot_selector: &'a BTreeMap<String, String>,
    /// Pods a scale-down step may take (see [`step_size`]).
    pub step: i32,
    pub action: Option<&'a ManualAction>,
}

/// What to do with the Service's selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectorStep {
    Leave,
    /// Server-side apply of this selector alone, forced.
    Set(BTreeMap<String, String>),
}

/// What to do with the old Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OldStep {
    Leave,
    Scale(i32),
    Delete,
}

/// One decision of the takeover.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The takeover as it stands after this step.
    pub status: MigrationStatus,
    pub selector: SelectorStep,
    pub old: OldStep,
    /// The active slot runs at least this many pods while the takeover runs.
    pub slot_at_least: Option<i32>,
    pub note: Option<Note>,
    pub requeue: Option<Duration>,
}

impl Step {
    /// Weir may take over the PodDisruptionBudget and autoscaler of the Microservice's name
    /// (when they consent): from the switch on, they guard and scale Weir's pods.
    pub fn guards_adoptable(&self) -> bool {
        matches!(
            self.status.phase,
            MigrationPhase::ScalingDown | MigrationPhase::Completed
        )
    }
}

/// Whether a takeover runs now: the spec asks for one and it is not over. A recorded one
/// goes on (a rollback puts the selector back even if consent was withdrawn); a new one
/// needs the Service's consent and a Service Weir does not own.
pub fn engaged(
    spec: Option<&MigrateFrom>,
    recorded: Option<&MigrationStatus>,
    service: Option<&LiveService>,
) -> bool {
    let Some(spec) = spec else { return false };
    match recorded {
        Some(r) if r.deployment == spec.deployment => r.phase != MigrationPhase::Completed,
        _ => service.is_some_and(|s| s.consent && !s.owned),
    }
}

/// The next step of an engaged takeover.
pub fn decide(spec: &MigrateFrom, recorded: Option<&MigrationStatus>, inputs: &Inputs) -> Step {
    let recorded = recorded.filter(|r| r.deployment == spec.deployment);
    let Some(recorded) = recorded else {
        return start(spec, inputs);
    };
    let mut step = Step {
        status: recorded.clone(),
        selector: SelectorStep::Leave,
        old: OldStep::Leave,
        slot_at_least: Some(recorded.original_replicas),
        note: None,
        requeue: Some(RECHECK),
    };
    match recorded.phase {
        MigrationPhase::WaitingForPods => waiting(&mut step, inputs),
        MigrationPhase::ScalingDown => scaling_down(&mut step, spec, inputs),
        MigrationPhase::RolledBack | MigrationPhase::Aborted => stopped(&mut step, inputs),
        MigrationPhase::Completed => {
            step.slot_at_least = None;
            step.requeue = None;
        }
    }
    step
}

fn start(spec: &MigrateFrom, inputs: &Inputs) -> Step {
    let original = inputs.old.map_or(0, |d| d.replicas);
    let mut step = Step {
        status: MigrationStatus {
            deployment: spec.deployment.clone(),
            phase: MigrationPhase::WaitingForPods,
            original_replicas: original,
            original_selector: inputs
                .service
                .map(|s| s.selector.clone())
                .unwrap_or_default(),
            replicas: original,
            last_step_at: None,
            stopped_at_generation: None,
            message: String::new(),
        },
        selector: SelectorStep::Leave,
        old: OldStep::Leave,
        slot_at_least: Some(original),
        note: Some(Note::normal(
            "TakeoverStarted",
            format!(
                "Taking over Deployment {} ({original} replicas): starting as many pods of \
                 the Microservice before the Service is switched to them.",
                spec.deployment
            ),
        )),
        requeue: Some(RECHECK),
    };
    waiting(&mut step, inputs);
    step
}

/// Weir's pods start; the switch comes once they are all ready at the old size.
fn waiting(step: &mut Step, inputs: &Inputs) {
    if let Some(ManualAction::Abort) = inputs.action {
        stop(step, inputs, MigrationPhase::Aborted, "Abort requested");
        return;
    }
    let wanted = step.status.original_replicas.max(1);
    let slot = inputs.slot;
    if let Some(differs) = inputs.service.and_then(|s| s.differs.as_ref()) {
        step.status.message = format!(
            "Waiting: the Service differs from the one the spec describes ({differs}); make \
             them the same, or the switch would change it under live traffic. Deployment {} \
             serves meanwhile.",
            step.status.deployment
        );
        return;
    }
    if slot.settled && slot.ready >= wanted {
        step.selector = SelectorStep::Set(inputs.slot_selector.clone());
        step.status.phase = MigrationPhase::ScalingDown;
        step.status.last_step_at = Some(Time(inputs.now));
        step.status.message = format!(
            "Service switched to the Microservice's {} ready pods; Deployment {} is scaled \
             down next.",
            slot.ready, step.status.deployment
        );
        step.note = Some(Note::normal(
            "TakeoverSwitched",
            format!(
                "Service switched from Deployment {}'s pods to the Microservice's {} ready pods.",
                step.status.deployment, slot.ready
            ),
        ));
    } else {
        step.status.message = format!(
            "Waiting for the Microservice's pods: {} of {wanted} ready; Deployment {} serves \
             until they are.",
            slot.ready, step.status.deployment
        );
    }
}

/// The Service selects Weir's pods; the old Deployment goes, a step at a time.
fn scaling_down(step: &mut Step, spec: &MigrateFrom, inputs: &Inputs) {
    let old_name = step.status.deployment.clone();
    let slot = inputs.slot;
    if let Some(ManualAction::Abort) = inputs.action {
        stop(step, inputs, MigrationPhase::Aborted, "Abort requested");
        return;
    }
    if slot.ready == 0 && inputs.old.is_some() {
        let why = "The Microservice's pods are no longer ready";
        stop(step, inputs, MigrationPhase::RolledBack, why);
        return;
    }
    if inputs.service.map(|s| &s.selector) != Some(inputs.slot_selector) {
        // The switch has not reached the Service yet (a failed write, or a stale cache).
        step.selector = SelectorStep::Set(inputs.slot_selector.clone());
    }
    let scale_down = spec.scale_down.unwrap_or_default();
    let Some(old) = inputs.old else {
        complete(step, "Deployment {old} is gone");
        return;
    };
    if old.replicas == 0 && old.pods == 0 {
        match scale_down {
            ScaleDown::Never => complete(step, "Deployment {old} is left at 0 replicas"),
            _ => {
                step.old = OldStep::Delete;
                complete(step, "Deployment {old} deleted");
            }
        }
        return;
    }
    let due = step
        .status
        .last_step_at
        .as_ref()
        .is_none_or(|at| inputs.now >= at.0 + SignedDuration::try_from(STEP_INTERVAL).unwrap());
    let capacity = slot.settled && slot.ready >= step.status.original_replicas.max(1);
    let previous_done = old.pods <= old.replicas;
    if !(due && capacity && previous_done) {
        step.status.message = format!(
            "Service switched; Deployment {old_name} at {} replicas, the next step once \
             the Microservice's pods are all ready ({} of {}) and {}s after the last.",
            old.replicas,
            slot.ready,
            step.status.original_replicas.max(1),
            STEP_INTERVAL.as_secs()
        );
        return;
    }
    let by = match scale_down {
        ScaleDown::OnSuccess => old.replicas,
        _ => inputs.step.max(1),
    };
    let to = (old.replicas - by).max(0);
    step.old = OldStep::Scale(to);
    step.status.replicas = to;
    step.status.last_step_at = Some(Time(inputs.now));
    step.status.message = format!(
        "Service switched; Deployment {old_name} scaled down from {} to {to} replicas.",
        old.replicas
    );
    step.note = Some(Note::normal(
        "TakeoverScaledDown",
        format!(
            "Deployment {old_name} scaled from {} to {to} replicas.",
            old.replicas
        ),
    ));
}

fn complete(step: &mut Step, how: &str) {
    let old = &step.status.deployment;
    let how = how.replace("{old}", old);
    step.status.phase = MigrationPhase::Completed;
    step.status.replicas = 0;
    step.status.message = format!("Takeover complete: {how}; Weir owns the Service.");
    step.note = Some(Note::normal(
        "TakeoverCompleted",
        step.status.message.clone(),
    ));
    step.slot_at_least = None;
    step.requeue = Some(RECHECK);
}

/// Stopped: nothing moves until a retry or a spec change.
fn stopped(step: &mut Step, inputs: &Inputs) {
    let retried = matches!(inputs.action, Some(ManualAction::Retry));
    let changed = inputs.generation != step.status.stopped_at_generation;
    if retried || changed {
        step.status.phase = MigrationPhase::WaitingForPods;
        step.status.stopped_at_generation = None;
        step.note = Some(Note::normal(
            "TakeoverRetried",
            format!("Taking over Deployment {} again.", step.status.deployment),
        ));
        waiting(step, inputs);
        return;
    }
    step.requeue = None;
}

/// Puts the old selector back and the old Deployment at its old size: it serves again.
fn stop(step: &mut Step, inputs: &Inputs, phase: MigrationPhase, why: &str) {
    let original = step.status.original_replicas;
    let old_name = step.status.deployment.clone();
    let switched = step.status.phase == MigrationPhase::ScalingDown;
    if switched {
        step.selector = SelectorStep::Set(step.status.original_selector.clone());
    }
    if inputs.old.is_some_and(|d| d.replicas < original) {
        step.old = OldStep::Scale(original);
    }
    step.status.phase = phase;
    step.status.replicas = original;
    step.status.stopped_at_generation = inputs.generation;
    step.status.message = format!(
        "{why}: Deployment {old_name} serves at {original} replicas{}. A `retry` action or a \
         spec change tries again.",
        if switched {
            ", the Service selects its pods again"
        } else {
            ""
        }
    );
    step.note = Some(Note::warning(
        if phase == MigrationPhase::Aborted {
            "TakeoverAborted"
        } else {
            "TakeoverRolledBack"
        },
        step.status.message.clone(),
    ));
    step.requeue = None;
}

/// Pods one scale-down step may take: what the old Deployment's PodDisruptionBudget lets
/// go at once, else a quarter of its original size; at least one.
pub fn step_size(original: i32, pdb: Option<&PodDisruptionBudgetSpec>) -> i32 {
    let of = |value: &IntOrString, round_up: bool| match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let percent: i32 = s.trim_end_matches('%').parse().unwrap_or(25);
            let scaled = original * percent;
            if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            }
        }
    };
    let allowed = match pdb {
        Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(max),
            ..
        }) => of(max, false),
        Some(PodDisruptionBudgetSpec {
            min_available: Some(min),
            ..
        }) => original - of(min, true),
        _ => (original + 3) / 4,
    };
    allowed.max(1)
}

#[cfg(test)]
mod tests;
