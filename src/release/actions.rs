//! Manual actions on a release. They live in an annotation, outside the spec that Git owns,
//! and each value is acted on once (see `status.handledAction`).

use super::decision::{Abort, Note};
use super::hold;
use super::machine::Machine;
use super::progress::{Move, move_release};
use super::steps::StepNumber;
use crate::api::{Release, conditions::reason};

/// `kubectl annotate ms NAME weir.dev/action=promote` (optionally `promote@<nonce>`).
pub const ACTION_ANNOTATION: &str = "weir.dev/action";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManualAction {
    /// End the current step (an indefinite pause, for example).
    Promote,
    /// Skip every remaining step and the analysis.
    PromoteFull,
    Abort,
    /// Release an aborted revision again.
    Retry,
    Pause,
    Resume,
    Unknown(String),
}

impl ManualAction {
    pub fn as_str(&self) -> &str {
        match self {
            ManualAction::Promote => "promote",
            ManualAction::PromoteFull => "promote-full",
            ManualAction::Abort => "abort",
            ManualAction::Retry => "retry",
            ManualAction::Pause => "pause",
            ManualAction::Resume => "resume",
            ManualAction::Unknown(value) => value,
        }
    }
}

/// Reads an annotation value: the verb, then an optional `@` and anything that makes a
/// repeat of the same verb a new value.
pub fn parse_action(value: &str) -> ManualAction {
    let verb = value.split('@').next().unwrap_or_default().trim();
    match verb {
        "promote" => ManualAction::Promote,
        "promote-full" => ManualAction::PromoteFull,
        "abort" => ManualAction::Abort,
        "retry" => ManualAction::Retry,
        "pause" => ManualAction::Pause,
        "resume" => ManualAction::Resume,
        _ => ManualAction::Unknown(value.to_string()),
    }
}

impl Machine<'_> {
    /// Acts on `action` before the stage is derived: it may pause, move or abort the
    /// release in progress (one not already returning), or clear an aborted revision.
    pub(super) fn act(&mut self, release: Option<&mut Release>, action: ManualAction) {
        let in_progress = release.filter(|r| r.returning.is_none());
        let note = match (action, in_progress) {
            (ManualAction::Retry, Some(release)) if release.held.is_some() => {
                hold::resume(release, self.now);
                Note::normal(
                    reason::RETRY_REQUESTED,
                    match StepNumber::of(release) {
                        Some(step) => format!("Retrying the held release at {step}."),
                        None => "Retrying the held release's promotion.".into(),
                    },
                )
            }
            (ManualAction::Retry, _) => match self.fields.aborted_revision.take() {
                Some(revision) => Note::normal(
                    reason::RETRY_REQUESTED,
                    format!("Retrying the release of revision {revision}."),
                ),
                None => Note::warning(
                    reason::ACTION_IGNORED,
                    "retry: no aborted release to retry.".into(),
                ),
            },
            (ManualAction::Unknown(value), _) => Note::warning(
                reason::ACTION_IGNORED,
                format!(
                    "Unknown action {value:?}: use promote, promote-full, abort, retry, \
                     pause or resume."
                ),
            ),
            (action, None) => Note::warning(
                reason::ACTION_IGNORED,
                format!("{}: no release is in progress.", action.as_str()),
            ),
            (ManualAction::Promote, Some(release)) => self.promote_step(release),
            (ManualAction::PromoteFull, Some(release)) => {
                release_by_hand(release, self.now);
                move_release(release, Move::SkipToPromotion, self.now);
                Note::normal(
                    reason::PROMOTE_REQUESTED,
                    "Promoted fully by hand: skipping the remaining steps and analysis.".into(),
                )
            }
            (ManualAction::Abort, Some(release)) => {
                let abort = Abort {
                    reason: reason::ABORTED.into(),
                    message: "The release was aborted by hand.".into(),
                };
                self.begin_abort(release, abort);
                Note::normal(
                    reason::ABORT_REQUESTED,
                    "Abort requested: returning traffic to the stable version.".into(),
                )
            }
            (ManualAction::Pause, Some(release)) => {
                release.paused = true;
                Note::normal(reason::PAUSE_REQUESTED, "Paused by hand.".into())
            }
            (ManualAction::Resume, Some(release)) => {
                release.paused = false;
                Note::normal(reason::RESUME_REQUESTED, "Resumed by hand.".into())
            }
        };
        self.note(note);
    }
}

impl Machine<'_> {
    /// `promote`: the current step ends. In a release group with members still at it, the
    /// release then moves on with them (`promote --group` ends every member's step).
    fn promote_step(&mut self, release: &mut Release) -> Note {
        release_by_hand(release, self.now);
        if !self.group_behind(release).is_empty() {
            release.step_done = true;
            return Note::normal(
                reason::PROMOTE_REQUESTED,
                "Promoted by hand: this step is done; the release moves on with the rest of \
                 its release group."
                    .into(),
            );
        }
        if release.step_index < release.step_count {
            move_release(release, Move::NextStep, self.now);
        }
        let message = match StepNumber::of(release) {
            Some(step) => format!("Promoted by hand to {step}."),
            None => "Promoted by hand past the last step.".into(),
        };
        Note::normal(reason::PROMOTE_REQUESTED, message)
    }
}

/// A person moves the release on: a pause by hand or a hold ends.
fn release_by_hand(release: &mut Release, now: k8s_openapi::jiff::Timestamp) {
    release.paused = false;
    if release.held.is_some() {
        hold::resume(release, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_makes_a_repeat_distinct_without_changing_the_verb() {
        assert_eq!(parse_action("promote"), ManualAction::Promote);
        assert_eq!(parse_action("promote@1764160000"), ManualAction::Promote);
        assert_eq!(parse_action("promote-full@x"), ManualAction::PromoteFull);
        assert_eq!(
            parse_action("rollback"),
            ManualAction::Unknown("rollback".into())
        );
    }
}
