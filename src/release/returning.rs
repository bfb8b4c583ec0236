//! `ReturningAfterAbort` and `ReturningAfterSpecChange`: traffic goes back to the stable
//! slot first; only once the router confirms it does the candidate scale down (an abort) or
//! the newest revision start (a spec change).

use super::decision::{Abort, Note, Plan, SlotPlan, TrafficPlan};
use super::machine::{Machine, Next};
use super::other;
use crate::api::{Release, Returning, conditions::reason};

impl Machine<'_> {
    /// Returns traffic to the stable slot, and ends the release once that is confirmed.
    pub(super) fn return_traffic(&mut self, release: &mut Release) -> Next {
        let returning = self.returning(release);
        let traffic = self.traffic_back(release);
        let total = self.wanted.total;
        let verified = (self.inputs.verified)(&traffic);
        if !verified || traffic.split.weight > 0 {
            record_back(release, &traffic, verified);
            let candidate_replicas = self.inputs.slot(other(self.active())).replicas;
            self.plan = Some(Plan {
                active: SlotPlan::Scale(total),
                other: SlotPlan::Scale(candidate_replicas),
                traffic,
            });
            return Next::Stop;
        }
        if returning.abort && !self.group_still_exposed().is_empty() {
            return self.wait_for_group_return(release);
        }
        self.fields.candidate_revision = None;
        if !returning.abort {
            return Next::AgainWithoutRelease;
        }
        self.fields.aborted_revision = Some(release.revision.clone());
        self.note(Note::warning(
            reason::ABORTED,
            format!(
                "{} Traffic is back on the stable version; the candidate is scaled down.",
                returning.message
            ),
        ));
        self.abort = Some(Abort {
            reason: returning.reason,
            message: returning.message,
        });
        self.plan = Some(Plan {
            active: SlotPlan::Scale(total),
            other: SlotPlan::Scale(0),
            traffic,
        });
        Next::StopWithoutRelease
    }

    /// The way back to the stable slot: all of it, unless the stable slot was shrunk to its
    /// share (`stableScale: Dynamic`): then the candidate keeps what the stable slot's ready
    /// pods cannot take yet, and no more than it had, while the stable slot grows.
    pub(super) fn traffic_back(&self, release: &Release) -> TrafficPlan {
        let mut traffic = self.resting_traffic();
        if self.wanted.dynamic_stable {
            traffic.split.weight = self.lowest_weight_as_stable_grows(release);
        }
        traffic
    }

    /// Traffic is back on stable here, not yet on every member of the group: the candidate
    /// keeps its pods until it is.
    fn wait_for_group_return(&mut self, release: &mut Release) -> Next {
        let exposed = self.group_still_exposed();
        record_back(release, &self.resting_traffic(), true);
        let candidate_replicas = self.inputs.slot(other(self.active())).replicas;
        self.gate = Some((
            reason::WAITING_FOR_GROUP,
            format!(
                "Traffic is back on the stable version; the candidate scales down once {} of \
                 the release group have theirs back too.",
                exposed.join(", ")
            ),
        ));
        self.wake_in(std::time::Duration::from_secs(10));
        self.plan = Some(Plan {
            active: SlotPlan::Scale(self.wanted.total),
            other: SlotPlan::Scale(candidate_replicas),
            traffic: self.resting_traffic(),
        });
        Next::Stop
    }

    /// Why traffic goes back: what the release says, or for a release of a revision the spec
    /// no longer asks for (or under a strategy that no longer releases), a spec change, said
    /// once in an event.
    fn returning(&mut self, release: &mut Release) -> Returning {
        if let Some(returning) = &release.returning {
            return returning.clone();
        }
        let returning = Returning {
            reason: reason::SPEC_CHANGED.into(),
            message: format!(
                "The spec changed during the release of {}: returning traffic to the stable \
                 version before releasing the newest revision.",
                release.revision
            ),
            abort: false,
        };
        self.note(Note::normal(
            reason::SPEC_CHANGED,
            returning.message.clone(),
        ));
        release.returning = Some(returning.clone());
        returning
    }

    /// Starts returning traffic to the stable slot and ends the release as aborted.
    pub(super) fn begin_abort(&mut self, release: &mut Release, abort: Abort) {
        if release.returning.is_some() {
            return;
        }
        release.returning = Some(Returning {
            reason: abort.reason,
            message: abort.message,
            abort: true,
        });
        // Aborted from this moment: the status says so while traffic returns.
        self.fields.aborted_revision = Some(release.revision.clone());
    }
}

/// Records in the release the traffic on the way back to stable, as applied: no header
/// route, no mirror, and the weight the candidate keeps.
pub(super) fn record_back(release: &mut Release, traffic: &TrafficPlan, verified: bool) {
    release.weight = traffic.split.weight;
    release.mirror_percent = 0;
    release.header_route.clear();
    release.weight_verified = verified;
}
