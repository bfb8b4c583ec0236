//! The driver of a decision: derive the stage, let its handler act, and derive it again until
//! a handler settles the decision. Here too the stages without a release: `Steady`,
//! `Aborted` and `Starting`.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;

use super::decision::{
    Abort, Decision, HoldBack, Inputs, Note, Plan, ReleaseFields, Router, SlotPlan, TrafficPlan,
};
use super::gate;
use super::stage::{Stage, stage};
use super::steps::{Step, steps};
use super::{
    analysis, is_progressive, other, progress_deadline, router, scale_down_delay, strategy, until,
};
use crate::api::{
    AnalysisStatus, Microservice, Release, Slot, StepStart, Strategy, TemplatedMetric,
    conditions::reason,
};
use crate::build::effective_replicas;
use crate::build::traffic::Split;

/// How soon a release held back by a template it cannot resolve looks again.
const TEMPLATE_RETRY: Duration = Duration::from_secs(15);

/// What the spec asks of a decision, read once per decision.
pub(super) struct Wanted {
    /// The revision the spec's pod template hashes to.
    pub revision: String,
    /// Strategy Canary or BlueGreen.
    pub progressive: bool,
    pub blue_green: bool,
    pub steps: Vec<Step>,
    /// Analysis rounds run beside the steps (a canary with metrics), and the promotion waits
    /// for one that passes.
    pub background: bool,
    pub router: Router,
    /// Pods the service runs with, the two slots' shares together.
    pub total: i32,
    /// How long a step other than a pause may go without progress.
    pub deadline: Duration,
    /// How long the old slot keeps its pods after a promotion.
    pub scale_down_delay: Duration,
    /// The fewest pods the candidate runs while it takes traffic (`canary.minPods`, behind
    /// a router); 0 for no floor.
    pub min_pods: i32,
    /// How long the analysis goes on after the promotion (`postPromotionAnalysis`), with
    /// all traffic on the new version and the old slot warm.
    pub verify_for: Option<Duration>,
    /// `canary.stableScale: Dynamic` behind a router: the stable slot runs only the pods
    /// for its own share.
    pub dynamic_stable: bool,
}

impl Wanted {
    fn read(ms: &Microservice, revision: String) -> Self {
        let blue_green = strategy(ms) == Strategy::BlueGreen;
        Wanted {
            revision,
            progressive: is_progressive(ms),
            blue_green,
            steps: steps(ms),
            background: analysis::configured(ms) && !blue_green,
            router: router(ms),
            total: effective_replicas(ms),
            deadline: progress_deadline(ms),
            scale_down_delay: Duration::from_secs(scale_down_delay(ms).max(0) as u64),
            min_pods: min_pods(ms),
            verify_for: analysis::verify_for(ms),
            dynamic_stable: dynamic_stable(ms),
        }
    }
}

/// What a handler leaves the driver to do.
pub(super) enum Next {
    /// The decision is made; the release, if any, carries on.
    Stop,
    /// The decision is made; the release is over.
    StopWithoutRelease,
    /// The release moved to another stage: decide again.
    Again,
    /// The release is over: decide again without it.
    AgainWithoutRelease,
    /// A release begins: decide again with it.
    AgainWith(Box<Release>),
}

/// One decision in the making: what it reads, the status fields it changes (the release held
/// apart while handlers act on it), and what it has decided so far.
pub(super) struct Machine<'a> {
    pub ms: &'a Microservice,
    pub inputs: &'a Inputs<'a>,
    pub now: Timestamp,
    pub wanted: Wanted,
    pub fields: ReleaseFields,
    pub notes: Vec<Note>,
    pub requeue: Option<Duration>,
    pub abort: Option<Abort>,
    pub held_back: Option<HoldBack>,
    pub plan: Option<Plan>,
    /// Why exposure may not grow now, if it may not.
    pub closed: Option<gate::Closed>,
    /// Why the release waits at the gate, when it does.
    pub gate: Option<HoldBack>,
}

impl<'a> Machine<'a> {
    pub fn new(ms: &'a Microservice, inputs: &'a Inputs<'a>) -> Self {
        Machine {
            ms,
            inputs,
            now: inputs.now,
            wanted: Wanted::read(ms, inputs.revision.clone()),
            fields: ReleaseFields::from_status(ms.status.clone().unwrap_or_default()),
            notes: Vec::new(),
            requeue: None,
            abort: None,
            held_back: None,
            plan: None,
            closed: gate::closed(ms, inputs.freeze.as_deref(), inputs.now),
            gate: None,
        }
    }

    /// Acts on the manual action, then walks the stages until one settles the decision.
    /// A decision passes at most: the return after a spec change, the start of the newest
    /// revision, its steps, an abort, and the return after it.
    pub fn run(&mut self) {
        let mut release = self.fields.release.take();
        if let Some(action) = self.inputs.action.clone() {
            self.act(release.as_mut(), action);
        }
        if let Some(current) = release.as_mut() {
            self.abort_with_group(current);
        }
        self.expire_old_slot();
        loop {
            let stage = stage(&self.fields, release.as_ref(), &self.wanted);
            let next = match (stage, release.as_mut()) {
                (Stage::Steady, _) => self.steady(),
                (Stage::Aborted, _) => self.hold_aborted(),
                (Stage::Starting, _) => match self.inputs.templates.clone() {
                    _ if self.start_gated() || self.waits_for_after() => self.wait_to_start(),
                    Ok(templates) => Next::AgainWith(Box::new(self.start(templates))),
                    Err(why) => self.hold_back(why),
                },
                (Stage::ReturningAfterAbort | Stage::ReturningAfterSpecChange, Some(current)) => {
                    self.return_traffic(current)
                }
                (Stage::Held, Some(current)) => self.hold_for_a_person(current),
                (
                    Stage::Stepping { .. }
                    | Stage::Paused
                    | Stage::AwaitingAnalysis
                    | Stage::StepsDone
                    | Stage::Promoting
                    | Stage::Verifying,
                    Some(current),
                ) => self.progress(current),
                (_, None) => unreachable!("{stage:?} is only derived from a release"),
            };
            match next {
                Next::Stop => break,
                Next::StopWithoutRelease => {
                    release = None;
                    break;
                }
                Next::Again => {}
                Next::AgainWithoutRelease => release = None,
                Next::AgainWith(started) => release = Some(*started),
            }
        }
        self.fields.release = release;
    }

    pub fn finish(mut self) -> Decision {
        let plan = self.plan.take().unwrap_or_else(|| Plan {
            active: SlotPlan::Template(self.wanted.total),
            other: SlotPlan::Delete,
            traffic: self.resting_traffic(),
        });
        Decision {
            fields: self.fields,
            active_plan: plan.active,
            other_plan: plan.other,
            traffic: plan.traffic,
            requeue: self.requeue,
            notes: self.notes,
            abort: self.abort.map(|abort| (abort.reason, abort.message)),
            held_back: self.held_back,
            gate: self.gate,
        }
    }

    pub fn active(&self) -> Slot {
        self.fields.active_slot
    }

    pub fn note(&mut self, note: Note) {
        self.notes.push(note);
    }

    pub fn wake_in(&mut self, after: Duration) {
        let after = after.max(Duration::from_millis(50));
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    pub fn wake_at(&mut self, at: Timestamp) {
        self.wake_in(until(self.now, at));
    }

    /// `Steady`: the active slot runs the spec (updated in place for `RollingUpdate` and the
    /// very first deploy) and carries all traffic.
    fn steady(&mut self) -> Next {
        let on_stable_revision =
            self.fields.stable_revision.as_deref() == Some(&self.wanted.revision);
        let state = self.inputs.slot(self.active());
        if !on_stable_revision
            && state.settled
            && state.revision.as_deref() == Some(&self.wanted.revision)
            && state.replicas == self.wanted.total
        {
            self.fields.stable_revision = Some(self.wanted.revision.clone());
        }
        self.fields.candidate_revision = None;
        self.fields.aborted_revision = None;
        let other = self.old_slot_plan();
        self.plan = Some(Plan {
            active: SlotPlan::Template(self.wanted.total),
            other,
            traffic: self.resting_traffic(),
        });
        Next::StopWithoutRelease
    }

    /// `Aborted`: an aborted revision is not tried again: the stable slot serves, the
    /// candidate has no pods, until the spec changes or a `retry`.
    fn hold_aborted(&mut self) -> Next {
        self.fields.candidate_revision = None;
        self.plan = Some(Plan {
            active: SlotPlan::Scale(self.wanted.total),
            other: SlotPlan::Scale(0),
            traffic: self.resting_traffic(),
        });
        Next::StopWithoutRelease
    }

    /// `Starting`, but the analysis cannot run (a template that cannot be resolved, a
    /// credential set the namespace may not use): the stable slot keeps serving as it is,
    /// nothing of the new revision runs, and Weir looks again shortly (templates and the
    /// operator's settings trigger no reconcile).
    fn hold_back(&mut self, (reason, why): HoldBack) -> Next {
        let message = format!(
            "The release of revision {} does not start: {why}.",
            self.wanted.revision
        );
        let told = self.ms.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.reason == reason && c.message.starts_with(&message))
        });
        if !told {
            self.note(Note::warning(reason, message.clone()));
        }
        self.held_back = Some((reason, message));
        self.wake_in(TEMPLATE_RETRY);
        self.wait_to_start()
    }

    /// A release may not start while the gate is closed, unless it returns to the revision
    /// the old slot still runs, warm (a rollback).
    fn start_gated(&mut self) -> bool {
        let Some(closed) = self.closed.clone() else {
            return false;
        };
        if self.starts_warm() {
            return false;
        }
        let what = format!("The release of revision {} waits", self.wanted.revision);
        self.wait_for_gate(&closed, &what);
        true
    }

    /// `Starting`, but the release may not start yet (a closed gate, a member of `after`,
    /// an analysis that cannot run): the stable slot serves as it is; nothing new runs.
    fn wait_to_start(&mut self) -> Next {
        self.fields.candidate_revision = None;
        let other = self.old_slot_plan();
        self.plan = Some(Plan {
            active: SlotPlan::Scale(self.wanted.total),
            other,
            traffic: self.resting_traffic(),
        });
        Next::StopWithoutRelease
    }

    /// The old slot still runs the wanted revision, warm, with all its pods ready.
    fn starts_warm(&self) -> bool {
        let state = self.inputs.slot(other(self.active()));
        self.fields.scale_down_at.is_some()
            && state.revision.as_deref() == Some(&self.wanted.revision)
            && state.ready >= self.wanted.total
    }

    /// `Starting`: the release of the revision the spec asks for begins, at its first step,
    /// or past the last when the old slot still runs that revision, warm. The metrics'
    /// templates, resolved now, are what the release measures.
    fn start(&mut self, templates: Vec<TemplatedMetric>) -> Release {
        let revision = self.wanted.revision.clone();
        let step_count = self.wanted.steps.len();
        let candidate = other(self.active());
        let warm = self.starts_warm();
        self.fields.scale_down_at = None;
        self.fields.candidate_revision = Some(revision.clone());
        self.fields.aborted_revision = None;
        let how = if warm {
            "its pods are still warm in the old slot: switching at once".to_string()
        } else {
            format!("{step_count} steps")
        };
        self.note(Note::normal(
            reason::RELEASE_STARTED,
            format!(
                "Releasing {} (revision {revision}) in slot {}: {how}.",
                self.ms.spec.image,
                candidate.as_str()
            ),
        ));
        let step_index = if warm { step_count as i32 } else { 0 };
        Release {
            revision,
            step_index,
            step_count: step_count as i32,
            step_started_at: MicroTime(self.now),
            step_history: vec![StepStart {
                step: step_index,
                started_at: Time(self.now),
            }],
            weight: 0,
            weight_verified: true,
            mirror_percent: 0,
            header_route: vec![],
            paused: false,
            promoting: false,
            returning: None,
            analysis: (!templates.is_empty()).then(|| AnalysisStatus {
                templates,
                ..AnalysisStatus::default()
            }),
            held: None,
            verifying_since: None,
            warm,
            step_done: false,
        }
    }

    /// All traffic on the active slot, through Service `<name>` too.
    pub fn resting_traffic(&self) -> TrafficPlan {
        let active = self.active();
        TrafficPlan {
            split: Split {
                stable: active,
                candidate: other(active),
                weight: 0,
                header_route: vec![],
                mirror_percent: 0,
            },
            service_slot: Some(active),
            preview: false,
        }
    }

    /// The slot that served before the last promotion keeps its pods until `scaleDownAt`.
    fn old_slot_plan(&mut self) -> SlotPlan {
        match self.fields.scale_down_at.clone() {
            Some(at) => {
                self.wake_at(at.0);
                SlotPlan::Keep
            }
            None => SlotPlan::Delete,
        }
    }

    fn expire_old_slot(&mut self) {
        if self
            .fields
            .scale_down_at
            .as_ref()
            .is_some_and(|at| at.0 <= self.now)
        {
            self.fields.scale_down_at = None;
        }
    }
}

/// `canary.stableScale: Dynamic` when a router splits the traffic (admission refuses it
/// without one).
fn dynamic_stable(ms: &Microservice) -> bool {
    let canary = ms.spec.rollout.as_ref().and_then(|r| r.canary.as_ref());
    router(ms) == Router::GatewayApi
        && strategy(ms) == Strategy::Canary
        && canary.and_then(|c| c.stable_scale) == Some(crate::api::StableScale::Dynamic)
}

/// `canary.minPods` when a router splits the traffic (admission refuses it without one).
fn min_pods(ms: &Microservice) -> i32 {
    let canary = ms.spec.rollout.as_ref().and_then(|r| r.canary.as_ref());
    match (router(ms), canary.and_then(|c| c.min_pods)) {
        (Router::GatewayApi, Some(n)) => n.max(0),
        _ => 0,
    }
}
