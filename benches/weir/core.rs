//! core: N Deployments + Services applied directly (the floor) against N Microservices, in
//! BENCH_RUNS runs; API writes per Microservice; an idle window that should write nothing;
//! the operator's RSS.
//!
//! Each phase's clock starts just before `kubectl apply --server-side` and stops when a list
//! of the namespace shows all N objects ready:
//!   floor: every Deployment has Available=True and readyReplicas == spec.replicas
//!          (Available alone is already true while pods are still starting);
//!   weir:  every Microservice has condition Ready=True and
//!          status.observedGeneration == metadata.generation.
//! Operator writes are audit entries whose userAgent starts with "weir/", with verb create,
//! update, patch or delete at stage ResponseComplete, each auditID once. Lease writes are
//! counted apart and left out of "writes per Microservice" and "idle writes".

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::audit::{self, Request};
use crate::cluster::{self, Bench, Operator, now, proc_kib};
use crate::generate;
use crate::report::{self, Row, fmt, median, num, round, row};

const POLL: Duration = Duration::from_millis(500);
const PROGRESS_SECONDS: f64 = 10.0;

pub async fn run(bench: &Bench, dir: &Path) {
    let s = &bench.settings;
    let custom_resource = custom_resource_alone(bench, dir).await;
    let operator = Operator::start(bench, dir, &[]).await;
    // Nothing to watch yet: the operator's own footprint, the base of the memory breakdown.
    let baseline_rss = proc_kib(operator.pid, "VmRSS");
    for (kind, text) in [
        ("floor", generate::floor(s.n, s.replicas)),
        ("weir", generate::weir(s.n, s.replicas)),
    ] {
        let path = dir.join(format!("{kind}.yaml"));
        std::fs::write(&path, text).unwrap_or_else(|e| die!("write {}: {e}", path.display()));
    }
    let mut events_file = report::create(&dir.join("events.jsonl"));
    let mut events = Vec::new();
    for run in 1..=s.runs {
        // Alternate which side goes first, so warm-up (the API server's caches, the
        // operator's informers filling, lazy allocations) does not always favour one.
        let order = if run % 2 == 1 {
            ["floor", "weir"]
        } else {
            ["weir", "floor"]
        };
        log!(
            "core run {run}/{} ({}), N={}, replicas={}",
            s.runs,
            order.join(" "),
            s.n,
            s.replicas
        );
        for kind in order {
            let event = phase(bench, dir, &operator, kind, run).await;
            report::append_line(&mut events_file, &event);
            events.push(event);
        }
        // The operator's writes for this run are counted up to here, settling writes included.
        let end = json!({"kind": "run-end", "run": run, "time": now()});
        report::append_line(&mut events_file, &end);
        events.push(end);
        let floor_ns = format!("bench-floor-{run}");
        let weir_ns = format!("bench-weir-{run}");
        // The last Microservices stay for the idle window.
        let gone = if run < s.runs {
            vec![floor_ns, weir_ns]
        } else {
            vec![floor_ns]
        };
        cluster::delete_namespaces(&bench.client, &gone, s.deadline()).await;
    }

    // Idle: N Ready Microservices and nothing changing; a level-triggered operator that has
    // converged should not write. Its RSS at the end is the "settled" figure.
    log!(
        "idle window: {}s with {} Ready Microservices",
        s.idle_seconds,
        s.n
    );
    let idle_start = now();
    tokio::time::sleep(Duration::from_secs(s.idle_seconds)).await;
    let idle_end = now();
    let settled = proc_kib(operator.pid, "VmRSS");
    let hwm = proc_kib(operator.pid, "VmHWM"); // the kernel's own peak, a check on the sampled one
    let Some(settled) = settled else {
        die!(
            "the operator exited during the idle window; see {}",
            operator.log.display()
        )
    };
    let idle = json!({"kind": "idle", "start": idle_start, "end": idle_end,
        "settled_rss_kib": settled, "hwm_rss_kib": hwm.unwrap_or(settled)});
    report::append_line(&mut events_file, &idle);
    events.push(idle);
    let weir_ns = format!("bench-weir-{}", s.runs);
    let caches = crate::memory::breakdown(&bench.client, &weir_ns).await;

    let (mut result, notes) = summarize(bench, &events, &rss_samples(&dir.join("rss.tsv")));
    let weir_apply = median(
        result["per_run"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| num(r, "weir_apply_seconds")),
    );
    let cr_seconds = num(&custom_resource, "apply_seconds").unwrap_or_default();
    let status_seconds = num(&custom_resource, "status_seconds").unwrap_or_default();
    let floor_median = num(&result, "median_floor_seconds").unwrap_or(f64::NAN);
    // What is left of Weir's time once the API server's cost of the Microservices themselves
    // (the same apply, with no operator) is taken out, against the floor; and once their two
    // status writes are taken out too.
    let weir_median = num(&result, "median_weir_seconds").unwrap_or_default();
    result["ratio_without_custom_resource"] =
        json!(round((weir_median - cr_seconds) / floor_median, 3));
    result["ratio_without_custom_resource_and_status"] = json!(round(
        (weir_median - cr_seconds - status_seconds) / floor_median,
        3
    ));
    result["api_server_cpu"] = api_server_cpu(&result, &custom_resource);
    result["custom_resource"] = custom_resource;
    result["weir_apply_seconds_median"] = json!(weir_apply.map(|a| round(a, 3)));
    result["memory"] = json!({"baseline_rss_kib": baseline_rss, "settled_rss_kib": settled,
        "caches": caches});
    report::write_json(&s.out.join("core.json"), &result);
    print_table(&result, &notes);
    bench
        .end_part("core", operator, &[format!("bench-weir-{}", s.runs)])
        .await;
}

/// The API server's cost of the custom resource itself: the same N Microservices applied
/// with no operator running (CEL rules, the schema's pruning and defaulting, storage), timed
/// like a phase's apply; then the two status writes any operator makes to report a service
/// (coming up, then Ready), written by the driver 8 at a time, timed and costed apart; then
/// deleted before the operator starts.
async fn custom_resource_alone(bench: &Bench, dir: &Path) -> Value {
    let s = &bench.settings;
    let ns = "bench-custom-resource";
    cluster::fresh_namespace(&bench.client, ns).await;
    let file = dir.join("custom-resource.yaml");
    std::fs::write(&file, generate::weir(s.n, s.replicas))
        .unwrap_or_else(|e| die!("write {}: {e}", file.display()));
    let pids = s.cluster_dir.join("pids");
    let cpu_before = cluster::cpu_seconds(&pids);
    let start = now();
    cluster::kubectl_apply(ns, &file).await;
    let seconds = now() - start;
    let cpu_applied = cluster::cpu_seconds(&pids);
    log!(
        "{} Microservices applied with no operator in {seconds:.1}s",
        s.n
    );
    let status_start = now();
    write_two_statuses(&bench.client, ns, s.n).await;
    let status_seconds = now() - status_start;
    let cpu_after = cluster::cpu_seconds(&pids);
    log!("and their status written twice each in {status_seconds:.1}s");
    cluster::delete_namespaces(&bench.client, &[ns.to_string()], s.deadline()).await;
    json!({"apply_seconds": round(seconds, 3), "cpu_seconds": cluster::cpu_between(&cpu_before, &cpu_applied),
           "status_seconds": round(status_seconds, 3),
           "status_cpu_seconds": cluster::cpu_between(&cpu_applied, &cpu_after)})
}

/// Two server-side-applied status writes per Microservice, shaped like Weir's: one while
/// its pods come up, one when it is Ready.
async fn write_two_statuses(client: &Client, ns: &str, n: u64) {
    use futures::StreamExt;
    let api: Api<weir::api::Microservice> = Api::namespaced(client.clone(), ns);
    let writes = (0..n).flat_map(|i| [(i, false), (i, true)]);
    let mut results = futures::stream::iter(writes)
        .map(|(i, ready)| {
            let api = api.clone();
            async move {
                let name = generate::name(i);
                let patch = reported_status(&name, ready);
                let params = kube::api::PatchParams::apply("weir-bench").force();
                api.patch_status(&name, &params, &kube::api::Patch::Apply(&patch))
                    .await
                    .map_err(|e| format!("status of {name}: {e}"))
            }
        })
        .buffered(8);
    while let Some(result) = results.next().await {
        if let Err(e) = result {
            die!("{e}");
        }
    }
}

/// A status as Weir writes it for a one-replica Microservice, coming up or Ready.
fn reported_status(name: &str, ready: bool) -> Value {
    let at = "2026-01-01T00:00:00Z";
    let condition = |type_: &str, status: bool, reason: &str, message: &str| {
        json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason,
               "message": message, "lastTransitionTime": at, "observedGeneration": 1})
    };
    let (phase, message) = if ready {
        ("Healthy", "1/1 pods ready".to_string())
    } else {
        (
            "Progressing",
            format!("waiting for Deployment {name}-blue: 0/1 pods ready"),
        )
    };
    json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
        "status": {
            "observedGeneration": 1, "phase": phase, "message": message,
            "replicas": 1, "readyReplicas": i32::from(ready), "updatedReplicas": 1,
            "selector": format!("app.kubernetes.io/name={name}"), "activeSlot": "blue",
            "stableRevision": "5d8f7c9b6a",
            "conditions": [
                condition("Ready", ready, if ready { "Available" } else { "RollingOut" }, &message),
                condition("Progressing", !ready, if ready { "RolledOut" } else { "RollingOut" }, &message),
                condition("Degraded", false, "AsExpected", ""),
                condition("Reconciling", !ready, "RollingOut", &message),
                condition("Stalled", false, "AsExpected", ""),
            ]
        }
    })
}

/// The API server's CPU seconds: the floor's, Weir's, the custom resource's own (its apply
/// and its two status writes), and the ratios to the floor with and without it. On a machine
/// where the control plane is the bottleneck, the API server's work is what sets the time.
fn api_server_cpu(result: &Value, custom_resource: &Value) -> Value {
    let runs = result["per_run"].as_array().cloned().unwrap_or_default();
    let side = |key: &str| median(runs.iter().map(|r| r[key]["kube-apiserver"].as_f64()));
    let (Some(floor), Some(weir)) = (side("floor_cpu_seconds"), side("weir_cpu_seconds")) else {
        return Value::Null;
    };
    let of = |key: &str| {
        custom_resource[key]["kube-apiserver"]
            .as_f64()
            .unwrap_or_default()
    };
    let own = of("cpu_seconds") + of("status_cpu_seconds");
    json!({"floor": round(floor, 1), "weir": round(weir, 1),
           "custom_resource": round(of("cpu_seconds"), 1),
           "custom_resource_status": round(of("status_cpu_seconds"), 1),
           "ratio": round(weir / floor, 3),
           "ratio_without_custom_resource": round((weir - own) / floor, 3)})
}

/// A row of the custom resource's own cost: its seconds and the API server's CPU seconds.
fn custom_resource_row(r: &Value, name: &str, (seconds, cpu): (&str, &str), note: &str) -> Row {
    let custom_resource = &r["custom_resource"];
    let api_server_cpu = custom_resource[cpu]["kube-apiserver"].as_f64();
    row(
        name,
        fmt(num(custom_resource, seconds), 2, " s"),
        format!(
            "{note}; kube-apiserver {} CPU s",
            fmt(api_server_cpu, 1, "")
        ),
    )
}

/// VmRSS samples (KiB) of `rss.tsv`, "<epoch> <KiB>" lines.
pub fn rss_samples(path: &Path) -> Vec<(f64, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (time, kib) = line.split_once(' ')?;
            Some((time.parse().ok()?, kib.trim().parse().ok()?))
        })
        .collect()
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// Available=True and as many ready pods as asked for.
fn deployment_ready(d: &Value) -> bool {
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    condition_true(d, "Available") && d["status"]["readyReplicas"].as_i64().unwrap_or(0) == want
}

/// Ready=True, written for the generation the spec is at.
fn microservice_ready(m: &Value) -> bool {
    condition_true(m, "Ready")
        && !m["status"]["observedGeneration"].is_null()
        && m["status"]["observedGeneration"] == m["metadata"]["generation"]
}

/// One line on why an object is not ready yet, for failure messages.
fn describe(object: &Value) -> String {
    let status = &object["status"];
    let conditions: Vec<String> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let reason = c["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!(
                "{}={}{reason}",
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    let conditions = if conditions.is_empty() {
        "no conditions".to_string()
    } else {
        conditions.join(", ")
    };
    format!(
        "{}: {conditions}; readyReplicas={} observedGeneration={} generation={}",
        object["metadata"]["name"].as_str().unwrap_or(""),
        status["readyReplicas"].as_i64().unwrap_or(0),
        status["observedGeneration"],
        object["metadata"]["generation"]
    )
}

async fn list(client: &Client, ns: &str, kind: &str) -> Vec<Value> {
    let resource = if kind == "floor" {
        ApiResource::erase::<Deployment>(&())
    } else {
        ApiResource::erase::<weir::api::Microservice>(&())
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    cluster::list_values(&api, ns).await
}

/// One timed phase: fresh namespace, apply, wait until all N are ready. Returns its event.
async fn phase(bench: &Bench, dir: &Path, operator: &Operator, kind: &str, run: u64) -> Value {
    let s = &bench.settings;
    let ns = format!("bench-{kind}-{run}");
    cluster::fresh_namespace(&bench.client, &ns).await;
    let (ready, what): (fn(&Value) -> bool, &str) = if kind == "floor" {
        (
            deployment_ready,
            "Deployments Available with all replicas ready",
        )
    } else {
        (
            microservice_ready,
            "Microservices Ready at their generation",
        )
    };
    let pids = s.cluster_dir.join("pids");
    let cpu_before = cluster::cpu_seconds(&pids);
    let start = now();
    let file = dir.join(format!("{kind}.yaml"));
    cluster::kubectl_apply(&ns, &file).await;
    let applied = now();
    log!(
        "run {run} {kind}: applied in {:.1}s, waiting for {} {what}",
        applied - start,
        s.n
    );
    let deadline = start + s.deadline();
    let mut next_progress = applied + PROGRESS_SECONDS;
    let ready_at = loop {
        let polled = now();
        let items = list(&bench.client, &ns, kind).await;
        let done = items.iter().filter(|i| ready(i)).count() as u64;
        let at = now();
        if items.len() as u64 == s.n && done == s.n {
            break at;
        }
        operator.check_alive(&format!("{} {what}", s.n));
        if at >= deadline {
            let waiting: Vec<String> = items
                .iter()
                .filter(|i| !ready(i))
                .take(5)
                .map(describe)
                .collect();
            die!(
                "run {run} {kind}: only {done}/{} {what} in {ns} after {:.0}s (deadline {:.0}s; {} objects listed). Not ready, e.g.:\n  {}",
                s.n,
                at - start,
                s.deadline(),
                items.len(),
                if waiting.is_empty() {
                    "(none listed)".to_string()
                } else {
                    waiting.join("\n  ")
                }
            );
        }
        if at >= next_progress {
            log!(
                "run {run} {kind}: {done}/{} ready after {:.0}s",
                s.n,
                at - start
            );
            next_progress = at + PROGRESS_SECONDS;
        }
        let spent = Duration::from_secs_f64((now() - polled).max(0.0));
        tokio::time::sleep(POLL.saturating_sub(spent)).await;
    };
    let cpu_after = cluster::cpu_seconds(&pids);
    let cpu = cluster::cpu_between(&cpu_before, &cpu_after);
    let mut result = json!({
        "run": run, "kind": kind, "namespace": ns, "n": s.n,
        "start": start, "applied": applied, "ready": ready_at,
        "seconds": ready_at - start, "apply_seconds": applied - start,
        "cpu_seconds": cpu,
    });
    if kind == "weir" {
        check_children(bench, &ns, run, &mut result).await;
    }
    log!(
        "run {run} {kind}: all {} ready in {:.2}s",
        s.n,
        ready_at - start
    );
    result
}

/// Ready must mean what the floor measures: checks the children's pods really are ready.
async fn check_children(bench: &Bench, ns: &str, run: u64, result: &mut Value) {
    let s = &bench.settings;
    let deployments: Api<Deployment> = Api::namespaced(bench.client.clone(), ns);
    let services: Api<Service> = Api::namespaced(bench.client.clone(), ns);
    let deployments = deployments
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let services = services
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let ready_pods: i64 = deployments
        .iter()
        .filter_map(|d| d.status.as_ref()?.ready_replicas)
        .map(i64::from)
        .sum();
    result["child_deployments"] = json!(deployments.len());
    result["child_services"] = json!(services.len());
    result["child_ready_pods"] = json!(ready_pods);
    if (ready_pods as u64) < s.n * s.replicas || (services.len() as u64) < s.n {
        log!(
            "warning: run {run}: Microservices are Ready but {ns} has only {ready_pods}/{} ready pods and {}/{} Services",
            s.n * s.replicas,
            services.len(),
            s.n
        );
    }
}

/// Turns the phases, the audit log and the RSS samples into core.json.
fn summarize(bench: &Bench, events: &[Value], rss: &[(f64, u64)]) -> (Value, Notes) {
    let s = &bench.settings;
    let phase = |run: u64, kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["run"] == run)
            .unwrap_or_else(|| die!("no {kind} phase recorded for run {run}"))
    };
    let end_of = |run: u64| {
        events
            .iter()
            .find(|e| e["kind"] == "run-end" && e["run"] == run)
            .and_then(|e| num(e, "time"))
            .unwrap_or(f64::MAX)
    };
    let idle = events
        .iter()
        .find(|e| e["kind"] == "idle")
        .expect("the idle event");
    let writes = audit::operator_writes();
    let mut runs = Vec::new();
    let mut last_run_writes = String::new();
    for run in 1..=s.runs {
        let (floor, weir) = (phase(run, "floor"), phase(run, "weir"));
        let weir_start = num(weir, "start").unwrap_or_default();
        let weir_ready = num(weir, "ready").unwrap_or_default();
        // Writes that brought this run's Microservices to Ready and settled them: in their
        // namespace, from the start of the apply to the end of the run (before its namespaces
        // are deleted; for the last run, the start of the idle window).
        let counted: Vec<&Request> = writes
            .iter()
            .filter(|w| !w.is_lease && w.namespace == weir["namespace"].as_str().unwrap_or(""))
            .filter(|w| weir_start <= w.time && w.time <= end_of(run))
            .collect();
        last_run_writes = audit::breakdown_text(&audit::breakdown(counted.iter().copied()));
        let before_ready = counted.iter().filter(|w| w.time <= weir_ready).count();
        let floor_first = num(floor, "start") < num(weir, "start");
        runs.push(json!({
            "run": run,
            "order": if floor_first { "floor,weir" } else { "weir,floor" },
            "floor_seconds": round(num(floor, "seconds").unwrap_or_default(), 3),
            "floor_apply_seconds": round(num(floor, "apply_seconds").unwrap_or_default(), 3),
            "weir_seconds": round(num(weir, "seconds").unwrap_or_default(), 3),
            "weir_apply_seconds": round(num(weir, "apply_seconds").unwrap_or_default(), 3),
            "weir_writes": counted.len(),
            "weir_writes_until_ready": before_ready,
            "writes_per_microservice": round(counted.len() as f64 / s.n as f64, 3),
            "weir_writes_by_resource": audit::breakdown_json(&audit::breakdown(counted.iter().copied())),
            "floor_cpu_seconds": floor["cpu_seconds"],
            "weir_cpu_seconds": weir["cpu_seconds"],
        }));
    }
    let of_runs = |key: &str| median(runs.iter().map(|r| num(r, key)));
    let floor_median = of_runs("floor_seconds").unwrap_or_default();
    let weir_median = of_runs("weir_seconds").unwrap_or_default();
    let (idle_start, idle_end) = (
        num(idle, "start").unwrap_or_default(),
        num(idle, "end").unwrap_or_default(),
    );
    let in_idle = |w: &&Request| idle_start <= w.time && w.time <= idle_end;
    let idle_writes: Vec<&Request> = writes
        .iter()
        .filter(|w| !w.is_lease)
        .filter(in_idle)
        .collect();
    let leases: Vec<&Request> = writes.iter().filter(|w| w.is_lease).collect();
    let peak = rss.iter().map(|(_, kib)| *kib).max();
    let mut result = json!({
        "n": s.n,
        "replicas": s.replicas,
        "runs": s.runs,
        "per_run": runs,
        "median_floor_seconds": round(floor_median, 3),
        "median_weir_seconds": round(weir_median, 3),
        "ratio": round(weir_median / floor_median, 3),
        "peak_rss_mib": peak.map(|kib| round(kib as f64 / 1024.0, 1)),
        "peak_rss_hwm_mib": round(num(idle, "hwm_rss_kib").unwrap_or_default() / 1024.0, 1),
        "settled_rss_mib": round(num(idle, "settled_rss_kib").unwrap_or_default() / 1024.0, 1),
        "rss_samples": rss.len(),
        "writes_per_microservice": of_runs("writes_per_microservice"),
        "operator_writes_total": writes.iter().filter(|w| !w.is_lease).count(),
        "lease_writes": leases.len(),
        "lease_writes_idle": leases.iter().filter(|w| in_idle(w)).count(),
        "idle_writes": idle_writes.len(),
        "idle_writes_by_resource": audit::breakdown_json(&audit::breakdown(idle_writes.iter().copied())),
        "idle_seconds": s.idle_seconds as f64,
    });
    let notes = Notes {
        idle_writes: audit::breakdown_text(&audit::breakdown(idle_writes.iter().copied())),
        last_run_writes,
    };
    if writes.is_empty() {
        // Ready Microservices with no write from "weir/" means the userAgent is not what we count.
        let last = format!("bench-weir-{}", s.runs);
        result["writers_in_last_weir_namespace"] = json!(audit::writers_in(&last));
    }
    (result, notes)
}

/// The breakdowns the table prints in their order (most frequent first).
struct Notes {
    idle_writes: String,
    last_run_writes: String,
}

fn print_table(r: &Value, notes: &Notes) {
    let runs = r["per_run"].as_array().cloned().unwrap_or_default();
    let n = num(r, "n").unwrap_or(1.0);
    let per_run = |key: &str, digits: usize| {
        runs.iter()
            .map(|x| fmt(num(x, key), digits, ""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let of_runs = |key: &str| median(runs.iter().map(|x| num(x, key)));
    let until_ready: Vec<Option<f64>> = runs
        .iter()
        .map(|x| num(x, "weir_writes_until_ready").map(|w| w / n))
        .collect();
    let mut rows = vec![
        row(
            "Microservices x replicas, runs",
            format!("{} x {}, {} runs", r["n"], r["replicas"], r["runs"]),
            "",
        ),
        row(
            "floor: Deployments+Services ready",
            fmt(num(r, "median_floor_seconds"), 2, " s"),
            per_run("floor_seconds", 2),
        ),
        row(
            "  of which kubectl apply",
            fmt(of_runs("floor_apply_seconds"), 2, " s"),
            per_run("floor_apply_seconds", 2),
        ),
        row(
            "weir: Microservices Ready",
            fmt(num(r, "median_weir_seconds"), 2, " s"),
            per_run("weir_seconds", 2),
        ),
        row(
            "  of which kubectl apply",
            fmt(of_runs("weir_apply_seconds"), 2, " s"),
            per_run("weir_apply_seconds", 2),
        ),
        row("ratio weir / floor", fmt(num(r, "ratio"), 2, ""), ""),
        custom_resource_row(
            r,
            "the same Microservices, no operator: apply",
            ("apply_seconds", "cpu_seconds"),
            "the API server's cost of the custom resource",
        ),
        row(
            "  ratio without it: (weir - that) / floor",
            fmt(num(r, "ratio_without_custom_resource"), 2, ""),
            "",
        ),
        custom_resource_row(
            r,
            "  and their status written twice",
            ("status_seconds", "status_cpu_seconds"),
            "8 at a time",
        ),
        row(
            "  ratio without both",
            fmt(num(r, "ratio_without_custom_resource_and_status"), 2, ""),
            "",
        ),
        row(
            "kube-apiserver CPU, ratio weir / floor",
            fmt(num(&r["api_server_cpu"], "ratio"), 2, ""),
            format!(
                "{} / {} CPU s",
                fmt(num(&r["api_server_cpu"], "weir"), 1, ""),
                fmt(num(&r["api_server_cpu"], "floor"), 1, "")
            ),
        ),
        row(
            "  without the custom resource's own",
            fmt(
                num(&r["api_server_cpu"], "ratio_without_custom_resource"),
                2,
                "",
            ),
            "its apply and two status writes per Microservice taken out",
        ),
        row(
            "API writes per Microservice",
            fmt(num(r, "writes_per_microservice"), 2, ""),
            per_run("writes_per_microservice", 2),
        ),
        row(
            "  of which until all Ready",
            fmt(median(until_ready.iter().copied()), 2, ""),
            until_ready
                .iter()
                .map(|v| fmt(*v, 2, ""))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        row(
            "operator RSS peak",
            fmt(num(r, "peak_rss_mib"), 1, " MiB"),
            format!(
                "{} samples; kernel's VmHWM {}",
                r["rss_samples"],
                fmt(num(r, "peak_rss_hwm_mib"), 1, " MiB")
            ),
        ),
        row(
            "operator RSS settled",
            fmt(num(r, "settled_rss_mib"), 1, " MiB"),
            "at the end of the idle window",
        ),
        row(
            format!(
                "idle writes ({} s)",
                r["idle_seconds"].as_f64().unwrap_or_default()
            ),
            r["idle_writes"].to_string(),
            notes.idle_writes.as_str(),
        ),
        row(
            "lease writes (all / idle)",
            format!("{} / {}", r["lease_writes"], r["lease_writes_idle"]),
            "not counted above",
        ),
    ];
    let memory = &r["memory"];
    let mib = |key: &str| memory[key].as_f64().map(|kib| kib / 1024.0);
    rows.push(row(
        "operator RSS with nothing to watch",
        fmt(mib("baseline_rss_kib"), 1, " MiB"),
        "binary, runtime, clients: the base of the breakdown below",
    ));
    rows.extend(crate::memory::rows(&memory["caches"]));
    let mut components: Vec<String> = Vec::new();
    for side in ["floor_cpu_seconds", "weir_cpu_seconds"] {
        if let Some(map) = runs.first().and_then(|x| x[side].as_object()) {
            components.extend(map.keys().cloned());
        }
    }
    components.sort();
    components.dedup();
    for component in components {
        let cpu = |side: &str| {
            median(
                runs.iter()
                    .map(|x| Some(x[side][&component].as_f64().unwrap_or(0.0))),
            )
        };
        rows.push(row(
            format!("CPU s, {component} (floor / weir)"),
            format!(
                "{} / {}",
                fmt(cpu("floor_cpu_seconds"), 1, ""),
                fmt(cpu("weir_cpu_seconds"), 1, "")
            ),
            "median over runs",
        ));
    }
    report::table(None, &rows);
    if let Some(last) = runs.last()
        && !notes.last_run_writes.is_empty()
    {
        println!(
            "\noperator writes in run {}: {}",
            last["run"], notes.last_run_writes
        );
    }
    if let Some(writers) = r.get("writers_in_last_weir_namespace") {
        eprintln!(
            "\nwarning: no audit entry has a userAgent starting with weir/; writers in the last Weir namespace were: {writers}"
        );
    }
}
