//! scale: the at-rest curve (scale_curve.rs: 100, 1000, 3000, 10000 Microservices up to N,
//! time, requests and memory per object), then, on the N left at rest, RELEASING of them
//! release at once: time, operator requests per release from the audit log, peak and
//! settled RSS.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::audit;
use crate::cluster::{self, Bench, Operator, now, proc_kib};
use crate::core::rss_samples;
use crate::release::{self, Watcher, names, released, set_image, status, wait_all_healthy};
use crate::report::{self, fmt, median, num, rnd, row};
use crate::scale_curve;

/// RSS samples (KiB) of `rss.tsv` taken within [start, end].
pub fn rss_between(path: &Path, start: f64, end: f64) -> Vec<u64> {
    rss_samples(path)
        .into_iter()
        .filter(|(t, _)| start <= *t && *t <= end)
        .map(|(_, kib)| kib)
        .collect()
}

fn mib(kib: Option<u64>) -> Option<f64> {
    rnd(kib.map(|k| k as f64 / 1024.0), 1)
}

pub async fn run(bench: &Bench, dir: &Path) {
    let s = &bench.settings;
    let ns = "bench-scale";
    cluster::fresh_namespace(&bench.client, ns).await;
    let operator = Operator::start(bench, dir, &[]).await;
    let gateway = crate::support::gateway::FakeGateway::start(bench.client.clone(), ns);
    let curve = scale_curve::run(bench, dir, &operator, ns).await;
    if curve["converged"] == false {
        // The releases need N at rest; the curve's table says where and why it stopped.
        report::write_json(
            &s.out.join("scale.json"),
            &json!({"n": s.n, "curve": curve}),
        );
        drop(gateway);
        bench.end_part("scale", operator, &[ns.to_string()]).await;
        return;
    }
    // Started on the N at rest: its copy of every status is for the releasing few.
    let watcher = Watcher::start(&bench.client, ns).await;
    let everyone = names("scale", s.n);
    // Spread over the whole set, so the releasing ones are not all the first created.
    let stride = s.n as f64 / s.releasing as f64;
    let releasing: Vec<String> = (0..s.releasing)
        .map(|i| everyone[(i as f64 * stride) as usize].clone())
        .collect();
    // Ready (the curve's measure) and Healthy (the releases' starting point) agree at rest.
    let what = format!("the {} Microservices to release Healthy", s.releasing);
    wait_all_healthy(&watcher, &operator, &releasing, now() + s.deadline(), &what).await;
    let rss_path = dir.join("rss.tsv");
    let mut runs = Vec::new();
    let mut last_breakdown = String::new();
    for run in 1..=s.runs {
        let tag = (run + 1).to_string();
        let old: HashMap<String, Value> = {
            let seen = watcher.seen();
            releasing
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        status(&seen.objects[n])["stableRevision"].clone(),
                    )
                })
                .collect()
        };
        let window_start = now();
        let mut started = HashMap::new();
        for n in &releasing {
            started.insert(n.clone(), set_image(&bench.client, ns, n, &tag).await);
        }
        let patched = now();
        let mut finished: HashMap<String, f64> = HashMap::new(); // Healthy on the new revision
        let mut settled: HashMap<String, f64> = HashMap::new(); // and the old slot's Deployment gone
        let what = format!("run {run}: {} releases to finish", s.releasing);
        watcher
            .wait(
                &operator,
                &what,
                |seen| {
                    for n in &releasing {
                        let Some(ms) = seen.objects.get(n) else {
                            continue;
                        };
                        let at = seen.received[n];
                        if !finished.contains_key(n) && released(ms, &old[n], false) {
                            finished.insert(n.clone(), at);
                        }
                        if !settled.contains_key(n) && released(ms, &old[n], true) {
                            settled.insert(n.clone(), at);
                            finished.entry(n.clone()).or_insert(at);
                        }
                    }
                    settled.len() == releasing.len()
                },
                window_start + s.deadline(),
            )
            .await;
        let last = finished.values().copied().fold(f64::MIN, f64::max);
        let last_settled = settled.values().copied().fold(f64::MIN, f64::max);
        // The window for counting requests runs until every old slot is gone, plus a short
        // grace for the requests of the last reconciles (the final status write).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let window_end = last_settled + 2.0;
        let requests = audit::operator_requests(window_start, window_end);
        let counted: Vec<&audit::Request> = requests.iter().filter(|r| !r.is_lease).collect();
        let durations: Vec<f64> = releasing.iter().map(|n| finished[n] - started[n]).collect();
        let rss = rss_between(&rss_path, window_start, window_end);
        let breakdown = audit::breakdown(counted.iter().copied());
        last_breakdown = audit::breakdown_text(&breakdown);
        let per_release = |count: usize| rnd(Some(count as f64 / s.releasing as f64), 2);
        let result = json!({
            "run": run, "tag": tag,
            "patch_seconds": rnd(Some(patched - window_start), 3),
            "all_finished_seconds": rnd(Some(last - window_start), 3),
            "all_settled_seconds": rnd(Some(last_settled - window_start), 3),
            "window_seconds": rnd(Some(window_end - window_start), 3),
            "median_release_seconds": rnd(median(durations.iter().map(|d| Some(*d))), 3),
            "max_release_seconds": rnd(durations.iter().copied().reduce(f64::max), 3),
            "requests": counted.len(),
            "requests_per_release": per_release(counted.len()),
            "writes_per_release": per_release(counted.iter().filter(|r| r.is_write()).count()),
            "lease_requests": requests.len() - counted.len(),
            "requests_by_verb_resource": audit::breakdown_json(&breakdown),
            "peak_rss_mib": mib(rss.iter().copied().max()),
        });
        log!(
            "run {run}: {} releases finished {:.1}s after the first image change; {:.1} operator requests per release",
            s.releasing,
            num(&result, "all_finished_seconds").unwrap_or_default(),
            num(&result, "requests_per_release").unwrap_or_default()
        );
        runs.push(result);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    log!("settling for {}s", s.settle_seconds);
    tokio::time::sleep(Duration::from_secs(s.settle_seconds)).await;
    let Some(settled) = proc_kib(operator.pid, "VmRSS") else {
        die!("the operator exited while settling")
    };
    let hwm = proc_kib(operator.pid, "VmHWM");
    watcher.dump_history(&dir.join("history.jsonl"));
    release::dump_gateway(&gateway, ns, dir);
    drop((watcher, gateway));
    let all_rss = rss_between(&rss_path, 0.0, now());
    let of_runs = |key: &str| median(runs.iter().map(|r| num(r, key)));
    let out = json!({
        "n": s.n, "releasing": s.releasing, "replicas": s.replicas, "runs": s.runs,
        "steps": "setWeight 50, pause 1s",
        "curve": curve,
        "all_finished_seconds": rnd(of_runs("all_finished_seconds"), 3),
        "median_release_seconds": rnd(of_runs("median_release_seconds"), 3),
        "max_release_seconds": rnd(of_runs("max_release_seconds"), 3),
        "requests_per_release": rnd(of_runs("requests_per_release"), 2),
        "writes_per_release": rnd(of_runs("writes_per_release"), 2),
        "peak_rss_mib": mib(all_rss.iter().copied().max()),
        "peak_rss_releasing_mib": rnd(runs.iter().map(|r| num(r, "peak_rss_mib").unwrap_or(0.0)).reduce(f64::max), 1),
        "peak_rss_hwm_mib": mib(hwm),
        "settled_rss_mib": mib(Some(settled)),
        "settle_seconds": s.settle_seconds,
        "per_run": runs,
    });
    report::write_json(&s.out.join("scale.json"), &out);
    print_table(bench, &out, &runs);
    if let Some(last) = runs.last() {
        println!(
            "\noperator requests in run {}: {last_breakdown}",
            last["run"]
        );
    }
    bench.end_part("scale", operator, &[ns.to_string()]).await;
}

fn print_table(bench: &Bench, out: &Value, runs: &[Value]) {
    let s = &bench.settings;
    let per_run = |key: &str, digits: usize| {
        runs.iter()
            .map(|r| fmt(num(r, key), digits, ""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = format!(
        "scale: {} of {} Microservices release at once (setWeight 50, pause 1s), {} runs",
        s.releasing, s.n, s.runs
    );
    report::table(
        Some(&title),
        &[
            row(
                "first image change -> all released",
                fmt(num(out, "all_finished_seconds"), 2, " s"),
                per_run("all_finished_seconds", 2),
            ),
            row(
                "  one release (median / slowest)",
                format!(
                    "{} / {} s",
                    fmt(num(out, "median_release_seconds"), 2, ""),
                    fmt(num(out, "max_release_seconds"), 2, "")
                ),
                per_run("median_release_seconds", 2),
            ),
            row(
                "API requests per release",
                fmt(num(out, "requests_per_release"), 1, ""),
                per_run("requests_per_release", 1),
            ),
            row(
                "  of which writes",
                fmt(num(out, "writes_per_release"), 1, ""),
                per_run("writes_per_release", 1),
            ),
            row(
                "operator RSS peak",
                fmt(num(out, "peak_rss_mib"), 1, " MiB"),
                format!(
                    "whole part; during the releases {}; VmHWM {}",
                    fmt(num(out, "peak_rss_releasing_mib"), 1, " MiB"),
                    fmt(num(out, "peak_rss_hwm_mib"), 1, " MiB")
                ),
            ),
            row(
                "operator RSS settled",
                fmt(num(out, "settled_rss_mib"), 1, " MiB"),
                format!("{} s after the last run", s.settle_seconds),
            ),
        ],
    );
}
