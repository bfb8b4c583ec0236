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

/// Releases to 75% on four replicas with `stableScale`, aborts, and returns how long the
/// route took to be all back on the stable slot. The stable slot's pods take `startup` to
/// become ready, as new pods do; each weight the route gives the stable slot is checked
/// against its ready pods at that revision of the cluster.
async fn abort_with_stable_scale(client: &kube::Client, ns: &str, scale: &str) -> Duration {
    let startup = Duration::from_secs(2);
    let selector = |slot: &str| format!("app.kubernetes.io/instance=lean,weir.dev/slot={slot}");
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), ns);
    let _late =
        ["blue", "green"].map(|slot| LateReadiness::start(pods.clone(), &selector(slot), startup));
    let mut rollout = canary(json!([{"setWeight": 75}, {"pause": {}}]));
    rollout["canary"]["stableScale"] = json!(scale);
    let spec = json!({"replicas": 4, "rollout": rollout,
        "pod": {"annotations": {"test.weir.dev/ready": "false"}}});
    let h = Harness::start(client, ns, "lean", spec).await;
    let blue = h.slot(Slot::Blue);
    let route = h.record_route().await;
    let stable_pods = h.record_pods(Slot::Blue).await;
    let stable = h.status().await.stable_revision.unwrap();
    h.set_image("registry.example/app:2").await;
    h.wait_release(&[&stable]).await;
    h.wait_paused_at(1).await;
    route
        .wait_route("75% on the candidate", |r| r.weight(&blue) == 25)
        .await;
    let shrunk = if scale == "Dynamic" { 1 } else { 4 };
    stable_pods
        .wait_until("the stable slot at its size", |p| p.pods == shrunk)
        .await;
    let aborted = std::time::Instant::now();
    h.act("abort").await;
    route
        .wait_route("all back on the stable slot", |r| r.weight(&blue) == 100)
        .await;
    let took = aborted.elapsed();
    // From the release on (the pods' recorder started with the harness's first version).
    let first = stable_pods.entries()[0].resource_version;
    for entry in route
        .entries()
        .into_iter()
        .filter(|e| e.resource_version >= first)
    {
        let Some(state) = entry.value else { continue };
        let share = state.weight(&blue) as usize;
        let ready = stable_pods
            .value_at(entry.resource_version)
            .map_or(0, |p| p.ready);
        assert!(
            ready * 100 >= 4 * share,
            "{share}% on the stable slot with {ready} of 4 pods ready: {:#?}",
            stable_pods.entries()
        );
    }
    h.wait_degraded("Aborted").await;
    took
}

/// `stableScale: Dynamic` keeps the stable slot at its share during the release; an abort
/// then grows it first and moves traffic back only as its pods become ready, so it is
/// slower than with `Full` by about the pods' start-up time.
#[tokio::test]
async fn a_dynamic_stable_slot_is_grown_before_traffic_returns_to_it() {
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for scale in ["Dynamic", "Full"] {
        let times = times.clone();
        with_temp_ns(move |client, ns| async move {
            let took = abort_with_stable_scale(&client, &ns, scale).await;
            times.lock().unwrap().push(took);
        })
        .await;
    }
    let times = times.lock().unwrap().clone();
    let (dynamic, full) = (times[0], times[1]);
    eprintln!("abort back on stable: Dynamic {dynamic:?}, Full {full:?}");
    assert!(
        dynamic > full,
        "growing the stable slot first takes longer: Dynamic {dynamic:?}, Full {full:?}"
    );
}
