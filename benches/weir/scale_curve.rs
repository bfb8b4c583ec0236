//! scale's at-rest curve: how the cost of Weir grows with the number of Microservices it
//! holds. For each step (100, 1000, 3000, 10000 up to N, then N), the step's new Microservices
//! are added to those already there (a namespace that only grows, so each step ends with
//! exactly its N at rest in the operator's caches), timed from the apply until all are Ready,
//! their requests counted from the audit log, then left alone for BENCH_IDLE_SECONDS: the
//! operator must not write while idle, and its RSS at the end is the step's settled figure.
//! The CPU seconds of every process of the control plane name what limits the curve.
//!
//! Ready is what core counts: condition Ready=True at status.observedGeneration ==
//! metadata.generation, seen through a watch that keeps the Ready set up to date as events
//! arrive (a list of 10,000 objects every half second would itself load the API server).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::audit::{self, Request};
use crate::cluster::{self, Bench, Operator, now, proc_kib};
use crate::release::{microservice, microservices, short_steps};
use crate::report::{self, fmt, num, rnd};
use crate::scale::rss_between;
use crate::support;

/// The standard steps of the curve; N itself is always the last.
const STANDARD_STEPS: [u64; 4] = [100, 1000, 3000, 10_000];
/// Microservices per `kubectl apply`: it sends one request per object in turn, and one file
/// of 10,000 objects would be one long request stream with nothing to show for a failure.
const CHUNK: usize = 500;
/// Chunks applied at once, so the apply itself is not what the step's time measures.
const PARALLEL_APPLIES: usize = 2;
/// Wait between all Ready and the idle window: the writes that follow Ready (the last status
/// writes) are the step's work, not idle writes.
const SETTLE_AFTER_READY: Duration = Duration::from_secs(5);
/// A step that has not seen one more Microservice turn Ready for this long has stalled: the
/// curve ends there, with what the processes of the control plane used until then.
const STALLED_AFTER: Duration = Duration::from_secs(300);
/// The operator's RSS target at the largest N.
pub const RSS_TARGET_MIB: f64 = 256.0;
/// A figure per object grows linearly when, at the largest N, it is at most this many times
/// what it was at the step before (at least 3x fewer objects on the standard curve): from
/// 3000 to 10,000, N log N gives 1.15, N^2 gives 3.3.
const LINEAR_RATIO: f64 = 1.5;

/// The curve's steps for `n`: the standard ones up to `n`, or BENCH_SCALE_STEPS
/// (comma-separated, ascending) to try the part quickly at small N; `n` itself ends it.
pub fn steps(n: u64, custom: Option<&str>) -> Result<Vec<u64>, String> {
    let mut steps: Vec<u64> = match custom {
        None => STANDARD_STEPS.iter().copied().filter(|s| *s < n).collect(),
        Some(text) => text
            .split(',')
            .map(|step| step.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                format!("BENCH_SCALE_STEPS={text}: expected whole numbers, comma-separated")
            })?,
    };
    if steps.last() != Some(&n) {
        steps.push(n);
    }
    let ascending = steps.windows(2).all(|w| w[0] < w[1]);
    if steps[0] == 0 || !ascending || steps.iter().any(|s| *s > n) {
        return Err(format!(
            "BENCH_SCALE_STEPS: steps {steps:?} must be ascending, above 0 and at most N={n}"
        ));
    }
    Ok(steps)
}

/// How a figure per object moved from the step before the largest N to the largest:
/// `per_object` holds (N, figure per object) in the order of the steps. None with a single
/// step, or when the earlier figure is not above 0 (nothing to compare with).
pub fn growth(per_object: &[(f64, f64)]) -> Option<Growth> {
    let [.., (_, before), (_, last)] = per_object else {
        return None;
    };
    (*before > 0.0).then(|| {
        let ratio = last / before;
        Growth {
            ratio,
            linear: ratio <= LINEAR_RATIO,
        }
    })
}

/// [`growth`]'s verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    /// The figure per object at the largest N over the one at the step before.
    pub ratio: f64,
    /// At most [`LINEAR_RATIO`].
    pub linear: bool,
}

/// The process that used the most CPU seconds, and all processes' seconds together.
pub fn busiest(cpu: &BTreeMap<String, f64>) -> Option<(String, f64, f64)> {
    let total = cpu.values().sum();
    cpu.iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(name, seconds)| (name.clone(), *seconds, total))
}

/// One Microservice of the curve: the peers' service (a replica-ratio canary, no router), or
/// with BENCH_SCALE_ROUTER=gateway a canary through Gateway API (three Services and an
/// HTTPRoute at rest).
fn scale_object(name: &str, s: &crate::settings::Settings) -> Value {
    let mut object = microservice(name, "1", s.replicas, &short_steps(), None);
    if let Some(rollout) = object["spec"]["rollout"].as_object_mut()
        && !s.scale_gateway
    {
        rollout.remove("traffic");
    }
    object
}

/// Ready as core counts it: Ready=True, written for the generation the spec is at.
fn ready(ms: &DynamicObject) -> bool {
    let status = &ms.data["status"];
    let ready_true = status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    ready_true
        && status["observedGeneration"].as_i64().is_some()
        && status["observedGeneration"].as_i64() == ms.metadata.generation
}

/// Why a Microservice is not Ready, for failure messages.
fn describe(ms: &DynamicObject) -> String {
    let status = &ms.data["status"];
    let conditions: Vec<String> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{}={} ({})", c["type"], c["status"], c["reason"]))
        .collect();
    format!(
        "phase={} conditions=[{}] observedGeneration={} generation={:?} message={}",
        status["phase"],
        conditions.join(", "),
        status["observedGeneration"],
        ms.metadata.generation,
        status["message"]
    )
}

/// The Ready set of a namespace's Microservices, updated by a watch event by event: each
/// event costs the same whatever N is, so the watch does not compete with the cluster.
#[derive(Default)]
struct ReadySet {
    ready: HashSet<String>,
    /// Those seen not Ready, with why.
    waiting: HashMap<String, String>,
    /// When the last one turned Ready: the end of a step's clock.
    last_ready_at: f64,
    synced: bool,
}

struct ReadyWatch {
    set: Arc<Mutex<ReadySet>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    async fn start(client: &Client, ns: &str) -> ReadyWatch {
        let set = Arc::new(Mutex::new(ReadySet::default()));
        let task = tokio::spawn(watch_ready(microservices(client, ns), set.clone()));
        let watch = ReadyWatch { set, task };
        let give_up = now() + 60.0;
        while !watch.set().synced {
            if now() >= give_up {
                die!("the Microservice watch did not start within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        watch
    }

    fn set(&self) -> MutexGuard<'_, ReadySet> {
        self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `expected` Microservices are Ready; returns when the last turned Ready,
    /// or None when the step stalls: no Microservice turned Ready for STALLED_AFTER, or
    /// `deadline` passed. Fails the benchmark when the operator exits.
    async fn wait_all(
        &self,
        operator: &Operator,
        expected: usize,
        start: f64,
        deadline: f64,
    ) -> Option<f64> {
        let mut next_progress = now() + 10.0;
        let (mut last_count, mut last_progress) = (0, now());
        loop {
            {
                let set = self.set();
                if set.ready.len() >= expected {
                    return Some(set.last_ready_at);
                }
                let at = now();
                if set.ready.len() > last_count {
                    (last_count, last_progress) = (set.ready.len(), at);
                }
                let stalled = at - last_progress >= STALLED_AFTER.as_secs_f64();
                if stalled || at >= deadline {
                    let examples: Vec<String> = set
                        .waiting
                        .iter()
                        .take(5)
                        .map(|(name, why)| format!("{name}: {why}"))
                        .collect();
                    log!(
                        "curve: only {}/{expected} Microservices Ready after {:.0}s ({}; {} seen not Ready, the others not seen yet); e.g.:\n  {}",
                        set.ready.len(),
                        at - start,
                        if stalled {
                            "no progress for the last 300 s"
                        } else {
                            "past the deadline"
                        },
                        set.waiting.len(),
                        examples.join("\n  ")
                    );
                    return None;
                }
                if at >= next_progress {
                    log!(
                        "{}/{expected} Microservices Ready after {:.0}s",
                        set.ready.len(),
                        at - start
                    );
                    next_progress = at + 10.0;
                }
            }
            operator.check_alive(&format!("{expected} Microservices Ready"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn ready_count(&self) -> usize {
        self.set().ready.len()
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_ready(api: Api<DynamicObject>, set: Arc<Mutex<ReadySet>>) {
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    loop {
        let event = match stream.try_next().await {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(e) => {
                log!("the Microservice watch failed, resuming: {e}");
                continue;
            }
        };
        let received = now();
        let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(ms) | watcher::Event::InitApply(ms) => {
                let name = ms.metadata.name.clone().unwrap_or_default();
                if ready(&ms) {
                    set.waiting.remove(&name);
                    if set.ready.insert(name) {
                        set.last_ready_at = received;
                    }
                } else {
                    set.ready.remove(&name);
                    set.waiting.insert(name, describe(&ms));
                }
            }
            watcher::Event::Delete(ms) => {
                let name = ms.metadata.name.unwrap_or_default();
                set.ready.remove(&name);
                set.waiting.remove(&name);
            }
            watcher::Event::InitDone => set.synced = true,
            watcher::Event::Init => {}
        }
    }
}

/// One operator request of the audit log, with when it completed (writes are counted at
/// completion, as core counts them).
struct Logged {
    request: Request,
    completed: Option<f64>,
}

/// The operator's requests logged after `mark` (a length of the audit log), each auditID once,
/// counted as audit.rs counts them; reading from the mark keeps a step from parsing the
/// hundreds of megabytes the steps before it logged.
fn operator_log(mark: u64) -> Vec<Logged> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut logged: Vec<Logged> = Vec::new();
    for entry in support::audit::entries_since(mark) {
        if !entry.user_agent.starts_with("weir/") {
            continue;
        }
        let completed = (entry.stage == "ResponseComplete")
            .then(|| audit::timestamp(&entry.stage_timestamp))
            .flatten();
        if let Some(&i) = index.get(&entry.audit_id) {
            logged[i].completed = logged[i].completed.or(completed);
            continue;
        }
        let Some(received) = audit::received(&entry) else {
            continue;
        };
        let (resource, api_group) = entry
            .object_ref
            .as_ref()
            .map(|r| match r.subresource.as_str() {
                "" => (r.resource.clone(), r.api_group.clone()),
                sub => (format!("{}/{sub}", r.resource), r.api_group.clone()),
            })
            .unwrap_or_default();
        index.insert(entry.audit_id.clone(), logged.len());
        logged.push(Logged {
            request: Request {
                time: received,
                verb: entry.verb.clone(),
                is_lease: entry.resource() == "leases" && api_group == "coordination.k8s.io",
                namespace: entry.namespace().to_string(),
                resource,
            },
            completed,
        });
    }
    logged
}

/// The pods the cluster's nodes can hold: kwok's fake nodes are sized in
/// hack/cluster-up.sh (WEIR_NODES of 5000 pods each).
async fn pod_capacity(client: &Client) -> u64 {
    let nodes: Api<Node> = Api::all(client.clone());
    let nodes = nodes
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| die!("list nodes: {e}"));
    nodes
        .items
        .iter()
        .filter_map(|node| node.status.as_ref()?.allocatable.as_ref()?.get("pods"))
        .filter_map(|pods| count(&pods.0))
        .sum()
}

/// A whole-number quantity as the API server writes it back: "110", "5k", "1M".
fn count(quantity: &str) -> Option<u64> {
    let digits = quantity.trim_end_matches(['k', 'M', 'G']);
    let unit = match &quantity[digits.len()..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    digits.parse::<u64>().ok().map(|value| value * unit)
}

/// Applies `objects` with `kubectl apply --server-side`, in chunks of [`CHUNK`] written to
/// `<dir>/step-<n>-<chunk>.json` (a v1 List each), [`PARALLEL_APPLIES`] at a time.
async fn apply(dir: &Path, ns: &str, n: u64, objects: Vec<Value>) {
    let files: Vec<PathBuf> = objects
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, chunk)| {
            let path = dir.join(format!("step-{n}-{i:02}.json"));
            let list = json!({"apiVersion": "v1", "kind": "List", "items": chunk});
            std::fs::write(&path, list.to_string())
                .unwrap_or_else(|e| die!("write {}: {e}", path.display()));
            path
        })
        .collect();
    futures::stream::iter(files)
        .map(|file| async move { cluster::kubectl_apply(ns, &file).await })
        .buffer_unordered(PARALLEL_APPLIES)
        .collect::<Vec<()>>()
        .await;
}

/// The processes whose CPU a step counts: those of the cluster's pids/ (the control plane,
/// the operator) and this driver (the watch and the fake gateway), under `bench-driver`.
struct CpuMeter {
    cluster_pids: PathBuf,
    driver_pids: PathBuf,
}

impl CpuMeter {
    fn new(bench: &Bench, dir: &Path) -> CpuMeter {
        let driver_pids = dir.join("driver-pid");
        std::fs::create_dir_all(&driver_pids)
            .and_then(|()| {
                std::fs::write(
                    driver_pids.join("bench-driver"),
                    std::process::id().to_string(),
                )
            })
            .unwrap_or_else(|e| die!("write {}: {e}", driver_pids.display()));
        CpuMeter {
            cluster_pids: bench.settings.cluster_dir.join("pids"),
            driver_pids,
        }
    }

    fn read(&self) -> BTreeMap<String, f64> {
        let mut used = cluster::cpu_seconds(&self.cluster_pids);
        used.extend(cluster::cpu_seconds(&self.driver_pids));
        used
    }
}

/// Runs the curve on `operator` in `ns` (empty, the fake gateway already accepting its
/// routes), leaving N Microservices Ready there; returns the curve's JSON and prints its table.
/// Fails the benchmark when the operator writes while idle.
pub async fn run(bench: &Bench, dir: &Path, operator: &Operator, ns: &str) -> Value {
    let s = &bench.settings;
    let capacity = pod_capacity(&bench.client).await;
    let pods_needed = (s.n + s.releasing) * s.replicas;
    if pods_needed > capacity {
        die!(
            "scale needs room for {pods_needed} pods but the nodes hold {capacity}; start the cluster with more fake nodes (WEIR_NODES)"
        );
    }
    let meter = CpuMeter::new(bench, dir);
    let watch = ReadyWatch::start(&bench.client, ns).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let Some(empty_rss) = proc_kib(operator.pid, "VmRSS") else {
        die!("the operator exited before the curve")
    };
    let names = crate::release::names("scale", s.n);
    let rss_path = dir.join("rss.tsv");
    let mut curve: Vec<Value> = Vec::new();
    let mut at_rest = 0u64;
    for &n in &s.scale_steps {
        let added = n - at_rest;
        log!("curve: {n} Microservices ({added} added)");
        let objects: Vec<Value> = names[at_rest as usize..n as usize]
            .iter()
            .map(|name| scale_object(name, s))
            .collect();
        let mark = support::audit::mark();
        let cpu_before = meter.read();
        let start = now();
        apply(dir, ns, n, objects).await;
        let applied = now();
        log!("curve: {added} applied in {:.1}s", applied - start);
        let ready_at = watch
            .wait_all(operator, n as usize, start, start + s.deadline())
            .await;
        let cpu_ready = meter.read();
        let Some(ready_at) = ready_at else {
            let at = now();
            curve.push(json!({
                "n": n, "added": added, "converged": false,
                "ready": watch.ready_count(),
                "seconds": rnd(Some(at - start), 3),
                "apply_seconds": rnd(Some(applied - start), 3),
                "peak_rss_mib": rnd(rss_between(&rss_path, start, at).into_iter().max().map(|k| k as f64 / 1024.0), 1),
                "cpu_seconds": cluster::cpu_between(&cpu_before, &cpu_ready),
            }));
            let result = summarize(&curve, empty_rss);
            report::write_json(&dir.join("curve.json"), &result);
            print_table(&result);
            return result;
        };
        log!(
            "curve: {n} Ready, {:.1}s after the apply began",
            ready_at - start
        );
        tokio::time::sleep(SETTLE_AFTER_READY).await;
        let idle_start = now();
        let cpu_idle_before = meter.read();
        tokio::time::sleep(Duration::from_secs(s.idle_seconds)).await;
        let idle_end = now();
        let cpu_idle = cluster::cpu_between(&cpu_idle_before, &meter.read());
        let Some(settled) = proc_kib(operator.pid, "VmRSS") else {
            die!(
                "the operator exited while idle at {n} Microservices; see {}",
                operator.log.display()
            )
        };
        let logged = operator_log(mark);
        let requests: Vec<&Request> = logged
            .iter()
            .map(|l| &l.request)
            .filter(|r| !r.is_lease && start <= r.time && r.time < idle_start)
            .collect();
        let writes = requests.iter().filter(|r| r.is_write()).count();
        let idle_writes: Vec<&Request> = logged
            .iter()
            .filter(|l| l.request.is_write() && !l.request.is_lease)
            .filter(|l| {
                l.completed
                    .is_some_and(|t| idle_start <= t && t <= idle_end)
            })
            .map(|l| &l.request)
            .collect();
        let peak = rss_between(&rss_path, start, idle_end).into_iter().max();
        let per_added = |count: f64| rnd(Some(count / added as f64), 3);
        let seconds = ready_at - start;
        let step = json!({
            "n": n, "added": added, "converged": true,
            "seconds": rnd(Some(seconds), 3),
            "apply_seconds": rnd(Some(applied - start), 3),
            "ms_per_added": per_added(seconds * 1000.0),
            "requests": requests.len(),
            "writes": writes,
            "requests_per_added": per_added(requests.len() as f64),
            "writes_per_added": per_added(writes as f64),
            "requests_by_verb_resource": audit::breakdown_json(&audit::breakdown(requests.iter().copied())),
            "peak_rss_mib": rnd(peak.map(|k| k as f64 / 1024.0), 1),
            "settled_rss_mib": rnd(Some(settled as f64 / 1024.0), 1),
            "rss_kib_per_object": rnd(Some((settled as f64 - empty_rss as f64) / n as f64), 2),
            "idle_seconds": s.idle_seconds,
            "idle_writes": idle_writes.len(),
            "idle_writes_by_verb_resource": audit::breakdown_json(&audit::breakdown(idle_writes.iter().copied())),
            "cpu_seconds": cluster::cpu_between(&cpu_before, &cpu_ready),
            "idle_cpu_seconds": cpu_idle,
        });
        log!(
            "curve: {n} at rest: {:.1}s, {:.1} requests and {:.2} writes per added Microservice, RSS {:.1} MiB, {} idle writes",
            seconds,
            num(&step, "requests_per_added").unwrap_or_default(),
            num(&step, "writes_per_added").unwrap_or_default(),
            settled as f64 / 1024.0,
            idle_writes.len()
        );
        curve.push(step);
        // Kept after every step, so a run stopped at a large N keeps what it measured.
        let result = summarize(&curve, empty_rss);
        report::write_json(&dir.join("curve.json"), &result);
        if !idle_writes.is_empty() {
            print_table(&result);
            die!(
                "the operator wrote {} times while idle with {n} Microservices at rest ({}); a converged operator writes nothing",
                idle_writes.len(),
                audit::breakdown_text(&audit::breakdown(idle_writes.iter().copied()))
            );
        }
        at_rest = n;
    }
    drop(watch);
    let result = summarize(&curve, empty_rss);
    print_table(&result);
    result
}

/// The curve's JSON: the steps, how each figure per object grew at the largest N, the RSS
/// target and the busiest process at the largest N.
fn summarize(curve: &[Value], empty_rss_kib: u64) -> Value {
    let growth_of = |key: &str| {
        let per_object: Vec<(f64, f64)> = curve
            .iter()
            .filter_map(|step| Some((num(step, "n")?, num(step, key)?)))
            .collect();
        growth(&per_object).map_or(
            json!(null),
            |g| json!({"ratio": report::round(g.ratio, 2), "linear": g.linear}),
        )
    };
    let largest = curve.last().cloned().unwrap_or_default();
    let cpu: BTreeMap<String, f64> =
        serde_json::from_value(largest["cpu_seconds"].clone()).unwrap_or_default();
    let limit = busiest(&cpu).map(|(process, seconds, total)| {
        let wall = num(&largest, "seconds").unwrap_or(f64::NAN);
        json!({
            "n": largest["n"], "process": process,
            "cpu_seconds": report::round(seconds, 1),
            "cores": report::round(seconds / wall, 2),
            "all_cores": report::round(total / wall, 2),
            "cores_available": std::thread::available_parallelism().map_or(0, |c| c.get()),
        })
    });
    let peak = num(&largest, "peak_rss_mib");
    let converged = curve.iter().all(|step| step["converged"] == true);
    json!({
        "steps": curve,
        "converged": converged,
        "empty_rss_mib": report::round(empty_rss_kib as f64 / 1024.0, 1),
        "linearity": {
            "ratio_limit": LINEAR_RATIO,
            "ms_per_added": growth_of("ms_per_added"),
            "requests_per_added": growth_of("requests_per_added"),
            "writes_per_added": growth_of("writes_per_added"),
            "rss_kib_per_object": growth_of("rss_kib_per_object"),
        },
        "rss_target_mib": RSS_TARGET_MIB,
        "rss_target_met": peak.map(|p| p <= RSS_TARGET_MIB),
        "busiest_at_largest_n": limit,
    })
}

fn print_table(result: &Value) {
    let steps = result["steps"].as_array().cloned().unwrap_or_default();
    let column = |key: &str, digits: usize| -> Vec<String> {
        steps.iter().map(|s| fmt(num(s, key), digits, "")).collect()
    };
    let idle = steps
        .first()
        .and_then(|s| num(s, "idle_seconds"))
        .unwrap_or_default();
    let empty_rss = num(result, "empty_rss_mib").unwrap_or_default();
    let mut rows: Vec<(String, Vec<String>)> = vec![
        ("Microservices at rest".into(), column("n", 0)),
        (
            "  all Ready".into(),
            steps
                .iter()
                .map(|s| match s["converged"].as_bool() {
                    Some(true) => "yes".to_string(),
                    _ => format!("no: {}", fmt(num(s, "ready"), 0, "")),
                })
                .collect(),
        ),
        ("  added in the step".into(), column("added", 0)),
        ("apply -> all Ready (s)".into(), column("seconds", 1)),
        (
            "  of which kubectl apply (s)".into(),
            column("apply_seconds", 1),
        ),
        (
            "  per added Microservice (ms)".into(),
            column("ms_per_added", 1),
        ),
        (
            "operator requests per added".into(),
            column("requests_per_added", 2),
        ),
        ("  of which writes".into(), column("writes_per_added", 2)),
        ("operator RSS peak (MiB)".into(), column("peak_rss_mib", 1)),
        (
            "operator RSS settled (MiB)".into(),
            column("settled_rss_mib", 1),
        ),
        (
            format!("  above empty ({empty_rss:.1}), per object (KiB)"),
            column("rss_kib_per_object", 1),
        ),
        (
            format!("idle writes ({idle:.0} s)"),
            column("idle_writes", 0),
        ),
        (
            "operator CPU s while idle".into(),
            steps
                .iter()
                .map(|s| fmt(s["idle_cpu_seconds"]["weir"].as_f64(), 2, ""))
                .collect(),
        ),
    ];
    let mut processes: Vec<String> = steps
        .iter()
        .filter_map(|s| s["cpu_seconds"].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    processes.sort();
    processes.dedup();
    for process in processes {
        rows.push((
            format!("CPU s until all Ready, {process}"),
            steps
                .iter()
                .map(|s| fmt(s["cpu_seconds"][&process].as_f64(), 1, ""))
                .collect(),
        ));
    }
    rows.push((
        "  cores busy, all processes".into(),
        steps
            .iter()
            .map(|s| {
                let total: f64 = s["cpu_seconds"]
                    .as_object()
                    .map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum());
                fmt(num(s, "seconds").map(|wall| total / wall), 2, "")
            })
            .collect(),
    ));
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let cell = rows
        .iter()
        .flat_map(|r| r.1.iter().map(|v| v.chars().count()))
        .max()
        .unwrap_or(0)
        .max(6);
    println!("\nscale: Microservices at rest, one step after the other in one namespace");
    for (name, values) in &rows {
        let values: Vec<String> = values.iter().map(|v| format!("{v:>cell$}")).collect();
        println!("{name:<width$}  {}", values.join("  "));
    }
    let linearity = &result["linearity"];
    println!(
        "\nlinearity: a figure per object at the largest N over the same at the step before; linear up to {LINEAR_RATIO}"
    );
    for (key, what) in [
        ("ms_per_added", "time to Ready per added Microservice"),
        (
            "requests_per_added",
            "operator requests per added Microservice",
        ),
        ("writes_per_added", "operator writes per added Microservice"),
        ("rss_kib_per_object", "settled RSS per Microservice at rest"),
    ] {
        let g = &linearity[key];
        let verdict = match g["linear"].as_bool() {
            Some(true) => "linear",
            Some(false) => "NOT linear",
            None => "not judged (one step, or nothing to compare with)",
        };
        println!("  {what:<42} x{}: {verdict}", fmt(num(g, "ratio"), 2, ""));
    }
    println!(
        "operator RSS peak at the largest N: {} (target at most {RSS_TARGET_MIB:.0} MiB: {})",
        fmt(steps.last().and_then(|s| num(s, "peak_rss_mib")), 1, " MiB"),
        report::verdict(result["rss_target_met"].as_bool())
    );
    if result["converged"] == false {
        println!(
            "the curve stopped at N={}: not all Ready (\"no: R\" above is how many were), the processes' CPU seconds until then are above",
            steps.last().map_or(json!(null), |s| s["n"].clone())
        );
    }
    let limit = &result["busiest_at_largest_n"];
    if !limit.is_null() {
        println!(
            "busiest process at N={}: {}, {} CPU s ({} cores); all processes {} of {} cores",
            limit["n"],
            limit["process"].as_str().unwrap_or_default(),
            fmt(num(limit, "cpu_seconds"), 1, ""),
            fmt(num(limit, "cores"), 2, ""),
            fmt(num(limit, "all_cores"), 2, ""),
            limit["cores_available"]
        );
    }
}
