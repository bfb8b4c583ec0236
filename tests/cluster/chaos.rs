//! Fault injection: releases carry on, and end where they should, while the operator is
//! SIGKILLed at random moments (a release group's members in step, a failed verification
//! switched back before the new slot goes), the API server and etcd restart, the leader of
//! two replicas dies, and Prometheus goes down or hangs.
//!
//! Each test has a short form (run by `make test`) and a long form (`WEIR_CHAOS=long`, run by
//! `make chaos`). `WEIR_CHAOS_SEED` replays the random moments of a run (each test prints its
//! seed). The tests that restart the API server and etcd hold the cluster alone
//! (`support::exclusive`); the others share it, so the binary needs no `--test-threads 1`.

use crate::release_groups::{
    Shop, assert_all_back_before_any_scale_down, assert_in_lockstep, member_spec, release_all,
    track, wait_aborted,
};
use crate::release_holds::{ErrorRate, failed_verification, verified_canary};
use crate::support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use serde_json::{Value, json};
use support::audit;
use support::chaos::{
    self, Component, FlakyPrometheus, Kills, Mode, Rng, TrafficWatch, completed_at,
    expected_children, identity_of, pick, record_lease, tenures, wait_children,
};
use support::operator::Operator;
use support::prometheus::{Exporter, Prometheus};
use support::release::{
    DEADLINE, Harness, LateReadiness, Recorder, blue_green, canary, condition, wait_ms,
};
use support::{eventually, in_temp_ns, with_temp_ns};
use weir::api::{Microservice, Outcome, Phase, Slot};
use weir::release::other;

/// The pod annotation that keeps pods unready until `LateReadiness` makes them ready.
fn unready_pods() -> Value {
    json!({"annotations": {"test.weir.dev/ready": "false"}})
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Strategy {
    Canary,
    BlueGreen,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    /// A promote at the release's last pause; it ends Healthy on the new revision.
    Promote,
    /// An abort at a random moment; it ends Degraded on the old revision.
    Abort,
}

/// One release of a chaos run: its strategy, how it ends, how many SIGKILLs it takes.
#[derive(Clone, Copy, Debug)]
struct Plan {
    strategy: Strategy,
    end: End,
    kills: u64,
}

const fn plan(strategy: Strategy, end: End, kills: u64) -> Plan {
    Plan {
        strategy,
        end,
        kills,
    }
}

const SHORT_PLANS: [Plan; 3] = [
    plan(Strategy::Canary, End::Promote, 1),
    plan(Strategy::BlueGreen, End::Promote, 1),
    plan(Strategy::Canary, End::Abort, 1),
];

/// Twenty kills over eight releases.
const LONG_PLANS: [Plan; 8] = [
    plan(Strategy::Canary, End::Promote, 3),
    plan(Strategy::BlueGreen, End::Promote, 3),
    plan(Strategy::Canary, End::Abort, 2),
    plan(Strategy::BlueGreen, End::Abort, 2),
    plan(Strategy::Canary, End::Promote, 3),
    plan(Strategy::BlueGreen, End::Promote, 2),
    plan(Strategy::Canary, End::Promote, 3),
    plan(Strategy::BlueGreen, End::Promote, 2),
];

/// Canary steps that move traffic in three weights and end at a pause until a promote, so
/// that an abort always finds the release running.
fn canary_rollout() -> Value {
    let mut rollout = canary(json!([
        {"setWeight": 25}, {"pause": {"duration": "1s"}},
        {"setWeight": 50}, {"pause": {"duration": "1s"}},
        {"setWeight": 75}, {"pause": {}}
    ]));
    rollout["blueGreen"] = Value::Null;
    rollout
}

fn blue_green_rollout() -> Value {
    let mut rollout = blue_green(json!({}));
    rollout["canary"] = Value::Null;
    rollout
}

impl Strategy {
    fn rollout(self) -> Value {
        match self {
            Strategy::Canary => canary_rollout(),
            Strategy::BlueGreen => blue_green_rollout(),
        }
    }

    /// The step where the release waits for a promote.
    fn last_pause(self) -> i32 {
        match self {
            Strategy::Canary => 5,
            Strategy::BlueGreen => 1,
        }
    }
}

/// Waits until the operator has seen generation `generation` of the spec.
async fn wait_observed(h: &Harness, generation: i64) {
    h.wait(&format!("generation {generation} observed"), |ms| {
        ms.status
            .as_ref()
            .is_some_and(|s| s.observed_generation == Some(generation))
    })
    .await;
}

#[tokio::test]
async fn releases_end_where_they_should_while_the_operator_is_killed_at_random_moments() {
    with_temp_ns(|client, ns| async move {
        let mut rng = Rng::new("operator kills");
        let name = "phoenix";
        let total = 4;
        // Every pod becomes ready 0.8 s after it runs, so weights wait for pods.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let selector = format!("app.kubernetes.io/instance={name}");
        let _late = LateReadiness::start(pods, &selector, Duration::from_millis(800));
        let spec = json!({
            "replicas": total, "pod": unready_pods(), "rollout": canary_rollout()
        });
        let mut h = Harness::start(&client, &ns, name, spec).await;
        let traffic = TrafficWatch::start(&h).await;
        let mut strategy = Strategy::Canary;

        for (i, plan) in pick(&SHORT_PLANS[..], &LONG_PLANS[..]).iter().enumerate() {
            eprintln!("release {i}: {plan:?}");
            if plan.strategy != strategy {
                let generation = h.edit(json!({"rollout": plan.strategy.rollout()})).await;
                wait_observed(&h, generation).await;
                strategy = plan.strategy;
            }
            let before = h.status().await;
            let (stable, active) = (
                before.stable_revision.clone().unwrap(),
                before.active_slot.unwrap(),
            );
            h.set_image(&format!("registry.example/app:{}", i + 2))
                .await;
            let started = h.wait_release(&[&stable]).await;

            // The kills, and the promote or abort at a random place among them.
            let act_at = rng.between(0, plan.kills);
            let mut action = None;
            for k in 0..=plan.kills {
                if k == act_at {
                    if plan.end == End::Promote {
                        h.wait_paused_at(strategy.last_pause()).await;
                    }
                    let verb = match plan.end {
                        End::Promote => "promote",
                        End::Abort => "abort",
                    };
                    action = Some(h.act(verb).await);
                }
                if k < plan.kills {
                    tokio::time::sleep(rng.millis(0, 2000)).await;
                    h.kill_and_restart_operator().await;
                }
            }
            h.wait_handled(&action.expect("the action was set")).await;

            let (aborted, now_active) = match plan.end {
                End::Promote => {
                    let done = h.wait_healthy_on(&started.revision).await;
                    let status = done.status.unwrap();
                    assert_eq!(status.active_slot, Some(other(active)), "{status:#?}");
                    (false, other(active))
                }
                End::Abort => {
                    let done = h.wait_degraded("Aborted").await;
                    let status = done.status.unwrap();
                    assert_eq!(status.active_slot, Some(active), "{status:#?}");
                    assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
                    assert_eq!(
                        status.aborted_revision.as_deref(),
                        Some(started.revision.as_str())
                    );
                    (true, active)
                }
            };
            h.assert_only_forward(&started.revision);
            let backend = h.slot(now_active);
            traffic
                .route
                .wait_route(&format!("all traffic on {backend}"), |r| {
                    r.weight(&backend) == 100
                })
                .await;
            let expected = expected_children(name, now_active, total, aborted);
            wait_children(&client, &ns, &expected).await;
        }
        let active = h.status().await.active_slot.unwrap();
        traffic.assert_weights_carried(total as usize, active).await;
    })
    .await;
}

/// A component of the control plane to restart.
#[derive(Clone, Copy, Debug)]
enum Outage {
    ApiServer,
    Etcd,
}

#[tokio::test]
async fn a_release_finishes_across_restarts_of_etcd() {
    releases_across(Outage::Etcd, pick(1, 3)).await;
}

#[tokio::test]
async fn a_release_finishes_across_restarts_of_the_api_server() {
    releases_across(Outage::ApiServer, pick(1, 4)).await;
}

/// `count` releases, each with `outage` (SIGKILL, a random pause, the same command again)
/// at a random moment: every one finishes, with the same operator process, the children
/// the final state expects and no weight on pods that cannot carry it.
async fn releases_across(outage: Outage, count: usize) {
    // Restarting the API server or etcd stops the cluster every test of this binary uses.
    let _cluster = support::exclusive().await;
    let component = move || match outage {
        Outage::ApiServer => Component::api_server(),
        Outage::Etcd => Component::etcd(),
    };
    // Refuses early, before the namespace exists, when the cluster was not started by
    // hack/cluster-up.sh.
    component().pid();
    in_temp_ns(move |client, ns| async move {
        let mut rng = Rng::new(&format!("{outage:?} restarts"));
        let name = "steadfast";
        let total = 4;
        let steps = json!([
            {"setWeight": 25}, {"pause": {"duration": "2s"}},
            {"setWeight": 50}, {"pause": {"duration": "2s"}}
        ]);
        let spec = json!({"replicas": total, "rollout": canary(steps)});
        let mut h = Harness::start(&client, &ns, name, spec).await;
        let traffic = TrafficWatch::start(&h).await;

        for i in 0..count {
            let before = h.status().await;
            let stable = before.stable_revision.clone().unwrap();
            let active = before.active_slot.unwrap();
            h.set_image(&format!("registry.example/app:{}", i + 2))
                .await;
            let started = h.wait_release(&[&stable]).await;
            // A random moment of the release.
            tokio::time::sleep(rng.millis(0, 3000)).await;
            component().restart(rng.millis(500, 3000)).await;

            let done = h.wait_healthy_on(&started.revision).await;
            assert_eq!(done.status.unwrap().active_slot, Some(other(active)));
            h.assert_only_forward(&started.revision);
            let expected = expected_children(name, other(active), total, false);
            wait_children(&client, &ns, &expected).await;
            // The same operator process carried the release through: it reconnected.
            assert!(
                h.operator.child.try_wait().expect("wait").is_none(),
                "the operator exited during the {outage:?} outage"
            );
        }
        let active = h.status().await.active_slot.unwrap();
        traffic.assert_weights_carried(total as usize, active).await;
        assert_control_plane_alive();
    })
    .await;
}

/// Every process hack/cluster-up.sh started still runs: an outage must not take down the
/// cluster the following tests use.
fn assert_control_plane_alive() {
    let pids = chaos::cluster_dir().join("pids");
    for entry in std::fs::read_dir(&pids).expect("the pids dir") {
        let path = entry.expect("a pid file").path();
        let pid: u32 = std::fs::read_to_string(&path)
            .expect("a pid")
            .trim()
            .parse()
            .expect("a pid");
        assert!(
            chaos::alive(pid),
            "{} (pid {pid}) died during the outages",
            path.display()
        );
    }
}

const LEASE_SECONDS: &str = "6";
const ELECTION: [&str; 3] = ["--leader-elect=true", "--lease-seconds", LEASE_SECONDS];

#[tokio::test]
async fn a_follower_finishes_the_release_of_a_killed_leader_which_never_writes_after_its_lease() {
    with_temp_ns(|client, ns| async move {
        let mut rng = Rng::new("leader kills");
        let name = "elected";
        let steps = json!([
            {"setWeight": 25}, {"pause": {"duration": "2s"}},
            {"setWeight": 50}, {"pause": {"duration": "2s"}}
        ]);
        let spec = json!({"replicas": 4, "rollout": canary(steps)});
        let mut h = Harness::start_with_flags(&client, &ns, name, spec, &ELECTION).await;
        let lease = record_lease(&client, &ns, "weir-operator").await;
        let first = h.operator.identity.clone();
        lease
            .wait_until("the first operator leads", |l| {
                l.as_ref().is_some_and(|l| l.holder == first)
            })
            .await;
        let mut follower = Operator::start(&ns, &format!("{name}-f0"), &ELECTION).await;
        let from = audit::mark();
        let traffic = TrafficWatch::start(&h).await;

        let mut killed = Vec::new();
        for k in 0..pick(1, 5) {
            let before = h.status().await;
            let stable = before.stable_revision.clone().unwrap();
            let active = before.active_slot.unwrap();
            h.set_image(&format!("registry.example/app:{}", k + 2))
                .await;
            let started = h.wait_release(&[&stable]).await;
            tokio::time::sleep(rng.millis(0, 3000)).await;

            let holder = lease.latest().expect("a lease").holder;
            let victim = if holder == h.operator.identity {
                &mut h.operator
            } else {
                assert_eq!(holder, follower.identity, "an unknown leader");
                &mut follower
            };
            victim.signal("-KILL").await;
            tokio::time::timeout(DEADLINE, victim.child.wait())
                .await
                .expect("the leader exits after SIGKILL")
                .expect("its exit status");
            eprintln!("killed the leader {holder}");
            // A new replica takes the dead one's place, as a Deployment would start one.
            *victim = Operator::start(&ns, &format!("{name}-f{}", k + 1), &ELECTION).await;
            killed.push(holder.clone());
            lease
                .wait_until("another replica leads", |l| {
                    l.as_ref()
                        .is_some_and(|l| !l.holder.is_empty() && l.holder != holder)
                })
                .await;

            let done = h.wait_healthy_on(&started.revision).await;
            assert_eq!(done.status.unwrap().active_slot, Some(other(active)));
            h.assert_only_forward(&started.revision);
            let expected = expected_children(name, other(active), 4, false);
            wait_children(&client, &ns, &expected).await;
        }
        let active = h.status().await.active_slot.unwrap();
        traffic.assert_weights_carried(4, active).await;

        // Every write by Weir fell within its writer's tenure: after it took the lease,
        // before its last renewal ran out. So no two replicas ever wrote at once.
        let writes = assert_writes_within_tenures(from, &ns, &lease);
        assert!(
            writes
                .iter()
                .any(|w| identity_of(w).is_some_and(|id| killed.iter().all(|k| k != id))),
            "no follower ever wrote"
        );
    })
    .await;
}

/// Checks the audit log since `from`: every write by Weir in `ns` (leases aside) fell
/// within its writer's tenure, and the tenures never overlap. Returns the writes.
fn assert_writes_within_tenures(
    from: u64,
    ns: &str,
    lease: &Recorder<Option<chaos::LeaseView>>,
) -> Vec<audit::AuditEvent> {
    let tenures = tenures(lease);
    let writes: Vec<_> = audit::since(from)
        .into_iter()
        .filter(|e| e.user_agent.starts_with("weir/") && e.is_write())
        .filter(|e| e.namespace() == ns && e.resource() != "leases")
        .collect();
    assert!(!writes.is_empty(), "no writes by Weir in the audit log");
    let late: Vec<String> = writes
        .iter()
        .filter_map(|write| {
            let identity = identity_of(write).expect("Weir's user agent names the replica");
            let at = completed_at(write);
            match tenures.get(identity) {
                None => Some(format!("{identity} wrote without ever leading: {write:?}")),
                Some((acquired, expires)) if at < *acquired || at > *expires => Some(format!(
                    "{identity} wrote at {at}, outside its tenure {acquired}..{expires}: {} {} {}",
                    write.verb,
                    write.resource(),
                    write.object_ref.as_ref().map_or("", |o| o.name.as_str())
                )),
                Some(_) => None,
            }
        })
        .collect();
    assert!(
        late.is_empty(),
        "writes outside the writer's lease:\n{}",
        late.join("\n")
    );
    let mut by_start: Vec<_> = tenures.values().collect();
    by_start.sort();
    for pair in by_start.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two tenures overlap: {tenures:#?}");
    }
    writes
}

#[tokio::test]
async fn a_frozen_leader_writes_nothing_once_its_lease_has_run_out() {
    with_temp_ns(|client, ns| async move {
        let name = "frozen";
        let steps = json!([
            {"setWeight": 25}, {"pause": {"duration": "3s"}},
            {"setWeight": 50}, {"pause": {"duration": "3s"}}
        ]);
        let spec = json!({"replicas": 4, "rollout": canary(steps)});
        let mut h = Harness::start_with_flags(&client, &ns, name, spec, &ELECTION).await;
        let lease = record_lease(&client, &ns, "weir-operator").await;
        let leader = h.operator.identity.clone();
        lease
            .wait_until("the first operator leads", |l| {
                l.as_ref().is_some_and(|l| l.holder == leader)
            })
            .await;
        let mut follower = Operator::start(&ns, &format!("{name}-f0"), &ELECTION).await;
        let from = audit::mark();

        // The old leader's write races its discovery of the lost lease: the long form
        // freezes more leaders.
        for k in 0..pick(1, 4) {
            let stable = h.status().await.stable_revision.unwrap();
            h.set_image(&format!("registry.example/app:{}", k + 2))
                .await;
            let started = h.wait_release(&[&stable]).await;
            let holder = lease.latest().expect("a lease").holder;
            // Read while the leader's process is borrowed to be frozen.
            let api = h.api.clone();
            let (frozen, next) = if holder == h.operator.identity {
                (&mut h.operator, follower.identity.clone())
            } else {
                assert_eq!(holder, follower.identity, "an unknown leader");
                (&mut follower, h.operator.identity.clone())
            };
            // The leader stops mid-release, as in a long pause of its process or machine.
            let pid = frozen.child.id().expect("the leader runs");
            chaos::kill(pid, "-STOP").await;
            lease
                .wait_until("the follower leads", |l| {
                    l.as_ref().is_some_and(|l| l.holder == next)
                })
                .await;
            let revision = started.revision.clone();
            let what = format!("Microservice {name}: the follower moved the release on");
            wait_ms(&api, name, DEADLINE, &what, |ms| {
                ms.status
                    .as_ref()
                    .and_then(|s| s.release.as_ref())
                    .is_some_and(|r| r.revision == revision && r.step_index >= 2)
            })
            .await;
            chaos::kill(pid, "-CONT").await;
            // Woken, it finds its lease gone and steps down: the process ends.
            let exit = tokio::time::timeout(DEADLINE, frozen.child.wait())
                .await
                .expect("the old leader exits once it finds its lease gone")
                .expect("its exit status");
            assert!(
                !exit.success(),
                "the old leader exits with an error: {exit}"
            );
            *frozen = Operator::start(&ns, &format!("{name}-f{}", k + 1), &ELECTION).await;
            h.wait_healthy_on(&started.revision).await;
        }
        let writes = assert_writes_within_tenures(from, &ns, &lease);
        assert!(
            writes
                .iter()
                .any(|w| identity_of(w) != Some(leader.as_str())),
            "no follower ever wrote"
        );
    })
    .await;
}

const ERROR_RATE: &str =
    r#"sum(rate(http_requests_total{code=~"5.."}[5s])) / sum(rate(http_requests_total[5s]))"#;

/// A canary with a gate: weight 10, then an analysis round must pass before weight 50.
/// Rounds every 2 s; two inconclusive rounds in a row are tolerated, a third aborts.
fn gated_spec() -> Value {
    let mut rollout = canary(json!([
        {"setWeight": 10}, {"analysis": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}
    ]));
    rollout["analysis"] = json!({
        "interval": "2s", "inconclusiveLimit": 2,
        "metrics": [{"name": "error-rate", "prometheus": {"query": ERROR_RATE}, "max": 0.05}]
    });
    json!({"rollout": rollout})
}

/// A real Prometheus measuring a healthy exporter, behind a proxy that fails on demand.
async fn prometheus_behind_a_proxy(mode: Mode) -> (Exporter, Prometheus, FlakyPrometheus) {
    let exporter = Exporter::start(0.0).await;
    let prometheus = Prometheus::start(&[&exporter.addr]).await;
    eventually(
        DEADLINE,
        "Prometheus to measure the error ratio",
        || async { prometheus.query(ERROR_RATE).await.filter(|r| *r < 0.01) },
    )
    .await;
    let proxy = FlakyPrometheus::start(&prometheus.addr, mode).await;
    (exporter, prometheus, proxy)
}

/// What the analysis scenarios follow: the release's step and the rounds.
#[derive(Clone, Debug, PartialEq)]
struct Rounds {
    step_index: Option<i32>,
    promoting: bool,
    returning: bool,
    active_slot: Option<Slot>,
    last_round: Option<Outcome>,
    consecutive_inconclusive: i32,
    outcomes: Vec<(Outcome, String)>,
}

async fn record_rounds(h: &Harness) -> Recorder<Rounds> {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", h.name));
    Recorder::start(h.api.clone(), config, "analysis rounds", |all| {
        let ms: Option<&Microservice> = all.first().map(|m| &**m);
        let status = ms.and_then(|m| m.status.clone()).unwrap_or_default();
        let release = status.release.as_ref();
        let analysis = release.and_then(|r| r.analysis.clone()).unwrap_or_default();
        Rounds {
            step_index: release.map(|r| r.step_index),
            promoting: release.is_some_and(|r| r.promoting),
            returning: release.is_some_and(|r| r.returning.is_some()),
            active_slot: status.active_slot,
            last_round: analysis.last_round,
            consecutive_inconclusive: analysis.consecutive_inconclusive,
            outcomes: analysis
                .last
                .iter()
                .map(|m| (m.outcome, m.message.clone().unwrap_or_default()))
                .collect(),
        }
    })
    .await
}

#[tokio::test]
async fn an_unanswering_prometheus_holds_the_release_then_aborts_it_past_the_limit() {
    // Down: connections closed at once. Long form also: connections held unanswered until
    // the query's timeout.
    for mode in pick(vec![Mode::Down], vec![Mode::Down, Mode::Hang]) {
        let (_exporter, _prometheus, proxy) = prometheus_behind_a_proxy(mode).await;
        let address = format!("http://{}", proxy.addr);
        with_temp_ns(move |client, ns| async move {
            let _proxy = proxy;
            let flags = ["--prometheus-address", address.as_str()];
            let h = Harness::start_with_flags(&client, &ns, "blind", gated_spec(), &flags).await;
            let green = h.slot(Slot::Green);
            let route = h.record_route().await;
            let rounds = record_rounds(&h).await;
            let stable = h.status().await.stable_revision.unwrap();

            h.set_image("registry.example/app:2").await;
            let started = h.wait_release(&[&stable]).await;
            let ms = h.wait_degraded("AnalysisFailed").await;

            let status = ms.status.clone().unwrap();
            assert_eq!(
                status.aborted_revision.as_deref(),
                Some(started.revision.as_str())
            );
            assert_eq!(status.active_slot, Some(Slot::Blue));
            let message = &condition(&ms, "Degraded").unwrap().message;
            assert!(
                message.contains("inconclusive") && message.contains("error-rate"),
                "{mode:?}: the message says the analysis was inconclusive: {message}"
            );
            let seen = rounds.values();
            // Waited at the gate, never promoted, never judged anything but inconclusive.
            assert!(
                seen.iter().all(|r| r.step_index.is_none_or(|s| s <= 1)
                    && !r.promoting
                    && r.active_slot == Some(Slot::Blue)
                    && r.last_round.is_none_or(|o| o == Outcome::Inconclusive)
                    && r.outcomes.iter().all(|(o, _)| *o == Outcome::Inconclusive)),
                "{mode:?}: {seen:#?}"
            );
            // Aborted on the third inconclusive round in a row, not before.
            let (abort, _) = rounds
                .find(0, |r| r.returning)
                .unwrap_or_else(|| panic!("{mode:?}: no abort recorded: {seen:#?}"));
            assert_eq!(
                seen[abort].consecutive_inconclusive, 3,
                "{mode:?}: {seen:#?}"
            );
            assert!(
                seen[..abort]
                    .iter()
                    .all(|r| r.consecutive_inconclusive <= 2),
                "{mode:?}: {seen:#?}"
            );
            route
                .wait_route("traffic back on blue", |r| r.weight(&green) == 0)
                .await;
            assert!(
                route.weights(&green).iter().all(|w| *w <= 10),
                "{mode:?}: the weight went past the gate: {:#?}",
                route.states()
            );
        })
        .await;
    }
}

#[tokio::test]
async fn a_prometheus_back_before_the_limit_lets_the_release_through_after_a_passing_round() {
    for mode in pick(vec![Mode::Down], vec![Mode::Down, Mode::Hang]) {
        let (_exporter, _prometheus, proxy) = prometheus_behind_a_proxy(mode).await;
        let address = format!("http://{}", proxy.addr);
        with_temp_ns(move |client, ns| async move {
            let flags = ["--prometheus-address", address.as_str()];
            let h = Harness::start_with_flags(&client, &ns, "patient", gated_spec(), &flags).await;
            let rounds = record_rounds(&h).await;
            let stable = h.status().await.stable_revision.unwrap();

            h.set_image("registry.example/app:2").await;
            let started = h.wait_release(&[&stable]).await;
            rounds
                .wait_seen("an inconclusive round at the gate", |r| {
                    r.step_index == Some(1) && r.consecutive_inconclusive >= 1
                })
                .await;
            proxy.set(Mode::Up);
            h.wait_healthy_on(&started.revision).await;

            let seen = rounds.values();
            let (passed, _) = rounds
                .find(0, |r| r.last_round == Some(Outcome::Passed))
                .unwrap_or_else(|| panic!("{mode:?}: no passing round: {seen:#?}"));
            let (past_gate, _) = rounds
                .find(0, |r| r.step_index.is_some_and(|s| s >= 2) || r.promoting)
                .unwrap_or_else(|| panic!("{mode:?}: never past the gate: {seen:#?}"));
            assert!(
                passed <= past_gate,
                "{mode:?}: past the gate before a passing round: {seen:#?}"
            );
            assert!(
                seen.iter()
                    .all(|r| !r.returning && r.consecutive_inconclusive <= 2),
                "{mode:?}: {seen:#?}"
            );
            assert!(
                seen[..passed]
                    .iter()
                    .all(|r| r.outcomes.iter().all(|(o, _)| *o == Outcome::Inconclusive)),
                "{mode:?}: a measurement before Prometheus was back was not inconclusive: \
                 {seen:#?}"
            );
            let status = h.status().await;
            assert_eq!(status.active_slot, Some(Slot::Green));
            assert_eq!(status.phase, Some(Phase::Healthy));
            assert!(status.aborted_revision.is_none(), "{status:#?}");
        })
        .await;
    }
}

/// The canary of a release group's member: three weights with pauses between, `pause` the
/// middle one (the backend's is longer, so the frontend waits for it), then a pause until a
/// promote, so that an abort always finds the release running.
fn group_spec(pause: &str, total: i32) -> Value {
    let mut spec = member_spec(json!([
        {"setWeight": 25}, {"pause": {"duration": "1s"}},
        {"setWeight": 50}, {"pause": {"duration": pause}},
        {"setWeight": 75}, {"pause": {}}
    ]));
    spec["replicas"] = json!(total);
    spec["pod"] = unready_pods();
    spec
}

/// The weight each step of [`group_spec`] sets.
const GROUP_WEIGHTS: [Option<i32>; 6] = [Some(25), None, Some(50), None, Some(75), None];

/// How the group's releases end, and how many SIGKILLs each takes.
const GROUP_SHORT: [(End, u64); 2] = [(End::Promote, 2), (End::Abort, 1)];
const GROUP_LONG: [(End, u64); 5] = [
    (End::Promote, 3),
    (End::Abort, 2),
    (End::Promote, 3),
    (End::Abort, 3),
    (End::Promote, 2),
];

/// Promotes both members at their last pause (in a random order), or aborts one at random
/// once both carry weight; returns the member (0 the backend, 1 the frontend) and the value
/// of each action.
async fn end_group_release(shop: &Shop, end: End, rng: &mut Rng) -> Vec<(usize, String)> {
    let members = shop.members();
    match end {
        End::Promote => {
            for member in members {
                member.wait_paused_at(5).await;
            }
            let first = rng.between(0, 1) as usize;
            let mut actions = Vec::new();
            for i in [first, 1 - first] {
                actions.push((i, members[i].act("promote").await));
            }
            actions
        }
        End::Abort => {
            for member in members {
                member
                    .wait_release_where("weight on the candidate", |_, r| {
                        r.weight > 0 && r.weight_verified
                    })
                    .await;
            }
            let victim = rng.between(0, 1) as usize;
            vec![(victim, members[victim].act("abort").await)]
        }
    }
}

#[tokio::test]
async fn a_release_group_moves_in_lockstep_and_ends_together_while_the_operator_is_killed() {
    with_temp_ns(|client, ns| async move {
        let mut kills = Kills::new("group kills");
        let total = 4;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let selector = "app.kubernetes.io/instance in (backend,frontend)";
        let _late = LateReadiness::start(pods, selector, Duration::from_millis(800));
        let (backend, frontend) = (group_spec("2s", total), group_spec("1s", total));
        let mut shop = Shop::start(&client, &ns, backend, frontend).await;
        let traffic = [
            TrafficWatch::start(&shop.backend).await,
            TrafficWatch::start(&shop.frontend).await,
        ];

        for (i, &(end, count)) in pick(&GROUP_SHORT[..], &GROUP_LONG[..]).iter().enumerate() {
            eprintln!("group release {i}: {end:?} with {count} kills");
            let mut tracked = track(&shop).await;
            let image = format!("registry.example/app:{}", i + 2);
            release_all(&shop, &mut tracked, &image).await;

            let act_at = kills.rng.between(0, count);
            let mut actions = Vec::new();
            for k in 0..=count {
                if k == act_at {
                    actions = end_group_release(&shop, end, &mut kills.rng).await;
                }
                if k < count {
                    kills.strike(&mut shop.backend, 2000).await;
                }
            }
            let members = shop.members();
            for (i, value) in &actions {
                members[*i].wait_handled(value).await;
            }
            if end == End::Abort {
                let victim = actions[0].0;
                wait_aborted(members[victim], &tracked[victim], "Aborted").await;
                let other = 1 - victim;
                let message = wait_aborted(members[other], &tracked[other], "GroupAborted").await;
                assert!(message.contains(&members[victim].name), "{message}");
                assert_all_back_before_any_scale_down(&shop.backend, &tracked).await;
            }
            assert_in_lockstep(&tracked, &GROUP_WEIGHTS);

            let mut expected = std::collections::BTreeMap::new();
            for (member, t) in members.into_iter().zip(&tracked) {
                let status = match end {
                    End::Promote => member.wait_healthy_on(&t.revision).await.status,
                    End::Abort => member.ms().await.status,
                };
                let active = status.and_then(|s| s.active_slot).expect("an active slot");
                let backend = member.slot(active);
                let aborted = end == End::Abort;
                assert_eq!(
                    backend == t.candidate,
                    !aborted,
                    "{} ends on {backend}",
                    t.name
                );
                member.assert_only_forward(&t.revision);
                let back = format!("all traffic on {backend}");
                t.route
                    .wait_route(&back, |r| r.weight(&backend) == 100)
                    .await;
                expected.extend(expected_children(&member.name, active, total, aborted));
            }
            wait_children(&client, &ns, &expected).await;
        }
        for (member, traffic) in shop.members().into_iter().zip(&traffic) {
            let active = member.status().await.active_slot.unwrap();
            traffic.assert_weights_carried(total as usize, active).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_failed_verification_switches_back_before_the_new_slot_scales_down_despite_kills() {
    let errors = ErrorRate::start().await;
    with_temp_ns(move |client, ns| async move {
        let mut kills = Kills::new("verification kills");
        let flags = errors.flags();
        let spec = verified_canary("10m");
        let name = "reverted";
        let mut h = Harness::start_with_flags(&client, &ns, name, spec, &flags).await;
        let traffic = TrafficWatch::start(&h).await;
        for i in 0..pick(1, 3) {
            let image = format!("registry.example/app:{}", i + 2);
            let chaos = Some((&mut kills, pick(2, 4)));
            failed_verification(&mut h, &errors, &image, &[0, 50, 100, 0], chaos).await;
            errors.set(0.0).await;
        }
        eprintln!("{} kills", kills.count);
        traffic.assert_weights_carried(3, Slot::Blue).await;
        let expected = expected_children(name, Slot::Blue, 3, true);
        wait_children(&client, &ns, &expected).await;
    })
    .await;
}
