//! The state machine driven by a simulated cluster: pods start ready at once, the router
//! confirms what was applied one reconcile later, and time moves one second a reconcile.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;
use crate::api::{Microservice, MicroserviceStatus, TemplatedMetric};

pub(super) struct Cluster {
    pub ms: Microservice,
    pub now: Timestamp,
    pub blue: SlotState,
    pub green: SlotState,
    /// Traffic as the router last confirmed it.
    pub live: Option<TrafficPlan>,
    /// Revision of the pod template the spec asks for.
    pub revision: String,
    /// (weight, candidate ready pods) after each reconcile.
    pub history: Vec<(i32, i32)>,
    /// Pods of a new template become ready.
    pub pods_ready: bool,
    pub notes: Vec<Note>,
    /// The metric templates as the operator resolves them now.
    pub templates: Result<Vec<TemplatedMetric>, HoldBack>,
    /// Why releases are frozen, if they are.
    pub freeze: Option<String>,
    /// The other members of its release group.
    pub group: Option<group::Group>,
}

pub(super) fn microservice(rollout: Value) -> Microservice {
    serde_json::from_value(json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {"image": "a:1", "replicas": 4, "ports": [{"name": "http", "port": 80}], "rollout": rollout}
    }))
    .unwrap()
}

/// A measurement of `metric` taken at `at`, with what a person reads of it.
pub(super) fn measured(
    metric: &str,
    value: f64,
    passed: bool,
    message: Option<&str>,
    at: Timestamp,
) -> crate::api::Measurement {
    crate::api::Measurement {
        message: message.map(str::to_string),
        ..crate::api::Measurement::judged(metric, value, passed, at)
    }
}

impl Cluster {
    /// Records a round of `measurements` started at `started`, as the controller does before
    /// deciding.
    pub(super) fn record(
        &mut self,
        measurements: Vec<crate::api::Measurement>,
        started: Timestamp,
    ) {
        let release = self.ms.status.as_mut().unwrap().release.as_mut().unwrap();
        record_round(release, measurements, started);
    }

    /// A Microservice running revision `r1` in blue, healthy.
    pub(super) fn running(rollout: Value) -> Cluster {
        let mut ms = microservice(rollout);
        ms.status = Some(MicroserviceStatus {
            active_slot: Some(Slot::Blue),
            stable_revision: Some("r1".into()),
            ..Default::default()
        });
        let settled = |revision: &str, replicas| SlotState {
            exists: true,
            revision: Some(revision.into()),
            replicas,
            ready: replicas,
            settled: true,
            observed: true,
        };
        Cluster {
            ms,
            now: "2026-01-01T00:00:00Z".parse().unwrap(),
            blue: settled("r1", 4),
            green: SlotState::default(),
            live: None,
            revision: "r1".into(),
            history: vec![],
            pods_ready: true,
            notes: vec![],
            templates: Ok(vec![]),
            freeze: None,
            group: None,
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut SlotState {
        match slot {
            Slot::Blue => &mut self.blue,
            Slot::Green => &mut self.green,
        }
    }

    /// One reconcile with an optional action; applies the decision to the simulated cluster.
    pub(super) fn step(&mut self, action: Option<ManualAction>) -> Decision {
        let live = self.live.clone();
        let verified = move |traffic: &TrafficPlan| live.as_ref() == Some(traffic);
        let observed = Inputs {
            now: self.now,
            revision: self.revision.clone(),
            freeze: self.freeze.clone(),
            group: self.group.clone(),
            blue: self.blue.clone(),
            green: self.green.clone(),
            verified: &verified,
            action,
            templates: self.templates.clone(),
        };
        let decision = decide(&self.ms, &observed);
        let active = decision.fields.active_slot;
        for (slot, plan) in [
            (active, decision.active_plan.clone()),
            (other(active), decision.other_plan.clone()),
        ] {
            let revision = self.revision.clone();
            let ready = self.pods_ready;
            let state = self.slot_mut(slot);
            match plan {
                SlotPlan::Template(n) => {
                    let new_template = state.revision.as_deref() != Some(&revision);
                    let kept = if new_template { 0 } else { state.ready.min(n) };
                    *state = SlotState {
                        exists: true,
                        revision: Some(revision),
                        replicas: n,
                        ready: if ready { n } else { kept },
                        settled: ready || kept == n,
                        observed: true,
                    };
                }
                // New pods of a scale-up are ready at once, unless pods stall.
                SlotPlan::Scale(n) if state.exists => {
                    state.replicas = n;
                    state.ready = if ready { n } else { state.ready.min(n) };
                }
                SlotPlan::Delete => *state = SlotState::default(),
                _ => {}
            }
        }
        let candidate_ready = self.slot_mut(decision.traffic.split.candidate).ready;
        self.history
            .push((decision.traffic.split.weight, candidate_ready));
        self.live = Some(decision.traffic.clone());
        self.notes.extend(decision.notes.clone());
        let mut status = self.ms.status.clone().unwrap_or_default();
        decision.fields.clone().write_into(&mut status);
        self.ms.status = Some(status);
        self.now = self.now.checked_add(SignedDuration::from_secs(1)).unwrap();
        decision
    }

    pub(super) fn release_revision(&mut self, revision: &str) {
        self.revision = revision.into();
        self.ms.spec.image = format!("a:{revision}");
    }

    pub(super) fn run(&mut self, reconciles: usize) {
        for _ in 0..reconciles {
            self.step(None);
        }
    }

    pub(super) fn status(&self) -> &MicroserviceStatus {
        self.ms.status.as_ref().unwrap()
    }

    pub(super) fn weights(&self) -> Vec<i32> {
        let mut weights: Vec<i32> = self.history.iter().map(|(w, _)| *w).collect();
        weights.dedup();
        weights
    }
}

fn gateway_canary(steps: Value) -> Value {
    json!({
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": steps, "scaleDownDelaySeconds": 5}
    })
}

#[test]
fn a_canary_walks_its_weights_in_order_and_promotes() {
    let mut cluster = Cluster::running(gateway_canary(json!([
        {"setWeight": 10}, {"pause": {"duration": "2s"}}, {"setWeight": 50}, {"pause": {"duration": "2s"}}
    ])));
    cluster.release_revision("r2");
    cluster.run(20);
    assert_eq!(cluster.weights(), vec![0, 10, 50, 100, 0]);
    let status = cluster.status();
    assert_eq!(status.active_slot, Some(Slot::Green));
    assert_eq!(status.stable_revision.as_deref(), Some("r2"));
    assert!(status.release.is_none());
    assert_eq!(cluster.live.as_ref().unwrap().split.stable, Slot::Green);
    assert!(!cluster.blue.exists, "the old slot is gone after the delay");
}

#[test]
fn the_old_slot_stays_warm_until_the_scale_down_delay() {
    let mut cluster = Cluster::running(gateway_canary(json!([{"setWeight": 50}])));
    cluster.release_revision("r2");
    while cluster.status().stable_revision.as_deref() != Some("r2") {
        cluster.step(None);
    }
    assert_eq!(cluster.blue.replicas, 4, "warm right after promotion");
    cluster.run(3);
    assert!(cluster.blue.exists);
    cluster.run(4);
    assert!(!cluster.blue.exists);
}

#[test]
fn no_weight_reaches_a_candidate_without_ready_pods() {
    let mut cluster = Cluster::running(gateway_canary(json!([{"setWeight": 50}, {"pause": {}}])));
    cluster.pods_ready = false;
    cluster.release_revision("r2");
    cluster.run(10);
    assert!(cluster.history.iter().all(|(w, _)| *w == 0));
    cluster.pods_ready = true;
    cluster.green.ready = cluster.green.replicas;
    cluster.green.settled = true;
    cluster.run(5);
    assert_eq!(cluster.status().release.as_ref().unwrap().weight, 50);
    for (weight, ready) in &cluster.history {
        if *weight > 0 {
            assert!(
                *ready >= capacity_for(4, *weight),
                "{weight}% on {ready} pods"
            );
        }
    }
}

#[test]
fn an_ha_canary_runs_at_least_min_pods_and_its_weight_waits_for_them() {
    let mut rollout = gateway_canary(json!([{"setWeight": 10}, {"pause": {}}]));
    rollout["canary"]["minPods"] = json!(2);
    let mut cluster = Cluster::running(rollout);
    cluster.pods_ready = false;
    cluster.release_revision("r2");
    let mut decision = cluster.step(None);
    for _ in 0..5 {
        if matches!(decision.other_plan, SlotPlan::Template(_)) {
            break;
        }
        decision = cluster.step(None);
    }
    assert_eq!(
        decision.other_plan,
        SlotPlan::Template(2),
        "10% of 4 is one pod; minPods is 2"
    );
    let candidate = other(decision.fields.active_slot);
    cluster.slot_mut(candidate).ready = 1;
    let decision = cluster.step(None);
    assert_eq!(
        decision.traffic.split.weight, 0,
        "one ready pod of the two: no weight yet"
    );
    cluster.slot_mut(candidate).ready = 2;
    let decision = cluster.step(None);
    assert_eq!(decision.traffic.split.weight, 10);
}

#[test]
fn an_indefinite_pause_waits_for_a_promote_and_acts_once() {
    let mut cluster = Cluster::running(gateway_canary(
        json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]),
    ));
    cluster.release_revision("r2");
    cluster.run(10);
    let release = cluster.status().release.clone().unwrap();
    assert_eq!((release.step_index, release.weight), (1, 20));
    let decision = cluster.step(Some(ManualAction::Promote));
    assert_eq!(decision.fields.release.unwrap().step_index, 2);
    cluster.run(10);
    assert_eq!(cluster.status().stable_revision.as_deref(), Some("r2"));
}

#[test]
fn an_abort_returns_traffic_before_the_candidate_scales_down() {
    let mut cluster = Cluster::running(gateway_canary(json!([{"setWeight": 50}, {"pause": {}}])));
    cluster.release_revision("r2");
    cluster.run(6);
    assert_eq!(cluster.status().release.as_ref().unwrap().weight, 50);
    let decision = cluster.step(Some(ManualAction::Abort));
    assert_eq!(decision.traffic.split.weight, 0, "traffic goes back first");
    assert_eq!(
        cluster.green.replicas, 2,
        "the candidate keeps its pods meanwhile"
    );
    let decision = cluster.step(None);
    assert_eq!(
        decision.other_plan,
        SlotPlan::Scale(0),
        "then it scales down"
    );
    let status = cluster.status();
    assert_eq!(status.aborted_revision.as_deref(), Some("r2"));
    assert!(status.release.is_none());
    assert_eq!(
        decision.abort.unwrap().0,
        crate::api::conditions::reason::ABORTED
    );
    cluster.run(5);
    assert!(
        cluster.status().release.is_none(),
        "an aborted revision is not retried"
    );
    cluster.step(Some(ManualAction::Retry));
    assert!(cluster.status().release.is_some(), "until a retry");
}

#[test]
fn a_spec_change_returns_traffic_then_restarts_with_the_newest_revision() {
    let mut cluster = Cluster::running(gateway_canary(json!([{"setWeight": 30}, {"pause": {}}])));
    cluster.release_revision("r2");
    cluster.run(6);
    cluster.release_revision("r3");
    let decision = cluster.step(None);
    assert_eq!(decision.traffic.split.weight, 0);
    assert_eq!(
        cluster.green.revision.as_deref(),
        Some("r2"),
        "the candidate keeps its template while traffic returns"
    );
    cluster.run(6);
    let release = cluster.status().release.clone().unwrap();
    assert_eq!((release.revision.as_str(), release.weight), ("r3", 30));
}

#[test]
fn pods_of_a_superseded_revision_carry_no_weight_of_the_newer_one() {
    let mut cluster = Cluster::running(gateway_canary(json!([{"setWeight": 30}, {"pause": {}}])));
    cluster.release_revision("r2");
    cluster.run(6);
    let superseded = cluster.green.clone();
    assert_eq!(superseded.revision.as_deref(), Some("r2"));
    assert!(superseded.ready > 0);
    cluster.release_revision("r3");
    let from = cluster.history.len();
    for _ in 0..6 {
        cluster.step(None);
        // The cache has not seen the newer template: the slot still shows r2's ready pods.
        cluster.green = superseded.clone();
    }
    let weights: Vec<i32> = cluster.history[from..].iter().map(|(w, _)| *w).collect();
    assert!(weights.iter().all(|w| *w == 0), "{weights:?}");
    assert_eq!(cluster.status().release.as_ref().unwrap().revision, "r3");
}

#[test]
fn a_step_that_makes_no_progress_aborts_at_the_deadline() {
    let mut rollout = gateway_canary(json!([{"setWeight": 50}]));
    rollout["progressDeadlineSeconds"] = json!(5);
    let mut cluster = Cluster::running(rollout);
    cluster.pods_ready = false;
    cluster.release_revision("r2");
    cluster.run(10);
    let status = cluster.status();
    assert_eq!(status.aborted_revision.as_deref(), Some("r2"));
    assert!(cluster.history.iter().all(|(w, _)| *w == 0));
}

#[test]
fn blue_green_switches_all_traffic_at_once_after_a_promote() {
    let mut cluster = Cluster::running(json!({"strategy": "BlueGreen"}));
    cluster.release_revision("r2");
    cluster.run(5);
    assert_eq!(cluster.green.replicas, 4, "full size before the switch");
    assert!(cluster.live.as_ref().unwrap().preview);
    assert_eq!(
        cluster.live.as_ref().unwrap().service_slot,
        Some(Slot::Blue)
    );
    cluster.step(Some(ManualAction::Promote));
    cluster.run(4);
    assert_eq!(cluster.weights(), vec![0, 100, 0]);
    assert_eq!(cluster.status().active_slot, Some(Slot::Green));
    assert!(!cluster.live.as_ref().unwrap().preview);
}

#[test]
fn a_replica_ratio_canary_moves_pods_not_routes() {
    let mut cluster = Cluster::running(json!({
        "strategy": "Canary", "canary": {"steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]}
    }));
    cluster.release_revision("r2");
    cluster.run(5);
    assert_eq!((cluster.blue.replicas, cluster.green.replicas), (3, 1));
    assert_eq!(cluster.live.as_ref().unwrap().service_slot, None);
    cluster.step(Some(ManualAction::Promote));
    cluster.run(5);
    assert_eq!((cluster.blue.replicas, cluster.green.replicas), (2, 2));
    cluster.step(Some(ManualAction::Promote));
    cluster.run(5);
    assert_eq!(cluster.status().active_slot, Some(Slot::Green));
    assert_eq!(
        cluster.blue.replicas, 2,
        "the old pods stay warm after the switch"
    );
}

#[test]
fn a_manual_pause_holds_a_timed_pause() {
    let mut cluster = Cluster::running(gateway_canary(
        json!([{"setWeight": 10}, {"pause": {"duration": "2s"}}, {"setWeight": 20}]),
    ));
    cluster.release_revision("r2");
    while cluster
        .status()
        .release
        .as_ref()
        .is_none_or(|r| r.step_index < 1)
    {
        cluster.step(None);
    }
    cluster.step(Some(ManualAction::Pause));
    cluster.run(10);
    let release = cluster.status().release.clone().unwrap();
    assert!(release.paused);
    assert_eq!(release.step_index, 1);
    cluster.step(Some(ManualAction::Resume));
    cluster.run(8);
    assert_eq!(cluster.status().stable_revision.as_deref(), Some("r2"));
}

#[test]
fn the_first_deploy_runs_no_release() {
    let mut cluster = Cluster::running(gateway_canary(json!([{"setWeight": 10}])));
    cluster.ms.status = None;
    cluster.blue = SlotState::default();
    cluster.run(3);
    let status = cluster.status();
    assert!(status.release.is_none());
    assert_eq!(status.stable_revision.as_deref(), Some("r1"));
}

#[test]
fn a_metric_recorded_only_never_stops_the_release() {
    use crate::api::{Measurement, Outcome};
    let mut cluster = Cluster::running(json!({
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]},
        "analysis": {"interval": "1s", "metrics": [
            {"name": "latency", "prometheus": {"query": "q"}, "max": 0.5, "onFailure": "Record"}]}
    }));
    cluster.release_revision("r2");
    cluster.run(6);
    let started = cluster.now;
    let message = Some("latency = 2, above the maximum 0.5");
    let failed = Measurement {
        dry_run: true,
        ..measured("latency", 2.0, false, message, started)
    };
    cluster.record(vec![failed.clone(), failed], started);
    let release = cluster.status().release.as_ref().unwrap();
    let analysis = release.analysis.clone().unwrap();
    assert_eq!(
        (analysis.last_round, analysis.consecutive_failures),
        (Some(Outcome::Passed), 0)
    );
    assert_eq!(analysis.last.len(), 2, "shown in status all the same");
    let decision = cluster.step(None);
    assert_eq!(decision.traffic.split.weight, 50, "the release goes on");
    assert!(decision.fields.release.unwrap().returning.is_none());
}

#[test]
fn an_analysis_failure_names_the_metric_and_value() {
    let mut cluster = Cluster::running(json!({
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]},
        "analysis": {"interval": "1s", "metrics": [{"name": "error-rate", "prometheus": {"query": "q"}, "max": 0.05}]}
    }));
    cluster.release_revision("r2");
    cluster.run(6);
    let due = due_measurement(&cluster.ms, cluster.now).expect("a background round is due");
    assert!(due.is_empty(), "every metric");
    let started = cluster.now;
    let measured_at = started
        .checked_add(SignedDuration::from_millis(300))
        .unwrap();
    let message = Some("error-rate = 0.5, above the maximum 0.05");
    let failed = measured("error-rate", 0.5, false, message, measured_at);
    cluster.record(vec![failed], started);
    let decision = cluster.step(None);
    assert_eq!(decision.traffic.split.weight, 0, "traffic returns at once");
    let returning = decision.fields.release.unwrap().returning.unwrap();
    assert_eq!(
        returning.reason,
        crate::api::conditions::reason::ANALYSIS_FAILED
    );
    assert!(
        returning
            .message
            .contains("error-rate = 0.5, above the maximum 0.05"),
        "{}",
        returning.message
    );
}

#[test]
fn each_step_start_is_recorded_once_for_a_timeline() {
    let mut cluster = Cluster::running(gateway_canary(
        json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]),
    ));
    cluster.release_revision("r2");
    cluster.run(10);
    cluster.step(Some(ManualAction::Promote));
    cluster.run(5);
    let release = cluster.status().release.clone().unwrap();
    let history: Vec<(i32, Timestamp)> = release
        .step_history
        .iter()
        .map(|s| (s.step, s.started_at.0))
        .collect();
    let steps: Vec<i32> = history.iter().map(|(step, _)| *step).collect();
    assert_eq!(steps, [0, 1, 2, 3], "one entry per step started");
    assert!(history.windows(2).all(|w| w[0].1 <= w[1].1), "in order");
    assert_eq!(history.last().unwrap().1, release.step_started_at.0);
    cluster.step(Some(ManualAction::PromoteFull));
    let release = cluster.status().release.clone().unwrap();
    assert_eq!(
        release.step_history.last().unwrap().step,
        4,
        "the promotion"
    );
}

#[test]
fn a_template_that_cannot_be_resolved_holds_the_release_back_until_it_can() {
    let mut cluster = Cluster::running(gateway_canary(json!([{"setWeight": 50}])));
    let missing = "metric success names MetricTemplate success-rate, which does not exist";
    cluster.templates = Err(("TemplateNotFound", missing.into()));
    cluster.release_revision("r2");
    let held = cluster.step(None);
    let (reason, message) = held.held_back.clone().unwrap();
    let reason = reason.to_string();
    assert_eq!(reason, "TemplateNotFound");
    assert!(message.contains("MetricTemplate success-rate"), "{message}");
    assert_eq!(
        held.active_plan,
        SlotPlan::Scale(4),
        "the stable slot keeps its pods"
    );
    assert_eq!(held.other_plan, SlotPlan::Delete, "nothing of r2 runs");
    assert_eq!(held.traffic.split.weight, 0);
    assert!(held.requeue.is_some(), "Weir looks again on its own");
    assert!(cluster.status().release.is_none());
    assert_eq!(cluster.status().candidate_revision, None);
    // The report stage writes the decision's reason as a condition.
    let condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: "Degraded".into(),
        status: "True".into(),
        reason,
        message,
        last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(cluster.now),
        observed_generation: None,
    };
    cluster
        .ms
        .status
        .as_mut()
        .unwrap()
        .conditions
        .push(condition);
    cluster.run(3);
    assert_eq!(cluster.notes.len(), 1, "one warning, not one a reconcile");
    let resolved = TemplatedMetric {
        metric: "success".into(),
        template: "success-rate".into(),
        generation: Some(2),
        max: Some(0.1),
        ..TemplatedMetric::default()
    };
    cluster.templates = Ok(vec![resolved.clone()]);
    let started = cluster.step(None);
    assert!(started.held_back.is_none());
    let release = cluster.status().release.clone().unwrap();
    assert_eq!(release.analysis.unwrap().templates, vec![resolved]);
}

#[test]
fn a_deadline_kept_to_the_second_never_comes_early() {
    let now: Timestamp = "2026-01-01T00:00:00.999Z".parse().unwrap();
    let at = deadline_after(&Time(now), std::time::Duration::from_secs(3));
    assert_eq!(at, "2026-01-01T00:00:04Z".parse::<Timestamp>().unwrap());
    let whole: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let at = deadline_after(&Time(whole), std::time::Duration::from_secs(3));
    assert_eq!(at, "2026-01-01T00:00:03Z".parse::<Timestamp>().unwrap());
}

#[test]
fn a_step_start_read_back_from_status_keeps_its_microseconds() {
    let stored = json!({"revision": "r2", "stepIndex": 1, "stepCount": 4,
        "stepStartedAt": "2026-01-01T00:00:00.750000Z", "weight": 20, "weightVerified": true,
        "mirrorPercent": 0, "paused": false, "promoting": false});
    let release: crate::api::Release = serde_json::from_value(stored).unwrap();
    let read_back: crate::api::Release =
        serde_json::from_value(serde_json::to_value(&release).unwrap()).unwrap();
    assert_eq!(read_back, release);
    let one_second = std::time::Duration::from_secs(1);
    assert_eq!(
        after(read_back.step_started_at.0, one_second),
        "2026-01-01T00:00:01.750Z".parse::<Timestamp>().unwrap(),
        "a one-second pause lasts a second, not a quarter of one"
    );
}
