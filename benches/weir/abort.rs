//! abort: background analysis (a webhook, every 1 s) starts failing; the time from the first
//! failing answer to the route verified back at weight 0 for the candidate.
//!
//! A webhook rather than Prometheus, because the time it first answers 500 is exact.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use serde_json::{Value, json};

use crate::cluster::{self, Bench, Operator, now};
use crate::release::{
    self, Watcher, create_all, current, gateway_accepts, healthy, microservice, set_image, status,
};
use crate::report::{self, fmt, median, num, rnd, row, verdict};
use crate::support::gateway::FakeGateway;
use crate::support::http::Server;

const TARGET_SECONDS: f64 = 1.0;

/// One answer of the webhook.
#[derive(Clone, Debug)]
struct Answer {
    time: f64,
    name: String,
    code: u16,
    candidate_slot: Value,
}

#[derive(Default)]
struct Hook {
    failing: Mutex<HashSet<String>>,
    answers: Mutex<Vec<Answer>>,
    record: Mutex<Option<std::fs::File>>,
}

/// An analysis webhook on loopback: answers 200, or 500 for the Microservices told to fail
/// (the last path segment of the URL names one). Every answer is recorded, with its time.
struct Webhook {
    hook: Arc<Hook>,
    server: Server,
}

impl Webhook {
    async fn start(record: &Path) -> Webhook {
        let hook = Arc::new(Hook {
            record: Mutex::new(Some(report::create(record))),
            ..Hook::default()
        });
        let router = Router::new().fallback(answer).with_state(hook.clone());
        Webhook {
            hook,
            server: Server::start(router).await,
        }
    }

    fn url(&self, name: &str) -> String {
        self.server.url(&format!("/analysis/{name}"))
    }

    fn fail(&self, name: &str) {
        self.hook.failing.lock().unwrap().insert(name.to_string());
    }

    fn first(&self, name: &str, code: u16, since: f64) -> Option<Answer> {
        let answers = self.hook.answers.lock().unwrap();
        answers
            .iter()
            .find(|a| a.name == name && a.code == code && a.time >= since)
            .cloned()
    }
}

async fn answer(
    State(hook): State<Arc<Hook>>,
    uri: Uri,
    body: Bytes,
) -> (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    &'static str,
) {
    let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
    let name = uri
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let failing = hook.failing.lock().unwrap().contains(&name);
    let (code, payload) = if failing {
        (StatusCode::INTERNAL_SERVER_ERROR, r#"{"ok": false}"#)
    } else {
        (StatusCode::OK, r#"{"ok": true}"#)
    };
    let entry = Answer {
        time: now(),
        name: name.clone(),
        code: code.as_u16(),
        candidate_slot: body["candidateSlot"].clone(),
    };
    if let Some(file) = hook.record.lock().unwrap().as_mut() {
        report::append_line(
            file,
            &json!({"time": entry.time, "name": name, "code": entry.code,
                "candidateSlot": entry.candidate_slot, "weight": body["weight"]}),
        );
    }
    hook.answers.lock().unwrap().push(entry);
    (code, [(header::CONTENT_TYPE, "application/json")], payload)
}

/// At the pause, weight 50 verified, and a passed round behind it.
fn analysing(ms: &Value) -> bool {
    let release = &status(ms)["release"];
    let passed = release["analysis"]["last"]
        .as_array()
        .is_some_and(|last| last.iter().any(|m| m["passed"] == true));
    current(ms)
        && release["weight"] == 50
        && release["weightVerified"] == true
        && release["stepIndex"] == 1
        && passed
}

pub async fn run(bench: &Bench, dir: &Path) {
    let s = &bench.settings;
    let ns = "bench-abort";
    cluster::fresh_namespace(&bench.client, ns).await;
    // The webhook listens on loopback, which analysis may only reach when allowed.
    let operator = Operator::start(bench, dir, &["--analysis-allowed-hosts", "127.0.0.1"]).await;
    let gateway = FakeGateway::start(bench.client.clone(), ns);
    let webhook = Webhook::start(&dir.join("webhook.jsonl")).await;
    let watcher = Watcher::start(&bench.client, ns).await;
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    let mut runs = Vec::new();
    for run in 1..=s.runs {
        let name = format!("abort-{run}");
        let analysis = json!({"interval": "1s", "metrics": [{"name": "smoke", "webhook": {"url": webhook.url(&name)}}]});
        create_all(
            &bench.client,
            ns,
            &[microservice(&name, "1", s.replicas, &steps, Some(analysis))],
        )
        .await;
        let what = format!("{name} to be Healthy");
        watcher
            .wait_one(&operator, &name, &what, healthy, now() + s.deadline())
            .await;
        let start = set_image(&bench.client, ns, &name, "2").await;
        let what = format!("{name} at weight 50 with a passed analysis round");
        watcher
            .wait_one(&operator, &name, &what, analysing, start + s.deadline())
            .await;
        let flipped = now();
        webhook.fail(&name);
        // Degraded with no release left: traffic verified on stable, the candidate scaled
        // down. (Degraded shows earlier, while traffic is still returning.)
        let what = format!("{name} to be Degraded with its release ended");
        let ended = |ms: &Value| {
            status(ms)["phase"] == "Degraded"
                && status(ms).get("release").is_none_or(Value::is_null)
        };
        let degraded = watcher
            .wait_one(&operator, &name, &what, ended, flipped + s.deadline())
            .await;
        let Some(failed) = webhook.first(&name, 500, flipped) else {
            die!("{name} became Degraded, but the webhook never answered it 500")
        };
        // Let the gateway's last acceptance land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let candidate = format!(
            "{name}-{}",
            failed.candidate_slot.as_str().unwrap_or_default()
        );
        let accepts = gateway_accepts(&gateway, Some(&name), flipped);
        let back = accepts.iter().find(|a| {
            a.accepted >= failed.time && a.weights.get(&candidate).copied().unwrap_or(0) == 0
        });
        let seen = watcher.seen();
        let measurement = seen.failed_measurements.get(&name).cloned();
        let ms = seen.objects[&name].clone();
        drop(seen);
        let after_failure = |moment: Option<f64>| rnd(moment.map(|m| m - failed.time), 3);
        let result = json!({
            "run": run, "name": name, "candidate_backend": candidate,
            "first_500_after_flip_seconds": rnd(Some(failed.time - flipped), 3),
            "reaction_seconds": after_failure(back.map(|b| b.accepted)),
            "route_written_seconds": after_failure(back.map(|b| b.seen)),
            "failed_measurement_seen_seconds": after_failure(measurement.as_ref().and_then(|m| num(m, "seen"))),
            "degraded_seconds": after_failure(Some(degraded)),
            "reason": release::condition(&ms, "Degraded").map(|c| c["reason"].clone()),
            "message": status(&ms)["message"],
            "failed_measurement": measurement.map(|m| {
                let kept: serde_json::Map<String, Value> = ["metric", "outcome", "at", "message"]
                    .iter()
                    .filter_map(|k| Some((k.to_string(), m.get(*k)?.clone())))
                    .collect();
                Value::Object(kept)
            }),
            "route_timeline": accepts.iter()
                .map(|a| json!({"seconds": rnd(Some(a.accepted - flipped), 3), "weights": a.weights}))
                .collect::<Vec<_>>(),
        });
        if result["reaction_seconds"].is_null() {
            log!(
                "warning: run {run}: no route acceptance with weight 0 for {candidate} found after the failing answer"
            );
        }
        log!(
            "run {run}: first 500 {}s after the flip; route back on stable {}s after it; Degraded after {}s",
            fmt(num(&result, "first_500_after_flip_seconds"), 2, ""),
            fmt(num(&result, "reaction_seconds"), 3, ""),
            fmt(num(&result, "degraded_seconds"), 3, "")
        );
        runs.push(result);
    }
    watcher.dump_history(&dir.join("history.jsonl"));
    release::dump_gateway(&gateway, ns, dir);
    drop((watcher, webhook, gateway));
    let of_runs = |key: &str| median(runs.iter().map(|r| num(r, key)));
    let reaction = of_runs("reaction_seconds");
    let out = json!({
        "analysis": "webhook metric, interval 1s, failureLimit 0; canary setWeight 50, pause {}",
        "replicas": s.replicas, "runs": s.runs,
        "reaction_seconds": rnd(reaction, 3),
        "target_reaction_seconds": TARGET_SECONDS,
        "target_met": reaction.map(|r| r < TARGET_SECONDS),
        "route_written_seconds": rnd(of_runs("route_written_seconds"), 3),
        "degraded_seconds": rnd(of_runs("degraded_seconds"), 3),
        "failed_measurement_seen_seconds": rnd(of_runs("failed_measurement_seen_seconds"), 3),
        "first_500_after_flip_seconds": rnd(of_runs("first_500_after_flip_seconds"), 3),
        "per_run": runs,
    });
    report::write_json(&s.out.join("abort.json"), &out);
    let per_run = |key: &str| {
        runs.iter()
            .map(|r| fmt(num(r, key), 3, ""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = format!(
        "abort: webhook analysis every 1 s turns to 500, {} runs",
        s.runs
    );
    report::table(
        Some(&title),
        &[
            row(
                "first 500 -> route at weight 0 accepted",
                fmt(reaction, 3, " s"),
                format!(
                    "{}; target < {TARGET_SECONDS} s: {}",
                    per_run("reaction_seconds"),
                    verdict(out["target_met"].as_bool())
                ),
            ),
            row(
                "  first 500 -> route written (seen by the gateway)",
                fmt(num(&out, "route_written_seconds"), 3, " s"),
                per_run("route_written_seconds"),
            ),
            row(
                "  first 500 -> failed measurement in status",
                fmt(num(&out, "failed_measurement_seen_seconds"), 3, " s"),
                per_run("failed_measurement_seen_seconds"),
            ),
            row(
                "  first 500 -> Degraded, release ended (candidate scaled down)",
                fmt(num(&out, "degraded_seconds"), 3, " s"),
                per_run("degraded_seconds"),
            ),
            row(
                "flip -> first 500 (waiting for the next round)",
                fmt(num(&out, "first_500_after_flip_seconds"), 3, " s"),
                "not Weir's reaction: about the 1 s interval",
            ),
        ],
    );
    bench.end_part("abort", operator, &[ns.to_string()]).await;
}
