//! The stage a Microservice's release is at. It is never stored: one pure function derives it
//! from status and the spec, so a restarted operator finds the stage the last one left. The
//! diagram of the stages and their transitions is in docs/concepts.md.

use super::analysis::last_round_passed;
use super::decision::ReleaseFields;
use super::machine::Wanted;
use super::steps::Step;
use crate::api::Release;

/// Where a release stands, as the machine acts on it.
///
/// A stage added here goes into `Stage::ALL` and into the diagram in docs/concepts.md; a
/// test checks that the two name the same stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// No release: the active slot runs the spec and carries all traffic.
    Steady,
    /// The spec asks for a revision whose release was aborted: the stable slot serves until
    /// the spec changes or a `retry`.
    Aborted,
    /// A revision to release and no release yet: it begins in this decision.
    Starting,
    /// Walking the steps; at this one (counted from 0) until it is done.
    Stepping { index: usize },
    /// Held by a `pause` action wherever it was, until `resume` (or a promote).
    Paused,
    /// Every step is done; the promotion waits for a background analysis round that passes.
    AwaitingAnalysis,
    /// Every step is done and nothing is left to wait for: the promotion begins.
    StepsDone,
    /// All traffic moves to the new version; over once its pods carry all of it (or, with
    /// a post-promotion analysis, once that passes).
    Promoting,
    /// All traffic is on the new version and the old slot keeps its pods while the
    /// post-promotion analysis runs; the new version becomes stable when it passes.
    Verifying,
    /// A metric with `onFailure: Hold` failed: traffic is back on the stable version and
    /// the candidate keeps its pods until `retry` resumes the step or `abort` ends it.
    Held,
    /// Traffic goes back to the stable version after an abort (by hand, a failed analysis or
    /// the progress deadline); then the candidate scales down.
    ReturningAfterAbort,
    /// Traffic goes back to the stable version because the spec changed (a newer revision,
    /// or a strategy that no longer releases); then the newest revision starts, if any.
    ReturningAfterSpecChange,
}

#[cfg(test)]
impl Stage {
    /// Every stage, in the order the diagram in docs/concepts.md introduces them.
    const ALL: [Stage; 12] = [
        Stage::Steady,
        Stage::Starting,
        Stage::Stepping { index: 0 },
        Stage::Paused,
        Stage::AwaitingAnalysis,
        Stage::StepsDone,
        Stage::Promoting,
        Stage::Verifying,
        Stage::Held,
        Stage::ReturningAfterAbort,
        Stage::ReturningAfterSpecChange,
        Stage::Aborted,
    ];

    /// The stage's name, as the diagram writes it.
    fn name(self) -> &'static str {
        match self {
            Stage::Steady => "Steady",
            Stage::Aborted => "Aborted",
            Stage::Starting => "Starting",
            Stage::Stepping { .. } => "Stepping",
            Stage::Paused => "Paused",
            Stage::AwaitingAnalysis => "AwaitingAnalysis",
            Stage::StepsDone => "StepsDone",
            Stage::Promoting => "Promoting",
            Stage::Verifying => "Verifying",
            Stage::Held => "Held",
            Stage::ReturningAfterAbort => "ReturningAfterAbort",
            Stage::ReturningAfterSpecChange => "ReturningAfterSpecChange",
        }
    }
}

impl Stage {
    /// The release stands still on purpose, so the progress deadline does not run: a
    /// `pause` action, a pause step (timed or until a promote), a hold, or the analysis
    /// after the promotion (it ends by its own rounds).
    pub(super) fn pauses(self, steps: &[Step]) -> bool {
        match self {
            Stage::Paused | Stage::Held | Stage::Verifying => true,
            Stage::Stepping { index } => matches!(steps.get(index), Some(Step::Pause(_))),
            _ => false,
        }
    }
}

/// The stage of a release with status `fields` (its release passed apart, as the machine
/// holds it while it acts) under the spec that asks for `wanted`.
pub(super) fn stage(fields: &ReleaseFields, release: Option<&Release>, wanted: &Wanted) -> Stage {
    if let Some(release) = release {
        match &release.returning {
            Some(returning) if returning.abort => return Stage::ReturningAfterAbort,
            Some(_) => return Stage::ReturningAfterSpecChange,
            None if release.revision != wanted.revision || !wanted.progressive => {
                return Stage::ReturningAfterSpecChange;
            }
            None => {}
        }
    }
    let stable = fields.stable_revision.as_deref();
    if !super::asks_for_release(wanted.progressive, stable, &wanted.revision) {
        return Stage::Steady;
    }
    let Some(release) = release else {
        return if fields.aborted_revision.as_deref() == Some(&wanted.revision) {
            Stage::Aborted
        } else {
            Stage::Starting
        };
    };
    // A negative index (a status written by hand) reads as past the last step.
    let index = usize::try_from(release.step_index).unwrap_or(usize::MAX);
    if release.held.is_some() {
        Stage::Held
    } else if release.paused {
        Stage::Paused
    } else if release.promoting && release.verifying_since.is_some() {
        Stage::Verifying
    } else if release.promoting {
        Stage::Promoting
    } else if index < wanted.steps.len() {
        Stage::Stepping { index }
    } else if wanted.background && !last_round_passed(release) {
        Stage::AwaitingAnalysis
    } else {
        Stage::StepsDone
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The states of the first Mermaid `stateDiagram-v2` in `markdown`: every name on either
    /// side of a transition or declared with `state`, less the start/end marker `[*]` and
    /// the composite states that only group others.
    fn diagram_states(markdown: &str) -> BTreeSet<String> {
        let diagram = markdown
            .split("```mermaid")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a ```mermaid block");
        assert!(diagram.trim_start().starts_with("stateDiagram-v2"));
        let mut states = BTreeSet::new();
        let mut composites = BTreeSet::new();
        for line in diagram.lines().map(str::trim) {
            if let Some(declared) = line.strip_prefix("state ") {
                let name = declared.trim_end_matches('{').trim();
                if declared.ends_with('{') {
                    composites.insert(name.to_string());
                } else {
                    states.insert(name.to_string());
                }
            } else if let Some((from, to)) = line.split_once("-->") {
                let to = to.split(':').next().unwrap_or_default();
                states.extend([from.trim(), to.trim()].map(String::from));
            }
        }
        states.remove("[*]");
        &states - &composites
    }

    #[test]
    fn the_diagram_in_the_concepts_draws_exactly_the_stages() {
        let drawn = diagram_states(include_str!("../../docs/concepts.md"));
        let stages: BTreeSet<String> = Stage::ALL.iter().map(|s| s.name().to_string()).collect();
        assert_eq!(drawn, stages, "docs/concepts.md against Stage::ALL");
        assert_eq!(
            stages.len(),
            Stage::ALL.len(),
            "a stage listed twice in ALL"
        );
    }

    #[test]
    fn a_composite_state_is_not_a_stage() {
        let drawn = diagram_states(
            "```mermaid\nstateDiagram-v2\n    [*] --> A\n    state Group {\n        B --> C: why\n    }\n    Group --> A\n```",
        );
        assert_eq!(drawn, ["A", "B", "C"].map(String::from).into());
    }
}
