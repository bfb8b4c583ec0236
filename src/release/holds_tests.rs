//! The release after a failed metric that holds, and the analysis after the promotion,
//! driven by the simulated cluster of `tests.rs`.

use serde_json::{Value, json};

use super::tests::{Cluster, measured};
use super::*;
use crate::api::conditions::reason;

fn analysed(strategy: Value, on_failure: &str) -> Value {
    let mut rollout = json!({
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "analysis": {"interval": "1s", "metrics": [
            {"name": "errors", "prometheus": {"query": "q"}, "max": 0.05, "onFailure": on_failure}]}
    });
    for (key, value) in strategy.as_object().unwrap() {
        rollout[key] = value.clone();
    }
    rollout
}

/// Records a round of `errors` at the simulated now, as the controller does before deciding.
pub(super) fn measure(cluster: &mut Cluster, value: f64) {
    let now = cluster.now;
    let message = format!("errors = {value}");
    let measurement = measured("errors", value, value <= 0.05, Some(&message), now);
    cluster.record(vec![measurement], now);
}

fn release(cluster: &Cluster) -> &crate::api::Release {
    cluster.status().release.as_ref().expect("a release")
}

#[test]
fn a_held_release_returns_traffic_keeps_the_candidate_and_resumes_its_step_on_retry() {
    let steps =
        json!({"strategy": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {}}]}});
    let mut cluster = Cluster::running(analysed(steps, "Hold"));
    cluster.release_revision("r2");
    cluster.run(4);
    assert_eq!(release(&cluster).weight, 30);
    measure(&mut cluster, 0.5);
    let held = cluster.step(None);
    assert!(held.notes.iter().any(|n| n.reason == reason::HELD));
    let decision = cluster.step(None);
    assert_eq!(decision.traffic.split.weight, 0, "traffic back on stable");
    assert_eq!(
        decision.other_plan,
        SlotPlan::Keep,
        "the candidate keeps its pods"
    );
    assert!(
        release(&cluster)
            .held
            .as_deref()
            .unwrap()
            .contains("errors = 0.5")
    );
    cluster.run(30);
    assert_eq!(
        cluster.green.replicas, 2,
        "still there for a person to look at"
    );
    assert!(cluster.status().aborted_revision.is_none());

    cluster.step(Some(ManualAction::Retry));
    cluster.run(3);
    let resumed = release(&cluster);
    assert!(resumed.held.is_none());
    assert_eq!(
        (resumed.step_index, resumed.weight),
        (1, 30),
        "back at its step"
    );
}

#[test]
fn an_abort_of_a_held_release_scales_the_candidate_down() {
    let steps =
        json!({"strategy": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {}}]}});
    let mut cluster = Cluster::running(analysed(steps, "Hold"));
    cluster.release_revision("r2");
    cluster.run(4);
    measure(&mut cluster, 0.5);
    cluster.run(3);
    cluster.step(Some(ManualAction::Abort));
    cluster.run(3);
    assert_eq!(cluster.status().aborted_revision.as_deref(), Some("r2"));
    assert_eq!(cluster.green.replicas, 0);
}

#[test]
fn a_metric_that_aborts_wins_over_one_that_holds() {
    let steps =
        json!({"strategy": "Canary", "canary": {"steps": [{"setWeight": 30}, {"pause": {}}]}});
    let mut rollout = analysed(steps, "Hold");
    let metrics = rollout["analysis"]["metrics"].as_array_mut().unwrap();
    metrics.push(json!({"name": "latency", "prometheus": {"query": "q"}, "max": 1.0}));
    let mut cluster = Cluster::running(rollout);
    cluster.release_revision("r2");
    cluster.run(4);
    let now = cluster.now;
    let failed = |metric: &str| measured(metric, 9.0, false, None, now);
    cluster.record(vec![failed("errors"), failed("latency")], now);
    cluster.run(4);
    assert_eq!(cluster.status().aborted_revision.as_deref(), Some("r2"));
}

fn verified_canary() -> Value {
    json!({"strategy": "Canary", "canary": {
        "steps": [{"setWeight": 50}],
        "scaleDownDelaySeconds": 5,
        "postPromotionAnalysis": {"duration": "10s"}}})
}

/// Runs until all traffic is on the new version and its verification began.
fn until_verifying(cluster: &mut Cluster) {
    cluster.release_revision("r2");
    for _ in 0..30 {
        cluster.step(None);
        if cluster
            .status()
            .release
            .as_ref()
            .is_some_and(|r| r.verifying_since.is_some())
        {
            return;
        }
        // Background rounds before the promotion pass.
        if super::due_measurement(&cluster.ms, cluster.now).is_some() {
            measure(cluster, 0.01);
        }
    }
    panic!("never verifying: {:#?}", cluster.status());
}

#[test]
fn after_the_promotion_the_new_version_is_stable_only_once_its_analysis_passes() {
    let mut cluster = Cluster::running(analysed(verified_canary(), "Abort"));
    until_verifying(&mut cluster);
    let status = cluster.status();
    assert_eq!(
        status.stable_revision.as_deref(),
        Some("r1"),
        "not yet stable"
    );
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 100);
    for _ in 0..12 {
        if super::due_measurement(&cluster.ms, cluster.now).is_some() {
            measure(&mut cluster, 0.01);
        }
        let decision = cluster.step(None);
        if decision.fields.release.is_some() {
            assert_eq!(
                cluster.blue.replicas, 4,
                "the old slot keeps every pod meanwhile"
            );
        }
    }
    let status = cluster.status();
    assert_eq!(status.stable_revision.as_deref(), Some("r2"));
    assert_eq!(status.active_slot, Some(Slot::Green));
    assert!(
        status.scale_down_at.is_some(),
        "the old slot's delay starts now"
    );
    assert!(cluster.notes.iter().any(|n| n.reason == reason::VERIFIED));
}

#[test]
fn a_failure_after_the_promotion_switches_back_before_the_new_slot_scales_down() {
    let mut cluster = Cluster::running(analysed(verified_canary(), "Abort"));
    until_verifying(&mut cluster);
    cluster.run(2);
    measure(&mut cluster, 0.9);
    let decision = cluster.step(None);
    assert_eq!(
        decision.traffic.split.weight, 0,
        "traffic back on the old slot at once"
    );
    assert_eq!(decision.traffic.split.stable, Slot::Blue);
    let returning = decision
        .fields
        .release
        .as_ref()
        .unwrap()
        .returning
        .clone()
        .unwrap();
    assert_eq!(returning.reason, reason::POST_PROMOTION_ANALYSIS_FAILED);
    assert!(
        cluster.green.replicas > 0,
        "not scaled down before traffic is back"
    );
    cluster.run(3);
    let status = cluster.status();
    assert_eq!(status.stable_revision.as_deref(), Some("r1"));
    assert_eq!(status.active_slot, Some(Slot::Blue));
    assert_eq!(status.aborted_revision.as_deref(), Some("r2"));
    assert_eq!((cluster.blue.replicas, cluster.green.replicas), (4, 0));
}

#[test]
fn blue_green_verifies_after_the_switch_too() {
    let strategy = json!({"strategy": "BlueGreen", "blueGreen": {
        "autoPromotionSeconds": 1, "postPromotionAnalysis": {"duration": "5s"}}});
    let mut cluster = Cluster::running(analysed(strategy, "Abort"));
    until_verifying(&mut cluster);
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 100);
    measure(&mut cluster, 0.9);
    cluster.run(3);
    assert_eq!(cluster.status().aborted_revision.as_deref(), Some("r2"));
    assert_eq!(cluster.status().active_slot, Some(Slot::Blue));
}
