//! When the analysis measures, and what its rounds mean for the release. Measuring itself
//! (HTTP) is in `crate::analysis`.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::{Step, after, steps, strategy};
use crate::analysis::{parse_duration, round_outcome};
use crate::api::{
    AnalysisStatus, Measurement, Microservice, OnFailure, Outcome, PostPromotionAnalysis, Release,
    Strategy,
};

/// Measurements kept in status, newest last.
const KEPT_MEASUREMENTS: usize = 10;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

pub(super) fn configured(ms: &Microservice) -> bool {
    ms.spec
        .rollout
        .as_ref()
        .and_then(|r| r.analysis.as_ref())
        .is_some_and(|a| !a.metrics.is_empty())
}

fn interval(ms: &Microservice) -> Duration {
    ms.spec
        .rollout
        .as_ref()
        .and_then(|r| r.analysis.as_ref())
        .and_then(|a| a.interval.as_deref())
        .and_then(parse_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_INTERVAL)
}

/// `postPromotionAnalysis` of the strategy, when there are metrics to run.
fn post_promotion(ms: &Microservice) -> Option<&PostPromotionAnalysis> {
    let rollout = ms.spec.rollout.as_ref()?;
    let post = match strategy(ms) {
        Strategy::Canary => rollout.canary.as_ref()?.post_promotion_analysis.as_ref(),
        Strategy::BlueGreen => rollout
            .blue_green
            .as_ref()?
            .post_promotion_analysis
            .as_ref(),
        Strategy::RollingUpdate => None,
    };
    post.filter(|_| configured(ms))
}

/// How long the analysis goes on after the promotion, if the spec asks for it.
pub(super) fn verify_for(ms: &Microservice) -> Option<Duration> {
    post_promotion(ms).map(|p| parse_duration(&p.duration).unwrap_or(Duration::ZERO))
}

/// The post-promotion analysis passed: its time is over and its last round, measured
/// since it began, passed.
pub(super) fn verified(release: &Release, verify_for: Duration, now: Timestamp) -> bool {
    let Some(since) = &release.verifying_since else {
        return false;
    };
    after(since.0, verify_for) <= now
        && release.analysis.as_ref().is_some_and(|a| {
            a.last_round == Some(Outcome::Passed)
                && a.measured_at.as_ref().is_some_and(|at| at.0 >= since.0)
        })
}

/// A fresh count of rounds, for an analysis that starts again (after the promotion, or
/// when a held release resumes); the measurements shown and the templates stay.
pub(super) fn restart_counting(release: &mut Release) {
    if let Some(analysis) = release.analysis.as_mut() {
        analysis.consecutive_failures = 0;
        analysis.consecutive_inconclusive = 0;
        analysis.last_round = None;
        analysis.measured_at = None;
    }
}

/// The candidate receives traffic of some kind, or every step is done and the promotion
/// waits for a passing round, or the promotion is being verified.
fn background_running(ms: &Microservice, release: &Release) -> bool {
    if release.verifying_since.is_some() {
        return post_promotion(ms).is_some();
    }
    strategy(ms) == Strategy::Canary
        && configured(ms)
        && !release.promoting
        && (release.weight > 0
            || release.mirror_percent > 0
            || !release.header_route.is_empty()
            || release.step_index >= release.step_count)
}

fn gate_metrics<'a>(release: &Release, steps: &'a [Step]) -> Option<&'a Vec<String>> {
    if release.promoting {
        return None;
    }
    match steps.get(release.step_index.max(0) as usize) {
        Some(Step::Analysis(names)) => Some(names),
        _ => None,
    }
}

/// When the next round is due, if the analysis runs now.
pub(super) fn next_due(ms: &Microservice, release: &Release, steps: &[Step]) -> Option<Timestamp> {
    if release.returning.is_some() || release.held.is_some() || !configured(ms) {
        return None;
    }
    let status = release.analysis.clone().unwrap_or_default();
    let measured_at = status.measured_at.as_ref();
    if gate_metrics(release, steps).is_some() {
        let measured_in_step = measured_at.is_some_and(|at| at.0 >= release.step_started_at.0);
        return Some(match (measured_in_step, measured_at) {
            (true, Some(at)) if status.last_round == Some(Outcome::Inconclusive) => {
                after(at.0, interval(ms))
            }
            (true, _) => return None,
            (false, _) => release.step_started_at.0,
        });
    }
    if !background_running(ms, release) {
        return None;
    }
    Some(match measured_at {
        Some(at) => after(at.0, interval(ms)),
        None => Timestamp::UNIX_EPOCH,
    })
}

/// The names of the metrics to measure now (all of them when empty), or None.
pub fn due_measurement(ms: &Microservice, now: Timestamp) -> Option<Vec<String>> {
    let release = ms.status.as_ref()?.release.as_ref()?;
    let steps = steps(ms);
    let due = next_due(ms, release, &steps)?;
    if due > now {
        return None;
    }
    if release.verifying_since.is_some() {
        return Some(post_promotion(ms)?.metrics.clone());
    }
    Some(gate_metrics(release, &steps).cloned().unwrap_or_default())
}

/// True when the release waits at an analysis gate: a decision that just reached one
/// measures at once, while background rounds wait until traffic was applied.
pub fn at_gate(ms: &Microservice) -> bool {
    let Some(release) = ms.status.as_ref().and_then(|s| s.release.as_ref()) else {
        return false;
    };
    release.returning.is_none() && gate_metrics(release, &steps(ms)).is_some()
}

/// Adds a round of measurements to the release's analysis status.
pub fn record_round(release: &mut Release, measurements: Vec<Measurement>, at: Timestamp) {
    let status = release.analysis.get_or_insert_with(AnalysisStatus::default);
    // Metrics measured for the record only count neither for nor against the release.
    let counted: Vec<Measurement> = measurements
        .iter()
        .filter(|m| !m.dry_run)
        .cloned()
        .collect();
    let outcome = round_outcome(&counted);
    match outcome {
        Outcome::Passed => {
            status.consecutive_failures = 0;
            status.consecutive_inconclusive = 0;
        }
        Outcome::Failed => {
            status.consecutive_failures += 1;
            status.consecutive_inconclusive = 0;
        }
        Outcome::Inconclusive => status.consecutive_inconclusive += 1,
    }
    status.last_round = Some(outcome);
    status.measured_at = Some(Time(at));
    status.last.extend(measurements);
    let excess = status.last.len().saturating_sub(KEPT_MEASUREMENTS);
    status.last.drain(..excess);
}

pub(super) fn last_round_passed(release: &Release) -> bool {
    release
        .analysis
        .as_ref()
        .is_some_and(|a| a.last_round == Some(Outcome::Passed))
}

/// The analysis says the release must stop: why, and whether every metric that stops it
/// asks for a hold (`onFailure: Hold`) rather than an abort.
pub(super) struct Verdict {
    pub message: String,
    pub hold: bool,
}

/// When the analysis says the release must stop: an analysis step fails at its first
/// failed round, background rounds (and those after the promotion) past `failureLimit` (or
/// `inconclusiveLimit`).
pub(super) fn verdict(
    ms: &Microservice,
    release: &Release,
    steps: &[Step],
    background: bool,
) -> Option<Verdict> {
    let outcome = failing_outcome(ms, release, steps, background)?;
    let status = release.analysis.as_ref()?;
    let metrics = &ms.spec.rollout.as_ref()?.analysis.as_ref()?.metrics;
    let holds = |measured: &Measurement| {
        metrics
            .iter()
            .any(|m| m.name == measured.metric && m.on_failure == Some(OnFailure::Hold))
    };
    let mut stopping = culprits(status, outcome).peekable();
    let hold = stopping.peek().is_some() && stopping.all(holds);
    Some(Verdict {
        message: failure_message(status, outcome),
        hold,
    })
}

/// The measurements of the last round that ended with `outcome` and count.
fn culprits(status: &AnalysisStatus, outcome: Outcome) -> impl Iterator<Item = &Measurement> {
    let at = status.measured_at.as_ref().map(|t| t.0);
    status
        .last
        .iter()
        // A round is measured after the reconcile that records it began.
        .filter(move |m| at.is_some_and(|at| m.at.0 >= at) && m.outcome == outcome && !m.dry_run)
}

/// The outcome that stops the release, if any.
fn failing_outcome(
    ms: &Microservice,
    release: &Release,
    steps: &[Step],
    background: bool,
) -> Option<Outcome> {
    let background = background || release.verifying_since.is_some();
    let spec = ms.spec.rollout.as_ref()?.analysis.as_ref()?;
    let status = release.analysis.as_ref()?;
    let current = usize::try_from(release.step_index)
        .ok()
        .and_then(|index| steps.get(index));
    let gate = matches!(current, Some(Step::Analysis(_)))
        && status
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
    if status.consecutive_failures > failure_limit && status.last_round == Some(Outcome::Failed) {
        return Some(Outcome::Failed);
    }
    if status.consecutive_inconclusive > inconclusive_limit
        && status.last_round == Some(Outcome::Inconclusive)
    {
        return Some(Outcome::Inconclusive);
    }
    None
}

/// A round measured since the gate step began passed.
pub(super) fn gate_passed(release: &Release) -> bool {
    release.analysis.as_ref().is_some_and(|a| {
        a.last_round == Some(Outcome::Passed)
            && a.measured_at
                .as_ref()
                .is_some_and(|at| at.0 >= release.step_started_at.0)
    })
}

/// Why the analysis stops the release, naming the metrics and values of the last round.
pub(super) fn failure_message(status: &AnalysisStatus, outcome: Outcome) -> String {
    let culprits: Vec<String> = culprits(status, outcome)
        .map(|m| {
            m.message.clone().unwrap_or_else(|| match m.value {
                Some(value) => format!("{} = {value}", m.metric),
                None => m.metric.clone(),
            })
        })
        .collect();
    match outcome {
        Outcome::Inconclusive => format!(
            "The analysis was inconclusive {} times in a row: {}.",
            status.consecutive_inconclusive,
            culprits.join("; ")
        ),
        _ => format!(
            "The analysis failed {} times in a row: {}.",
            status.consecutive_failures,
            culprits.join("; ")
        ),
    }
}
