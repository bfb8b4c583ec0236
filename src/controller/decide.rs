//! Decide: from an observation to a plan. Measures the release's analysis when a round is
//! due (the only I/O here, over HTTP to the metrics backends), then runs the release
//! machine, which is pure. The deciding itself is in pure functions tested below.

use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::gateway_features;
use super::observe::Observation;
use super::verify;
use crate::analysis::resolve;
use crate::analysis::{Measurer, ReleaseFacts};
use crate::api::{Measurement, Metric, Microservice, Outcome, TemplatedMetric};
use crate::build;
use crate::release::{self, Decision, ManualAction, SlotPlan, other};
use crate::takeover;

/// What the reconcile is to do: the release machine's decision (status fields, slot
/// plans, traffic, events, when to look again).
pub struct Plan {
    pub decision: Decision,
    /// The takeover of `spec.migrateFrom`'s next step, while one runs.
    pub takeover: Option<takeover::Step>,
}

/// Measures when a round is due, before deciding (the decision reads the results), and
/// once more if the decision just reached an analysis gate whose round is due: a gate is
/// measured at once rather than a reconcile later.
pub async fn decide(observation: &Observation, measurer: &Measurer) -> Plan {
    let mut decision = decide_release(observation, measurer).await;
    let takeover = take_over(observation, &mut decision);
    Plan { decision, takeover }
}

async fn decide_release(observation: &Observation, measurer: &Measurer) -> Decision {
    let now = observation.now;
    let mut ms = observation.ms.clone();
    // While a takeover runs, `abort` and `retry` are the takeover's.
    let action = match (&observation.takeover, &observation.action) {
        (Some(_), Some(ManualAction::Abort | ManualAction::Retry)) => None,
        (_, action) => action.clone(),
    };
    if let Some(names) = release::due_measurement(&ms, now) {
        let round = measure_round(&mut ms, &names, measurer, now).await;
        let mut decision = decide_once(&ms, observation, action);
        decision.notes.extend(dry_run_notes(&round));
        return decision;
    }
    let first = decide_once(&ms, observation, action);
    let Some((mut at_gate, names)) = gate_round_due(&ms, &first, now) else {
        return first;
    };
    let round = measure_round(&mut at_gate, &names, measurer, now).await;
    // The action was acted on by the first decision.
    let mut second = decide_once(&at_gate, observation, None);
    second.notes.extend(dry_run_notes(&round));
    after_gate(first, second)
}

/// An event for each metric measured for the record only (`onFailure: Record`) that did
/// not pass: what would have stopped the release, had it gated.
pub fn dry_run_notes(round: &[Measurement]) -> Vec<release::Note> {
    round
        .iter()
        .filter(|m| m.dry_run && m.outcome != Outcome::Passed)
        .map(|m| {
            let seen = m.message.clone().unwrap_or_else(|| m.metric.clone());
            release::Note::normal(
                "AnalysisRecorded",
                format!(
                    "{seen} ({}, recorded only: onFailure is Record, so the release goes on)",
                    m.outcome.as_str()
                ),
            )
        })
        .collect()
}

/// The takeover's next step, while one runs; the active slot is raised to the old
/// Deployment's size until it is over, and the step's event and recheck join the decision.
pub fn take_over(observation: &Observation, decision: &mut Decision) -> Option<takeover::Step> {
    let view = observation.takeover.as_ref()?;
    let spec = observation.ms.spec.migrate_from.as_ref()?;
    let active = decision.fields.active_slot;
    let selector = build::service(
        &observation.ms,
        &observation.name,
        decision.traffic.service_slot,
    )
    .and_then(|s| s.spec?.selector)
    .unwrap_or_default();
    let inputs = takeover::Inputs {
        now: observation.now,
        generation: observation.ms.metadata.generation,
        service: Some(&view.service),
        old: view.old.as_ref(),
        slot: observation.slot(active),
        slot_selector: &selector,
        step: view.step,
        action: observation.action.as_ref(),
    };
    let recorded = observation
        .ms
        .status
        .as_ref()
        .and_then(|s| s.migration.as_ref());
    let step = takeover::decide(spec, recorded, &inputs);
    if let (Some(least), SlotPlan::Template(replicas)) =
        (step.slot_at_least, &mut decision.active_plan)
    {
        *replicas = (*replicas).max(least);
    }
    decision.notes.extend(step.note.clone());
    decision.requeue = match (decision.requeue, step.requeue) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Some(step)
}

/// The release machine's decision on `ms` (the observed Microservice, with any round just
/// measured), counting a traffic plan as carried when the observation shows it.
pub fn decide_once(
    ms: &Microservice,
    observation: &Observation,
    action: Option<ManualAction>,
) -> Decision {
    let carried = |plan: &release::TrafficPlan| verify::carries(observation, plan);
    let inputs = release::Inputs {
        now: observation.now,
        revision: observation.revision.clone(),
        freeze: observation.freeze.clone(),
        group: observation.group.clone(),
        blue: observation.blue.clone(),
        green: observation.green.clone(),
        verified: &carried,
        action,
        templates: observation.templates.clone(),
    };
    let Some(class) = &observation.mirror_unsupported_by else {
        return release::decide(ms, &inputs);
    };
    let mut decision = release::decide(&gateway_features::without_mirrors(ms), &inputs);
    decision.notes.push(release::Note {
        warning: true,
        reason: "MirrorUnsupported",
        message: format!(
            "GatewayClass {class} does not implement HTTPRoute RequestMirror (its status.supportedFeatures): the mirror steps copy no requests"
        ),
    });
    decision
}

/// When `first` just reached an analysis gate whose round is due: the Microservice with
/// the status `first` decided, to measure and decide again, and the metrics to measure.
pub fn gate_round_due(
    ms: &Microservice,
    first: &Decision,
    now: Timestamp,
) -> Option<(Microservice, Vec<String>)> {
    let mut decided = ms.clone();
    let mut status = decided.status.take().unwrap_or_default();
    first.fields.clone().write_into(&mut status);
    decided.status = Some(status);
    if !release::at_gate(&decided) {
        return None;
    }
    let names = release::due_measurement(&decided, now)?;
    Some((decided, names))
}

/// The decision after the gate's round, telling the first decision's events too.
pub fn after_gate(mut first: Decision, mut second: Decision) -> Decision {
    first.notes.append(&mut second.notes);
    second.notes = first.notes;
    second
}

/// Measures the named metrics (all when `names` is empty) and adds the round to the
/// release in `ms`'s status.
async fn measure_round(
    ms: &mut Microservice,
    names: &[String],
    measurer: &Measurer,
    now: Timestamp,
) -> Vec<Measurement> {
    let measured = match measurement_of(ms, names) {
        Some((metrics, facts)) => {
            let at = Time(Timestamp::now());
            let rounds = metrics
                .iter()
                .map(|metric| measurer.measure(metric, &facts, at.clone()));
            join_all(rounds).await
        }
        None => Vec::new(),
    };
    if let Some(release) = ms.status.as_mut().and_then(|s| s.release.as_mut()) {
        release::record_round(release, measured.clone(), now);
    }
    measured
}

/// The metrics to measure and the facts their queries may name, while a release with
/// analysis runs.
pub fn measurement_of(ms: &Microservice, names: &[String]) -> Option<(Vec<Metric>, ReleaseFacts)> {
    let analysis = ms.spec.rollout.as_ref()?.analysis.as_ref()?;
    let status = ms.status.as_ref()?;
    let release = status.release.as_ref()?;
    let stable = status.active_slot.unwrap_or_default();
    let facts = ReleaseFacts {
        name: ms.name_any(),
        namespace: ms.namespace().unwrap_or_default(),
        candidate_slot: other(stable).as_str().into(),
        stable_slot: stable.as_str().into(),
        candidate_revision: release.revision.clone(),
        stable_revision: status.stable_revision.clone().unwrap_or_default(),
        weight: release.weight,
        step_index: release.step_index,
    };
    let recorded = release
        .analysis
        .as_ref()
        .map_or(&[][..], |a| a.templates.as_slice());
    let metrics = analysis
        .metrics
        .iter()
        .filter(|m| names.is_empty() || names.contains(&m.name))
        .map(|metric| as_measured(metric, recorded))
        .collect();
    Some((metrics, facts))
}

/// `metric` as the release measures it: a metric naming a template as resolved when the
/// release started. One added to the spec since has no provider, and measures as such.
fn as_measured(metric: &Metric, recorded: &[TemplatedMetric]) -> Metric {
    if metric.template_ref.is_none() {
        return metric.clone();
    }
    recorded
        .iter()
        .find(|t| t.metric == metric.name)
        .map_or_else(
            || metric.clone(),
            |templated| Metric {
                compare: metric.compare.clone(),
                ..resolve::as_metric(templated)
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MicroserviceStatus, Slot};
    use crate::release::{Note, SlotPlan, SlotState};
    use serde_json::{Value, json};

    /// Checkout running revision r1 in blue, asked for r2 under `steps`, with analysis.
    fn releasing(steps: Value) -> Observation {
        let mut ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1", "generation": 2},
            "spec": {"image": "a:2", "replicas": 4, "ports": [{"name": "http", "port": 80}],
                "rollout": {"strategy": "Canary", "canary": {"steps": steps},
                    "analysis": {"metrics": [
                        {"name": "errors", "prometheus": {"query": "q"}, "max": 0.1},
                        {"name": "latency", "prometheus": {"query": "q"}, "max": 1.0}]}}}
        }))
        .unwrap();
        ms.status = Some(MicroserviceStatus {
            active_slot: Some(Slot::Blue),
            stable_revision: Some("r1".into()),
            ..Default::default()
        });
        let mut observation = Observation::bare(ms, "r2", "2026-01-01T00:00:00Z".parse().unwrap());
        observation.blue = SlotState {
            exists: true,
            revision: Some("r1".into()),
            replicas: 4,
            ready: 4,
            settled: true,
            observed: true,
        };
        observation
    }

    #[test]
    fn a_new_microservice_gets_its_active_slot_built_and_nothing_else() {
        let mut observation = releasing(json!([]));
        observation.ms.status = None;
        let decision = decide_once(&observation.ms, &observation, None);
        assert_eq!(decision.fields.active_slot, Slot::Blue);
        assert_eq!(decision.active_plan, SlotPlan::Template(4));
        assert_eq!(decision.other_plan, SlotPlan::Delete);
    }

    #[test]
    fn a_decision_that_reaches_an_analysis_gate_measures_again_with_its_status() {
        let observation =
            releasing(json!([{"analysis": {"metrics": ["errors"]}}, {"setWeight": 50}]));
        let first = decide_once(&observation.ms, &observation, None);
        let release = first.fields.release.as_ref().expect("the release started");
        assert_eq!((release.step_index, release.revision.as_str()), (0, "r2"));
        let (decided, names) =
            gate_round_due(&observation.ms, &first, observation.now).expect("a gate round is due");
        assert_eq!(names, ["errors"]);
        assert_eq!(decided.status.unwrap().release, first.fields.release);
    }

    #[test]
    fn a_decision_short_of_a_gate_measures_nothing_more() {
        let observation = releasing(json!([{"setWeight": 50}, {"pause": {}}]));
        let first = decide_once(&observation.ms, &observation, None);
        assert!(first.fields.release.is_some());
        assert!(gate_round_due(&observation.ms, &first, observation.now).is_none());
    }

    #[test]
    fn the_decision_after_a_gate_tells_both_decisions_events_in_order() {
        let observation = releasing(json!([{"setWeight": 50}]));
        let note = |reason| Note {
            warning: false,
            reason,
            message: String::new(),
        };
        let mut first = decide_once(&observation.ms, &observation, None);
        let mut second = decide_once(&observation.ms, &observation, None);
        first.notes = vec![note("First")];
        second.notes = vec![note("Second")];
        second.requeue = Some(std::time::Duration::from_secs(7));
        let merged = after_gate(first, second);
        let reasons: Vec<_> = merged.notes.iter().map(|n| n.reason).collect();
        assert_eq!(reasons, ["First", "Second"]);
        assert_eq!(merged.requeue, Some(std::time::Duration::from_secs(7)));
    }

    #[test]
    fn a_round_names_the_slots_and_only_the_metrics_asked_for() {
        let observation = releasing(json!([{"setWeight": 50}]));
        assert!(
            measurement_of(&observation.ms, &[]).is_none(),
            "no release runs yet"
        );
        let first = decide_once(&observation.ms, &observation, None);
        let mut ms = observation.ms.clone();
        let mut status = ms.status.take().unwrap();
        first.fields.write_into(&mut status);
        ms.status = Some(status);
        let (metrics, facts) = measurement_of(&ms, &["latency".into()]).unwrap();
        assert_eq!(
            metrics.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["latency"]
        );
        assert_eq!(
            (facts.stable_slot.as_str(), facts.candidate_slot.as_str()),
            ("blue", "green")
        );
        assert_eq!(
            (
                facts.stable_revision.as_str(),
                facts.candidate_revision.as_str()
            ),
            ("r1", "r2")
        );
        assert_eq!(
            measurement_of(&ms, &[]).unwrap().0.len(),
            2,
            "all when none named"
        );
    }
}
