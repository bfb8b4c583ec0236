//! The stages that walk a release: `Stepping`, `Paused`, `AwaitingAnalysis`, `StepsDone`
//! and `Promoting`; and [`move_release`], the one place a release moves on.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;

use super::decision::{Abort, SlotState, TrafficPlan};
use super::machine::{Machine, Next};
use super::stage::{Stage, stage};
use super::steps::{Step, StepNumber};
use super::{after, analysis, other};
use crate::api::{Release, StepStart, conditions::reason};

/// Where a release moves on to.
#[derive(Clone, Copy, Debug)]
pub(super) enum Move {
    /// The next step.
    NextStep,
    /// Every step is done: the promotion begins.
    Promotion,
    /// Past every remaining step, straight to the promotion (`promote --full`).
    SkipToPromotion,
}

/// The current step starts again now (a held release resumed): its pause, gate and
/// deadline count afresh.
pub(super) fn restart_step(release: &mut Release, now: Timestamp) {
    release.step_done = false;
    release.step_started_at = MicroTime(now);
    release.step_history.push(StepStart {
        step: release.step_index,
        started_at: Time(now),
    });
}

/// Every change of a release's step index, and the start of its promotion, goes through
/// here. What it moves to starts now: pauses, gates and the progress deadline count from
/// `stepStartedAt`.
pub(super) fn move_release(release: &mut Release, to: Move, now: Timestamp) {
    release.step_done = false;
    match to {
        Move::NextStep => release.step_index += 1,
        Move::Promotion => release.promoting = true,
        Move::SkipToPromotion => {
            release.step_index = release.step_count;
            release.promoting = true;
        }
    }
    release.step_started_at = MicroTime(now);
    // Past the last step, the promotion's start is the same step of the timeline.
    if release.step_history.last().map(|s| s.step) != Some(release.step_index) {
        release.step_history.push(StepStart {
            step: release.step_index,
            started_at: Time(now),
        });
    }
}

impl Machine<'_> {
    /// Walks the release's stages as far as the cluster allows (each stage moves on at most
    /// once), then plans its slots and traffic.
    pub(super) fn progress(&mut self, release: &mut Release) -> Next {
        let candidate = self.candidate_state(release);
        for _ in 0..=self.wanted.steps.len() + 2 {
            let stage = stage(&self.fields, Some(release), &self.wanted);
            let traffic = self.wanted_traffic(release, &candidate);
            let verified = (self.inputs.verified)(&traffic);
            if let Some((abort, hold)) = self.reason_to_stop(release, stage) {
                match hold {
                    true => self.hold(release, abort.message),
                    false => self.begin_abort(release, abort),
                }
                return Next::Again;
            }
            self.wake_for(release, stage);
            let to = match stage {
                Stage::Stepping { index } => {
                    let step = self.wanted.steps[index].clone();
                    // Done before, and waiting for a gate or the group (or ended by hand).
                    let done = release.step_done
                        || self.step_done(&step, release, &traffic, verified, &candidate);
                    done.then_some(Move::NextStep)
                }
                Stage::StepsDone => Some(Move::Promotion),
                // A group's members become stable together: each waits, all traffic on its
                // new version (and verified), until every other member is ready too.
                Stage::Promoting if self.carries_all(&traffic, verified, &candidate) => {
                    if self.wanted.verify_for.is_some() {
                        self.begin_verifying(release);
                        continue;
                    }
                    if self.waits_to_finish_with_group(release) {
                        break;
                    }
                    self.finish_promotion(release);
                    return Next::StopWithoutRelease;
                }
                Stage::Verifying
                    if self.verified(release, &traffic, verified, &candidate)
                        && !self.waits_to_finish_with_group(release) =>
                {
                    self.finish_promotion(release);
                    return Next::StopWithoutRelease;
                }
                Stage::Promoting | Stage::Verifying | Stage::Paused | Stage::AwaitingAnalysis => {
                    None
                }
                // Not reached: moving on keeps a release at the stages above.
                Stage::Steady
                | Stage::Aborted
                | Stage::Starting
                | Stage::ReturningAfterAbort
                | Stage::ReturningAfterSpecChange
                | Stage::Held => None,
            };
            match to {
                Some(to) if !self.gated(release, to) && !self.waits_for_group(release) => {
                    move_release(release, to, self.now)
                }
                _ => break,
            }
        }
        self.plan_release(release, &candidate);
        Next::Stop
    }

    /// The candidate slot as far as this release goes: pods of another revision carry
    /// nothing of it. After a spec change the slot still runs the superseded candidate until
    /// its template is replaced, and the cache may not have seen that write yet.
    fn candidate_state(&self, release: &Release) -> SlotState {
        let mut state = self.inputs.slot(other(self.active())).clone();
        if state.revision.as_deref() != Some(&release.revision) {
            state.ready = 0;
            state.settled = false;
        }
        state
    }

    /// The new version's pods carry all the traffic, confirmed.
    pub(super) fn carries_all(
        &self,
        traffic: &TrafficPlan,
        verified: bool,
        candidate: &SlotState,
    ) -> bool {
        verified && traffic.split.weight == 100 && candidate.ready >= self.wanted.total
    }

    /// Why the release stops: the analysis failed (true when it is to be held rather than
    /// aborted), or the stage made no progress within the deadline.
    fn reason_to_stop(&self, release: &Release, stage: Stage) -> Option<(Abort, bool)> {
        let steps = &self.wanted.steps;
        if let Some(verdict) = analysis::verdict(self.ms, release, steps, self.wanted.background) {
            let reason = match release.verifying_since {
                Some(_) => reason::POST_PROMOTION_ANALYSIS_FAILED,
                None => reason::ANALYSIS_FAILED,
            };
            let abort = Abort {
                reason: reason.into(),
                message: verdict.message,
            };
            return Some((abort, verdict.hold));
        }
        let deadline = self.wanted.deadline;
        // A release held by a freeze or outside its windows stands still on purpose.
        // Nor one whose step is done and that waits only for a gate or its group.
        let gated =
            release.step_done || self.closed.is_some() || !self.group_behind(release).is_empty();
        if gated || stage.pauses(steps) || after(release.step_started_at.0, deadline) > self.now {
            return None;
        }
        let at = match (stage, StepNumber::of(release)) {
            (Stage::Promoting, _) => "while promoting".to_string(),
            (_, Some(step)) => format!("at {step}"),
            (_, None) => "after the last step".to_string(),
        };
        let abort = Abort {
            reason: reason::PROGRESS_DEADLINE_EXCEEDED.into(),
            message: format!(
                "The release made no progress for {}s {at}.",
                deadline.as_secs()
            ),
        };
        Some((abort, false))
    }

    /// Wakes at the progress deadline, and when the next analysis round is due.
    fn wake_for(&mut self, release: &Release, stage: Stage) {
        if !stage.pauses(&self.wanted.steps) {
            self.wake_at(after(release.step_started_at.0, self.wanted.deadline));
        }
        if let Some(at) = analysis::next_due(self.ms, release, &self.wanted.steps) {
            self.wake_at(at);
        }
    }

    /// Is the step done? A timed pause not yet over wakes the decision at its end.
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
                let end = after(release.step_started_at.0, *duration);
                if end <= self.now {
                    true
                } else {
                    self.wake_at(end);
                    false
                }
            }
            Step::Pause(None) => false,
            Step::AwaitReady => candidate.ready >= self.wanted.total && candidate.settled,
            Step::Analysis(_) => analysis::gate_passed(release),
        }
    }
}
