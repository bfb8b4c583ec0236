//! Freezes and release windows, with the simulated cluster's clock.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::tests::Cluster;
use super::*;
use crate::api::conditions::reason;

fn canary(steps: Value) -> Value {
    json!({
        "strategy": "Canary", "progressDeadlineSeconds": 5,
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": steps, "scaleDownDelaySeconds": 30}
    })
}

fn gate_reason(decision: &Decision) -> Option<&'static str> {
    decision.gate.as_ref().map(|(reason, _)| *reason)
}

#[test]
fn a_freeze_starts_no_release_until_it_is_lifted() {
    let mut cluster = Cluster::running(canary(json!([{"setWeight": 20}, {"pause": {}}])));
    cluster.freeze = Some("the quarter closes".into());
    cluster.release_revision("r2");
    for _ in 0..20 {
        let decision = cluster.step(None);
        assert_eq!(gate_reason(&decision), Some(reason::FROZEN));
        assert!(decision.gate.unwrap().1.contains("the quarter closes"));
        assert_eq!(decision.other_plan, SlotPlan::Delete, "nothing new runs");
    }
    assert!(cluster.status().release.is_none());
    cluster.freeze = None;
    cluster.run(3);
    assert_eq!(cluster.status().release.as_ref().unwrap().weight, 20);
}

#[test]
fn a_freeze_holds_a_release_at_its_exposure_and_lets_an_abort_through() {
    let mut cluster = Cluster::running(canary(json!([
        {"setWeight": 20}, {"pause": {"duration": "1s"}}, {"setWeight": 60}, {"pause": {}}
    ])));
    cluster.release_revision("r2");
    cluster.run(3);
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 20);
    cluster.freeze = Some("incident 42".into());
    for _ in 0..30 {
        let decision = cluster.step(None);
        assert_eq!(decision.traffic.split.weight, 20, "held at its exposure");
    }
    let release = cluster.status().release.clone().unwrap();
    assert!(release.returning.is_none(), "no deadline runs while frozen");
    cluster.step(Some(ManualAction::Abort));
    cluster.run(3);
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 0);
    assert_eq!(cluster.status().aborted_revision.as_deref(), Some("r2"));
}

#[test]
fn outside_its_windows_a_release_waits_for_the_next_and_moves_on_inside() {
    let mut rollout =
        canary(json!([{"setWeight": 20}, {"pause": {"duration": "1s"}}, {"setWeight": 60}]));
    // 2026-01-01 is a Thursday; the window opens at 00:01 UTC, a minute after the start.
    rollout["windows"] = json!([{"days": ["Thu"], "start": "00:01", "end": "00:03"}]);
    let mut cluster = Cluster::running(rollout);
    cluster.release_revision("r2");
    let decision = cluster.step(None);
    assert_eq!(gate_reason(&decision), Some(reason::OUTSIDE_WINDOW));
    assert!(decision.requeue.unwrap() <= std::time::Duration::from_secs(60));
    assert!(cluster.status().release.is_none());
    cluster.now = "2026-01-01T00:01:00Z".parse().unwrap();
    cluster.run(10);
    assert_eq!(cluster.weights(), vec![0, 20, 60, 100, 0]);
    assert_eq!(cluster.status().stable_revision.as_deref(), Some("r2"));
}

#[test]
fn a_window_that_closes_mid_release_holds_the_next_weight_not_the_current() {
    let mut rollout =
        canary(json!([{"setWeight": 20}, {"pause": {"duration": "10s"}}, {"setWeight": 60}]));
    rollout["windows"] = json!([{"start": "00:00", "end": "00:01"}]);
    let mut cluster = Cluster::running(rollout);
    cluster.now = "2026-01-01T00:00:50Z".parse().unwrap();
    cluster.release_revision("r2");
    cluster.run(30);
    let decided_at = cluster.now;
    let decision = cluster.step(None);
    assert_eq!(decision.traffic.split.weight, 20);
    assert_eq!(gate_reason(&decision), Some(reason::OUTSIDE_WINDOW));
    let opens: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
    let wait = decision.requeue.unwrap();
    let wakes_at = decided_at
        .checked_add(SignedDuration::try_from(wait).unwrap())
        .unwrap();
    assert!(wakes_at <= opens, "{wakes_at} {:?}", decision.gate);
    cluster.now = opens;
    cluster.run(8);
    assert_eq!(cluster.status().stable_revision.as_deref(), Some("r2"));
}

#[test]
fn a_rollback_to_the_warm_revision_is_not_frozen() {
    let mut cluster = Cluster::running(canary(json!([{"setWeight": 50}])));
    cluster.release_revision("r2");
    while cluster.status().stable_revision.as_deref() != Some("r2") {
        cluster.step(None);
    }
    cluster.freeze = Some("incident 42".into());
    cluster.release_revision("r1");
    cluster.run(4);
    assert_eq!(cluster.status().stable_revision.as_deref(), Some("r1"));
    assert_eq!(cluster.status().active_slot, Some(crate::api::Slot::Blue));
}

#[test]
fn a_release_held_longer_than_its_deadline_moves_on_when_the_gate_opens() {
    let mut cluster = Cluster::running(canary(json!([{"setWeight": 20}, {"setWeight": 60}])));
    cluster.release_revision("r2");
    cluster.run(2);
    cluster.freeze = Some("incident 42".into());
    cluster.run(60);
    cluster.freeze = None;
    cluster.run(8);
    assert_eq!(cluster.status().stable_revision.as_deref(), Some("r2"));
    assert!(cluster.status().aborted_revision.is_none());
}
