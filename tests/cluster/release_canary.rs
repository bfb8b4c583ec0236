//! Canary releases: traffic moves to the new version step by step through an HTTPRoute (or
//! the ratio of ready pods), waits where it is told to, survives a restart of the operator
//! and a GitOps re-apply, and restarts when the spec changes mid-release.

use crate::support;

use std::time::Duration;

use kube::runtime::watcher;
use serde_json::json;
use support::gateway::{RouteRecorder, fold};
use support::microservice::pod_is_ready;
use support::release::{
    DEADLINE, Harness, Recorder, SCALE_DOWN_DELAY, SlotView, canary, canary_by_replicas, release,
    selector,
};
use support::with_temp_ns;
use weir::api::{HeaderMatch, Phase, Slot};

const V2: &str = "registry.example/app:2";
const V3: &str = "registry.example/app:3";

#[tokio::test]
async fn a_canary_moves_traffic_step_by_step_then_the_new_slot_takes_over() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setWeight": 10}, {"pause": {"duration": "2s"}},
            {"setWeight": 50}, {"pause": {"duration": "2s"}}
        ]);
        let h = Harness::start(&client, &ns, "web", json!({"rollout": canary(steps)})).await;
        let (blue, green) = (h.slot(Slot::Blue), h.slot(Slot::Green));
        let route = h.record_route().await;
        route
            .wait_route("all traffic on blue", |r| r.weight(&blue) == 100)
            .await;
        let blue_slot = h.record_slot(Slot::Blue).await;
        let green_slot = h.record_slot(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        assert_eq!(started.step_count, 4);
        let done = h.wait_healthy_on(&started.revision).await;

        let promoted = done.status.clone().unwrap();
        assert_eq!(promoted.active_slot, Some(Slot::Green));
        assert_eq!(
            promoted.stable_revision.as_deref(),
            Some(started.revision.as_str())
        );
        assert!(promoted.scale_down_at.is_some(), "{promoted:?}");

        let last = route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(last.value.unwrap().weight(&blue), 0);
        assert_eq!(
            route.weights(&green),
            [0, 10, 50, 100],
            "{:#?}",
            route.states()
        );
        assert_eq!(
            route.weights(&blue),
            [100, 90, 50, 0],
            "{:#?}",
            route.states()
        );

        // The candidate had the pods for its share at each step.
        green_slot
            .wait_until("the new slot at full size", |d| {
                d.as_ref().is_some_and(|d| d.replicas == 3)
            })
            .await;
        let sizes = green_slot
            .values()
            .into_iter()
            .flatten()
            .map(|d| d.replicas);
        let sizes = fold(sizes.filter(|r| *r > 0));
        assert_eq!(sizes, [1, 2, 3], "{:#?}", green_slot.values());

        the_old_slot_stays_whole_until_the_delay(&h, &blue_slot).await;
    })
    .await;
}

/// Right after the promotion the old slot still has all its pods, for a quick way back; it
/// is removed after the delay, not before. Until then it kept its full size (the gateway,
/// not the pod count, splits the traffic).
async fn the_old_slot_stays_whole_until_the_delay(
    h: &Harness,
    blue_slot: &Recorder<Option<SlotView>>,
) {
    let (_, swapped) = h
        .log
        .wait_seen("the promotion", |s| s.active_slot == Some(Slot::Green))
        .await;
    let gone = blue_slot
        .wait_until("the old slot deleted", Option::is_none)
        .await;
    let old = blue_slot.value_at(swapped.resource_version).flatten();
    assert!(
        old.as_ref()
            .is_some_and(|d| d.replicas == 3 && d.ready == 3),
        "the old slot right after the promotion: {old:?}"
    );
    let kept = gone.at.duration_since(swapped.at);
    assert!(
        kept >= Duration::from_secs(SCALE_DOWN_DELAY as u64 - 1),
        "the old slot was deleted {kept:?} after the promotion"
    );
    let sizes: Vec<i32> = blue_slot
        .values()
        .into_iter()
        .flatten()
        .map(|d| d.replicas)
        .collect();
    assert!(sizes.iter().all(|r| *r == 3), "blue replicas: {sizes:?}");
}

#[tokio::test]
async fn a_header_route_and_a_mirror_reach_the_candidate_until_promotion() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setHeaderRoute": {"match": [{"name": "x-user-group", "value": "beta"}]}},
            {"setMirror": {"percent": 50}},
            {"pause": {}}
        ]);
        let h = Harness::start(&client, &ns, "beta", json!({"rollout": canary(steps)})).await;
        let (blue, green) = (h.slot(Slot::Blue), h.slot(Slot::Green));
        let route = h.record_route().await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let ms = h.wait_paused_at(2).await;
        let paused = release(&ms).clone();
        assert_ne!(paused.revision, stable);
        let beta = HeaderMatch {
            name: "x-user-group".into(),
            value: Some("beta".into()),
            regex: None,
        };
        assert_eq!(paused.header_route, [beta]);
        assert_eq!((paused.mirror_percent, paused.weight), (50, 0));
        let state = route
            .wait_route("the header rule and the mirror", |r| {
                r.has_header_rule() && r.mirror_percent() == 50
            })
            .await
            .value
            .unwrap();
        assert_eq!(
            state.headers,
            [("x-user-group".to_string(), "beta".to_string())]
        );
        assert_eq!(state.header_backends, vec![green.clone()]);
        assert_eq!(state.mirror, Some((green.clone(), 50)));
        assert_eq!((state.weight(&blue), state.weight(&green)), (100, 0));
        // No weight, but the mirror copies half the load: ceil(3 × 50%) = 2 pods.
        h.wait_replicas(Slot::Green, 2).await;
        h.wait_ready_pods(Slot::Green, 2).await;

        let value = h.act("promote").await;
        h.wait_handled(&value).await;
        h.wait_healthy_on(&paused.revision).await;
        let last = route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await
            .value
            .unwrap();
        assert!(
            !last.has_header_rule() && last.mirror.is_none(),
            "{last:#?}"
        );
        let extras = route
            .states()
            .into_iter()
            .map(|r| (r.has_header_rule(), r.mirror_percent()));
        assert_eq!(
            fold(extras),
            [(false, 0), (true, 0), (true, 50), (false, 0)],
            "{:#?}",
            route.states()
        );
        assert_eq!(route.weights(&green), [0, 100]);
    })
    .await;
}

#[tokio::test]
async fn an_indefinite_pause_waits_for_a_promote_which_is_acted_on_once() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 10}, {"pause": {}}, {"pause": {}}]);
        let h = Harness::start(&client, &ns, "hold", json!({"rollout": canary(steps)})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;

        h.set_image(V2).await;
        let ms = h.wait_paused_at(1).await;
        let revision = release(&ms).revision.clone();
        assert_eq!(release(&ms).weight, 10);
        route
            .wait_route("weight 10", |r| r.weight(&green) == 10)
            .await;
        let status = h.record_status().await;
        tokio::join!(
            status.assert_unchanged_for(Duration::from_secs(5)),
            route.assert_unchanged_for(Duration::from_secs(5)),
        );
        let about_promote = |events: Vec<(String, String, String)>| -> Vec<_> {
            events
                .into_iter()
                .filter(|(_, reason, message)| {
                    format!("{reason} {message}")
                        .to_lowercase()
                        .contains("promot")
                })
                .collect()
        };
        let before = about_promote(h.events().await);

        // One promote ends one pause: the release then waits at the next.
        let value = h.act("promote").await;
        let handled = h.wait_handled(&value).await;
        let at = handled.value.release.expect("the release goes on");
        assert_eq!(at.step_index, 2, "one step forward per promote");
        h.wait_paused_at(2).await;
        assert_eq!(route.latest().unwrap().weight(&green), 10);
        let new = support::eventually(DEADLINE, "an event about the promote", || async {
            let new: Vec<_> = about_promote(h.events().await)
                .into_iter()
                .filter(|e| !before.contains(e))
                .collect();
            (!new.is_empty()).then_some(new)
        })
        .await;
        assert!(
            new.iter().all(|(kind, _, _)| kind == "Normal"),
            "the promote was not acted on: {new:?}"
        );

        let value = h.act("promote").await;
        h.wait_handled(&value).await;
        h.wait_healthy_on(&revision).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 10, 100]);
    })
    .await;
}

#[tokio::test]
async fn without_a_router_the_ratio_of_ready_pods_is_the_weight() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]);
        let spec = json!({"replicas": 4, "rollout": canary_by_replicas(steps)});
        let h = Harness::start(&client, &ns, "ratio", spec).await;
        let blue_slot = h.record_slot(Slot::Blue).await;
        let green_pods = h.record_pods(Slot::Green).await;

        h.set_image(V2).await;
        let ms = h
            .wait_release_where("Paused at step 1, a quarter of the pods new", |phase, r| {
                phase == Some(Phase::Paused) && r.step_index == 1 && r.weight == 25
            })
            .await;
        let revision = release(&ms).revision.clone();
        h.wait_replicas(Slot::Green, 1).await;
        h.wait_replicas(Slot::Blue, 3).await;
        h.wait_ready_pods(Slot::Green, 1).await;
        h.wait_ready_pods(Slot::Blue, 3).await;
        // Service `ratio` selects both slots, so the pods split the traffic.
        let both = selector(h.services().get_opt("ratio").await.unwrap().as_ref());
        assert!(!both.contains_key("weir.dev/slot"), "{both:?}");
        assert_eq!(
            both.get("app.kubernetes.io/instance").map(String::as_str),
            Some("ratio")
        );
        // The stable slot shrank only once the candidate had a ready pod.
        green_pods.wait_until("a ready pod", |p| p.ready >= 1).await;
        blue_slot
            .wait_until("3 replicas", |d| {
                d.as_ref().is_some_and(|d| d.replicas == 3)
            })
            .await;
        let (_, first_ready) = green_pods.find(0, |p| p.ready >= 1).unwrap();
        let (_, shrunk) = blue_slot
            .find(0, |d| d.as_ref().is_some_and(|d| d.replicas < 4))
            .unwrap();
        assert!(
            first_ready.resource_version < shrunk.resource_version,
            "the stable slot shrank before the candidate had a ready pod: {:#?} {:#?}",
            blue_slot.entries(),
            green_pods.entries()
        );

        h.act("promote").await;
        h.wait_release_where("Paused at step 3, half the pods new", |phase, r| {
            phase == Some(Phase::Paused) && r.step_index == 3 && r.weight == 50
        })
        .await;
        h.wait_replicas(Slot::Green, 2).await;
        h.wait_replicas(Slot::Blue, 2).await;

        h.act("promote").await;
        let done = h.wait_healthy_on(&revision).await;
        assert_eq!(done.status.unwrap().active_slot, Some(Slot::Green));
        h.wait_replicas(Slot::Green, 4).await;
        h.wait_ready_pods(Slot::Green, 4).await;
        let alone = h
            .wait_service("ratio", "selects the green slot only", |s| {
                selector(s).get("weir.dev/slot").map(String::as_str) == Some("green")
            })
            .await;
        assert!(alone.is_some());
    })
    .await;
}

#[tokio::test]
async fn a_spec_change_mid_release_returns_traffic_then_releases_the_newest_revision() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 10}, {"pause": {}}]);
        let h = Harness::start(&client, &ns, "moving", json!({"rollout": canary(steps)})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let green_slot = h.record_slot(Slot::Green).await;
        let newest_ready = record_ready_pods_running(&h, V3).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let ms = h.wait_paused_at(1).await;
        let second = release(&ms).revision.clone();
        assert_eq!(release(&ms).weight, 10);

        h.set_image(V3).await;
        let third = h.wait_release(&[&stable, &second]).await;
        let ms = h.wait_paused_at(1).await;
        assert_eq!(release(&ms).revision, third.revision);
        assert_eq!(release(&ms).weight, 10);
        let status = ms.status.clone().unwrap();
        assert_eq!(
            status.candidate_revision.as_deref(),
            Some(third.revision.as_str())
        );
        assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
        assert_eq!(status.active_slot, Some(Slot::Blue));
        green_slot
            .wait_until("the candidate slot running app:3", |d| {
                d.as_ref()
                    .is_some_and(|d| d.image.as_deref() == Some(V3) && d.ready >= 1)
            })
            .await;

        route
            .wait_route("weight 10 again", |r| r.weight(&green) == 10)
            .await;
        let back = traffic_returned_before_app_3_ran(&route, &green_slot, &green);
        weight_went_only_to_ready_app_3_pods(&route, &newest_ready, &green, back);
        the_return_was_a_restart_not_an_abort(&h);
    })
    .await;
}

/// Ready pods of the candidate slot that run `image`, whatever the Deployment's status
/// says while its template rolls.
async fn record_ready_pods_running(h: &Harness, image: &'static str) -> Recorder<usize> {
    Recorder::start(
        h.pods(),
        watcher::Config::default().labels(&h.slot_pods(Slot::Green)),
        "ready app:3 pods",
        move |pods| {
            pods.iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_is_ready(p))
                .filter(|p| {
                    let spec = p.spec.as_ref();
                    spec.is_some_and(|s| s.containers[0].image.as_deref() == Some(image))
                })
                .count()
        },
    )
    .await
}

/// Back to 0 before the newer revision, then 10 again once its pods are ready. Returns the
/// resourceVersion at which traffic was back on stable.
fn traffic_returned_before_app_3_ran(
    route: &RouteRecorder,
    green_slot: &Recorder<Option<SlotView>>,
    green: &str,
) -> u64 {
    assert_eq!(
        route.weights(green),
        [0, 10, 0, 10],
        "{:#?}",
        route.states()
    );
    let (up, _) = route.find_weight(0, green, 10).unwrap();
    let (_, back) = route.find_weight(up, green, 0).unwrap();
    let (_, newer) = green_slot
        .find(0, |d| {
            d.as_ref().is_some_and(|d| d.image.as_deref() == Some(V3))
        })
        .unwrap();
    assert!(
        back.resource_version < newer.resource_version,
        "the candidate slot ran app:3 (rv {}) before traffic was back on stable (rv {}): {:#?}",
        newer.resource_version,
        back.resource_version,
        route.entries()
    );
    back.resource_version
}

/// Once back (at resourceVersion `back`), weight went to the slot only while pods of the
/// newest revision were ready in it: never to the superseded revision's pods while the
/// template rolled.
fn weight_went_only_to_ready_app_3_pods(
    route: &RouteRecorder,
    newest_ready: &Recorder<usize>,
    green: &str,
    back: u64,
) {
    for entry in route
        .entries()
        .iter()
        .skip_while(|e| e.resource_version <= back)
    {
        let Some(state) = &entry.value else { continue };
        if state.weight(green) > 0 {
            let ready = newest_ready.value_at(entry.resource_version).unwrap_or(0);
            assert!(
                ready >= 1,
                "weight {} on {green} at rv {} with no ready app:3 pod: {:#?}\n{:#?}",
                state.weight(green),
                entry.resource_version,
                route.entries(),
                newest_ready.entries()
            );
        }
    }
}

/// The return was a restart, not an abort.
fn the_return_was_a_restart_not_an_abort(h: &Harness) {
    let returning = h
        .log
        .values()
        .into_iter()
        .filter_map(|s| s.release?.returning)
        .collect::<Vec<_>>();
    assert!(
        !returning.is_empty() && returning.iter().all(|r| !r.abort),
        "{returning:#?}"
    );
    assert!(h.log.values().iter().all(|s| s.aborted_revision.is_none()));
}

#[tokio::test]
async fn a_killed_operator_is_replaced_and_the_release_carries_on_where_it_was() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 10}, {"pause": {}}]);
        let mut h =
            Harness::start(&client, &ns, "survivor", json!({"rollout": canary(steps)})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;

        h.set_image(V2).await;
        let ms = h.wait_paused_at(1).await;
        let paused = release(&ms).clone();
        assert_eq!(paused.weight, 10);
        let status = h.record_status().await;

        h.kill_and_restart_operator().await;
        let value = h.act("promote").await;
        h.wait_handled(&value).await;
        h.wait_healthy_on(&paused.revision).await;
        status
            .wait_until("the release over", |s| s.release.is_none())
            .await;

        // From the kill to the end, the release only moved forward.
        let seen = status.values();
        let releases: Vec<_> = seen.iter().filter_map(|s| s.release.as_ref()).collect();
        assert!(
            releases.iter().all(|r| r.revision == paused.revision
                && r.step_index >= 1
                && r.step_started_at.0 >= paused.step_started_at.0
                && r.returning.is_none()),
            "{seen:#?}"
        );
        assert!(
            releases
                .iter()
                .filter(|r| r.step_index == 1)
                .all(|r| r.weight == 10 && r.step_started_at == paused.step_started_at),
            "the paused step was restarted: {seen:#?}"
        );
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 10, 100], "{:#?}", route.states());
    })
    .await;
}

#[tokio::test]
async fn a_gitops_reapply_of_the_unchanged_manifest_leaves_the_release_alone() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 10}, {"pause": {}}]);
        let spec = json!({"rollout": canary(steps.clone())});
        let h = Harness::start(&client, &ns, "synced", spec).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;

        let manifest = json!({"image": V2, "rollout": canary(steps)});
        h.kubectl_apply(manifest.clone()).await;
        let ms = h.wait_paused_at(1).await;
        let before = release(&ms).clone();
        let generation = ms.metadata.generation;
        let status = h.record_status().await;

        h.kubectl_apply(manifest).await;
        let after = h.ms().await;
        assert_eq!(after.metadata.generation, generation, "the spec changed");
        // The promote is handled after the re-apply was seen: every state up to it shows
        // the same release at the same step.
        let value = h.act("promote").await;
        h.wait_handled(&value).await;
        let (handled, _) = status
            .wait_seen("the promote handled", |s| {
                s.handled_action.as_deref() == Some(value.as_str())
            })
            .await;
        let seen = status.values();
        for view in &seen[..handled] {
            let r = view.release.as_ref().expect("the release went on");
            assert_eq!(
                (&r.revision, r.step_index, r.weight, &r.step_started_at),
                (&before.revision, 1, 10, &before.step_started_at),
                "{seen:#?}"
            );
            assert!(r.returning.is_none(), "{seen:#?}");
        }
        h.wait_healthy_on(&before.revision).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 10, 100], "{:#?}", route.states());
    })
    .await;
}

/// Waits until weight 10 is written on the route but not verified, and asserts the release
/// then stays there (neither the route nor the status moves for 5 s, still step 0); returns
/// the route's entry with weight 10 and the revision released.
async fn held_at_weight_10_unverified(
    h: &Harness,
    route: &RouteRecorder,
    green: &str,
) -> (
    support::release::Entry<Option<support::gateway::RouteState>>,
    String,
) {
    let written = route
        .wait_route("weight 10 written", |r| r.weight(green) == 10)
        .await;
    let unverified = h
        .log
        .wait_until("weight 10 applied, not verified", |s| {
            s.release
                .as_ref()
                .is_some_and(|r| r.weight == 10 && !r.weight_verified)
        })
        .await;
    let revision = unverified.value.release.unwrap().revision;
    tokio::join!(
        route.assert_unchanged_for(Duration::from_secs(5)),
        h.log.assert_unchanged_for(Duration::from_secs(5)),
    );
    assert_eq!(release(&h.ms().await).step_index, 0);
    (written, revision)
}

#[tokio::test]
async fn a_step_counts_only_once_every_gateway_accepted_the_route() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setWeight": 10}, {"pause": {"duration": "1s"}}, {"setWeight": 50}
        ]);
        let h = Harness::start(&client, &ns, "gated", json!({"rollout": canary(steps)})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;

        h.gateway().set_accepting(false);
        h.set_image(V2).await;
        // Unaccepted, the step does not end: the 1s pause and the next weight never come.
        let (written, revision) = held_at_weight_10_unverified(&h, &route, &green).await;

        h.gateway().set_accepting(true);
        h.wait_healthy_on(&revision).await;
        let generation = written.value.unwrap().generation;
        let accepted = h
            .gateway()
            .accepted()
            .into_iter()
            .find(|a| a.generation == generation)
            .expect("the gateway accepted weight 10");
        let (_, moved) = h
            .log
            .wait_seen("the release past step 0", |s| {
                s.step_index().is_some_and(|i| i >= 1)
            })
            .await;
        assert!(
            accepted.resource_version < moved.resource_version,
            "the step ended (rv {}) before the gateway accepted the route (rv {})",
            moved.resource_version,
            accepted.resource_version
        );
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 10, 50, 100]);
    })
    .await;
}

#[tokio::test]
async fn a_step_waits_for_a_gateway_that_cannot_resolve_the_backends() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 10}, {"pause": {"duration": "1s"}}, {"setWeight": 50}]);
        let h = Harness::start(
            &client,
            &ns,
            "unresolved",
            json!({"rollout": canary(steps)}),
        )
        .await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;

        // Accepted, but a backend the gateway cannot resolve: the requests would fail.
        h.gateway().set_resolved_refs(Some(false));
        h.set_image(V2).await;
        let (_, revision) = held_at_weight_10_unverified(&h, &route, &green).await;

        h.gateway().set_resolved_refs(Some(true));
        h.wait_healthy_on(&revision).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 10, 50, 100]);
    })
    .await;
}
