//! The rule that holds at every moment of a release: traffic goes to the new version only
//! when its ready pods can carry that share.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::release::{Harness, LateReadiness, canary};
use support::with_temp_ns;
use weir::api::Slot;

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
        let _late = LateReadiness::start(
            h.pods(),
            &h.slot_pods(Slot::Green),
            Duration::from_secs(3),
        );
        h.edit(json!({
            "image": "registry.example/app:2",
            "pod": {"annotations": {"test.weir.dev/ready": "false"}}
        }))
        .await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&started.revision).await;
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
