//! The steps of a release, one list for both strategies.

use std::fmt;
use std::time::Duration;

use crate::analysis::parse_duration;
use crate::api::{HeaderMatch, Microservice, Release, Strategy};

/// One step the release walks through.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Send this percent of traffic to the candidate.
    Weight(i32),
    /// Wait this long, or without a duration until a promote.
    Pause(Option<Duration>),
    /// Route requests with these headers to the candidate.
    HeaderRoute(Vec<HeaderMatch>),
    /// Copy this percent of traffic to the candidate.
    Mirror(i32),
    /// Run these metrics (all when empty) once as a gate.
    Analysis(Vec<String>),
    /// Wait until the candidate runs at full size, every pod ready (blue/green).
    AwaitReady,
}

/// The steps of the Microservice's strategy. Blue/green is: full size in the other slot,
/// the pre-promotion analysis, then the wait for `autoPromotionSeconds` or a promote.
pub fn steps(ms: &Microservice) -> Vec<Step> {
    let rollout = ms.spec.rollout.clone().unwrap_or_default();
    match rollout.strategy() {
        Strategy::RollingUpdate => vec![],
        Strategy::Canary => rollout
            .canary
            .unwrap_or_default()
            .steps
            .into_iter()
            .filter_map(|step| {
                if let Some(weight) = step.set_weight {
                    Some(Step::Weight(weight.clamp(0, 100)))
                } else if let Some(pause) = step.pause {
                    Some(Step::Pause(
                        pause.duration.as_deref().and_then(parse_duration),
                    ))
                } else if let Some(route) = step.set_header_route {
                    Some(Step::HeaderRoute(route.matches))
                } else if let Some(mirror) = step.set_mirror {
                    Some(Step::Mirror(mirror.percent.clamp(0, 100)))
                } else {
                    step.analysis.map(|gate| Step::Analysis(gate.metrics))
                }
            })
            .collect(),
        Strategy::BlueGreen => {
            let blue_green = rollout.blue_green.unwrap_or_default();
            let mut steps = vec![Step::AwaitReady];
            if let Some(gate) = blue_green.pre_promotion_analysis {
                steps.push(Step::Analysis(gate.metrics));
            }
            steps.push(Step::Pause(
                blue_green
                    .auto_promotion_seconds
                    .map(|s| Duration::from_secs(s.max(0) as u64)),
            ));
            steps
        }
    }
}

impl Step {
    /// How the step reads in a status message.
    pub fn describe(&self) -> String {
        match self {
            Step::Weight(w) => format!("setWeight {w}"),
            Step::Pause(Some(d)) => format!("pause {}s", d.as_secs_f64()),
            Step::Pause(None) => "pause until promoted".into(),
            Step::HeaderRoute(m) if m.is_empty() => "clear the header route".into(),
            Step::HeaderRoute(m) => format!(
                "route {} to the new version",
                m.iter()
                    .map(|h| format!(
                        "{}={}",
                        h.name,
                        h.value
                            .as_deref()
                            .or(h.regex.as_deref())
                            .unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::Mirror(p) => format!("mirror {p}% of traffic"),
            Step::Analysis(_) => "analysis".into(),
            Step::AwaitReady => "wait for the new version at full size".into(),
        }
    }
}

/// A release's place among its steps as people count them: "step 3 of 4", from 1. Status
/// keeps the 0-based `stepIndex`; events, status messages and the plugin all print this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepNumber {
    /// Counted from 1.
    pub number: i32,
    pub count: i32,
}

impl StepNumber {
    /// The step `release` is at, or None once every step is done.
    pub fn of(release: &Release) -> Option<StepNumber> {
        (release.step_index < release.step_count).then(|| StepNumber {
            number: release.step_index.saturating_add(1),
            count: release.step_count,
        })
    }
}

impl fmt::Display for StepNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} of {}", self.number, self.count)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    use super::*;

    fn at(step_index: i32, step_count: i32) -> Release {
        Release {
            revision: "r2".into(),
            step_index,
            step_count,
            step_started_at: MicroTime(Default::default()),
            step_history: vec![],
            weight: 0,
            weight_verified: true,
            mirror_percent: 0,
            header_route: vec![],
            paused: false,
            promoting: false,
            returning: None,
            analysis: None,
            held: None,
            verifying_since: None,
            warm: false,
            step_done: false,
        }
    }

    #[test]
    fn steps_are_counted_from_one_until_every_step_is_done() {
        let first = StepNumber::of(&at(0, 4)).unwrap();
        assert_eq!(first.to_string(), "step 1 of 4");
        assert_eq!(
            StepNumber::of(&at(3, 4)).unwrap().to_string(),
            "step 4 of 4"
        );
        assert_eq!(StepNumber::of(&at(4, 4)), None);
        assert_eq!(StepNumber::of(&at(0, 0)), None);
    }
}
