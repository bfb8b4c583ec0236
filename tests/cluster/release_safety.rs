//! The rule that holds at every moment of a release: traffic goes to the new version only
//! when its ready pods can carry that share.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::release::{Harness, LateReadiness, canary};
use support::with_temp_ns;
use weir::api::Slot;

/// Releases a new version whose pods become ready `startup` after they run, through to
/// the end of its release.
async fn release_late_pods(h: &Harness, stable: &str, startup: Duration) {
    let _late = LateReadiness::start(h.pods(), &h.slot_pods(Slot::Green), startup);
    h.edit(json!({
        "image": "registry.example/app:2",
        "pod": {"annotations": {"test.weir.dev/ready": "false"}}
    }))
    .await;
    let started = h.wait_release(&[stable]).await;
    h.wait_healthy_on(&started.revision).await;
}

#[tokio::test]
async fn no_weight_reaches_the_candidate_before_its_ready_pods_can_carry_it() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setWeight": 25}, {"pause": {"duration": "2s"}},
            {"setWeight": 50}, {"pause": {"duration": "2s"}}
        ]);
        let total = 4;
        let spec = json!({"replicas": total, "rollout": canary(steps)});
        let h = Harness::start(&client, &ns, "careful", spec).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let pods = h.record_pods(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();

        // Every pod of the new version becomes ready only 3 seconds after it runs.
        release_late_pods(&h, &stable, Duration::from_secs(3)).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;

        pods.wait_until("4 ready pods", |p| p.ready == 4).await;
        assert_eq!(route.weights(&green), [0, 25, 50, 100], "{:#?}", route.states());
        // Each weight the route ever gave the candidate, against the candidate's pods at
        // that same revision of the cluster.
        for entry in route.entries() {
            let Some(state) = entry.value else { continue };
            let weight = state.weight(&green) as usize;
            if weight == 0 {
                continue;
            }
            let at = pods.value_at(entry.resource_version);
            let ready = at.map_or(0, |p| p.ready);
            assert!(
                ready >= 1 && ready * 100 >= total * weight,
                "weight {weight} went to the candidate (rv {}) with {ready} of {total} pods ready: {:#?}",
                entry.resource_version,
                pods.entries()
            );
        }
        // The new pods were late indeed: they ran unready for a while.
        assert!(
            pods.values().iter().any(|p| p.pods > p.ready),
            "{:#?}",
            pods.values()
        );
    })
    .await;
}

/// `canary.minPods`: a 10% canary of five replicas runs two pods, not one, and its weight
/// waits until both are ready, so one drained pod does not leave it without any.
#[tokio::test]
async fn an_ha_canary_runs_its_minimum_of_pods_and_its_weight_waits_for_them() {
    with_temp_ns(|client, ns| async move {
        let mut rollout = canary(json!([{"setWeight": 10}, {"pause": {"duration": "2s"}}]));
        rollout["canary"]["minPods"] = json!(2);
        let spec = json!({"replicas": 5, "rollout": rollout});
        let h = Harness::start(&client, &ns, "sturdy", spec).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let pods = h.record_pods(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();
        release_late_pods(&h, &stable, Duration::from_secs(2)).await;
        assert_eq!(route.weights(&green), [0, 10, 100], "{:#?}", route.states());
        for entry in route.entries() {
            let Some(state) = entry.value else { continue };
            if state.weight(&green) != 10 {
                continue;
            }
            let ready = pods.value_at(entry.resource_version).map_or(0, |p| p.ready);
            assert!(
                ready >= 2,
                "weight 10 with {ready} ready pods (minPods 2): {:#?}",
                pods.entries()
            );
        }
    })
    .await;
}

/// `placement.separateVersions: Required`: the new version's pods never share a node with
/// the stable version's.
#[tokio::test]
async fn separated_versions_never_share_a_node() {
    with_temp_ns(|client, ns| async move {
        let spec = json!({"replicas": 1, "placement": {"separateVersions": "Required"},
            "rollout": canary(json!([{"setWeight": 50}, {"pause": {}}]))});
        let h = Harness::start(&client, &ns, "apart", spec).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image("registry.example/app:2").await;
        h.wait_release(&[&stable]).await;
        h.wait_paused_at(1).await;
        let nodes = |slot: Slot| {
            let pods = h.pods();
            let selector = h.slot_pods(slot);
            async move {
                let list = pods
                    .list(&kube::api::ListParams::default().labels(&selector))
                    .await
                    .expect("list pods");
                list.items
                    .into_iter()
                    .filter_map(|p| p.spec?.node_name)
                    .collect::<std::collections::BTreeSet<_>>()
            }
        };
        let (blue, green) = (nodes(Slot::Blue).await, nodes(Slot::Green).await);
        assert!(!blue.is_empty() && !green.is_empty(), "{blue:?} {green:?}");
        assert!(
            blue.is_disjoint(&green),
            "stable on {blue:?}, new on {green:?}"
        );
    })
    .await;
}
