//! Properties of the release state machine over generated step lists, sizes, pod
//! readiness and manual actions: every release ends promoted or aborted, weights always
//! sum to 100, and a slot with weight above 0 always has the ready pods to carry it; and of
//! the functions it caps the weight with.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::holds_tests::measure;
use super::tests::Cluster;
use super::traffic::{carried_split, target_split};
use super::{ManualAction, SlotState, Step, capacity_for, steps};
use crate::api::{HeaderMatch, Release, Slot};
use crate::build::traffic::{Split, capacity};

fn step() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0..=100i32).prop_map(|w| json!({"setWeight": w})),
        (1..4u32).prop_map(|s| json!({"pause": {"duration": format!("{s}s")}})),
        Just(json!({"pause": {}})),
        Just(json!({"setHeaderRoute": {"match": [{"name": "x-user-group", "value": "beta"}]}})),
        Just(json!({"setHeaderRoute": {"match": []}})),
        (0..=100i32).prop_map(|p| json!({"setMirror": {"percent": p}})),
    ]
}

/// What happens at one reconcile besides time passing.
#[derive(Clone, Debug)]
enum Event {
    Nothing,
    Promote,
    Abort,
    PodsStall,
    PodsRecover,
    /// A round of the analysis (when one is due) passes, or fails.
    MetricPasses,
    MetricFails,
    /// Releases freeze, or thaw.
    Freeze,
    Thaw,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => Just(Event::Nothing),
        2 => Just(Event::Promote),
        1 => Just(Event::PodsStall),
        2 => Just(Event::PodsRecover),
        1 => Just(Event::Abort),
        2 => Just(Event::MetricPasses),
        1 => Just(Event::MetricFails),
        1 => Just(Event::Freeze),
        1 => Just(Event::Thaw),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_release_ends_promoted_or_aborted_and_never_overloads_the_candidate(
        steps in prop::collection::vec(step(), 0..8),
        replicas in 1..12i32,
        router in any::<bool>(),
        events in prop::collection::vec(event(), 0..60),
        on_failure in prop_oneof![Just("Abort"), Just("Hold"), Just("Record")],
        verify_for in prop::option::of(1..8u32),
        dynamic in any::<bool>(),
    ) {
        let mut rollout = json!({
            "strategy": "Canary", "progressDeadlineSeconds": 30,
            "canary": {"steps": steps, "scaleDownDelaySeconds": 2},
            "analysis": {"interval": "1s", "metrics": [{"name": "errors",
                "prometheus": {"query": "q"}, "max": 0.05, "onFailure": on_failure}]}
        });
        if let Some(seconds) = verify_for {
            rollout["canary"]["postPromotionAnalysis"] = json!({"duration": format!("{seconds}s")});
        }
        if router {
            rollout["traffic"] = json!({"gatewayAPI": {"parentRefs": [{"name": "public"}]}});
            if dynamic {
                rollout["canary"]["stableScale"] = json!("Dynamic");
            }
        } else {
            // Without a router header routes and mirrors are refused at admission.
            let kept: Vec<Value> = rollout["canary"]["steps"].as_array().unwrap().iter()
                .filter(|s| s.get("setHeaderRoute").is_none() && s.get("setMirror").is_none())
                .cloned().collect();
            rollout["canary"]["steps"] = json!(kept);
        }
        let mut cluster = Cluster::running(rollout);
        cluster.ms.spec.replicas = Some(replicas);
        cluster.blue.replicas = replicas;
        cluster.blue.ready = replicas;
        cluster.release_revision("r2");
        let mut reconciles = events.into_iter().map(Some).collect::<Vec<_>>();
        // Then as long as it takes, with pods healthy and a promote at every pause.
        reconciles.extend(std::iter::repeat_n(None, 200));
        for event in reconciles {
            let due = super::due_measurement(&cluster.ms, cluster.now).is_some();
            let action = match event {
                Some(Event::MetricFails) if due => { measure(&mut cluster, 0.5); None }
                // Afterwards every round passes.
                Some(Event::MetricPasses) | None if due => { measure(&mut cluster, 0.01); None }
                Some(Event::MetricPasses | Event::MetricFails) => None,
                Some(Event::Freeze) => { cluster.freeze = Some("freeze".into()); None }
                Some(Event::Thaw) => { cluster.freeze = None; None }
                Some(Event::Promote) => Some(ManualAction::Promote),
                Some(Event::Abort) => Some(ManualAction::Abort),
                Some(Event::PodsStall) => { cluster.pods_ready = false; None }
                Some(Event::PodsRecover) | None => { cluster.pods_ready = true; None }
                Some(Event::Nothing) => None,
            };
            let waiting = cluster.status().release.as_ref().is_some_and(|r| {
                r.paused || matches!(steps_of(&cluster).get(r.step_index as usize), Some(Step::Pause(None)))
            });
            let held = cluster.status().release.as_ref().is_some_and(|r| r.held.is_some());
            let action = action
                .or((event.is_none() && waiting).then_some(ManualAction::Promote))
                .or((event.is_none() && held).then_some(ManualAction::Retry));
            if event.is_none() {
                cluster.freeze = None;
            }
            let before = cluster.live.clone();
            let frozen = cluster.freeze.is_some() && action.is_none();
            let aimed = cluster.status().release.clone();
            let decision = cluster.step(action);
            // A freeze never lets a release aim higher (a person's promote may).
            if let (true, Some(was), Some(now)) = (frozen, aimed, cluster.status().release.clone()) {
                let active = cluster.status().active_slot.unwrap_or_default();
                let steps = steps_of(&cluster);
                let (was, now) = (target_split(&was, &steps, active), target_split(&now, &steps, active));
                prop_assert!(now.weight <= was.weight, "frozen, yet aimed at {}% after {}%", now.weight, was.weight);
            }
            // Traffic leaves a candidate before its pods do.
            if let Some(before) = before.filter(|b| b.split.weight > 0 && router) {
                let slot = before.split.candidate;
                let state = match slot { Slot::Blue => &cluster.blue, Slot::Green => &cluster.green };
                let still = decision.traffic.split.candidate == slot && decision.traffic.split.weight > 0;
                prop_assert!(!still || state.ready >= capacity_for(replicas, decision.traffic.split.weight));
            }
            let split = &decision.traffic.split;
            prop_assert!((0..=100).contains(&split.weight));
            let candidate = match split.candidate { Slot::Blue => &cluster.blue, Slot::Green => &cluster.green };
            if split.weight > 0 && router {
                prop_assert!(candidate.ready >= capacity_for(replicas, split.weight),
                    "{}% on {} ready of {}", split.weight, candidate.ready, replicas);
            }
            // The stable slot carries its share too, however far it was shrunk.
            let stable = match split.stable { Slot::Blue => &cluster.blue, Slot::Green => &cluster.green };
            if split.weight < 100 && router && cluster.status().release.is_some() {
                prop_assert!(stable.ready >= capacity_for(replicas, 100 - split.weight),
                    "{}% on the stable slot with {} ready of {}", 100 - split.weight, stable.ready, replicas);
            }
            if (!split.header_route.is_empty() || split.mirror_percent > 0) && router {
                prop_assert!(candidate.ready > 0);
            }
            let status = cluster.status();
            if status.release.is_none() && (status.stable_revision.as_deref() == Some("r2")
                || status.aborted_revision.as_deref() == Some("r2")) {
                return Ok(());
            }
        }
        prop_assert!(false, "the release neither promoted nor aborted: {:?}", cluster.status().release);
    }
}

fn steps_of(cluster: &Cluster) -> Vec<Step> {
    steps(&cluster.ms)
}

fn split(weight: i32, header_route: Vec<HeaderMatch>, mirror_percent: i32) -> Split {
    Split {
        stable: Slot::Blue,
        candidate: Slot::Green,
        weight,
        header_route,
        mirror_percent,
    }
}

/// A release with this traffic applied.
fn applied(weight: i32, header_route: Vec<HeaderMatch>, mirror_percent: i32) -> Release {
    Release {
        revision: "r2".into(),
        step_index: 0,
        step_count: 1,
        step_started_at: MicroTime(Default::default()),
        step_history: vec![],
        weight,
        weight_verified: true,
        mirror_percent,
        header_route,
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

fn beta() -> Vec<HeaderMatch> {
    vec![HeaderMatch {
        name: "x-user-group".into(),
        value: Some("beta".into()),
        regex: None,
    }]
}

proptest! {
    #[test]
    fn the_pods_sized_for_a_weight_are_exactly_the_pods_that_carry_it(
        total in 1..500i32, weight in 1..=100i32,
    ) {
        let needed = capacity_for(total, weight);
        let share = i64::from(total) * i64::from(weight);
        prop_assert!(needed >= 1);
        prop_assert!(i64::from(needed) * 100 >= share, "{needed} pods fall short of {weight}% of {total}");
        prop_assert!(needed == 1 || i64::from(needed - 1) * 100 < share, "{needed} pods are more than {weight}% of {total} needs");
        // The candidate is scaled by `capacity`, and its weight waits for `capacity_for`
        // ready pods: were they to differ, a release would wait forever or overload it.
        prop_assert_eq!(capacity(total, &split(weight, vec![], 0)).1, needed);
    }

    #[test]
    fn a_weight_reaches_the_candidate_only_when_its_ready_pods_carry_it(
        target in 0..=100i32, target_mirror in 0..=100i32, target_header in any::<bool>(),
        weight in 0..=100i32, mirror in 0..=100i32, header in any::<bool>(),
        total in 1..500i32, ready in 0..500i32, exists in any::<bool>(), observed in any::<bool>(),
        min_pods in prop_oneof![Just(0), 1..8i32],
    ) {
        let headers = |on: bool| if on { beta() } else { vec![] };
        let release = applied(weight, headers(header), mirror);
        let candidate = SlotState { exists, revision: Some("r2".into()), replicas: ready, ready, settled: observed, observed };
        let carried = carried_split(split(target, headers(target_header), target_mirror), &release, &candidate, total, min_pods);
        // canary.minPods: a weight also waits for that many ready pods.
        let capacity_for = |total, weight| capacity_for(total, weight).max(min_pods);
        prop_assert!((0..=target).contains(&carried.weight), "{}% beyond the step's {}%", carried.weight, target);
        let known = !exists || observed;
        if known {
            prop_assert!(carried.weight == 0 || ready >= capacity_for(total, carried.weight),
                "{}% on {} ready of {}", carried.weight, ready, total);
            if ready >= capacity_for(total, target) {
                prop_assert_eq!(carried.weight, target, "held back though carried");
            }
            if ready == 0 {
                prop_assert!(carried.header_route.is_empty() && carried.mirror_percent == 0);
            } else {
                prop_assert_eq!(carried.header_route, headers(target_header));
                prop_assert_eq!(carried.mirror_percent, target_mirror);
            }
        } else {
            // Ready pods unknown: hold what is applied, never raise it.
            prop_assert!(carried.weight <= weight);
            prop_assert_eq!(carried.header_route, headers(header));
            prop_assert_eq!(carried.mirror_percent, mirror);
        }
    }
}
