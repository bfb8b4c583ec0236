//! The release state machine, pure: from the Microservice, its status and what the cluster
//! shows, decide the next status and what each slot and the traffic should be. All state
//! lives in status, so a restarted operator carries on exactly where the last one stopped.

mod actions;
mod analysis;
#[cfg(test)]
mod properties;
mod steps;
#[cfg(test)]
mod tests;

pub use actions::{ACTION_ANNOTATION, ManualAction, parse_action};
pub use analysis::{at_gate, due_measurement, record_round};
pub use steps::{Step, steps};

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{
    Microservice, MicroserviceStatus, Outcome, Release, Returning, Slot, Strategy,
    conditions::reason,
};
use crate::build::traffic::{Split, capacity};
use crate::build::{DEFAULT_PROGRESS_DEADLINE_SECONDS, effective_replicas};

/// Seconds the old slot keeps its pods after a promotion when the spec does not say.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;

/// What one slot's Deployment shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlotState {
    pub exists: bool,
    /// The revision its pod template carries (`weir.dev/revision`).
    pub revision: Option<String>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// Ready pods that run its current template (0 while a template change rolls).
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
    pub blue: SlotState,
    pub green: SlotState,
    /// True when the live route (or Service) already carries `traffic`, confirmed.
    pub verified: &'a (dyn Fn(&TrafficPlan) -> bool + Sync),
    pub action: Option<ManualAction>,
}

impl Inputs<'_> {
    fn slot(&self, slot: Slot) -> &SlotState {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }
}

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

/// A notable moment, for an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
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
    fn from_status(status: MicroserviceStatus) -> Self {
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
}

/// Strategy Canary or BlueGreen.
pub fn is_progressive(ms: &Microservice) -> bool {
    !matches!(strategy(ms), Strategy::RollingUpdate)
}

pub fn strategy(ms: &Microservice) -> Strategy {
    ms.spec
        .rollout
        .as_ref()
        .map(|r| r.strategy())
        .unwrap_or_default()
}

pub fn router(ms: &Microservice) -> Router {
    let gateway = ms
        .spec
        .rollout
        .as_ref()
        .and_then(|r| r.traffic.as_ref())
        .and_then(|t| t.gateway_api.as_ref());
    if gateway.is_some() {
        Router::GatewayApi
    } else {
        Router::ReplicaRatio
    }
}

pub fn other(slot: Slot) -> Slot {
    match slot {
        Slot::Blue => Slot::Green,
        Slot::Green => Slot::Blue,
    }
}

fn scale_down_delay(ms: &Microservice) -> i32 {
    let rollout = ms.spec.rollout.clone().unwrap_or_default();
    rollout
        .canary
        .and_then(|c| c.scale_down_delay_seconds)
        .or(rollout.blue_green.and_then(|b| b.scale_down_delay_seconds))
        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
}

fn progress_deadline(ms: &Microservice) -> Duration {
    let seconds = ms
        .spec
        .rollout
        .as_ref()
        .and_then(|r| r.progress_deadline_seconds)
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    Duration::from_secs(seconds.max(1) as u64)
}

pub fn after(time: &Time, duration: Duration) -> Timestamp {
    time.0
        .checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

pub fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The next step of the state machine. Pure.
pub fn decide(ms: &Microservice, observed: &Inputs) -> Decision {
    let mut machine = Machine::new(ms, observed);
    machine.run();
    machine.finish()
}

struct Machine<'a> {
    ms: &'a Microservice,
    observed: &'a Inputs<'a>,
    now: Timestamp,
    status: MicroserviceStatus,
    total: i32,
    notes: Vec<Note>,
    requeue: Option<Duration>,
    abort: Option<(String, String)>,
    plan: Option<(SlotPlan, SlotPlan, TrafficPlan)>,
}

impl<'a> Machine<'a> {
    fn new(ms: &'a Microservice, observed: &'a Inputs<'a>) -> Self {
        Machine {
            ms,
            observed,
            now: observed.now,
            status: ms.status.clone().unwrap_or_default(),
            total: effective_replicas(ms),
            notes: Vec::new(),
            requeue: None,
            abort: None,
            plan: None,
        }
    }

    fn active(&self) -> Slot {
        self.status.active_slot.unwrap_or_default()
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: String) {
        self.notes.push(Note {
            warning,
            reason,
            message,
        });
    }

    fn wake_in(&mut self, after: Duration) {
        let after = after.max(Duration::from_millis(50));
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    fn wake_at(&mut self, at: Timestamp) {
        self.wake_in(until(self.now, at));
    }

    fn run(&mut self) {
        if let Some(action) = self.observed.action.clone() {
            self.act(action);
        }
        self.expire_old_slot();
        let revision = self.observed.revision.clone();
        let progressive = is_progressive(self.ms);

        // A release for an older revision, or under a strategy that no longer releases,
        // first returns all traffic to the stable slot, then restarts (or ends).
        if let Some(release) = self.status.release.as_mut()
            && release.returning.is_none()
            && (release.revision != revision || !progressive)
        {
            release.returning = Some(Returning {
                reason: reason::SPEC_CHANGED.into(),
                message: format!(
                    "The spec changed during the release of {}: returning traffic to the \
                     stable version before releasing the newest revision.",
                    release.revision
                ),
                abort: false,
            });
            let message = release.returning.as_ref().unwrap().message.clone();
            self.note(false, reason::SPEC_CHANGED, message);
        }
        if self
            .status
            .release
            .as_ref()
            .is_some_and(|r| r.returning.is_some())
            && !self.return_traffic()
        {
            return;
        }

        let stable = self.status.stable_revision.clone();
        let releasing = progressive && stable.is_some() && stable.as_deref() != Some(&revision);
        if !releasing {
            self.steady(stable.as_deref() == Some(&revision));
            return;
        }
        if self.status.release.is_none() {
            if self.status.aborted_revision.as_deref() == Some(&revision) {
                self.hold_aborted();
                return;
            }
            self.start(revision);
        }
        self.progress();
    }

    /// Nothing to release: the active slot runs the spec (updated in place for
    /// `RollingUpdate` and the very first deploy) and carries all traffic.
    fn steady(&mut self, on_stable_revision: bool) {
        let active = self.active();
        let state = self.observed.slot(active);
        if !on_stable_revision
            && state.settled
            && state.revision.as_deref() == Some(&self.observed.revision)
            && state.replicas == self.total
        {
            self.status.stable_revision = Some(self.observed.revision.clone());
        }
        self.status.candidate_revision = None;
        self.status.aborted_revision = None;
        self.status.release = None;
        let other_plan = self.old_slot_plan();
        self.plan = Some((
            SlotPlan::Template(self.total),
            other_plan,
            self.resting_traffic(),
        ));
    }

    /// An aborted revision is not tried again: the stable slot serves, the candidate has no
    /// pods, until the spec changes or a `retry`.
    fn hold_aborted(&mut self) {
        self.status.candidate_revision = None;
        self.plan = Some((
            SlotPlan::Scale(self.total),
            SlotPlan::Scale(0),
            self.resting_traffic(),
        ));
    }

    fn resting_traffic(&self) -> TrafficPlan {
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
        match self.status.scale_down_at.clone() {
            Some(at) => {
                self.wake_at(at.0);
                SlotPlan::Keep
            }
            None => SlotPlan::Delete,
        }
    }

    fn expire_old_slot(&mut self) {
        if self
            .status
            .scale_down_at
            .as_ref()
            .is_some_and(|at| at.0 <= self.now)
        {
            self.status.scale_down_at = None;
        }
    }

    fn start(&mut self, revision: String) {
        let steps = steps(self.ms);
        let candidate = other(self.active());
        let state = self.observed.slot(candidate);
        // Going back to the revision the old slot still runs, warm: no steps to repeat.
        let warm = self.status.scale_down_at.is_some()
            && state.revision.as_deref() == Some(&revision)
            && state.ready >= self.total;
        let step_index = if warm { steps.len() as i32 } else { 0 };
        self.status.scale_down_at = None;
        self.status.candidate_revision = Some(revision.clone());
        self.status.aborted_revision = None;
        self.status.release = Some(Release {
            revision: revision.clone(),
            step_index,
            step_count: steps.len() as i32,
            step_started_at: Time(self.now),
            weight: 0,
            weight_verified: true,
            mirror_percent: 0,
            header_route: vec![],
            paused: false,
            promoting: false,
            returning: None,
            analysis: None,
        });
        let how = if warm {
            "its pods are still warm in the old slot: switching at once".to_string()
        } else {
            format!("{} steps", steps.len())
        };
        self.note(
            false,
            reason::RELEASE_STARTED,
            format!(
                "Releasing {} (revision {revision}) in slot {}: {how}.",
                self.ms.spec.image,
                candidate.as_str()
            ),
        );
    }

    /// Returns traffic to the stable slot; true once that is verified and the release is
    /// over (ended by an abort, or cleared for a restart).
    fn return_traffic(&mut self) -> bool {
        let active = self.active();
        let candidate = other(active);
        let traffic = self.resting_traffic();
        let candidate_replicas = self.observed.slot(candidate).replicas;
        if !(self.observed.verified)(&traffic) {
            let release = self.status.release.as_mut().expect("a release");
            release.weight = 0;
            release.mirror_percent = 0;
            release.header_route.clear();
            release.weight_verified = false;
            self.plan = Some((
                SlotPlan::Scale(self.total),
                SlotPlan::Scale(candidate_replicas),
                traffic,
            ));
            return false;
        }
        let release = self.status.release.take().expect("a release");
        let returning = release.returning.expect("returning");
        self.status.candidate_revision = None;
        if returning.abort {
            self.status.aborted_revision = Some(release.revision.clone());
            self.abort = Some((returning.reason.clone(), returning.message.clone()));
            self.note(
                true,
                reason::ABORTED,
                format!(
                    "{} Traffic is back on the stable version; the candidate is scaled down.",
                    returning.message
                ),
            );
            self.plan = Some((SlotPlan::Scale(self.total), SlotPlan::Scale(0), traffic));
            return false;
        }
        true
    }

    /// Starts returning traffic to the stable slot and ends the release as aborted.
    fn begin_abort(&mut self, reason: &str, message: String) {
        if let Some(release) = self.status.release.as_mut()
            && release.returning.is_none()
        {
            release.returning = Some(Returning {
                reason: reason.into(),
                message,
                abort: true,
            });
            // Aborted from this moment: the status says so while traffic returns.
            self.status.aborted_revision = Some(release.revision.clone());
        }
    }

    fn act(&mut self, action: ManualAction) {
        let active_release = self
            .status
            .release
            .as_ref()
            .is_some_and(|r| r.returning.is_none());
        let (reason, message, warning) = match action {
            ManualAction::Retry => match self.status.aborted_revision.take() {
                Some(revision) => (
                    reason::RETRY_REQUESTED,
                    format!("Retrying the release of revision {revision}."),
                    false,
                ),
                None => (
                    reason::ACTION_IGNORED,
                    "retry: no aborted release to retry.".into(),
                    true,
                ),
            },
            ManualAction::Unknown(value) => (
                reason::ACTION_IGNORED,
                format!(
                    "Unknown action {value:?}: use promote, promote-full, abort, retry, \
                     pause or resume."
                ),
                true,
            ),
            action if !active_release => (
                reason::ACTION_IGNORED,
                format!("{}: no release is in progress.", action.as_str()),
                true,
            ),
            ManualAction::Promote => {
                let release = self.status.release.as_mut().expect("a release");
                release.paused = false;
                if release.step_index < release.step_count {
                    release.step_index += 1;
                    release.step_started_at = Time(self.now);
                }
                (
                    reason::PROMOTE_REQUESTED,
                    format!("Promoted by hand to step {}.", release.step_index),
                    false,
                )
            }
            ManualAction::PromoteFull => {
                let release = self.status.release.as_mut().expect("a release");
                release.paused = false;
                release.step_index = release.step_count;
                release.promoting = true;
                release.step_started_at = Time(self.now);
                (
                    reason::PROMOTE_REQUESTED,
                    "Promoted fully by hand: skipping the remaining steps and analysis.".into(),
                    false,
                )
            }
            ManualAction::Abort => {
                self.begin_abort(reason::ABORTED, "The release was aborted by hand.".into());
                (
                    reason::ABORT_REQUESTED,
                    "Abort requested: returning traffic to the stable version.".into(),
                    false,
                )
            }
            ManualAction::Pause => {
                self.status.release.as_mut().expect("a release").paused = true;
                (reason::PAUSE_REQUESTED, "Paused by hand.".into(), false)
            }
            ManualAction::Resume => {
                self.status.release.as_mut().expect("a release").paused = false;
                (reason::RESUME_REQUESTED, "Resumed by hand.".into(), false)
            }
        };
        self.note(warning, reason, message);
    }

    /// Walks the steps as far as the cluster allows, then plans the slots and traffic.
    fn progress(&mut self) {
        let steps = steps(self.ms);
        let router = router(self.ms);
        let blue_green = strategy(self.ms) == Strategy::BlueGreen;
        let active = self.active();
        let candidate = other(active);
        let mut candidate_state = self.observed.slot(candidate).clone();
        // Pods of another revision carry nothing of this release: after a spec change the
        // slot still runs the superseded candidate until its template is replaced, and the
        // cache may not have seen that write yet.
        let releasing = self.status.release.as_ref().map(|r| r.revision.as_str());
        if candidate_state.revision.as_deref() != releasing {
            candidate_state.ready = 0;
            candidate_state.settled = false;
        }
        let deadline = progress_deadline(self.ms);
        let background = analysis::configured(self.ms) && !blue_green;

        for _ in 0..=steps.len() + 1 {
            let release = self.status.release.clone().expect("a release");
            if release.returning.is_some() {
                break;
            }
            let traffic = self.wanted_traffic(&release, router, blue_green, &candidate_state);
            let verified = (self.observed.verified)(&traffic);
            if let Some(message) = self.analysis_verdict(&release, &steps, background) {
                self.begin_abort(reason::ANALYSIS_FAILED, message);
                break;
            }
            let pausing = release.paused
                || !release.promoting
                    && matches!(steps.get(release.step_index as usize), Some(Step::Pause(_)));
            if !pausing && after(&release.step_started_at, deadline) <= self.now {
                self.begin_abort(
                    reason::PROGRESS_DEADLINE_EXCEEDED,
                    format!(
                        "Step {} of the release made no progress for {}s.",
                        release.step_index + 1,
                        deadline.as_secs()
                    ),
                );
                break;
            }
            if !pausing {
                self.wake_at(after(&release.step_started_at, deadline));
            }
            if let Some(at) = analysis::next_due(self.ms, &release, &steps) {
                self.wake_at(at);
            }
            if release.paused {
                break;
            }
            let done = if release.promoting {
                if verified && traffic.split.weight == 100 && candidate_state.ready >= self.total {
                    self.finish_promotion(&release);
                    return;
                }
                false
            } else if release.step_index as usize >= steps.len() {
                if background && !analysis::last_round_passed(&release) {
                    false
                } else {
                    let release = self.status.release.as_mut().expect("a release");
                    release.promoting = true;
                    release.step_started_at = Time(self.now);
                    continue;
                }
            } else {
                self.step_done(
                    &steps[release.step_index as usize],
                    &release,
                    &traffic,
                    verified,
                    &candidate_state,
                )
            };
            if !done {
                break;
            }
            let release = self.status.release.as_mut().expect("a release");
            release.step_index += 1;
            release.step_started_at = Time(self.now);
        }

        let release = self.status.release.clone().expect("a release");
        if release.returning.is_some() {
            // Traffic goes back first: the same reconcile plans the return.
            self.return_traffic();
            return;
        }
        let traffic = self.wanted_traffic(&release, router, blue_green, &candidate_state);
        let verified = (self.observed.verified)(&traffic);
        let (stable_pods, candidate_pods) = self.capacity(&release, router, blue_green, &traffic);
        let state = self.status.release.as_mut().expect("a release");
        state.weight = match router {
            Router::GatewayApi => traffic.split.weight,
            Router::ReplicaRatio => achieved_weight(
                candidate_state.ready,
                self.observed.slot(active).ready,
                traffic.service_slot,
                candidate,
            ),
        };
        state.mirror_percent = traffic.split.mirror_percent;
        state.header_route = traffic.split.header_route.clone();
        state.weight_verified = verified;
        self.plan = Some((
            SlotPlan::Scale(stable_pods),
            SlotPlan::Template(candidate_pods),
            traffic,
        ));
    }

    fn step_done(
        &mut self,
        step: &Step,
        release: &Release,
        traffic: &TrafficPlan,
        verified: bool,
        candidate: &SlotState,
    ) -> bool {
        match step {
            Step::Weight(weight) => traffic.split.weight == *weight && verified,
            Step::HeaderRoute(matches) => traffic.split.header_route == *matches && verified,
            Step::Mirror(percent) => traffic.split.mirror_percent == *percent && verified,
            Step::Pause(Some(duration)) => {
                let end = after(&release.step_started_at, *duration);
                if end <= self.now {
                    true
                } else {
                    self.wake_at(end);
                    false
                }
            }
            Step::Pause(None) => false,
            Step::AwaitReady => candidate.ready >= self.total && candidate.settled,
            Step::Analysis(_) => analysis::gate_passed(release),
        }
    }

    /// A message when the analysis says the release must stop.
    fn analysis_verdict(
        &self,
        release: &Release,
        steps: &[Step],
        background: bool,
    ) -> Option<String> {
        let rollout = self.ms.spec.rollout.clone().unwrap_or_default();
        let spec = rollout.analysis?;
        let status = release.analysis.as_ref()?;
        let gate = matches!(
            steps.get(release.step_index as usize),
            Some(Step::Analysis(_))
        ) && status
            .measured_at
            .as_ref()
            .is_some_and(|at| at.0 >= release.step_started_at.0);
        let failure_limit = if gate {
            0
        } else {
            spec.failure_limit.unwrap_or(0)
        };
        let inconclusive_limit = spec.inconclusive_limit.unwrap_or(0);
        if !gate && !background {
            return None;
        }
        if status.consecutive_failures > failure_limit && status.last_round == Some(Outcome::Failed)
        {
            return Some(analysis::failure_message(status, Outcome::Failed));
        }
        if status.consecutive_inconclusive > inconclusive_limit
            && status.last_round == Some(Outcome::Inconclusive)
        {
            return Some(analysis::failure_message(status, Outcome::Inconclusive));
        }
        None
    }

    /// What the steps done so far and the current one ask for, before any safety cap.
    fn target_split(&self, release: &Release) -> Split {
        let active = self.active();
        let steps = steps(self.ms);
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

    /// The traffic to apply now: the target, but a weight only once the candidate's ready
    /// pods carry it (until then the weight already applied, lowered if pods were lost), and
    /// header routes or a mirror only once it has a ready pod.
    fn wanted_traffic(
        &self,
        release: &Release,
        router: Router,
        blue_green: bool,
        candidate: &SlotState,
    ) -> TrafficPlan {
        let active = self.active();
        let mut split = self.target_split(release);
        // Ready pods are unknown until the Deployment controller has seen the last write
        // (a scale-up, say): meanwhile hold what is applied, whose pods were ready, and never
        // raise it. The candidate's template only changes while it has no traffic.
        let known = !candidate.exists || candidate.observed;
        let carried = |w: i32| w == 0 || candidate.ready >= capacity_for(self.total, w);
        if !known {
            split.weight = split.weight.min(release.weight);
            split.header_route = release.header_route.clone();
            split.mirror_percent = release.mirror_percent;
        } else if !carried(split.weight) {
            split.weight = if carried(release.weight) && release.weight < split.weight {
                release.weight
            } else {
                0
            };
        }
        if known && candidate.ready == 0 {
            split.header_route.clear();
            split.mirror_percent = 0;
        }
        // Without a router, full weight is Service `<name>` switching to the candidate,
        // so the old slot's pods stay warm for `scaleDownDelaySeconds`.
        let service_slot = match router {
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

    /// Pods per slot: the candidate gets its share of the wanted weight (all of them for
    /// blue/green); the stable slot keeps all its pods unless the ratio of pods is the router.
    fn capacity(
        &self,
        release: &Release,
        router: Router,
        blue_green: bool,
        traffic: &TrafficPlan,
    ) -> (i32, i32) {
        let mut wanted = self.target_split(release);
        wanted.weight = wanted.weight.max(traffic.split.weight);
        let (_, candidate) = capacity(self.total, &wanted);
        let candidate = if blue_green { self.total } else { candidate };
        let stable = match router {
            Router::ReplicaRatio if !blue_green && traffic.split.weight < 100 => {
                capacity(self.total, &traffic.split).0
            }
            Router::ReplicaRatio if !blue_green => self.observed.slot(self.active()).replicas,
            _ => self.total,
        };
        (stable, candidate)
    }

    fn finish_promotion(&mut self, release: &Release) {
        let candidate = other(self.active());
        self.status.active_slot = Some(candidate);
        self.status.stable_revision = Some(release.revision.clone());
        self.status.candidate_revision = None;
        self.status.release = None;
        let delay = Duration::from_secs(scale_down_delay(self.ms).max(0) as u64);
        let at = after(&Time(self.now), delay);
        self.status.scale_down_at = Some(Time(at));
        self.wake_at(at);
        self.note(
            false,
            reason::PROMOTED,
            format!(
                "Promoted {} (revision {}): slot {} serves all traffic; the old slot keeps its \
                 pods for {}s.",
                self.ms.spec.image,
                release.revision,
                candidate.as_str(),
                delay.as_secs()
            ),
        );
        self.plan = Some((
            SlotPlan::Template(self.total),
            SlotPlan::Keep,
            self.resting_traffic(),
        ));
    }

    fn finish(mut self) -> Decision {
        let (active_plan, other_plan, traffic) = self.plan.take().unwrap_or_else(|| {
            (
                SlotPlan::Template(self.total),
                SlotPlan::Delete,
                self.resting_traffic(),
            )
        });
        Decision {
            fields: ReleaseFields::from_status(self.status),
            active_plan,
            other_plan,
            traffic,
            requeue: self.requeue,
            notes: self.notes,
            abort: self.abort,
        }
    }
}

/// Pods the candidate needs for `weight` percent of `total`: at least one.
pub fn capacity_for(total: i32, weight: i32) -> i32 {
    ((i64::from(total) * i64::from(weight) + 99) / 100).max(1) as i32
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
