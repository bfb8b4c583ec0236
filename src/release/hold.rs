//! `Held`: a metric with `onFailure: Hold` failed. Traffic returns to the stable version
//! first, as for an abort, but the candidate keeps its pods for a person to look at: `retry`
//! resumes at the failing step, `abort` ends the release.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::analysis;
use super::decision::{Note, Plan, SlotPlan};
use super::machine::{Machine, Next};
use super::progress::restart_step;
use super::returning::record_back;
use crate::api::{Release, conditions::reason};

impl Machine<'_> {
    /// Holds the release: from the next decision on, traffic goes back to stable.
    pub(super) fn hold(&mut self, release: &mut Release, why: String) {
        self.note(Note::warning(
            reason::HELD,
            format!(
                "{why} Held: traffic returns to the stable version; the new version keeps its \
                 pods. Retry (weir.dev/action=retry) resumes this step; abort ends the release."
            ),
        ));
        release.held = Some(why);
    }

    /// `Held`: all traffic on the stable slot, the candidate as it is.
    pub(super) fn hold_for_a_person(&mut self, release: &mut Release) -> Next {
        let traffic = self.traffic_back(release);
        record_back(release, &traffic, (self.inputs.verified)(&traffic));
        self.plan = Some(Plan {
            active: SlotPlan::Scale(self.wanted.total),
            other: SlotPlan::Keep,
            traffic,
        });
        Next::Stop
    }
}

/// A person let a held release go on: the step it was held at starts again, with the
/// analysis counting afresh (after the promotion, its verification starts again).
pub(super) fn resume(release: &mut Release, now: Timestamp) {
    release.held = None;
    analysis::restart_counting(release);
    if release.verifying_since.is_some() {
        release.verifying_since = Some(Time(now));
    }
    restart_step(release, now);
}
