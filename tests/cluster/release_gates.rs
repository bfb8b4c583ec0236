//! Release windows and freezes: outside every `rollout.windows` entry, or under a freeze
//! (the namespace's `weir.dev/freeze` annotation, or the operator's `--freeze`), a release
//! neither starts nor adds exposure; it waits where it is, Paused with reason OutsideWindow
//! or Frozen. An abort, a person's promote and a rollback to the warm revision go through;
//! a lifted freeze is seen within the 30 s re-check, and a window wakes the release when it
//! opens.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use support::release::{Harness, Recorder, canary, condition, describe, phase, release, wait_ms};
use support::with_temp_ns;
use tokio::time::Instant;
use weir::api::{Microservice, Phase, Slot};

const V1: &str = "registry.example/app:1";
const V2: &str = "registry.example/app:2";
const V3: &str = "registry.example/app:3";
/// The namespace annotation that freezes its releases; its value is the reason.
const FREEZE: &str = "weir.dev/freeze";
const FROZEN: &str = "Frozen";
const OUTSIDE_WINDOW: &str = "OutsideWindow";
/// How long a test watches for something a closed gate must not let happen.
const HOLD: Duration = Duration::from_secs(6);
/// How often a frozen release looks again (a lifted annotation triggers nothing itself).
const FROZEN_RECHECK: Duration = Duration::from_secs(30);

/// Sets (Some) or removes (None) the freeze annotation on namespace `ns`.
async fn set_freeze(client: &Client, ns: &str, reason: Option<&str>) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let patch = json!({"metadata": {"annotations": {FREEZE: reason}}});
    namespaces
        .patch(ns, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("set {FREEZE}={reason:?} on namespace {ns}: {e}"));
}

fn message(ms: &Microservice) -> &str {
    ms.status
        .as_ref()
        .and_then(|s| s.message.as_deref())
        .unwrap_or_default()
}

/// Paused for the current generation, with `reason` on Ready and Progressing and `words`
/// in the status message.
fn gated(ms: &Microservice, reason: &str, words: &str) -> bool {
    let status = ms.status.as_ref();
    status.and_then(|s| s.observed_generation) == ms.metadata.generation
        && phase(ms) == Some(Phase::Paused)
        && condition(ms, "Ready").is_some_and(|c| c.reason == reason)
        && condition(ms, "Progressing").is_some_and(|c| c.reason == reason)
        && message(ms).contains(words)
}

async fn wait_gated(h: &Harness, reason: &str, words: &str) -> Microservice {
    let what = format!("Paused with reason {reason}, the message saying {words:?}");
    h.wait(&what, |ms| gated(ms, reason, words)).await
}

/// Fails if any state `recorder` saw, or sees within `window`, satisfies `happened`: a
/// bounded wait for what must not happen.
async fn never<T>(
    recorder: &Recorder<T>,
    window: Duration,
    what: &str,
    happened: impl Fn(&T) -> bool,
) where
    T: Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static,
{
    let seen = tokio::time::timeout(window, recorder.wait_seen(what, happened)).await;
    if let Ok((index, entry)) = seen {
        panic!(
            "{what}: state {index} (rv {}) {:#?}; every state: {:#?}",
            entry.resource_version,
            entry.value,
            recorder.values()
        );
    }
}

/// The reason of the Ready condition, every one it had.
async fn record_ready_reason(h: &Harness) -> Recorder<Option<String>> {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", h.name));
    Recorder::start(h.api.clone(), config, "the Ready reason", |all| {
        all.first()
            .and_then(|ms| condition(ms, "Ready").map(|c| c.reason.clone()))
    })
    .await
}

/// The candidate slot asks for pods.
fn runs(slot: &Option<support::release::SlotView>) -> bool {
    slot.as_ref().is_some_and(|d| d.replicas > 0)
}

/// `at` to the minute, rounded down.
fn to_the_minute(at: Timestamp) -> Timestamp {
    let second = at.as_second();
    Timestamp::from_second(second - second.rem_euclid(60)).expect("a valid instant")
}

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// `HH:MM` of `at` in UTC.
fn hh_mm(at: Timestamp) -> String {
    at.to_zoned(TimeZone::UTC).strftime("%H:%M").to_string()
}

/// A window every day from `start` to `end` (across midnight when `end` is the next day).
fn window(start: Timestamp, end: Timestamp) -> Value {
    json!({"start": hh_mm(start), "end": hh_mm(end), "timeZone": "UTC"})
}

/// A short canary at 50%.
fn half_then_done() -> Value {
    canary(json!([{"setWeight": 50}, {"pause": {"duration": "1s"}}]))
}

#[tokio::test]
async fn a_namespace_freeze_starts_no_release_until_it_is_lifted() {
    with_temp_ns(|client, ns| async move {
        let spec = json!({"rollout": half_then_done()});
        let h = Harness::start(&client, &ns, "frozen", spec).await;
        let (blue, green) = (h.slot(Slot::Blue), h.slot(Slot::Green));
        let route = h.record_route().await;
        route
            .wait_route("all traffic on blue", |r| r.weight(&blue) == 100)
            .await;
        let green_slot = h.record_slot(Slot::Green).await;
        let green_pods = h.record_pods(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();

        set_freeze(&client, &ns, Some("quarter-end")).await;
        h.set_image(V2).await;
        let ms = wait_gated(&h, FROZEN, "quarter-end").await;
        let status = ms.status.clone().unwrap();
        assert!(
            status.release.is_none() && status.candidate_revision.is_none(),
            "a release started while frozen: {}",
            describe(&ms)
        );
        assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
        assert_eq!(status.active_slot, Some(Slot::Blue));

        // Frozen a while: nothing of the new version runs, the route stays on stable.
        never(
            &green_slot,
            HOLD,
            "the candidate slot given pods while frozen",
            runs,
        )
        .await;
        assert!(
            green_pods.values().iter().all(|p| p.pods == 0),
            "candidate pods while frozen: {:#?}",
            green_pods.values()
        );
        assert!(
            route.states().iter().all(|r| r.weight(&blue) == 100
                && r.weight(&green) == 0
                && !r.has_header_rule()
                && r.mirror.is_none()),
            "the route left stable while frozen: {:#?}",
            route.states()
        );
        assert!(
            h.log
                .values()
                .iter()
                .all(|s| s.release.is_none() && s.candidate_revision.is_none()),
            "{:#?}",
            h.log.values()
        );
        assert!(gated(&h.ms().await, FROZEN, "quarter-end"));

        // Lifted: the next re-check (at most 30 s away) starts the release.
        let lifted = Instant::now();
        set_freeze(&client, &ns, None).await;
        let started = h.wait_release(&[&stable]).await;
        let (_, first) = h
            .log
            .wait_seen("the release started", |s| s.release.is_some())
            .await;
        let waited = first.at.duration_since(lifted);
        assert!(
            waited <= FROZEN_RECHECK + Duration::from_secs(15),
            "the lifted freeze was seen only after {waited:?}"
        );
        h.wait_healthy_on(&started.revision).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 50, 100], "{:#?}", route.states());
    })
    .await;
}

#[tokio::test]
async fn a_freeze_mid_release_holds_the_weight_and_an_abort_still_goes_through() {
    with_temp_ns(|client, ns| async move {
        // The pause is long enough for the test to freeze the namespace before it ends.
        let pause = Duration::from_secs(5);
        let steps = json!([
            {"setWeight": 20}, {"pause": {"duration": "5s"}},
            {"setWeight": 60}, {"pause": {}}
        ]);
        let h = Harness::start(&client, &ns, "incident", json!({"rollout": canary(steps)})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;

        h.set_image(V2).await;
        let ms = h
            .wait_release_where("at the pause with 20% confirmed", |_, r| {
                r.step_index == 1 && r.weight == 20 && r.weight_verified
            })
            .await;
        let paused = release(&ms).clone();
        set_freeze(&client, &ns, Some("incident 42")).await;
        let pause_ends = paused
            .step_started_at
            .0
            .checked_add(SignedDuration::try_from(pause).unwrap())
            .unwrap();
        assert!(
            Timestamp::now() < pause_ends,
            "the test froze the namespace only after the pause had ended ({pause_ends}): too \
             slow to test the freeze"
        );

        // Past the pause, 60% would add exposure: the release waits at 20%.
        let ms = wait_gated(&h, FROZEN, "incident 42").await;
        let held = release(&ms);
        assert_eq!(
            (held.step_index, held.weight, held.returning.is_none()),
            (1, 20, true),
            "{}",
            describe(&ms)
        );
        never(
            &route,
            2 * pause,
            "more than 20% on the candidate while frozen",
            |r| r.as_ref().is_some_and(|r| r.weight(&green) > 20),
        )
        .await;
        let ms = h.ms().await;
        assert!(gated(&ms, FROZEN, "incident 42"), "{}", describe(&ms));
        assert_eq!(release(&ms).step_index, 1, "{}", describe(&ms));

        // An abort reduces exposure: it goes through the freeze.
        let value = h.act("abort").await;
        h.wait_handled(&value).await;
        route
            .wait_route("traffic back on stable", |r| r.weight(&green) == 0)
            .await;
        let ms = h.wait_degraded("Aborted").await;
        assert_eq!(
            ms.status.as_ref().unwrap().aborted_revision.as_deref(),
            Some(paused.revision.as_str())
        );
        assert_eq!(route.weights(&green), [0, 20, 0], "{:#?}", route.states());
    })
    .await;
}

#[tokio::test]
async fn a_person_promotes_through_a_freeze_and_the_held_release_outlives_its_deadline() {
    with_temp_ns(|client, ns| async move {
        let deadline = Duration::from_secs(20);
        let mut rollout = canary(json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]));
        rollout["progressDeadlineSeconds"] = json!(deadline.as_secs());
        let h = Harness::start(&client, &ns, "decided", json!({"rollout": rollout})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;

        h.set_image(V2).await;
        let ms = h.wait_paused_at(1).await;
        let revision = release(&ms).revision.clone();
        set_freeze(&client, &ns, Some("incident 7")).await;

        // A person's promote is their decision: it takes the release on to 60%.
        let value = h.act("promote").await;
        h.wait_handled(&value).await;
        route
            .wait_route("60% on the candidate", |r| r.weight(&green) == 60)
            .await;
        // Every step is done; the promotion would add exposure, so it waits.
        let ms = h
            .wait("held before the promotion, frozen", |ms| {
                gated(ms, FROZEN, "incident 7")
                    && ms
                        .status
                        .as_ref()
                        .and_then(|s| s.release.as_ref())
                        .is_some_and(|r| r.step_index == 3 && r.weight == 60 && !r.promoting)
            })
            .await;
        let held = release(&ms).clone();

        // Held for longer than the progress deadline: no deadline runs while held, and the
        // promotion does not begin.
        never(
            &h.log,
            deadline + Duration::from_secs(5),
            "the held release aborted or promoted while frozen",
            |s| {
                s.aborted_revision.is_some()
                    || s.release
                        .as_ref()
                        .is_some_and(|r| r.returning.is_some() || r.promoting)
            },
        )
        .await;
        assert!(
            route.states().iter().all(|r| r.weight(&green) <= 60),
            "{:#?}",
            route.states()
        );

        // Lifted: the promotion goes on, however long the release was held.
        set_freeze(&client, &ns, None).await;
        let ms = h
            .wait("promoted, or aborted", |ms| {
                ms.status.as_ref().is_some_and(|s| {
                    s.aborted_revision.is_some()
                        || (s.release.is_none() && s.stable_revision.as_deref() == Some(&revision))
                })
            })
            .await;
        let status = ms.status.as_ref().unwrap();
        assert!(
            status.aborted_revision.is_none(),
            "the release was aborted once the freeze was lifted, having been held since {} \
             (the progress deadline is {deadline:?}): {}",
            held.step_started_at.0,
            describe(&ms)
        );
        h.wait_healthy_on(&revision).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(
            route.weights(&green),
            [0, 20, 60, 100],
            "{:#?}",
            route.states()
        );
    })
    .await;
}

#[tokio::test]
async fn a_rollback_to_the_warm_revision_goes_through_a_freeze() {
    with_temp_ns(|client, ns| async move {
        let mut rollout = half_then_done();
        // The old slot stays warm for the whole test.
        rollout["canary"]["scaleDownDelaySeconds"] = json!(600);
        let h = Harness::start(&client, &ns, "warm", json!({"rollout": rollout})).await;
        let (blue, green) = (h.slot(Slot::Blue), h.slot(Slot::Green));
        let route = h.record_route().await;
        let first = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let second = h.wait_release(&[&first]).await.revision;
        h.wait_healthy_on(&second).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        h.wait_ready_pods(Slot::Blue, 3).await;

        set_freeze(&client, &ns, Some("incident 9")).await;
        let reasons = record_ready_reason(&h).await;
        h.set_image(V1).await;
        let ms = h
            .wait("back on the first revision, in blue", |ms| {
                ms.status.as_ref().is_some_and(|s| {
                    s.phase == Some(Phase::Healthy)
                        && s.release.is_none()
                        && s.stable_revision.as_deref() == Some(&first)
                        && s.active_slot == Some(Slot::Blue)
                })
            })
            .await;
        route
            .wait_route("all traffic back on blue", |r| r.weight(&blue) == 100)
            .await;
        assert!(
            reasons.values().iter().flatten().all(|r| r != FROZEN),
            "the rollback was held by the freeze: {:#?}\n{}",
            reasons.values(),
            describe(&ms)
        );

        // The freeze is in force: a new revision waits.
        h.set_image(V3).await;
        let ms = wait_gated(&h, FROZEN, "incident 9").await;
        assert!(ms.status.unwrap().release.is_none());
    })
    .await;
}

#[tokio::test]
async fn the_operators_freeze_flag_holds_every_new_release_with_its_reason() {
    with_temp_ns(|client, ns| async move {
        let spec = json!({"rollout": half_then_done()});
        // The first version is a deploy, not a release: the freeze does not hold it.
        let flags = ["--freeze", "audit"];
        let h = Harness::start_with_flags(&client, &ns, "audited", spec, &flags).await;
        let (blue, green) = (h.slot(Slot::Blue), h.slot(Slot::Green));
        let route = h.record_route().await;
        let green_slot = h.record_slot(Slot::Green).await;

        h.set_image(V2).await;
        let ms = wait_gated(&h, FROZEN, "releases are frozen: audit").await;
        assert!(ms.status.unwrap().release.is_none());
        never(
            &green_slot,
            HOLD,
            "the candidate slot given pods while frozen",
            runs,
        )
        .await;
        assert!(
            route
                .states()
                .iter()
                .all(|r| r.weight(&blue) == 100 && r.weight(&green) == 0),
            "{:#?}",
            route.states()
        );
        assert!(gated(&h.ms().await, FROZEN, "audit"));
    })
    .await;
}

#[tokio::test]
async fn without_namespace_freezes_the_annotation_holds_nothing() {
    with_temp_ns(|client, ns| async move {
        let spec = json!({"rollout": half_then_done()});
        let flags = ["--namespace-freeze=false"];
        let h = Harness::start_with_flags(&client, &ns, "unfrozen", spec, &flags).await;
        let reasons = record_ready_reason(&h).await;
        let stable = h.status().await.stable_revision.unwrap();

        set_freeze(&client, &ns, Some("ignored")).await;
        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&started.revision).await;
        assert!(
            reasons.values().iter().flatten().all(|r| r != FROZEN),
            "{:#?}",
            reasons.values()
        );
    })
    .await;
}

#[tokio::test]
async fn outside_its_window_a_release_waits_and_starts_once_a_window_includes_now() {
    with_temp_ns(|client, ns| async move {
        // Every day, opening two hours from now: closed now.
        let opens = to_the_minute(Timestamp::now()) + SignedDuration::from_hours(2);
        let closes = opens + SignedDuration::from_hours(1);
        let mut rollout = half_then_done();
        rollout["windows"] = json!([window(opens, closes)]);
        // The first version is a deploy, not a release: the window does not hold it.
        let h = Harness::start(&client, &ns, "office", json!({"rollout": rollout})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let green_slot = h.record_slot(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let ms = wait_gated(&h, OUTSIDE_WINDOW, &format!("the next opens at {opens}")).await;
        let hours = format!("every day {}-{} UTC", hh_mm(opens), hh_mm(closes));
        assert!(message(&ms).contains(&hours), "{}", describe(&ms));
        assert!(ms.status.unwrap().release.is_none());
        never(
            &green_slot,
            HOLD,
            "the candidate slot given pods outside the window",
            runs,
        )
        .await;
        assert!(h.log.values().iter().all(|s| s.release.is_none()));

        // A window from a minute ago for ten minutes (across midnight if need be).
        let now = to_the_minute(Timestamp::now());
        let open_now = window(now - minutes(1), now + minutes(10));
        h.edit(json!({"rollout": {"windows": [open_now]}})).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&started.revision).await;
        route
            .wait_route("all traffic on green", |r| r.weight(&green) == 100)
            .await;
        assert_eq!(route.weights(&green), [0, 50, 100], "{:#?}", route.states());
    })
    .await;
}

#[tokio::test]
async fn a_release_waiting_for_its_window_starts_when_the_window_opens() {
    with_temp_ns(|client, ns| async move {
        let spec = json!({"rollout": half_then_done()});
        let h = Harness::start(&client, &ns, "nightly", spec).await;
        let stable = h.status().await.stable_revision.unwrap();

        // The window opens at the first full minute at least 30 s away, for ten minutes.
        let opens = to_the_minute(Timestamp::now() + SignedDuration::from_secs(90));
        let closes = opens + minutes(10);
        let windows = json!([window(opens, closes)]);
        h.edit(json!({"image": V2, "rollout": {"windows": windows}}))
            .await;
        wait_gated(&h, OUTSIDE_WINDOW, &format!("the next opens at {opens}")).await;

        // Nothing but the window's opening wakes the release (the resync is minutes away).
        let until_open =
            Duration::try_from(opens.duration_since(Timestamp::now())).unwrap_or_default();
        let what = format!("a release started once the window opened at {opens}");
        let ms = wait_ms(
            &h.api,
            &h.name,
            until_open + Duration::from_secs(30),
            &what,
            |ms| ms.status.as_ref().is_some_and(|s| s.release.is_some()),
        )
        .await;
        let started = release(&ms).clone();
        assert_ne!(started.revision, stable);
        let began = started
            .step_history
            .first()
            .map_or(started.step_started_at.0, |s| s.started_at.0);
        assert!(
            began >= opens,
            "the release started at {began}, before its window opened at {opens}"
        );
        h.wait_healthy_on(&started.revision).await;
    })
    .await;
}
