//! Releases judged by the requests users get: a steady load through the local Gateway
//! (Traefik, routing by Weir's HTTPRoute to pods that answer with their image), measured
//! per request. Each test needs the data plane (tests/support/dataplane.rs).
//!
//! The thresholds, and why: Traefik splits a weighted rule by smooth weighted round robin,
//! so over 400 requests the measured share is within a point or two of the weight once the
//! route is loaded; ±5 points leaves room for the requests in flight while Traefik reloads
//! (its provider throttle is 100 ms in the local cluster, 20 requests at 200/s). Zero failed
//! requests is not a tolerance: one failure is a user who saw an error.
//!
//! Traefik writes `Accepted` onto a route when it has built the new configuration, a moment
//! before it serves it (measured here: up to about 200 ms, its 100 ms throttle plus the
//! reload). Weir's "verified" is that status, so each measured window starts
//! `RELOAD_ALLOWANCE` after status reports a step verified.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::dataplane::data_plane;
use support::release::{Harness, SCALE_DOWN_DELAY};
use support::traffic::{
    Load, between, default_rate, failures, share_percent, test_host, through_local_gateway,
    wait_answered_by, wait_answered_by_at,
};
use support::with_temp_ns;
use weir::api::{Phase, Slot};

pub const V1: &str = "registry.example/app:1";
pub const V2: &str = "registry.example/app:2";
/// Requests measured after a weight is verified.
const MEASURED: usize = 400;
/// How far the measured share may be from the weight, in points.
const TOLERANCE: f64 = 5.0;
/// How long after a route's status the Gateway may still serve the previous configuration.
pub const RELOAD_ALLOWANCE: Duration = Duration::from_millis(500);
/// A pod's grace period in these tests: the default preStop pause (5 s) fits, and the old
/// slot's pods are gone soon after their delay.
pub const GRACE_SECONDS: i64 = 10;

/// Asserts that not one request failed, showing a few that did.
pub fn assert_none_failed(samples: &[support::traffic::Sample], during: &str) {
    let (failed, examples) = failures(samples);
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed {during}, e.g. {examples:?}",
        samples.len()
    );
}

/// The share of the new version over the next 400 requests, asserted near `weight`.
async fn assert_share_follows(load: &Load, weight: i32) {
    let window = load
        .next_after(Instant::now() + RELOAD_ALLOWANCE, MEASURED)
        .await;
    let share = share_percent(&window, V2);
    eprintln!("weight {weight}: measured {share:.1}% of {MEASURED} requests on the new version");
    assert!(
        (share - f64::from(weight)).abs() <= TOLERANCE,
        "weight {weight} verified, but the new version answered {share:.1}% of the next {MEASURED} requests"
    );
}

/// Microservice `shop` (4 pods) released by a canary of `steps` through the local Gateway
/// for the test's own host, once its first version answers there: the start of the canary
/// traffic tests. Returns its harness and host.
async fn canary_serving_v1(
    client: &kube::Client,
    ns: &str,
    plane: &support::dataplane::DataPlane,
    steps: serde_json::Value,
) -> (Harness, String) {
    let host = test_host(ns);
    let spec = json!({
        "replicas": 4,
        "pod": {"terminationGracePeriodSeconds": GRACE_SECONDS},
        "rollout": {"strategy": "Canary", "traffic": through_local_gateway(&host),
                    "canary": {"steps": steps, "scaleDownDelaySeconds": SCALE_DOWN_DELAY}},
    });
    let h = Harness::start_on_data_plane(client, ns, "shop", spec, &[]).await;
    wait_answered_by(plane, &host, V1).await;
    (h, host)
}

/// Waits until the old slot has no pods left (its delay passed, its pods terminated).
pub async fn wait_slot_gone(h: &Harness, slot: Slot) {
    let what = format!("no pods left in slot {}", slot.as_str());
    support::wait_for_all(
        h.pods(),
        &h.slot_pods(slot),
        support::release::DEADLINE,
        &what,
        |pods| pods.is_empty(),
    )
    .await;
}

#[tokio::test]
async fn a_canary_through_the_gateway_gives_the_new_version_its_weight_and_fails_no_request() {
    let test = "traffic::a_canary_through_the_gateway_gives_the_new_version_its_weight_and_fails_no_request";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setWeight": 20}, {"pause": {"duration": "6s"}},
            {"setWeight": 50}, {"pause": {"duration": "6s"}},
        ]);
        let (h, host) = canary_serving_v1(&client, &ns, &plane, steps).await;
        let load = Load::start(&plane, &host, &[], default_rate());
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        for weight in [20, 50] {
            let what = format!("weight {weight} verified");
            h.wait_release_where(&what, |_, r| r.weight == weight && r.weight_verified)
                .await;
            assert_share_follows(&load, weight).await;
        }
        h.wait_healthy_on(&started.revision).await;
        let promoted = Instant::now();
        wait_slot_gone(&h, Slot::Blue).await;
        load.next_after(Instant::now(), MEASURED).await;

        let samples = load.stop().await;
        assert_none_failed(
            &samples,
            "across the release, the promotion and the old slot's removal",
        );
        let after = between(&samples, promoted + Duration::from_secs(1), Instant::now());
        assert_eq!(
            share_percent(&after, V2),
            100.0,
            "after promotion only the new version answers"
        );
    })
    .await;
}

#[tokio::test]
async fn a_header_route_sends_only_requests_with_the_header_to_the_new_version() {
    let test = "traffic::a_header_route_sends_only_requests_with_the_header_to_the_new_version";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let beta = json!({"match": [{"name": "x-user-group", "value": "beta"}]});
        let steps = json!([
            {"setHeaderRoute": beta}, {"pause": {"duration": "8s"}},
            {"setWeight": 20}, {"pause": {"duration": "8s"}},
        ]);
        let (h, host) = canary_serving_v1(&client, &ns, &plane, steps).await;
        let rate = default_rate() / 2;
        let users = Load::start(&plane, &host, &[], rate);
        let testers = Load::start(&plane, &host, &[("x-user-group", "beta")], rate);
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        h.wait_release(&[&stable]).await;
        // The header step is done once the route carrying it is verified: the pause follows.
        h.wait_release_where("the header route verified, pausing", |_, r| {
            r.step_index == 1 && !r.header_route.is_empty()
        })
        .await;
        let mark = Instant::now() + RELOAD_ALLOWANCE;
        let with_header = testers.next_after(mark, MEASURED / 2).await;
        let without = users.next_after(mark, MEASURED / 2).await;
        assert_eq!(
            share_percent(&with_header, V2),
            100.0,
            "requests with the header reach the new version"
        );
        assert_eq!(
            share_percent(&without, V2),
            0.0,
            "requests without it stay on the old"
        );

        h.wait_release_where("weight 20 verified", |_, r| {
            r.weight == 20 && r.weight_verified
        })
        .await;
        let mark = Instant::now() + RELOAD_ALLOWANCE;
        let with_header = testers.next_after(mark, MEASURED).await;
        let without = users.next_after(mark, MEASURED).await;
        assert_eq!(
            share_percent(&with_header, V2),
            100.0,
            "the header rule outlives the weight step"
        );
        let share = share_percent(&without, V2);
        assert!(
            (share - 20.0).abs() <= TOLERANCE,
            "requests without the header follow weight 20: {share:.1}%"
        );
        assert_none_failed(&users.stop().await, "without the header");
        assert_none_failed(&testers.stop().await, "with the header");
    })
    .await;
}

#[tokio::test]
async fn a_blue_green_preview_answers_with_the_new_version_while_users_see_the_old() {
    let test = "traffic::a_blue_green_preview_answers_with_the_new_version_while_users_see_the_old";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let host = test_host(&ns);
        let spec = json!({
            "pod": {"terminationGracePeriodSeconds": GRACE_SECONDS},
            "rollout": {"strategy": "BlueGreen", "traffic": through_local_gateway(&host),
                        "blueGreen": {"scaleDownDelaySeconds": SCALE_DOWN_DELAY}},
        });
        let h = Harness::start_on_data_plane(&client, &ns, "shop", spec, &[]).await;
        // The preview has a route of its own, as a team would give its testers.
        let preview_host = format!("preview.{host}");
        support::traffic::route_to_service(
            &client,
            &ns,
            "shop-preview",
            &preview_host,
            "shop-preview",
        )
        .await;
        wait_answered_by(&plane, &host, V1).await;
        let load = Load::start(&plane, &host, &[], default_rate());
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_release_where("paused before the switch", |phase, _| {
            phase == Some(Phase::Paused)
        })
        .await;
        wait_answered_by(&plane, &preview_host, V2).await;
        let preview = Load::start(&plane, &preview_host, &[], 50);
        let previewed = preview.next_after(Instant::now(), 100).await;
        assert_eq!(
            share_percent(&previewed, V2),
            100.0,
            "the preview answers with the new version"
        );
        let before_switch = load.samples();
        assert_eq!(
            share_percent(&before_switch, V1),
            100.0,
            "users see only the old version before the switch"
        );

        drop(preview);
        h.act("promote").await;
        h.wait_healthy_on(&started.revision).await;
        let switched = Instant::now();
        wait_slot_gone(&h, Slot::Blue).await;
        let samples = load.stop().await;
        assert_none_failed(
            &samples,
            "across the preview, the switch and the old slot's removal",
        );
        let after = between(&samples, switched + Duration::from_secs(1), Instant::now());
        assert!(!after.is_empty());
        assert_eq!(
            share_percent(&after, V2),
            100.0,
            "after the switch only the new version answers"
        );
    })
    .await;
}

/// Traefik does not implement RequestMirror and answers 500 to every request of a rule that
/// carries it, while reporting the route accepted. Weir reads the GatewayClass's supported
/// features and writes no mirror there: the step copies nothing, says so, and no user sees
/// an error.
#[tokio::test]
async fn a_mirror_step_on_a_gateway_without_the_mirror_copies_nothing_and_fails_no_request() {
    let test = "traffic::a_mirror_step_on_a_gateway_without_the_mirror_copies_nothing_and_fails_no_request";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setWeight": 20}, {"setMirror": {"percent": 50}}, {"pause": {"duration": "6s"}},
        ]);
        let (h, host) = canary_serving_v1(&client, &ns, &plane, steps).await;
        let load = Load::start(&plane, &host, &[], default_rate());
        let route = h.record_route().await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_release_where("past the mirror step", |_, r| r.step_index >= 2)
            .await;
        assert_share_follows(&load, 20).await;
        h.wait_healthy_on(&started.revision).await;

        let samples = load.stop().await;
        assert_none_failed(&samples, "across a release with a mirror step");
        assert!(
            route
                .states()
                .iter()
                .all(|state| state.mirror_percent() == 0),
            "no route carried a mirror filter"
        );
        let warned = h.events().await.into_iter().any(|(kind, reason, message)| {
            kind == "Warning" && reason == "MirrorUnsupported" && message.contains("weir-local")
        });
        assert!(
            warned,
            "a warning says the mirror steps copy nothing: {:?}",
            h.events().await
        );
    })
    .await;
}

#[tokio::test]
async fn a_path_mounted_canary_gives_the_new_version_its_weight_on_its_path_only() {
    let test = "traffic::a_path_mounted_canary_gives_the_new_version_its_weight_on_its_path_only";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let host = test_host(&ns);
        let mut traffic = through_local_gateway(&host);
        traffic["gatewayAPI"]["rules"] = json!([{
            "matches": [{"path": {"type": "PathPrefix", "value": "/api/checkout"}}],
            "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
            "timeouts": {"request": "10s"}
        }]);
        let spec = json!({
            "replicas": 4,
            "pod": {"terminationGracePeriodSeconds": GRACE_SECONDS},
            "rollout": {"strategy": "Canary", "traffic": traffic,
                        "canary": {"steps": [{"setWeight": 30}, {"pause": {"duration": "8s"}}],
                                   "scaleDownDelaySeconds": SCALE_DOWN_DELAY}},
        });
        let h = Harness::start_on_data_plane(&client, &ns, "shop", spec, &[]).await;
        wait_answered_by_at(&plane, &host, "/api/checkout", V1).await;
        let load = Load::start_at(&plane, &host, "/api/checkout/cart", &[], default_rate());
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_release_where("weight 30 verified", |_, r| {
            r.weight == 30 && r.weight_verified
        })
        .await;
        assert_share_follows(&load, 30).await;
        let outside = reqwest::Client::new()
            .get(format!("{}/elsewhere", plane.gateway_url()))
            .header("host", &host)
            .send()
            .await
            .expect("the Gateway answers");
        assert_eq!(outside.status(), 404, "only the mounted path is routed");
        h.wait_healthy_on(&started.revision).await;
        let samples = load.stop().await;
        assert_none_failed(&samples, "across the path-mounted release");
    })
    .await;
}
