//! soak: SOAK_N Microservices release in a loop for SOAK_MINUTES; the operator's RSS every
//! 10 s; fails when memory keeps growing, or when no release finished.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{self, Bench, Operator, now, proc_kib};
use crate::release::{
    self, Watcher, create_all, current, microservice, names, released, set_image, short_steps,
    status, wait_all_healthy,
};
use crate::report::{self, fmt, median, num, rnd, round, row};

const SAMPLE_SECONDS: f64 = 10.0;
/// RSS "at start" is taken after the first minute.
const START_SECONDS: f64 = 60.0;
/// The trend is fitted after the first 5 minutes.
const WARMUP_SECONDS: f64 = 300.0;
/// Of the start RSS per 10 minutes.
const SLOPE_LIMIT: f64 = 0.01;
/// A trend over less than 5 minutes is reported, not judged.
const MIN_FIT_SECONDS: f64 = 300.0;

/// Least-squares slope (KiB per minute) of [(seconds, KiB)].
fn slope_per_minute(samples: &[(f64, u64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = samples.iter().map(|(t, _)| t / 60.0).collect();
    let ys: Vec<f64> = samples.iter().map(|(_, v)| *v as f64).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&xs), mean(&ys));
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    (sxx != 0.0).then(|| sxy / sxx)
}

/// The memory verdict over RSS samples [(seconds since the loop started, KiB)].
fn judge(samples: &[(f64, u64)], seconds: f64) -> Value {
    let start = samples
        .iter()
        .find(|(t, _)| *t >= START_SECONDS)
        .map(|(_, v)| *v);
    // The fit starts after 5 minutes; a soak shorter than 10 minutes fits its second half.
    let warmup = WARMUP_SECONDS.min(seconds / 2.0);
    let fitted: Vec<(f64, u64)> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t >= warmup)
        .collect();
    let slope = slope_per_minute(&fitted);
    let limit = start
        .filter(|s| *s > 0)
        .map(|s| s as f64 * SLOPE_LIMIT / 10.0);
    let fit_seconds = if fitted.len() >= 2 {
        fitted[fitted.len() - 1].0 - fitted[0].0
    } else {
        0.0
    };
    let judged =
        slope.is_some() && limit.is_some() && fit_seconds >= MIN_FIT_SECONDS - SAMPLE_SECONDS;
    let growing = match (judged, slope, limit) {
        (true, Some(slope), Some(limit)) => Some(slope > limit),
        _ => None,
    };
    json!({
        "start_rss_kib": start,
        "end_rss_kib": samples.last().map(|(_, v)| *v),
        "fit_from_seconds": warmup,
        "fit_seconds": fit_seconds,
        "fit_samples": fitted.len(),
        "slope_kib_per_minute": rnd(slope, 2),
        "slope_limit_kib_per_minute": rnd(limit, 2),
        "judged": judged,
        "growing": growing,
    })
}

/// One finished release: name, began, ended, outcome.
type Finished = (String, f64, f64, &'static str);

/// Runs the soak; returns whether it failed (the verdict fails `make bench` after the summary).
pub async fn run(bench: &Bench, dir: &Path) -> bool {
    let s = &bench.settings;
    let ns = "bench-soak";
    // Its waits grow with SOAK_N as the others' grow with N.
    let deadline = s.soak_n.max(300) as f64;
    cluster::fresh_namespace(&bench.client, ns).await;
    let operator = Operator::start(bench, dir, &[]).await;
    let gateway = crate::support::gateway::FakeGateway::start(bench.client.clone(), ns);
    let watcher = Watcher::start(&bench.client, ns).await;
    let everyone = names("soak", s.soak_n);
    let created = now();
    let objects: Vec<Value> = everyone
        .iter()
        .map(|n| microservice(n, "1", s.replicas, &short_steps(), None))
        .collect();
    create_all(&bench.client, ns, &objects).await;
    let what = format!("{} Microservices Healthy", s.soak_n);
    wait_all_healthy(&watcher, &operator, &everyone, created + deadline, &what).await;
    log!(
        "{} Microservices Healthy after {:.1}s; releasing in a loop for {} min",
        s.soak_n,
        now() - created,
        s.soak_minutes
    );
    let (releases, samples, seconds) =
        release_loop(bench, &operator, &watcher, &everyone, dir).await;
    watcher.dump_history(&dir.join("history.jsonl"));
    let mut file = report::create(&dir.join("releases.jsonl"));
    for (name, began, ended, outcome) in &releases {
        report::append_line(
            &mut file,
            &json!({"name": name, "began": round(*began, 3), "ended": round(*ended, 3), "outcome": outcome}),
        );
    }
    release::dump_gateway(&gateway, ns, dir);
    drop((watcher, gateway));
    let failed = report_soak(bench, &releases, &samples, seconds);
    bench.end_part("soak", operator, &[ns.to_string()]).await;
    failed
}

/// Gives every Microservice a new image as soon as it is Healthy on its previous one (or
/// Degraded), for SOAK_MINUTES, sampling the operator's RSS every 10 s. Returns the releases,
/// the samples (seconds since the loop started, KiB) and the loop's length.
async fn release_loop(
    bench: &Bench,
    operator: &Operator,
    watcher: &Watcher,
    everyone: &[String],
    dir: &Path,
) -> (Vec<Finished>, Vec<(f64, u64)>, f64) {
    let s = &bench.settings;
    let ns = "bench-soak";
    let mut tag: HashMap<String, u64> = everyone.iter().map(|n| (n.clone(), 1)).collect();
    let mut old: HashMap<String, Value> = HashMap::new(); // stable revision before its release
    let mut began: HashMap<String, f64> = HashMap::new(); // when its running release began
    let mut releases: Vec<Finished> = Vec::new();
    let mut samples = Vec::new();
    let start = now();
    let end = start + s.soak_minutes as f64 * 60.0;
    let mut next_sample = start;
    let mut next_progress = start + 60.0;
    let mut rss_file = report::create(&dir.join("soak-rss.tsv"));
    loop {
        let at = now();
        if at >= next_sample {
            let Some(rss) = proc_kib(operator.pid, "VmRSS") else {
                die!("the operator (pid {}) exited during the soak", operator.pid)
            };
            samples.push((at - start, rss));
            let _ = writeln!(rss_file, "{at:.3} {rss}");
            next_sample += SAMPLE_SECONDS;
        }
        if at >= next_progress {
            let rss = samples.last().map_or(0, |(_, v)| *v);
            log!(
                "soak: {} releases in {:.0} min, RSS {:.1} MiB",
                releases.len(),
                (at - start) / 60.0,
                rss as f64 / 1024.0
            );
            next_progress += 60.0;
        }
        if at >= end {
            break;
        }
        // Everything Healthy on its new revision (or failed) gets the next image.
        let changed = watcher.changed();
        let due: Vec<String> = {
            let seen = watcher.seen();
            let mut due = Vec::new();
            for n in everyone {
                let Some(ms) = seen.objects.get(n) else {
                    continue;
                };
                let outcome = if !began.contains_key(n) {
                    Some(None)
                } else if released(ms, &old[n], false) {
                    Some(Some("released"))
                } else if current(ms) && status(ms)["phase"] == "Degraded" {
                    Some(Some("degraded"))
                } else {
                    None
                };
                let Some(outcome) = outcome else {
                    continue;
                };
                if let Some(outcome) = outcome {
                    releases.push((n.clone(), began[n], seen.received[n], outcome));
                }
                old.insert(n.clone(), status(ms)["stableRevision"].clone());
                due.push(n.clone());
            }
            due
        };
        if due.is_empty() {
            let wait = (next_sample - now()).clamp(0.0, 0.5);
            let _ = tokio::time::timeout(Duration::from_secs_f64(wait), changed).await;
        }
        for n in due {
            let next = tag[&n] + 1;
            tag.insert(n.clone(), next);
            began.insert(
                n.clone(),
                set_image(&bench.client, ns, &n, &next.to_string()).await,
            );
        }
    }
    (releases, samples, now() - start)
}

/// Writes soak.json, prints the table; returns whether the soak failed.
fn report_soak(bench: &Bench, releases: &[Finished], samples: &[(f64, u64)], seconds: f64) -> bool {
    let s = &bench.settings;
    let done: Vec<&Finished> = releases.iter().filter(|r| r.3 == "released").collect();
    let memory = judge(samples, seconds);
    // A loop that stopped releasing is a failure too, whatever the memory did.
    let stuck = done.is_empty();
    let growing = memory["growing"].as_bool().unwrap_or(false);
    let to_mib = |key: &str| {
        rnd(
            num(&memory, key).filter(|v| *v > 0.0).map(|k| k / 1024.0),
            1,
        )
    };
    let mut out = json!({
        "n": s.soak_n, "minutes": s.soak_minutes as f64, "replicas": s.replicas,
        "steps": "setWeight 50, pause 1s",
        "releases": done.len(),
        "releases_per_minute": rnd(Some(done.len() as f64 / (seconds / 60.0)), 1),
        "degraded": releases.iter().filter(|r| r.3 == "degraded").count(),
        "median_release_seconds": rnd(median(done.iter().map(|r| Some(r.2 - r.1))), 3),
        "rss_samples": samples.len(),
        "start_rss_mib": to_mib("start_rss_kib"),
        "end_rss_mib": to_mib("end_rss_kib"),
        "peak_rss_mib": rnd(samples.iter().map(|(_, v)| *v).max().map(|k| k as f64 / 1024.0), 1),
    });
    if let (Some(out), Some(memory)) = (out.as_object_mut(), memory.as_object()) {
        out.extend(memory.clone());
        out.insert("failed".into(), json!(growing || stuck));
    }
    report::write_json(&s.out.join("soak.json"), &out);
    let judgement = if memory["judged"] == true {
        if growing {
            "GROWING: fails".to_string()
        } else {
            "flat: passes".to_string()
        }
    } else {
        format!(
            "not judged: the fit covers {:.0} s, under {MIN_FIT_SECONDS} s",
            num(&memory, "fit_seconds").unwrap_or_default()
        )
    };
    let title = format!(
        "soak: {} Microservices releasing in a loop for {} min (setWeight 50, pause 1s)",
        s.soak_n, s.soak_minutes
    );
    report::table(
        Some(&title),
        &[
            row(
                "releases finished",
                out["releases"].to_string(),
                format!(
                    "{} per minute; {} Degraded",
                    fmt(num(&out, "releases_per_minute"), 1, ""),
                    out["degraded"]
                ),
            ),
            row(
                "one release",
                fmt(num(&out, "median_release_seconds"), 2, " s"),
                "median",
            ),
            row(
                "operator RSS at start / end",
                format!(
                    "{} / {} MiB",
                    fmt(num(&out, "start_rss_mib"), 1, ""),
                    fmt(num(&out, "end_rss_mib"), 1, "")
                ),
                format!(
                    "start: after {START_SECONDS} s; peak {} MiB; a sample every {SAMPLE_SECONDS} s",
                    fmt(num(&out, "peak_rss_mib"), 1, "")
                ),
            ),
            row(
                "RSS trend (least squares)",
                fmt(num(&memory, "slope_kib_per_minute"), 1, " KiB/min"),
                format!(
                    "over {} samples from {:.0} s; limit {} KiB/min (1% of the start RSS per 10 min): {judgement}",
                    memory["fit_samples"],
                    num(&memory, "fit_from_seconds").unwrap_or_default(),
                    fmt(num(&memory, "slope_limit_kib_per_minute"), 1, "")
                ),
            ),
        ],
    );
    if stuck {
        log!("error: no release finished during the soak");
    }
    growing || stuck
}
