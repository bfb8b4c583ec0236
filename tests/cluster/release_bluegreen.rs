//! Blue/green releases: the new version runs at full size behind `<name>-preview` with no
//! users, then all traffic switches in one move, by hand or after `autoPromotionSeconds`.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::release::{Harness, blue_green, selector};
use support::with_temp_ns;
use weir::api::{Phase, Slot};

const V2: &str = "registry.example/app:2";

fn slot_of(service: Option<&k8s_openapi::api::core::v1::Service>) -> Option<String> {
    selector(service).get("weir.dev/slot").cloned()
}

#[tokio::test]
async fn a_blue_green_release_waits_behind_the_preview_until_promoted() {
    with_temp_ns(|client, ns| async move {
        let spec = json!({"rollout": blue_green(json!({}))});
        let h = Harness::start(&client, &ns, "shop", spec).await;
        let (blue, green) = (h.slot(Slot::Blue), h.slot(Slot::Green));
        let route = h.record_route().await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        let ms = h
            .wait_release_where("Paused before the switch", |phase, _| {
                phase == Some(Phase::Paused)
            })
            .await;
        assert_eq!(ms.status.as_ref().unwrap().active_slot, Some(Slot::Blue));
        // The whole new version runs, reachable through the preview only.
        h.wait_ready_pods(Slot::Green, 3).await;
        let preview = h
            .wait_service("shop-preview", "selects the green slot", |s| {
                slot_of(s).as_deref() == Some("green")
            })
            .await;
        let instance = selector(preview.as_ref())
            .get("app.kubernetes.io/instance")
            .cloned();
        assert_eq!(instance.as_deref(), Some("shop"));
        let main = h.services().get_opt("shop").await.unwrap();
        assert_eq!(
            slot_of(main.as_ref()).as_deref(),
            Some("blue"),
            "users stay on blue"
        );
        let waiting = route.latest().expect("the route exists");
        assert_eq!((waiting.weight(&blue), waiting.weight(&green)), (100, 0));

        let value = h.act("promote").await;
        h.wait_handled(&value).await;
        let done = h.wait_healthy_on(&started.revision).await;
        assert_eq!(done.status.unwrap().active_slot, Some(Slot::Green));
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 100], "{:#?}", route.states());
        h.wait_service("shop-preview", "deleted", |s| s.is_none())
            .await;
        h.wait_service("shop", "selects the green slot", |s| {
            slot_of(s).as_deref() == Some("green")
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_blue_green_release_with_auto_promotion_switches_on_its_own() {
    with_temp_ns(|client, ns| async move {
        let spec = json!({"rollout": blue_green(json!({"autoPromotionSeconds": 2}))});
        let h = Harness::start(&client, &ns, "auto", spec).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let green_pods = h.record_pods(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        let done = h.wait_healthy_on(&started.revision).await;
        assert_eq!(done.status.unwrap().active_slot, Some(Slot::Green));
        let switched = route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 100], "{:#?}", route.states());
        let by_hand: Vec<_> = h
            .log
            .values()
            .into_iter()
            .filter_map(|s| s.handled_action)
            .collect();
        assert!(by_hand.is_empty(), "nobody promoted by hand: {by_hand:?}");

        // The switch waited for the whole new version to be ready, then the 2 seconds.
        green_pods
            .wait_until("3 ready pods", |p| p.ready == 3)
            .await;
        let (_, all_ready) = green_pods.find(0, |p| p.ready == 3).unwrap();
        assert!(all_ready.resource_version < switched.resource_version);
        let waited = switched.at.duration_since(all_ready.at);
        assert!(
            waited >= Duration::from_secs(1),
            "switched {waited:?} after the new version was ready"
        );
        h.wait_service("auto-preview", "deleted", |s| s.is_none())
            .await;
    })
    .await;
}
