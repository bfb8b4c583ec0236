//! `Verifying`: after the promotion's traffic is confirmed, the analysis goes on with all
//! traffic on the new version while the old slot keeps every pod. The new version becomes
//! stable only when it passes; a failure is an abort, which returns traffic to the old
//! slot, still warm, before the new one scales down.

use super::analysis;
use super::decision::{Note, SlotState, TrafficPlan};
use super::machine::Machine;
use crate::api::{Release, conditions::reason};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

impl Machine<'_> {
    /// All traffic reached the new version: its analysis begins, counting afresh.
    pub(super) fn begin_verifying(&mut self, release: &mut Release) {
        release.verifying_since = Some(Time(self.now));
        release.step_done = false;
        analysis::restart_counting(release);
        let verify_for = self.wanted.verify_for.unwrap_or_default();
        self.note(Note::normal(
            reason::VERIFYING,
            format!(
                "All traffic is on {} (revision {}): the post-promotion analysis runs for {}s \
                 while the old slot keeps its pods.",
                self.ms.spec.image,
                release.revision,
                verify_for.as_secs()
            ),
        ));
    }

    /// The post-promotion analysis passed with all traffic still on the new version;
    /// until then, wake when its time is over.
    pub(super) fn verified(
        &mut self,
        release: &Release,
        traffic: &TrafficPlan,
        verified: bool,
        candidate: &SlotState,
    ) -> bool {
        let verify_for = self.wanted.verify_for.unwrap_or_default();
        if let Some(since) = &release.verifying_since {
            self.wake_at(super::after(since.0, verify_for));
        }
        let passed = self.carries_all(traffic, verified, candidate)
            && analysis::verified(release, verify_for, self.now);
        if passed {
            self.note(Note::normal(
                reason::VERIFIED,
                format!(
                    "The post-promotion analysis of revision {} passed.",
                    release.revision
                ),
            ));
        }
        passed
    }
}
