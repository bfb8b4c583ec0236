//! When the analysis stops a release without ending it, and when it goes on after the
//! promotion: a metric with `onFailure: Hold` returns traffic to the stable version while the
//! candidate keeps its pods for a person (`retry` resumes the step, `abort` ends it), and
//! `postPromotionAnalysis` keeps the old slot warm, and the old revision stable, until the
//! new version passes with all the traffic; a failure then switches back before the new slot
//! scales down. Measured by a real Prometheus whose error rate the test sets.

use crate::release_analysis::{ERROR_RATE, prometheus_measuring};
use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::chaos::Kills;
use support::gateway::RouteRecorder;
use support::prometheus::{Exporter, Prometheus};
use support::release::{
    DEADLINE, Harness, Recorder, SCALE_DOWN_DELAY, SlotView, StatusView, blue_green, canary,
    condition, phase, scaled_down, selector, traffic_back,
};
use support::{eventually, with_temp_ns};
use weir::api::{Phase, Slot};

const V2: &str = "registry.example/app:2";
/// The error rate a metric accepts; the bad rate the tests set is far above it.
const MAX_ERROR_RATE: f64 = 0.05;
pub(crate) const BAD: f64 = 0.5;

/// The error rate the analysis measures: Prometheus scraping an exporter whose share of
/// failed requests the test sets, the same source as tests/cluster/release_analysis.rs.
pub(crate) struct ErrorRate {
    exporter: Exporter,
    prometheus: Prometheus,
    address: String,
}

impl ErrorRate {
    /// Starts at no errors, once Prometheus measures that.
    pub(crate) async fn start() -> ErrorRate {
        let (exporter, prometheus) = prometheus_measuring(0.0).await;
        let address = format!("http://{}", prometheus.addr);
        ErrorRate {
            exporter,
            prometheus,
            address,
        }
    }

    pub(crate) fn flags(&self) -> [&str; 2] {
        ["--prometheus-address", &self.address]
    }

    /// Sets the share of failed requests and waits until Prometheus judges it as the
    /// operator will: above the bound for a bad ratio, exactly 0 for a good one (the rate
    /// follows over its 5 s window, so a good ratio takes a few seconds to read as good).
    pub(crate) async fn set(&self, ratio: f64) {
        self.exporter.set_error_ratio(ratio);
        let bad = ratio > MAX_ERROR_RATE;
        eventually(
            DEADLINE,
            &format!("Prometheus to measure {ratio}"),
            || async {
                let rate = self.prometheus.query(ERROR_RATE).await?;
                let seen = if bad {
                    rate > MAX_ERROR_RATE
                } else {
                    rate == ratio
                };
                seen.then_some(rate)
            },
        )
        .await;
    }
}

/// `rollout.analysis` with the one error-rate metric, measured every second.
fn analysis(on_failure: &str) -> Value {
    json!({"interval": "1s", "inconclusiveLimit": 5, "metrics": [{
        "name": "error-rate", "prometheus": {"query": ERROR_RATE},
        "max": MAX_ERROR_RATE, "onFailure": on_failure
    }]})
}

/// A canary that stops at 30% until promoted, judged by a metric that holds.
fn held_canary() -> Value {
    let mut rollout = canary(json!([{"setWeight": 30}, {"pause": {}}]));
    rollout["analysis"] = analysis("Hold");
    json!({"rollout": rollout})
}

/// A canary of two short steps whose promotion is verified for `duration`.
pub(crate) fn verified_canary(duration: &str) -> Value {
    let mut rollout = canary(json!([{"setWeight": 50}, {"pause": {"duration": "1s"}}]));
    rollout["canary"]["postPromotionAnalysis"] = json!({"duration": duration});
    rollout["analysis"] = analysis("Abort");
    json!({"rollout": rollout})
}

/// Releases V2 and waits until the release is Paused at its pause step with 30% on the
/// candidate, confirmed; returns the revision released and the stable one.
async fn at_30_percent(h: &Harness, route: &RouteRecorder) -> (String, String) {
    let stable = h.status().await.stable_revision.unwrap();
    h.set_image(V2).await;
    let started = h.wait_release(&[&stable]).await;
    h.wait_release_where("Paused at step 1 with 30% confirmed", |phase, r| {
        phase == Some(Phase::Paused) && r.step_index == 1 && r.weight == 30 && r.weight_verified
    })
    .await;
    route
        .wait_route("30% on the candidate", |r| {
            r.weight(&h.slot(Slot::Green)) == 30
        })
        .await;
    (started.revision, stable)
}

/// Waits until the release is held as a person finds it: traffic back on stable and
/// confirmed, phase Paused with reason AnalysisFailed naming the metric, the candidate still
/// running. Returns the resourceVersion at which the hold began.
async fn wait_held(h: &Harness, route: &RouteRecorder, green: &Recorder<Option<SlotView>>) -> u64 {
    route
        .wait_route("traffic back on stable", |r| {
            r.weight(&h.slot(Slot::Green)) == 0
        })
        .await;
    let ms = h
        .wait("held, traffic on stable confirmed", |ms| {
            let held = ms.status.as_ref().and_then(|s| s.release.as_ref());
            held.is_some_and(|r| r.held.is_some() && r.weight == 0 && r.weight_verified)
                && phase(ms) == Some(Phase::Paused)
                && condition(ms, "Progressing").is_some_and(|c| c.reason == "AnalysisFailed")
        })
        .await;
    let why = ms.status.unwrap().release.unwrap().held.unwrap();
    assert!(
        why.contains("error-rate"),
        "the hold names the metric: {why}"
    );
    let (_, began) = h.log.wait_seen("the hold", |s| held(s).is_some()).await;
    assert_eq!(began.value.step_index(), Some(1), "{:#?}", h.log.values());
    let running = green.latest();
    assert!(
        running
            .as_ref()
            .is_some_and(|d| d.replicas > 0 && d.ready > 0),
        "the held candidate keeps its pods: {running:?}"
    );
    began.resource_version
}

/// Why the release in `s` is held, if it is.
fn held(s: &StatusView) -> Option<&String> {
    s.release.as_ref()?.held.as_ref()
}

/// The states a slot's Deployment had from resourceVersion `from` to `to`: the one in force
/// at `from` and every later one up to `to`.
fn slot_states_between(
    slot: &Recorder<Option<SlotView>>,
    from: u64,
    to: u64,
) -> Vec<Option<SlotView>> {
    let later = slot
        .entries()
        .into_iter()
        .filter(|e| e.resource_version > from && e.resource_version <= to)
        .map(|e| e.value);
    slot.value_at(from).into_iter().chain(later).collect()
}

/// Waits for an event with `reason`; returns its type and message.
async fn event(h: &Harness, reason: &str) -> (String, String) {
    eventually(DEADLINE, &format!("an event {reason}"), || async {
        h.events()
            .await
            .into_iter()
            .find(|(_, r, _)| r == reason)
            .map(|(kind, _, message)| (kind, message))
    })
    .await
}

/// Asserts traffic left the candidate before it lost its pods: after the route gave
/// `backend` weight, the state back at 0 was written, and accepted by the gateways, at a
/// resourceVersion below the first state of the candidate's Deployment with no replicas.
pub(crate) async fn assert_traffic_back_before_scale_down(
    h: &Harness,
    route: &RouteRecorder,
    candidate: &Recorder<Option<SlotView>>,
    backend: &str,
) {
    let back = traffic_back(route, h.gateway(), &h.name, backend).await;
    let stopped = scaled_down(candidate).await;
    assert!(
        back.resource_version() < stopped.resource_version,
        "the candidate lost its pods (rv {}) before traffic was back on stable (written at rv \
         {}, accepted at rv {}): {:#?}",
        stopped.resource_version,
        back.written.resource_version,
        back.accepted,
        candidate.entries()
    );
}

#[tokio::test]
async fn a_held_release_keeps_the_candidate_and_resumes_its_step_on_retry() {
    let errors = ErrorRate::start().await;
    with_temp_ns(move |client, ns| async move {
        let flags = errors.flags();
        let h = Harness::start_with_flags(&client, &ns, "held", held_canary(), &flags).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let green_slot = h.record_slot(Slot::Green).await;
        let (revision, _) = at_30_percent(&h, &route).await;

        errors.set(BAD).await;
        let held_from = wait_held(&h, &route, &green_slot).await;
        let (kind, message) = event(&h, "Held").await;
        assert_eq!(kind, "Warning", "{message}");
        assert!(message.contains("error-rate"), "{message}");

        // The hold lasts while the error rate recovers; only a person lets it go on.
        errors.set(0.0).await;
        let still = h.status().await.release.unwrap();
        assert!(still.held.is_some() && still.weight == 0, "{still:#?}");
        let value = h.act("retry").await;
        let resumed = h.wait_handled(&value).await;
        let release = resumed.value.release.clone().expect("the release goes on");
        assert!(release.held.is_none(), "{release:#?}");
        assert_eq!(
            release.step_index, 1,
            "retry resumes the step it was held at"
        );

        let kept = slot_states_between(&green_slot, held_from, resumed.resource_version);
        assert!(
            !kept.is_empty()
                && kept
                    .iter()
                    .all(|d| d.as_ref().is_some_and(|d| d.replicas > 0)),
            "the candidate lost its pods while held: {kept:#?}"
        );
        let steps: Vec<_> = h.log.values().iter().filter_map(held_step).collect();
        assert!(steps.iter().all(|step| *step == 1), "{:#?}", h.log.values());

        route
            .wait_route("30% on the candidate again", |r| r.weight(&green) == 30)
            .await;
        h.wait_release_where("at step 1 with 30% confirmed again", |phase, r| {
            phase == Some(Phase::Paused) && r.step_index == 1 && r.weight == 30 && r.weight_verified
        })
        .await;
        let value = h.act("promote").await;
        h.wait_handled(&value).await;
        h.wait_healthy_on(&revision).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(
            route.weights(&green),
            [0, 30, 0, 30, 100],
            "{:#?}",
            route.states()
        );
        assert!(h.log.values().iter().all(|s| s.aborted_revision.is_none()));
    })
    .await;
}

/// The step of a held release.
fn held_step(s: &StatusView) -> Option<i32> {
    held(s).and(s.step_index())
}

#[tokio::test]
async fn an_abort_of_a_held_release_scales_the_candidate_down_after_traffic_is_back() {
    let errors = ErrorRate::start().await;
    with_temp_ns(move |client, ns| async move {
        let flags = errors.flags();
        let h = Harness::start_with_flags(&client, &ns, "dropped", held_canary(), &flags).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let green_slot = h.record_slot(Slot::Green).await;
        let (revision, stable) = at_30_percent(&h, &route).await;

        errors.set(BAD).await;
        let held_from = wait_held(&h, &route, &green_slot).await;
        let value = h.act("abort").await;
        // Up to the request the candidate kept its pods; the decision that handles it
        // scales them down, traffic being on stable already.
        let (_, asked) = h
            .log
            .wait_seen("the abort requested", |s| {
                s.action.as_deref() == Some(&value)
            })
            .await;
        h.wait_handled(&value).await;
        let kept = slot_states_between(&green_slot, held_from, asked.resource_version);
        assert!(
            kept.iter()
                .all(|d| d.as_ref().is_some_and(|d| d.replicas > 0)),
            "the candidate lost its pods before the abort: {kept:#?}"
        );

        let ms = h.wait_degraded("Aborted").await;
        let status = ms.status.unwrap();
        assert_eq!(status.aborted_revision.as_deref(), Some(revision.as_str()));
        assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
        assert_eq!(status.active_slot, Some(Slot::Blue));
        assert_traffic_back_before_scale_down(&h, &route, &green_slot, &green).await;
        assert_eq!(route.weights(&green), [0, 30, 0], "{:#?}", route.states());
    })
    .await;
}

/// Waits until the promotion of `revision` is being verified; returns the status entry
/// where it began, after checking what it shows: the old revision still stable in the old,
/// active slot.
async fn wait_verifying(
    h: &Harness,
    revision: &str,
    stable: &str,
) -> support::release::Entry<StatusView> {
    let (_, began) = h
        .log
        .wait_seen("the post-promotion analysis", |s| {
            s.release
                .as_ref()
                .is_some_and(|r| r.revision == revision && r.verifying_since.is_some())
        })
        .await;
    let status = &began.value;
    assert_eq!(
        status.stable_revision.as_deref(),
        Some(stable),
        "{status:#?}"
    );
    assert_eq!(status.active_slot, Some(Slot::Blue), "{status:#?}");
    began
}

/// Asserts that when verification began, all traffic was on the new slot while the old
/// one still had every pod ready.
fn all_on_green_with_blue_warm(
    h: &Harness,
    route: &RouteRecorder,
    blue_slot: &Recorder<Option<SlotView>>,
    at: u64,
) {
    let traffic = route.value_at(at).flatten();
    let on_green = traffic.as_ref().map(|r| r.weight(&h.slot(Slot::Green)));
    assert_eq!(
        on_green,
        Some(100),
        "the route when verification began: {traffic:#?}"
    );
    let old = blue_slot.value_at(at).flatten();
    assert!(
        old.as_ref()
            .is_some_and(|d| d.replicas == 3 && d.ready == 3),
        "the old slot when verification began: {old:?}"
    );
}

#[tokio::test]
async fn a_verified_canary_becomes_stable_only_after_its_post_promotion_analysis() {
    let errors = ErrorRate::start().await;
    with_temp_ns(move |client, ns| async move {
        let flags = errors.flags();
        let spec = verified_canary("6s");
        let h = Harness::start_with_flags(&client, &ns, "verified", spec, &flags).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let blue_slot = h.record_slot(Slot::Blue).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        let verifying = wait_verifying(&h, &started.revision, &stable).await;
        all_on_green_with_blue_warm(&h, &route, &blue_slot, verifying.resource_version);
        let done = h.wait_healthy_on(&started.revision).await;
        let status = done.status.unwrap();
        assert_eq!(status.active_slot, Some(Slot::Green));
        assert!(status.scale_down_at.is_some(), "{status:#?}");

        let (_, promoted) = h
            .log
            .wait_seen("the new revision stable", |s| {
                s.stable_revision.as_deref() == Some(started.revision.as_str())
            })
            .await;
        let verified_for = promoted.at.duration_since(verifying.at);
        assert!(
            verified_for >= Duration::from_secs(5),
            "stable {verified_for:?} after verification began"
        );
        let during = slot_states_between(
            &blue_slot,
            verifying.resource_version,
            promoted.resource_version,
        );
        assert!(
            during
                .iter()
                .all(|d| d.as_ref().is_some_and(|d| d.replicas == 3)),
            "the old slot shrank while the promotion was verified: {during:#?}"
        );
        let gone = blue_slot
            .wait_until("the old slot deleted", Option::is_none)
            .await;
        assert!(
            gone.resource_version > promoted.resource_version
                && gone.at.duration_since(promoted.at)
                    >= Duration::from_secs(SCALE_DOWN_DELAY as u64 - 1),
            "the old slot was deleted {:?} after the promotion was verified",
            gone.at.duration_since(promoted.at)
        );
        assert_eq!(route.weights(&green), [0, 50, 100], "{:#?}", route.states());
        for reason in ["Verifying", "Verified"] {
            assert_eq!(event(&h, reason).await.0, "Normal");
        }
    })
    .await;
}

/// Releases `image` with a verification that cannot pass in the test's time, turns the
/// error rate bad once verification began, and waits for the abort; checks what every switch
/// back must show: traffic on the old slot before the new one scales down, the old slot
/// whole and its revision stable throughout. `weights` are those the new slot had on the
/// route. With `kills`, the operator is killed at random moments: once before the
/// verification began, and `after_bad` times once the error rate is bad.
pub(crate) async fn failed_verification(
    h: &mut Harness,
    errors: &ErrorRate,
    image: &str,
    weights: &[i32],
    mut kills: Option<(&mut Kills, u32)>,
) {
    let green = h.slot(Slot::Green);
    let route = h.record_route().await;
    let green_slot = h.record_slot(Slot::Green).await;
    let blue_slot = h.record_slot(Slot::Blue).await;
    let stable = h.status().await.stable_revision.unwrap();

    h.set_image(image).await;
    let started = h.wait_release(&[&stable]).await;
    if let Some((kills, _)) = kills.as_mut() {
        kills.strike(h, 2000).await;
    }
    let verifying = wait_verifying(h, &started.revision, &stable).await;
    all_on_green_with_blue_warm(h, &route, &blue_slot, verifying.resource_version);
    errors.set(BAD).await;
    if let Some((kills, after_bad)) = kills {
        for _ in 0..after_bad {
            kills.strike(h, 1500).await;
        }
    }

    let ms = h.wait_degraded("PostPromotionAnalysisFailed").await;
    let status = ms.status.clone().unwrap();
    assert_eq!(
        status.aborted_revision.as_deref(),
        Some(started.revision.as_str())
    );
    assert_eq!(status.active_slot, Some(Slot::Blue));
    let message = &condition(&ms, "Degraded").unwrap().message;
    assert!(message.contains("error-rate"), "{message}");
    assert_traffic_back_before_scale_down(h, &route, &green_slot, &green).await;
    let blue = route.latest().unwrap().weight(&h.slot(Slot::Blue));
    assert_eq!(blue, 100, "{:#?}", route.states());
    assert_eq!(route.weights(&green), weights, "{:#?}", route.states());
    let stables: Vec<_> = h
        .log
        .values()
        .into_iter()
        .map(|s| s.stable_revision)
        .collect();
    assert!(
        stables
            .iter()
            .all(|s| s.as_deref() == Some(stable.as_str())),
        "the stable revision changed: {stables:?}"
    );
    let sizes: Vec<_> = blue_slot
        .values()
        .into_iter()
        .flatten()
        .map(|d| d.replicas)
        .collect();
    assert!(
        sizes.iter().all(|r| *r == 3),
        "the old slot was not kept whole: {sizes:?}"
    );
    let verified = h
        .events()
        .await
        .into_iter()
        .any(|(_, r, _)| r == "Verified");
    assert!(!verified, "a failed verification was told as passed");
}

#[tokio::test]
async fn a_failure_after_a_canary_promotion_switches_back_before_the_new_slot_scales_down() {
    let errors = ErrorRate::start().await;
    with_temp_ns(move |client, ns| async move {
        let flags = errors.flags();
        let spec = verified_canary("10m");
        let mut h = Harness::start_with_flags(&client, &ns, "reverted", spec, &flags).await;
        failed_verification(&mut h, &errors, V2, &[0, 50, 100, 0], None).await;
    })
    .await;
}

#[tokio::test]
async fn a_failure_after_a_blue_green_switch_switches_back_before_the_new_slot_scales_down() {
    let errors = ErrorRate::start().await;
    with_temp_ns(move |client, ns| async move {
        let flags = errors.flags();
        let mut rollout = blue_green(json!({
            "autoPromotionSeconds": 0,
            "postPromotionAnalysis": {"duration": "10m"}
        }));
        rollout["analysis"] = analysis("Abort");
        let spec = json!({"rollout": rollout});
        let mut h = Harness::start_with_flags(&client, &ns, "switched", spec, &flags).await;
        failed_verification(&mut h, &errors, V2, &[0, 100, 0], None).await;
        // Users reach the old slot through Service `<name>` as well.
        h.wait_service("switched", "selects the blue slot", |s| {
            selector(s).get("weir.dev/slot").map(String::as_str) == Some("blue")
        })
        .await;
    })
    .await;
}
