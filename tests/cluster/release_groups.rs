//! Release groups on a cluster: a backend and a frontend of `rollout.group: shop`, served by
//! one operator with the fake gateway, pass each step together (the faster waits, its step
//! done, for the slower), become stable together, abort together with no candidate scaled
//! down before both routes are back on stable, and carry on at the same step when the
//! operator is killed while they wait. A promote by hand ends one member's step, not the
//! group's; a member whose promotion is verified first waits for the others' verification,
//! and a failed one aborts the group.
//!
//! The checks compare resourceVersions across objects (a route, another Microservice's
//! status, a Deployment): every object of the test cluster is stored in one etcd, whose
//! revisions order all its writes.

use crate::release_holds::{BAD, ErrorRate, verified_canary};
use crate::support;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::runtime::watcher;
use serde_json::{Value, json};
use support::gateway::RouteRecorder;
use support::release::{
    Harness, Member, Recorder, SlotView, StatusView, canary, condition, scaled_down, traffic_back,
};
use support::with_temp_ns;
use weir::api::{Microservice, Phase, Release, Slot};
use weir::release::other;

pub(crate) const GROUP: &str = "shop";
const V2: &str = "registry.example/app:2";

/// The spec of a member of group `shop`: a canary with `steps` through the gateway.
pub(crate) fn member_spec(steps: Value) -> Value {
    let mut rollout = canary(steps);
    rollout["group"] = json!(GROUP);
    json!({"rollout": rollout})
}

/// Two weights, each after a pause; `pause` is the first pause's duration.
fn two_weights(pause: &str) -> Value {
    json!([
        {"setWeight": 20}, {"pause": {"duration": pause}},
        {"setWeight": 60}, {"pause": {"duration": "1s"}}
    ])
}

/// The weight each step of [`two_weights`] sets.
const TWO_WEIGHTS: [Option<i32>; 4] = [Some(20), None, Some(60), None];

/// The members of group `shop`: the backend's Harness runs the one operator and the fake
/// gateway of the namespace, the frontend joins it.
pub(crate) struct Shop {
    pub backend: Harness,
    pub frontend: Member,
}

impl Shop {
    pub(crate) async fn start(client: &Client, ns: &str, backend: Value, frontend: Value) -> Shop {
        let backend = Harness::start(client, ns, "backend", backend).await;
        let frontend = backend.join("frontend", frontend).await;
        Shop { backend, frontend }
    }

    /// The backend, then the frontend.
    pub(crate) fn members(&self) -> [&Member; 2] {
        [&self.backend, &self.frontend]
    }
}

/// A member's release, recorded from before it starts: its status, its route and its
/// candidate's Deployment.
pub(crate) struct Tracked {
    pub name: String,
    pub log: Recorder<StatusView>,
    pub route: RouteRecorder,
    /// The candidate slot's Deployment.
    pub slot: Recorder<Option<SlotView>>,
    /// The candidate slot's Service, the route's backend.
    pub candidate: String,
    pub stable: String,
    /// The revision released, once it started.
    pub revision: String,
}

impl Tracked {
    /// Records `member`'s next release; call before it starts.
    pub(crate) async fn before_release(member: &Member) -> Tracked {
        let status = member.status().await;
        let candidate = other(status.active_slot.expect("an active slot"));
        Tracked {
            name: member.name.clone(),
            log: member.record_status().await,
            route: member.record_route().await,
            slot: member.record_slot(candidate).await,
            candidate: member.slot(candidate),
            stable: status.stable_revision.expect("a stable revision"),
            revision: String::new(),
        }
    }
}

/// Records the next release of every member of `shop`, the backend's first.
pub(crate) async fn track(shop: &Shop) -> Vec<Tracked> {
    let mut tracked = Vec::new();
    for member in shop.members() {
        tracked.push(Tracked::before_release(member).await);
    }
    tracked
}

/// Sets `image` on every member, the backend's first (as one commit applied would), and
/// waits until each runs a release of it.
pub(crate) async fn release_all(shop: &Shop, tracked: &mut [Tracked], image: &str) {
    for member in shop.members() {
        member.set_image(image).await;
    }
    for (member, t) in shop.members().into_iter().zip(tracked) {
        t.revision = member.wait_release(&[&t.stable]).await.revision;
    }
}

/// How far a release got, as the group counts it: its step, or past the last once it
/// promotes.
fn position(release: &Release) -> i32 {
    if release.promoting {
        release.step_count + 1
    } else {
        release.step_index
    }
}

/// The status shows the release of `revision` past `at`: further on, there with its step
/// done, or promoted.
fn passed(status: &StatusView, revision: &str, at: i32) -> bool {
    match &status.release {
        Some(r) if r.revision == revision => position(r) > at || (position(r) == at && r.step_done),
        Some(_) => false,
        None => status.stable_revision.as_deref() == Some(revision),
    }
}

/// Asserts the group's barrier from `x`'s side: each time `x`'s route raised its
/// candidate's weight to that of step k (`weights[k]`; 100 is the promotion, after the last
/// step), `y`'s status at that resourceVersion showed its release past step k - 1; and `x`
/// became stable only once `y` carried all its traffic and waited too, or was stable.
pub(crate) fn assert_waited_for(x: &Tracked, y: &Tracked, weights: &[Option<i32>]) {
    let steps = weights.len() as i32;
    let y_at = |rv: u64| y.log.value_at(rv).expect("a status recorded before");
    let mut last = 0;
    for entry in x.route.entries() {
        let Some(state) = &entry.value else { continue };
        let weight = state.weight(&x.candidate);
        if weight > last {
            let step = match weight {
                100 => steps + 1,
                _ => weights
                    .iter()
                    .position(|w| *w == Some(weight))
                    .unwrap_or_else(|| panic!("no step sets weight {weight}"))
                    as i32,
            };
            let y_then = y_at(entry.resource_version);
            assert!(
                step == 0 || passed(&y_then, &y.revision, step - 1),
                "{} went to weight {weight} (step {step}, rv {}) before {} was past step {}: \
                 {:#?}\n{} then: {y_then:#?}",
                x.name,
                entry.resource_version,
                y.name,
                step - 1,
                x.route.states(),
                y.name,
            );
        }
        last = weight;
    }
    let stable = x.log.find(0, |s| {
        s.release.is_none() && s.stable_revision.as_deref() == Some(x.revision.as_str())
    });
    if let Some((_, stable)) = stable {
        let y_then = y_at(stable.resource_version);
        assert!(
            passed(&y_then, &y.revision, steps + 1),
            "{} became stable (rv {}) before {} carried all its traffic: {y_then:#?}",
            x.name,
            stable.resource_version,
            y.name
        );
    }
}

/// Asserts the barrier both ways between two members.
pub(crate) fn assert_in_lockstep(tracked: &[Tracked], weights: &[Option<i32>]) {
    assert_waited_for(&tracked[0], &tracked[1], weights);
    assert_waited_for(&tracked[1], &tracked[0], weights);
}

/// Asserts that no member's candidate scaled down before every member's route was back on
/// stable, written and accepted by the gateway.
pub(crate) async fn assert_all_back_before_any_scale_down(h: &Harness, tracked: &[Tracked]) {
    let mut backs = Vec::new();
    for t in tracked {
        let back = traffic_back(&t.route, h.gateway(), &t.name, &t.candidate).await;
        backs.push((t.name.as_str(), back.resource_version()));
    }
    for t in tracked {
        let stopped = scaled_down(&t.slot).await;
        for (name, back) in &backs {
            assert!(
                *back < stopped.resource_version,
                "{}'s candidate scaled down (rv {}) before {name}'s traffic was back on \
                 stable (rv {back}): {:#?}",
                t.name,
                stopped.resource_version,
                t.slot.entries()
            );
        }
    }
}

/// Waits until `member` ends Degraded by `reason`, its release of `t.revision` aborted and
/// the old revision still stable; returns the Degraded condition's message.
pub(crate) async fn wait_aborted(member: &Member, t: &Tracked, reason: &str) -> String {
    let ms = member.wait_degraded(reason).await;
    let status = ms.status.clone().expect("a status");
    assert_eq!(status.aborted_revision, Some(t.revision.clone()));
    assert_eq!(status.stable_revision, Some(t.stable.clone()));
    condition(&ms, "Degraded")
        .expect("Degraded")
        .message
        .clone()
}

/// While a member's release runs: its step, whether it is done, the reason of its
/// Progressing condition and what its Reconciling condition says it waits for.
#[derive(Clone, Debug, PartialEq)]
struct Gate {
    step: i32,
    step_done: bool,
    reason: String,
    waiting: String,
}

async fn record_gates(member: &Member) -> Recorder<Option<Gate>> {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", member.name));
    let what = format!("the gates of {}", member.name);
    Recorder::start(member.api.clone(), config, &what, |all| {
        let ms: &Microservice = all.first()?;
        let release = ms.status.as_ref()?.release.as_ref()?;
        Some(Gate {
            step: release.step_index,
            step_done: release.step_done,
            reason: condition(ms, "Progressing")?.reason.clone(),
            waiting: condition(ms, "Reconciling")?.message.clone(),
        })
    })
    .await
}

#[tokio::test]
async fn members_pass_each_step_together_and_become_stable_together() {
    with_temp_ns(|client, ns| async move {
        let backend = member_spec(two_weights("6s"));
        let frontend = member_spec(two_weights("2s"));
        let shop = Shop::start(&client, &ns, backend, frontend).await;
        let frontend_gates = record_gates(&shop.frontend).await;
        let mut tracked = track(&shop).await;
        release_all(&shop, &mut tracked, V2).await;
        for (member, t) in shop.members().into_iter().zip(&tracked) {
            member.wait_healthy_on(&t.revision).await;
        }

        assert_in_lockstep(&tracked, &TWO_WEIGHTS);
        // The frontend finished its 2 s pause first and waited, saying for whom...
        let waited = frontend_gates.find(0, |g| {
            g.as_ref().is_some_and(|g| {
                g.step == 1
                    && g.step_done
                    && g.reason == "WaitingForGroup"
                    && g.waiting
                        .contains("Waiting for backend of release group shop")
            })
        });
        assert!(waited.is_some(), "{:#?}", frontend_gates.values());
        // ...until the backend's 6 s were over.
        let (backend, frontend) = (&tracked[0], &tracked[1]);
        let (_, backend_paused) = backend
            .log
            .find(0, |s| s.step_index() == Some(1))
            .expect("the backend paused at step 1");
        let (_, frontend_60) = frontend
            .route
            .find_weight(0, &frontend.candidate, 60)
            .expect("the frontend at 60%");
        let (_, backend_20) = backend
            .route
            .find_weight(0, &backend.candidate, 20)
            .expect("the backend at 20%");
        assert!(
            backend_20.resource_version < frontend_60.resource_version,
            "the frontend's route went to 60% (rv {}) before the backend's showed 20% (rv {})",
            frontend_60.resource_version,
            backend_20.resource_version
        );
        let after = frontend_60.at.duration_since(backend_paused.at);
        assert!(
            after >= Duration::from_secs(4),
            "the frontend went to 60% {after:?} after the backend's 6 s pause began"
        );
        for (member, t) in shop.members().into_iter().zip(&tracked) {
            let weights = t.route.weights(&t.candidate);
            assert_eq!(weights, [0, 20, 60, 100], "{}", t.name);
            member.assert_only_forward(&t.revision);
        }
    })
    .await;
}

/// Both members released, each paused at 20% (confirmed) until a promote: steps
/// [`TWO_WEIGHTS`] with `pause: {}`.
async fn both_paused_at_20_percent(client: &Client, ns: &str) -> (Shop, Vec<Tracked>) {
    let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]);
    let spec = member_spec(steps);
    let shop = Shop::start(client, ns, spec.clone(), spec).await;
    let mut tracked = track(&shop).await;
    release_all(&shop, &mut tracked, V2).await;
    for member in shop.members() {
        member
            .wait_release_where("paused at 20%, confirmed", |phase, r| {
                phase == Some(Phase::Paused)
                    && r.step_index == 1
                    && r.weight == 20
                    && r.weight_verified
            })
            .await;
    }
    (shop, tracked)
}

#[tokio::test]
async fn an_abort_of_one_member_aborts_both_and_no_candidate_goes_before_both_routes_are_back() {
    with_temp_ns(|client, ns| async move {
        let (shop, tracked) = both_paused_at_20_percent(&client, &ns).await;

        let value = shop.backend.act("abort").await;
        shop.backend.wait_handled(&value).await;
        wait_aborted(&shop.backend, &tracked[0], "Aborted").await;
        let message = wait_aborted(&shop.frontend, &tracked[1], "GroupAborted").await;
        assert!(
            message.contains("backend") && message.contains(GROUP),
            "the frontend's abort names the member that aborted: {message}"
        );
        assert_all_back_before_any_scale_down(&shop.backend, &tracked).await;
        for (member, t) in shop.members().into_iter().zip(&tracked) {
            assert_eq!(t.route.weights(&t.candidate), [0, 20, 0], "{}", t.name);
            let status = member.status().await;
            assert_eq!(status.active_slot, Some(Slot::Blue), "{status:#?}");
        }
        assert_in_lockstep(&tracked, &TWO_WEIGHTS);
    })
    .await;
}

/// Asserts that, from entry `from` of its status log on, `t`'s release stayed at step
/// `step`, begun at `started`, until it moved past it: a restarted operator neither moved it
/// back nor began the step again.
fn assert_stayed_at(t: &Tracked, from: usize, step: i32, started: &MicroTime) {
    let seen = t.log.values();
    for status in &seen[from..] {
        let Some(r) = status.release.as_ref().filter(|r| r.revision == t.revision) else {
            continue;
        };
        if position(r) > step {
            break;
        }
        assert!(
            r.step_index == step && r.step_started_at == *started,
            "{} left step {step} begun at {started:?}: {seen:#?}",
            t.name
        );
    }
}

#[tokio::test]
async fn members_waiting_at_a_step_resume_it_together_after_the_operator_is_killed() {
    with_temp_ns(|client, ns| async move {
        let backend = member_spec(two_weights("20s"));
        let frontend = member_spec(two_weights("1s"));
        let mut shop = Shop::start(&client, &ns, backend, frontend).await;
        let mut tracked = track(&shop).await;
        release_all(&shop, &mut tracked, V2).await;
        // The frontend finished its pause and waits; the backend is in its 20 s pause.
        let waiting = shop
            .frontend
            .wait_release_where("waiting for the backend at step 1", |_, r| {
                r.step_index == 1 && r.step_done
            })
            .await;
        let paused = shop
            .backend
            .wait_release_where("in its pause at step 1", |_, r| {
                r.step_index == 1 && r.weight == 20 && r.weight_verified
            })
            .await;
        let at_kill = tracked.iter().map(|t| t.log.entries().len() - 1);
        let at_kill: Vec<usize> = at_kill.collect();

        shop.backend.kill_and_restart_operator().await;
        let restarted = tokio::time::Instant::now();

        let before = [&paused, &waiting];
        for (i, (member, t)) in shop.members().into_iter().zip(&tracked).enumerate() {
            member.wait_healthy_on(&t.revision).await;
            let started = &support::release::release(before[i]).step_started_at;
            assert_stayed_at(t, at_kill[i], 1, started);
            member.assert_only_forward(&t.revision);
        }
        // The new operator moved both on: the kill came while they waited at step 1.
        for t in &tracked {
            let (_, moved) = t
                .log
                .find(0, |s| s.step_index().is_some_and(|i| i >= 2))
                .expect("past step 1");
            assert!(moved.at > restarted, "{} moved on before the kill", t.name);
        }
        assert_in_lockstep(&tracked, &TWO_WEIGHTS);
    })
    .await;
}

#[tokio::test]
async fn a_promote_of_one_member_ends_its_step_and_it_waits_for_the_others() {
    with_temp_ns(|client, ns| async move {
        let (shop, tracked) = both_paused_at_20_percent(&client, &ns).await;

        // A promote ends the frontend's pause, not the backend's: the frontend waits at 20%.
        let value = shop.frontend.act("promote").await;
        let handled = shop.frontend.wait_handled(&value).await;
        let frontend = &tracked[1];
        let release = handled.value.release.expect("the release goes on");
        assert!(
            release.step_index == 1 && release.step_done,
            "the promote moved the frontend past its step while the backend's was not done: \
             {release:#?}\nroute: {:#?}",
            frontend.route.states()
        );
        frontend
            .route
            .assert_unchanged_for(Duration::from_secs(3))
            .await;
        // The backend's promote lets both go on.
        let value = shop.backend.act("promote").await;
        shop.backend.wait_handled(&value).await;
        for member in shop.members() {
            member.wait_paused_at(3).await;
        }
        for t in &tracked {
            assert_eq!(t.route.weights(&t.candidate), [0, 20, 60], "{}", t.name);
        }
        assert_in_lockstep(&tracked, &TWO_WEIGHTS);
    })
    .await;
}

/// A member of group `shop` whose promotion is verified for `duration` by the error rate,
/// or, when `healthy`, by a query that always passes.
fn verified_member(duration: &str, healthy: bool) -> Value {
    let mut spec = verified_canary(duration);
    spec["rollout"]["group"] = json!(GROUP);
    if healthy {
        spec["rollout"]["analysis"]["metrics"][0]["prometheus"]["query"] = json!("vector(0)");
    }
    spec
}

#[tokio::test]
async fn members_verify_their_promotions_together_and_a_failure_aborts_both() {
    let errors = ErrorRate::start().await;
    with_temp_ns(move |client, ns| async move {
        let flags = errors.flags();
        let spec = verified_member("10m", false);
        let backend = Harness::start_with_flags(&client, &ns, "backend", spec, &flags).await;
        let frontend = backend.join("frontend", verified_member("3s", true)).await;
        let shop = Shop { backend, frontend };
        let mut tracked = track(&shop).await;
        release_all(&shop, &mut tracked, V2).await;
        for t in &tracked {
            let all_on_new = |s: &StatusView| {
                let release = s.release.as_ref();
                release.is_some_and(|r| r.promoting && r.weight == 100 && r.weight_verified)
            };
            t.log
                .wait_seen("all traffic on the new version", all_on_new)
                .await;
        }

        // Both verify at once. The frontend's 3 s pass long before the backend's 10
        // minutes: it does not become stable alone.
        let frontend = &tracked[1];
        let stable = frontend.log.wait_seen("the frontend stable", |s| {
            s.stable_revision.as_deref() == Some(frontend.revision.as_str())
        });
        let alone = tokio::time::timeout(Duration::from_secs(15), stable).await;
        assert!(
            alone.is_err(),
            "the frontend became stable while the backend's promotion was still verified: \
             {:#?}",
            tracked[0].log.latest()
        );
        for t in &tracked {
            let verified = t.log.find(0, |s| {
                s.release
                    .as_ref()
                    .is_some_and(|r| r.verifying_since.is_some())
            });
            assert!(
                verified.is_some(),
                "{} did not begin its verification while the other member's ran: {:#?}",
                t.name,
                t.log.latest()
            );
        }

        // The backend's verification fails: both switch back.
        errors.set(BAD).await;
        wait_aborted(&shop.backend, &tracked[0], "PostPromotionAnalysisFailed").await;
        wait_aborted(&shop.frontend, &tracked[1], "GroupAborted").await;
        assert_all_back_before_any_scale_down(&shop.backend, &tracked).await;
    })
    .await;
}
