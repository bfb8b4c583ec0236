//! The end of `Promoting`: the candidate's slot becomes the active one and its revision the
//! stable one, while the old slot stays warm for the scale-down delay.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::decision::{Note, Plan, SlotPlan};
use super::machine::Machine;
use super::{deadline_after, other};
use crate::api::{Release, conditions::reason};

impl Machine<'_> {
    /// The candidate's pods carry all traffic, confirmed: the release is over.
    pub(super) fn finish_promotion(&mut self, release: &Release) {
        let candidate = other(self.active());
        self.fields.active_slot = candidate;
        self.fields.stable_revision = Some(release.revision.clone());
        self.fields.candidate_revision = None;
        let delay = self.wanted.scale_down_delay;
        let at = deadline_after(&Time(self.now), delay);
        self.fields.scale_down_at = Some(Time(at));
        self.wake_at(at);
        self.note(Note::normal(
            reason::PROMOTED,
            format!(
                "Promoted {} (revision {}): slot {} serves all traffic; the old slot keeps its \
                 pods for {}s.",
                self.ms.spec.image,
                release.revision,
                candidate.as_str(),
                delay.as_secs()
            ),
        ));
        self.plan = Some(Plan {
            active: SlotPlan::Template(self.wanted.total),
            other: SlotPlan::Keep,
            traffic: self.resting_traffic(),
        });
    }
}
