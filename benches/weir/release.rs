//! What the release parts share (canary Microservices through Gateway API, a watch of their
//! status, the fake gateway's acceptances), and the release part: the overhead per step of
//! a 10-step canary.
//!
//! All parts use `scaleDownDelaySeconds: 0` (the old slot's Deployment goes at promotion, so
//! a release's whole cost falls inside what is measured) and an image tag that is new for
//! every release (a tag seen before would be a return to a warm slot, which skips the steps).
//! Microservices are watched, not polled: the time a status change is seen is within
//! milliseconds of its write.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::cluster::{self, Bench, Operator, epoch, now};
use crate::report::{self, fmt, median, num, rnd, row, verdict};
use crate::support::gateway::FakeGateway;

pub const IMAGE: &str = "registry.example/bench";
pub const STEP_PAUSE_SECONDS: f64 = 1.0;

/// A canary Microservice through Gateway API, as every release part creates it.
pub fn microservice(
    name: &str,
    tag: &str,
    replicas: u64,
    steps: &Value,
    analysis: Option<Value>,
) -> Value {
    let mut rollout = json!({
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "bench"}]}},
        "canary": {"steps": steps, "scaleDownDelaySeconds": 0},
    });
    if let Some(analysis) = analysis {
        rollout["analysis"] = analysis;
    }
    json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
        "metadata": {"name": name},
        "spec": {
            "image": format!("{IMAGE}:{tag}"), "replicas": replicas,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "rollout": rollout,
        },
    })
}

pub fn microservices(client: &Client, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<weir::api::Microservice>(&());
    Api::namespaced_with(client.clone(), ns, &resource)
}

pub fn status(ms: &Value) -> &Value {
    &ms["status"]
}

fn has(value: &Value, key: &str) -> bool {
    value.get(key).is_some_and(|v| !v.is_null())
}

/// The status describes the spec as it is now.
pub fn current(ms: &Value) -> bool {
    status(ms)["observedGeneration"] == ms["metadata"]["generation"]
}

pub fn condition<'a>(ms: &'a Value, kind: &str) -> Option<&'a Value> {
    status(ms)["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Healthy, Ready, no release running, at the current generation.
pub fn healthy(ms: &Value) -> bool {
    let s = status(ms);
    current(ms)
        && s["phase"] == "Healthy"
        && !has(s, "release")
        && condition(ms, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Healthy on a revision other than `old_stable`; with `settled`, the old slot is gone too.
pub fn released(ms: &Value, old_stable: &Value, settled: bool) -> bool {
    let stable = &status(ms)["stableRevision"];
    healthy(ms)
        && !stable.is_null()
        && stable != old_stable
        && (!settled || !has(status(ms), "scaleDownAt"))
}

fn describe(ms: &Value) -> String {
    let s = status(ms);
    let release = &s["release"];
    format!(
        "{}: phase={} generation={} observed={} step={}/{} weight={} verified={} message={}",
        ms["metadata"]["name"].as_str().unwrap_or(""),
        s["phase"],
        ms["metadata"]["generation"],
        s["observedGeneration"],
        release["stepIndex"],
        release["stepCount"],
        release["weight"],
        release["weightVerified"],
        s["message"]
    )
}

/// The release state a history entry keeps; one entry per change.
const HISTORY_KEYS: [&str; 7] = [
    "phase",
    "stepIndex",
    "weight",
    "weightVerified",
    "promoting",
    "generation",
    "observedGeneration",
];

/// What the watch saw: the latest copy of every Microservice, when it arrived, the history of
/// each one's release state, and the first failed measurement of each.
#[derive(Default)]
pub struct Seen {
    pub objects: HashMap<String, Value>,
    pub received: HashMap<String, f64>,
    pub history: BTreeMap<String, Vec<(f64, Vec<Value>)>>,
    pub failed_measurements: HashMap<String, Value>,
    synced: bool,
}

impl Seen {
    fn record(&mut self, ms: Value, received: f64) {
        let name = ms["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let s = status(&ms);
        let release = &s["release"];
        let state = vec![
            s["phase"].clone(),
            release["stepIndex"].clone(),
            release["weight"].clone(),
            release["weightVerified"].clone(),
            release["promoting"].clone(),
            ms["metadata"]["generation"].clone(),
            s["observedGeneration"].clone(),
        ];
        let history = self.history.entry(name.clone()).or_default();
        if history.last().is_none_or(|(_, last)| *last != state) {
            history.push((received, state));
        }
        for m in release["analysis"]["last"].as_array().into_iter().flatten() {
            if m["passed"] == false && !self.failed_measurements.contains_key(&name) {
                let mut m = m.clone();
                m["seen"] = json!(received);
                self.failed_measurements.insert(name.clone(), m);
            }
        }
        self.objects.insert(name.clone(), ms);
        self.received.insert(name, received);
    }
}

/// A watch of every Microservice in a namespace.
pub struct Watcher {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub async fn start(client: &Client, ns: &str) -> Watcher {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let task = tokio::spawn(watch(
            microservices(client, ns),
            seen.clone(),
            changed.clone(),
        ));
        let watcher = Watcher {
            seen,
            changed,
            task,
        };
        let give_up = now() + 60.0;
        while !watcher.seen().synced {
            if now() >= give_up {
                die!("the Microservice watch did not start within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        watcher
    }

    /// A future that completes at the next change seen; take it before looking at [`Seen`].
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `holds` is true of what was seen; returns the time of the latest event.
    /// Fails the benchmark, with a description, when `deadline` (epoch seconds) passes or
    /// the operator exits.
    pub async fn wait(
        &self,
        operator: &Operator,
        what: &str,
        mut holds: impl FnMut(&Seen) -> bool,
        deadline: f64,
    ) -> f64 {
        loop {
            let changed = self.changed.notified();
            {
                let seen = self.seen();
                if holds(&seen) {
                    return seen
                        .received
                        .values()
                        .copied()
                        .fold(f64::MIN, f64::max)
                        .max(0.0);
                }
                if now() >= deadline {
                    let waiting: Vec<String> =
                        seen.objects.values().take(5).map(describe).collect();
                    die!(
                        "{what} did not happen before the deadline; e.g.:\n  {}",
                        if waiting.is_empty() {
                            "(no Microservices listed)".to_string()
                        } else {
                            waiting.join("\n  ")
                        }
                    );
                }
            }
            operator.check_alive(what);
            let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
        }
    }

    /// Like [`Watcher::wait`], for one Microservice; returns when the event that satisfied it
    /// arrived.
    pub async fn wait_one(
        &self,
        operator: &Operator,
        name: &str,
        what: &str,
        holds: impl Fn(&Value) -> bool,
        deadline: f64,
    ) -> f64 {
        self.wait(
            operator,
            what,
            |seen| seen.objects.get(name).is_some_and(&holds),
            deadline,
        )
        .await;
        self.seen().received[name]
    }

    /// Every status change seen, one JSON line each, for looking into a figure afterwards.
    pub fn dump_history(&self, path: &Path) {
        let mut file = report::create(path);
        for (name, history) in &self.seen().history {
            for (time, state) in history {
                let mut line = serde_json::Map::new();
                line.insert("name".into(), json!(name));
                line.insert("time".into(), json!(report::round(*time, 3)));
                for (key, value) in HISTORY_KEYS.iter().zip(state) {
                    line.insert(key.to_string(), value.clone());
                }
                report::append_line(&mut file, &Value::Object(line));
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(api: Api<DynamicObject>, seen: Arc<Mutex<Seen>>, changed: Arc<Notify>) {
    crate::cluster::follow(api, "Microservice", |event, received| {
        {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                watcher::Event::Apply(ms) | watcher::Event::InitApply(ms) => {
                    seen.record(serde_json::to_value(&ms).unwrap_or_default(), received);
                }
                watcher::Event::Delete(ms) => {
                    let name = ms.metadata.name.unwrap_or_default();
                    seen.objects.remove(&name);
                }
                watcher::Event::InitDone => seen.synced = true,
                watcher::Event::Init => {}
            }
        }
        changed.notify_waiters();
    })
    .await;
}

/// Creates (server-side apply) each object.
pub async fn create_all(client: &Client, ns: &str, objects: &[Value]) {
    let api = microservices(client, ns);
    let params = PatchParams::apply("weir-bench").force();
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| die!("apply Microservice {name}: {e}"));
    }
}

/// Merge-patches the image; returns the time just before the request went out.
pub async fn set_image(client: &Client, ns: &str, name: &str, tag: &str) -> f64 {
    let api = microservices(client, ns);
    let start = now();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": format!("{IMAGE}:{tag}")}})),
    )
    .await
    .unwrap_or_else(|e| die!("patch the image of {name}: {e}"));
    start
}

/// One acceptance by the fake gateway, with its epoch times: when the route generation was
/// seen, and when the status write returned.
#[derive(Clone, Debug)]
pub struct Acceptance {
    pub name: String,
    pub generation: i64,
    pub weights: BTreeMap<String, i32>,
    pub seen: f64,
    pub accepted: f64,
}

/// The fake gateway's writes for route `name` (every route when None), from `since` on.
pub fn gateway_accepts(gateway: &FakeGateway, name: Option<&str>, since: f64) -> Vec<Acceptance> {
    gateway
        .accepted()
        .into_iter()
        .map(|a| Acceptance {
            name: a.route,
            generation: a.generation,
            weights: a.weights,
            seen: epoch(a.seen),
            accepted: epoch(a.at),
        })
        .filter(|a| name.is_none_or(|n| a.name == n) && a.accepted >= since)
        .collect()
}

/// Keeps every acceptance of a part in `<dir>/gateway.jsonl`.
pub fn dump_gateway(gateway: &FakeGateway, ns: &str, dir: &Path) {
    let mut file = report::create(&dir.join("gateway.jsonl"));
    for a in gateway_accepts(gateway, None, 0.0) {
        report::append_line(
            &mut file,
            &json!({"namespace": ns, "name": a.name, "generation": a.generation,
                "weights": a.weights, "seen": a.seen, "accepted": a.accepted}),
        );
    }
}

/// Ten steps: five weights, each followed by a pause of 1 s.
fn release_steps() -> Vec<Value> {
    [20, 40, 60, 80, 100]
        .into_iter()
        .flat_map(|w| {
            [
                json!({"setWeight": w}),
                json!({"pause": {"duration": "1s"}}),
            ]
        })
        .collect()
}

const OVERHEAD_TARGET_MS: f64 = 150.0;

pub async fn run(bench: &Bench, dir: &Path) {
    let s = &bench.settings;
    let ns = "bench-release";
    cluster::fresh_namespace(&bench.client, ns).await;
    let operator = Operator::start(bench, dir, &[]).await;
    let gateway = FakeGateway::start(bench.client.clone(), ns);
    let watcher = Watcher::start(&bench.client, ns).await;
    let steps = release_steps();
    let step_count = steps.len();
    let pauses = steps.iter().filter(|s| has(s, "pause")).count() as f64 * STEP_PAUSE_SECONDS;
    let mut runs = Vec::new();
    for run in 1..=s.runs {
        let name = format!("release-{run}");
        let ms = microservice(&name, "1", s.replicas, &json!(steps), None);
        create_all(&bench.client, ns, &[ms]).await;
        let what = format!("{name} to be Healthy");
        watcher
            .wait_one(&operator, &name, &what, healthy, now() + s.deadline())
            .await;
        // Let the first deploy's trailing events (route acceptance, status) pass first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let old_stable = status(&watcher.seen().objects[&name])["stableRevision"].clone();
        let start = set_image(&bench.client, ns, &name, "2").await;
        let what = format!("{name} to be Healthy on the new revision");
        let done = watcher
            .wait_one(
                &operator,
                &name,
                &what,
                |ms| released(ms, &old_stable, false),
                start + s.deadline(),
            )
            .await;
        let seconds = done - start;
        let accepts = gateway_accepts(&gateway, Some(&name), start);
        let history: Vec<(f64, Vec<Value>)> = watcher.seen().history[&name]
            .iter()
            .filter(|(t, _)| *t >= start)
            .cloned()
            .collect();
        let result = run_result(
            run, &name, seconds, start, done, &steps, &accepts, &history, pauses,
        );
        log!(
            "run {run}: Healthy on the new revision after {seconds:.2}s: {:.0} ms overhead per step",
            num(&result, "overhead_per_step_ms").unwrap_or_default()
        );
        runs.push(result);
    }
    watcher.dump_history(&dir.join("history.jsonl"));
    dump_gateway(&gateway, ns, dir);
    drop(watcher);
    drop(gateway);
    let of_runs = |key: &str| median(runs.iter().map(|r| num(r, key)));
    let overhead = of_runs("overhead_per_step_ms");
    let out = json!({
        "steps": step_count, "step_kinds": "setWeight 20,40,60,80,100, each followed by pause 1s",
        "pause_seconds_total": pauses as u64, "replicas": s.replicas, "runs": s.runs,
        "median_seconds": rnd(of_runs("seconds"), 3),
        "overhead_per_step_ms": overhead,
        "target_overhead_per_step_ms": OVERHEAD_TARGET_MS as u64,
        "target_met": overhead.map(|o| o <= OVERHEAD_TARGET_MS),
        "median_first_step_seconds": rnd(of_runs("first_step_seconds"), 3),
        "median_weight_step_ms": rnd(of_runs("median_weight_step_ms"), 1),
        "median_pause_overrun_ms": rnd(of_runs("median_pause_overrun_ms"), 1),
        "median_last_pause_and_promotion_overrun_ms": rnd(of_runs("last_pause_and_promotion_overrun_ms"), 1),
        "per_run": runs,
    });
    report::write_json(&s.out.join("release.json"), &out);
    let per_run = |key: &str, digits: usize| {
        runs.iter()
            .map(|r| fmt(num(r, key), digits, ""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = format!(
        "release: a {step_count}-step canary ({}), {} runs",
        out["step_kinds"].as_str().unwrap_or_default(),
        s.runs
    );
    report::table(
        Some(&title),
        &[
            row(
                "image change -> Healthy on the new revision",
                fmt(num(&out, "median_seconds"), 2, " s"),
                per_run("seconds", 2),
            ),
            row(
                format!("overhead per step (minus {pauses} s of pauses, / {step_count})"),
                fmt(overhead, 0, " ms"),
                format!(
                    "{}; target < {OVERHEAD_TARGET_MS} ms: {}",
                    per_run("overhead_per_step_ms", 0),
                    verdict(out["target_met"].as_bool())
                ),
            ),
            row(
                "  first step (the candidate's pod starts)",
                fmt(num(&out, "median_first_step_seconds"), 2, " s"),
                per_run("first_step_seconds", 2),
            ),
            row(
                "  a later setWeight step",
                fmt(num(&out, "median_weight_step_ms"), 0, " ms"),
                per_run("median_weight_step_ms", 0),
            ),
            row(
                "  a 1 s pause, beyond its second",
                fmt(num(&out, "median_pause_overrun_ms"), 0, " ms"),
                per_run("median_pause_overrun_ms", 0),
            ),
            row(
                "  the last pause and the promotion, beyond 1 s",
                fmt(
                    num(&out, "median_last_pause_and_promotion_overrun_ms"),
                    0,
                    " ms",
                ),
                per_run("last_pause_and_promotion_overrun_ms", 0),
            ),
        ],
    );
    bench.end_part("release", operator, &[ns.to_string()]).await;
}

/// One run's figures, from the status changes and route acceptances seen after `start`.
#[allow(clippy::too_many_arguments)]
fn run_result(
    run: u64,
    name: &str,
    seconds: f64,
    start: f64,
    done: f64,
    steps: &[Value],
    accepts: &[Acceptance],
    history: &[(f64, Vec<Value>)],
    pauses: f64,
) -> Value {
    let step_seconds = step_durations(history, start, done, steps.len());
    let is_pause = |i: usize| has(&steps[i], "pause");
    let weight_steps: Vec<Option<f64>> = step_seconds
        .iter()
        .enumerate()
        .filter(|(i, d)| d.is_some() && *i > 0 && has(&steps[*i], "setWeight"))
        .map(|(_, d)| *d)
        .collect();
    // The last step's time runs to Healthy: it holds the promotion, reported apart.
    let pause_overrun: Vec<Option<f64>> = step_seconds[..step_seconds.len().saturating_sub(1)]
        .iter()
        .enumerate()
        .filter(|(i, d)| d.is_some() && is_pause(*i))
        .map(|(_, d)| d.map(|d| d - STEP_PAUSE_SECONDS))
        .collect();
    let mut last = step_seconds.last().copied().flatten();
    if last.is_some() && is_pause(steps.len() - 1) {
        last = last.map(|l| l - STEP_PAUSE_SECONDS);
    }
    let ms = |v: Option<f64>| rnd(v.map(|v| v * 1000.0), 1);
    json!({
        "run": run, "name": name, "seconds": rnd(Some(seconds), 3),
        "overhead_per_step_ms": rnd(Some((seconds - pauses) / steps.len() as f64 * 1000.0), 1),
        "first_step_seconds": rnd(step_seconds.first().copied().flatten(), 3),
        "step_seconds": step_seconds.iter().map(|d| rnd(*d, 3)).collect::<Vec<_>>(),
        "median_weight_step_ms": ms(median(weight_steps)),
        "median_pause_overrun_ms": ms(median(pause_overrun)),
        "last_pause_and_promotion_overrun_ms": ms(last),
        "route_generations_accepted": accepts.len(),
        "route_timeline": accepts.iter()
            .map(|a| json!({"seconds": rnd(Some(a.accepted - start), 3), "weights": a.weights}))
            .collect::<Vec<_>>(),
        "status_timeline": history.iter().map(|(t, h)| json!({
            "seconds": rnd(Some(t - start), 3), "phase": h[0], "stepIndex": h[1], "weight": h[2],
            "weightVerified": h[3], "promoting": h[4],
        })).collect::<Vec<_>>(),
    })
}

/// Seconds each step lasted, from the status changes seen: step i runs from the first status
/// showing stepIndex i (step 0: from the image change) to the first showing a later one (the
/// last: to Healthy). None for a step no status showed on its own (two steps done in one
/// reconcile).
fn step_durations(
    history: &[(f64, Vec<Value>)],
    start: f64,
    done: f64,
    steps: usize,
) -> Vec<Option<f64>> {
    let mut began: BTreeMap<u64, f64> = BTreeMap::from([(0, start)]);
    for (time, state) in history {
        if let Some(index) = state[1].as_u64() {
            began.entry(index).or_insert(*time);
        }
    }
    (0..steps as u64)
        .map(|i| {
            let from = began.get(&i)?;
            let until = began.range(i + 1..).next().map_or(done, |(_, t)| *t);
            Some(until - from)
        })
        .collect()
}

/// `<prefix>-0000`, `<prefix>-0001`, ...
pub fn names(prefix: &str, n: u64) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

/// The short canary of scale and soak.
pub fn short_steps() -> Value {
    json!([{"setWeight": 50}, {"pause": {"duration": "1s"}}])
}

/// Waits until every one of `names` is Healthy, with progress every 10 s.
pub async fn wait_all_healthy(
    watcher: &Watcher,
    operator: &Operator,
    names: &[String],
    deadline: f64,
    what: &str,
) {
    let started = now();
    let mut next_progress = started + 10.0;
    watcher
        .wait(
            operator,
            what,
            |seen| {
                let ready = names
                    .iter()
                    .filter(|n| seen.objects.get(*n).is_some_and(healthy))
                    .count();
                if now() >= next_progress {
                    log!(
                        "{what}: {ready}/{} Healthy after {:.0}s",
                        names.len(),
                        now() - started
                    );
                    next_progress = now() + 10.0;
                }
                ready == names.len()
            },
            deadline,
        )
        .await;
}
