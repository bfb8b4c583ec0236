//! Release groups with two simulated members, each deciding with the other's status.

use serde_json::{Value, json};

use super::group::{Group, Member, position};
use super::tests::Cluster;
use super::*;
use crate::api::conditions::reason;

fn member_of(name: &str, steps: Value) -> Cluster {
    let mut cluster = Cluster::running(json!({
        "strategy": "Canary", "group": "shop",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": steps, "scaleDownDelaySeconds": 2}
    }));
    cluster.ms.metadata.name = Some(name.into());
    cluster
}

/// The member as the cache shows it; `acted` once Weir reconciled its newest spec (until
/// then its generation is ahead of its status: a release may be about to start).
fn as_member(name: &str, cluster: &Cluster, acted: bool) -> Member {
    let status = cluster.status();
    let pending = !acted && status.stable_revision.as_deref() != Some(cluster.revision.as_str());
    Member {
        name: name.into(),
        pending,
        release: status.release.clone(),
        aborted: status.aborted_revision.is_some() && status.release.is_none(),
    }
}

struct Pair {
    front: Cluster,
    back: Cluster,
    /// Whether each has reconciled since its spec changed.
    acted: (bool, bool),
}

impl Pair {
    fn new(front: Value, back: Value) -> Pair {
        Pair {
            front: member_of("front", front),
            back: member_of("back", back),
            acted: (false, false),
        }
    }

    /// One reconcile of each, each seeing the other as the cache shows it.
    fn step(&mut self, front_action: Option<ManualAction>, back_action: Option<ManualAction>) {
        self.front.group = Some(Group {
            name: "shop".into(),
            others: vec![as_member("back", &self.back, self.acted.1)],
        });
        self.front.step(front_action);
        self.acted.0 = true;
        self.back.group = Some(Group {
            name: "shop".into(),
            others: vec![as_member("front", &self.front, self.acted.0)],
        });
        self.back.step(back_action);
        self.acted.1 = true;
    }

    fn positions(&self) -> (Option<i32>, Option<i32>) {
        let at = |c: &Cluster| c.status().release.as_ref().map(position);
        (at(&self.front), at(&self.back))
    }
}

#[test]
fn members_pass_each_step_together_and_both_promote() {
    let mut pair = Pair::new(
        json!([{"setWeight": 10}, {"pause": {"duration": "1s"}}, {"setWeight": 50}, {"setWeight": 80}]),
        json!([{"setWeight": 10}, {"pause": {"duration": "5s"}}, {"setWeight": 50}, {"setWeight": 80}]),
    );
    pair.front.release_revision("r2");
    pair.back.release_revision("r2");
    for _ in 0..40 {
        pair.step(None, None);
        if let (Some(front), Some(back)) = pair.positions() {
            assert!(
                (front - back).abs() <= 1,
                "front at {front}, back at {back}"
            );
        }
    }
    for cluster in [&pair.front, &pair.back] {
        assert_eq!(cluster.status().stable_revision.as_deref(), Some("r2"));
    }
    assert!(pair.front.history.iter().any(|(w, _)| *w == 10));
    // The front waited at 10% while the back paused.
    let waited = pair.front.history.iter().filter(|(w, _)| *w == 10).count();
    assert!(waited >= 5, "front at 10% for {waited} reconciles");
}

#[test]
fn an_abort_of_one_member_returns_both_before_either_scales_down() {
    let steps = json!([{"setWeight": 30}, {"pause": {}}]);
    let mut pair = Pair::new(steps.clone(), steps);
    pair.front.release_revision("r2");
    pair.back.release_revision("r2");
    pair.step(None, None);
    pair.step(None, None);
    pair.step(None, None);
    assert_eq!(pair.front.live.as_ref().unwrap().split.weight, 30);
    pair.step(None, Some(ManualAction::Abort));
    for _ in 0..10 {
        pair.step(None, None);
        for (this, that) in [(&pair.front, &pair.back), (&pair.back, &pair.front)] {
            if this.green.replicas == 0 {
                assert_eq!(that.live.as_ref().unwrap().split.weight, 0);
            }
        }
    }
    for cluster in [&pair.front, &pair.back] {
        assert_eq!(cluster.status().aborted_revision.as_deref(), Some("r2"));
        assert_eq!(cluster.green.replicas, 0);
    }
    let front_abort = pair
        .front
        .notes
        .iter()
        .find(|n| n.reason == reason::ABORTED)
        .unwrap();
    assert!(
        front_abort.message.contains("back, of release group shop"),
        "{}",
        front_abort.message
    );
}

#[test]
fn a_member_after_another_starts_once_that_one_promoted() {
    let mut pair = Pair::new(
        json!([{"setWeight": 50}]),
        json!([{"setWeight": 50}, {"pause": {"duration": "3s"}}]),
    );
    pair.front.ms.spec.rollout.as_mut().unwrap().after = vec!["back".into()];
    pair.front.release_revision("r2");
    pair.back.release_revision("r2");
    let mut back_promoted_at = None;
    for i in 0..30 {
        pair.step(None, None);
        if back_promoted_at.is_none() && pair.back.status().stable_revision.as_deref() == Some("r2")
        {
            back_promoted_at = Some(i);
        }
        if pair.front.status().release.is_some() {
            assert!(
                back_promoted_at.is_some(),
                "the front started before the back promoted"
            );
        }
    }
    let status = pair.front.status();
    assert_eq!(
        status.stable_revision.as_deref(),
        Some("r2"),
        "{:#?} {back_promoted_at:?}",
        pair.front.notes
    );
}

mod properties {
    use proptest::prelude::*;
    use proptest::strategy::Strategy;

    use super::{Cluster, ManualAction, Pair, Value, json};

    fn step() -> impl Strategy<Value = Value> {
        prop_oneof![
            (1..=100i32).prop_map(|w| json!({"setWeight": w})),
            (1..4u32).prop_map(|s| json!({"pause": {"duration": format!("{s}s")}})),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever the steps and whoever aborts: no member runs more than one step ahead
        /// of another, no candidate loses its pods while another member's traffic is still
        /// on its candidate, and the group ends all promoted or all aborted.
        #[test]
        fn the_barrier_never_lets_a_member_pass_alone(
            steps in prop::collection::vec((step(), step()), 1..6),
            abort_at in prop::option::of((0..30usize, any::<bool>())),
        ) {
            let (front, back): (Vec<Value>, Vec<Value>) = steps.into_iter().unzip();
            let mut pair = Pair::new(json!(front), json!(back));
            pair.front.release_revision("r2");
            pair.back.release_revision("r2");
            for i in 0..80 {
                // An abort by hand before the members commit to the promotion (all traffic
                // on every new version, confirmed, is the group's point of no return).
                let committed = [&pair.front, &pair.back].iter().any(|c| {
                    c.status().release.as_ref().is_none_or(|r| r.promoting)
                });
                let abort = abort_at
                    .filter(|(at, _)| *at == i && !committed)
                    .map(|(_, front)| front);
                let (front_action, back_action) = match abort {
                    Some(true) => (Some(ManualAction::Abort), None),
                    Some(false) => (None, Some(ManualAction::Abort)),
                    None => (None, None),
                };
                let before = (pair.front.green.replicas, pair.back.green.replicas);
                pair.step(front_action, back_action);
                if let (Some(front), Some(back)) = pair.positions() {
                    prop_assert!((front - back).abs() <= 1, "front at {front}, back at {back}");
                }
                // A candidate that loses its pods: every member's traffic is back.
                let after = (pair.front.green.replicas, pair.back.green.replicas);
                for (had, has, that) in [(before.0, after.0, &pair.back), (before.1, after.1, &pair.front)] {
                    let aborted = that.status().aborted_revision.is_some() || that.status().release.as_ref().is_some_and(|r| r.returning.is_some());
                    if had > 0 && has == 0 && aborted {
                        prop_assert_eq!(that.live.as_ref().unwrap().split.weight, 0);
                    }
                }
            }
            let ends = |c: &Cluster| (c.status().stable_revision.clone(), c.status().aborted_revision.clone());
            let (front, back) = (ends(&pair.front), ends(&pair.back));
            prop_assert!(pair.front.status().release.is_none() && pair.back.status().release.is_none());
            let promoted = |e: &(Option<String>, Option<String>)| e.0.as_deref() == Some("r2");
            prop_assert_eq!(promoted(&front), promoted(&back), "{:?} {:?}", front, back);
        }
    }
}
