//! The traffic part: releases measured by the requests a steady load gets through the local
//! Gateway (Traefik, the pod server), on a cluster started with its data plane.
//!
//! - a Gateway API canary (10, 25, 50, 75%): per step, the time from Weir's write of a weight
//!   (the route change, seen by a watch) until the measured share of the new version settles
//!   within 5 points of it; the requests served and failed over the whole release;
//! - the blast radius of a broken version (`DEMO_ERROR_RATE=0.5`, weight 20) aborted by an
//!   analysis of Traefik's per-backend request counts, with the default interval (30 s) and
//!   the fastest one this part tries (1 s): requests failed, and the share of all requests
//!   the broken version answered before the abort was reported;
//! - a canary without a router (25%, 50% of 4 pods): the measured share against the weight.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gateway_api::httproutes::HttpRoute;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::cluster::Bench;
use crate::report::{self, fmt, median, row};
use crate::support::dataplane::{self, DataPlane};
use crate::support::prometheus::Prometheus;
use crate::support::release::Harness;
use crate::support::traffic::{
    Load, Sample, between, default_rate, failures, route_to_service, share_percent,
    through_local_gateway, wait_answered_by,
};

const V1: &str = "registry.example/app:1";
const V2: &str = "registry.example/app:2";
/// Points the measured share may be from the weight to count as settled.
const SETTLED_WITHIN: f64 = 5.0;
/// Requests in the window a share is measured over: 0.2 s at the default rate, short enough
/// that a window straddling the switch is off by more than the tolerance, and long enough
/// that a smooth weighted round robin gives each weight its exact share (10% of 40 is 4).
const WINDOW: usize = 40;
const CANARY_WEIGHTS: [i32; 4] = [10, 25, 50, 75];
/// The analysis query of the blast-radius runs: the new version's error ratio as Traefik
/// counts it per backend Service.
const GATEWAY_ERROR_RATE: &str = r#"sum(rate(traefik_service_requests_total{service=~"{{namespace}}-{{name}}-{{candidateSlot}}-.*", code=~"5.."}[10s])) / sum(rate(traefik_service_requests_total{service=~"{{namespace}}-{{name}}-{{candidateSlot}}-.*"}[10s]))"#;

pub async fn run(bench: &Bench, dir: &Path) {
    let Ok(plane) = dataplane::probe() else {
        die!("BENCH=traffic needs the data plane (DATA_PLANE=1 in ports.env: NET_ADMIN)");
    };
    let canary = canary(bench, &plane).await;
    let mut blast = Vec::new();
    for interval in ["30s", "1s"] {
        blast.push(blast_radius(bench, &plane, interval).await);
    }
    let ratio = replica_ratio(bench, &plane).await;
    let out = json!({
        "rate_per_second": default_rate(),
        "canary": canary, "blast_radius": blast, "replica_ratio": ratio,
    });
    report::write_json(&bench.settings.out.join("traffic.json"), &out);
    let _ = std::fs::write(dir.join("traffic.json"), out.to_string());
    print_table(&out);
}

/// A Gateway API canary under load: settle time per step, served and failed requests.
async fn canary(bench: &Bench, plane: &DataPlane) -> Value {
    let ns = "bench-traffic-canary";
    crate::cluster::fresh_namespace(&bench.client, ns).await;
    let host = format!("{ns}.local");
    let steps: Vec<Value> = CANARY_WEIGHTS
        .iter()
        .flat_map(|w| {
            [
                json!({"setWeight": w}),
                json!({"pause": {"duration": "5s"}}),
            ]
        })
        .collect();
    let spec = json!({
        "replicas": 4, "pod": {"terminationGracePeriodSeconds": 10},
        "rollout": {"strategy": "Canary", "traffic": through_local_gateway(&host),
                    "canary": {"steps": steps, "scaleDownDelaySeconds": 5}},
    });
    let h = Harness::start_on_data_plane(&bench.client, ns, "shop", spec, &[]).await;
    wait_answered_by(plane, &host, V1).await;
    let timeline = WeightTimeline::start(&bench.client, ns, "shop").await;
    let load = Load::start(plane, &host, &[], default_rate());
    let stable = h.status().await.stable_revision.unwrap_or_default();
    let started = Instant::now();
    h.set_image(V2).await;
    let release = h.wait_release(&[&stable]).await;
    h.wait_healthy_on(&release.revision).await;
    load.next_after(Instant::now() + Duration::from_secs(8), 1)
        .await;
    let samples = load.stop().await;
    let samples = between(&samples, started, Instant::now());
    let steps: Vec<Value> = timeline
        .writes()
        .windows(2)
        .filter(|pair| pair[0].1 > 0 && pair[0].1 < 100)
        .map(|pair| {
            let ((written, weight), (next, _)) = (pair[0], pair[1]);
            let settled = settle_seconds(&samples, written, next, weight);
            json!({"weight": weight, "settled_seconds": settled.map(|s| report::round(s, 3))})
        })
        .collect();
    let (failed, _) = failures(&samples);
    json!({
        "weights": CANARY_WEIGHTS, "steps": steps,
        "settled_seconds_median": report::rnd(median(steps.iter().map(|s| s["settled_seconds"].as_f64())), 3),
        "requests": samples.len(), "failed": failed,
    })
}

/// Seconds from a weight's write until the share over the next `WINDOW` requests is within
/// `SETTLED_WITHIN` points of it, scanning in 10 ms steps until the next write.
pub fn settle_seconds(
    samples: &[Sample],
    written: Instant,
    next: Instant,
    weight: i32,
) -> Option<f64> {
    let mut at = written;
    while at < next {
        let window: Vec<Sample> = samples
            .iter()
            .filter(|s| s.sent >= at)
            .take(WINDOW)
            .cloned()
            .collect();
        if window.len() < WINDOW || window.last().is_some_and(|s| s.sent > next) {
            return None;
        }
        if (share_percent(&window, V2) - f64::from(weight)).abs() <= SETTLED_WITHIN {
            return Some((at - written).as_secs_f64());
        }
        at += Duration::from_millis(10);
    }
    None
}

/// A broken version released at weight 20 and aborted by analysis every `interval`.
async fn blast_radius(bench: &Bench, plane: &DataPlane, interval: &str) -> Value {
    let ns = format!("bench-traffic-blast-{}", interval.trim_end_matches('s'));
    crate::cluster::fresh_namespace(&bench.client, &ns).await;
    let prometheus = Prometheus::start(&[&format!("127.0.0.1:{}", plane.metrics_port)]).await;
    let address = format!("http://{}", prometheus.addr);
    let host = format!("{ns}.local");
    let metrics = json!([{"name": "gateway-error-rate", "prometheus": {"query": GATEWAY_ERROR_RATE}, "max": 0.05}]);
    let spec = json!({
        "replicas": 4, "pod": {"terminationGracePeriodSeconds": 10},
        "rollout": {"strategy": "Canary", "traffic": through_local_gateway(&host),
                    "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "10m"}}]},
                    "analysis": {"interval": interval, "inconclusiveLimit": 30, "metrics": metrics}},
    });
    let flags = ["--prometheus-address", address.as_str()];
    let h = Harness::start_on_data_plane(&bench.client, &ns, "shop", spec, &flags).await;
    wait_answered_by(plane, &host, V1).await;
    let load = Load::start(plane, &host, &[], default_rate());
    let released = Instant::now();
    h.edit(json!({"image": V2, "env": [{"name": "DEMO_ERROR_RATE", "value": "0.5"}]}))
        .await;
    h.wait_degraded("AnalysisFailed").await;
    let reported = Instant::now();
    load.next_after(reported + Duration::from_secs(2), 1).await;
    let samples = load.stop().await;
    let exposed = between(&samples, released, reported);
    let (failed, _) = failures(&samples);
    json!({
        "interval": interval,
        "seconds_to_abort_reported": report::round((reported - released).as_secs_f64(), 1),
        "failed": failed,
        "broken_share_percent": report::round(share_percent(&exposed, V2), 1),
        "requests_until_reported": exposed.len(),
    })
}

/// A canary by replica ratio behind one Service: the measured share against the weight.
async fn replica_ratio(bench: &Bench, plane: &DataPlane) -> Value {
    let ns = "bench-traffic-ratio";
    crate::cluster::fresh_namespace(&bench.client, ns).await;
    let host = format!("{ns}.local");
    let steps = json!([{"setWeight": 25}, {"pause": {"duration": "8s"}}, {"setWeight": 50}, {"pause": {"duration": "8s"}}]);
    let spec = json!({"replicas": 4, "pod": {"terminationGracePeriodSeconds": 10},
                      "rollout": {"strategy": "Canary", "canary": {"steps": steps}}});
    let h = Harness::start_on_data_plane(&bench.client, ns, "shop", spec, &[]).await;
    route_to_service(&bench.client, ns, "shop", &host, "shop").await;
    wait_answered_by(plane, &host, V1).await;
    let load = Load::start(plane, &host, &[], default_rate());
    let stable = h.status().await.stable_revision.unwrap_or_default();
    h.set_image(V2).await;
    h.wait_release(&[&stable]).await;
    let mut steps = Vec::new();
    for (index, weight) in [(1, 25), (3, 50)] {
        h.wait_release_where(
            &format!("step {index} of the replica-ratio canary"),
            |_, r| r.step_index == index,
        )
        .await;
        let window = load
            .next_after(Instant::now() + Duration::from_millis(500), 400)
            .await;
        steps.push(json!({"weight": weight, "measured_percent": report::round(share_percent(&window, V2), 1)}));
    }
    let (failed, _) = failures(&load.stop().await);
    json!({"steps": steps, "failed": failed})
}

/// Each change of the candidate's weight on a route, with when it was seen.
struct WeightTimeline {
    writes: Arc<Mutex<Vec<(Instant, i32)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WeightTimeline {
    async fn start(client: &kube::Client, ns: &str, name: &str) -> WeightTimeline {
        let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let recorded = writes.clone();
        let task = tokio::spawn(async move {
            let mut stream =
                std::pin::pin!(watcher(routes, config).default_backoff().applied_objects());
            while let Some(Ok(route)) = stream.next().await {
                let weight = new_slot_weight(&route);
                let mut writes = recorded.lock().unwrap();
                if writes.last().is_none_or(|(_, w)| *w != weight) {
                    writes.push((Instant::now(), weight));
                }
            }
        });
        WeightTimeline { writes, task }
    }

    /// The writes so far, with a last entry "now" closing the last step.
    fn writes(&self) -> Vec<(Instant, i32)> {
        let mut writes = self.writes.lock().unwrap().clone();
        writes.push((Instant::now(), -1));
        writes
    }
}

impl Drop for WeightTimeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The weight of the green slot (the new version's slot in a first release) on the weighted
/// rule.
fn new_slot_weight(route: &HttpRoute) -> i32 {
    let rules = route.spec.rules.as_deref().unwrap_or_default();
    let weights: BTreeMap<String, i32> = rules
        .iter()
        .filter(|r| {
            r.matches
                .as_ref()
                .is_none_or(|m| m.iter().all(|m| m.headers.is_none()))
        })
        .flat_map(|r| r.backend_refs.iter().flatten())
        .map(|b| (b.name.clone(), b.weight.unwrap_or(1)))
        .collect();
    weights.get("shop-green").copied().unwrap_or(0)
}

fn print_table(out: &Value) {
    let canary = &out["canary"];
    let mut rows = vec![row(
        "canary: weight write -> share within 5 points",
        fmt(canary["settled_seconds_median"].as_f64(), 3, " s"),
        format!(
            "median; per step {}",
            canary["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| format!(
                    "{}%: {}",
                    s["weight"],
                    fmt(s["settled_seconds"].as_f64(), 3, " s")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )];
    rows.push(row(
        "canary: requests served / failed",
        format!("{} / {}", canary["requests"], canary["failed"]),
        "the whole release, promotion included",
    ));
    for blast in out["blast_radius"].as_array().into_iter().flatten() {
        rows.push(row(
            format!(
                "blast radius, analysis every {}",
                blast["interval"].as_str().unwrap_or("?")
            ),
            format!(
                "{} failed, {}% answered by the broken version",
                blast["failed"], blast["broken_share_percent"]
            ),
            format!(
                "abort reported after {} s",
                blast["seconds_to_abort_reported"]
            ),
        ));
    }
    for step in out["replica_ratio"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
    {
        rows.push(row(
            format!("replica ratio: weight {}", step["weight"]),
            format!("{}% measured", step["measured_percent"]),
            "4 pods behind one Service",
        ));
    }
    report::table(
        Some("traffic: releases measured through the local Gateway"),
        &rows,
    );
}
