//! A real Prometheus server per test, on loopback, scraping a small exporter whose error rate
//! the test sets: what canary analysis is measured against.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::routing::get;
use tokio::process::{Child, Command};

use super::http::{self, Server, free_port};

/// Serves `/metrics` with `http_requests_total{code="200"|"500"}`; every scrape adds 100
/// requests, `errors_per_mille / 10` percent of them failed. Also a gauge
/// `request_latency_seconds{slot}` per slot the test sets. Stops when dropped.
pub struct Exporter {
    pub addr: String,
    counts: Arc<Counts>,
    _server: Server,
}

/// The exporter's state: the error share it is set to, and the totals served so far.
#[derive(Default)]
struct Counts {
    errors_per_mille: AtomicU64,
    /// (succeeded, failed) requests.
    totals: Mutex<(u64, u64)>,
    /// Latency by slot name.
    latencies: Mutex<std::collections::BTreeMap<String, f64>>,
}

impl Exporter {
    pub async fn start(error_ratio: f64) -> Exporter {
        let counts = Arc::new(Counts::default());
        let router = Router::new()
            .route("/metrics", get(scrape))
            .with_state(counts.clone());
        let server = Server::start(router).await;
        let exporter = Exporter {
            addr: server.addr.clone(),
            counts,
            _server: server,
        };
        exporter.set_error_ratio(error_ratio);
        exporter
    }

    /// From now on `slot`'s latency gauge reads `seconds`.
    pub fn set_latency(&self, slot: &str, seconds: f64) {
        let mut latencies = self.counts.latencies.lock().unwrap();
        latencies.insert(slot.to_string(), seconds);
    }

    /// From now on this share (0.0 to 1.0) of the counted requests fails.
    pub fn set_error_ratio(&self, ratio: f64) {
        let per_mille = (ratio.clamp(0.0, 1.0) * 1000.0).round() as u64;
        self.counts
            .errors_per_mille
            .store(per_mille, Ordering::Relaxed);
    }
}

/// One scrape: counts 100 more requests, then reports the totals.
async fn scrape(
    State(counts): State<Arc<Counts>>,
) -> ([(header::HeaderName, &'static str); 1], String) {
    let errors = counts.errors_per_mille.load(Ordering::Relaxed) / 10;
    let (ok, failed) = {
        let mut totals = counts.totals.lock().unwrap();
        totals.0 += 100 - errors;
        totals.1 += errors;
        *totals
    };
    let mut body = format!(
        "# TYPE http_requests_total counter\n\
         http_requests_total{{code=\"200\"}} {ok}\n\
         http_requests_total{{code=\"500\"}} {failed}\n"
    );
    let latencies = counts.latencies.lock().unwrap().clone();
    if !latencies.is_empty() {
        body.push_str("# TYPE request_latency_seconds gauge\n");
    }
    for (slot, seconds) in latencies {
        body.push_str(&format!(
            "request_latency_seconds{{slot=\"{slot}\"}} {seconds}\n"
        ));
    }
    let content_type = "text/plain; version=0.0.4";
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// A Prometheus server scraping `targets` every second; killed when dropped.
pub struct Prometheus {
    pub addr: String,
    _child: Child,
    _data: TempDir,
}

impl Prometheus {
    pub async fn start(targets: &[&str]) -> Prometheus {
        let data = TempDir::new("prometheus");
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n- job_name: exporter\n  static_configs:\n  - targets: [{}]\n",
            targets
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let config_path = data.path.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(data.path.join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus (installed by hack/install-prometheus.sh)");
        super::eventually(
            Duration::from_secs(60),
            "Prometheus to be ready",
            || async {
                http::get(&addr, "/-/ready")
                    .await
                    .filter(|(status, _)| *status == 200)
            },
        )
        .await;
        Prometheus {
            addr,
            _child: child,
            _data: data,
        }
    }

    /// The value of an instant query with a single scalar-like result, or None when empty.
    pub async fn query(&self, promql: &str) -> Option<f64> {
        let url = format!("http://{}/api/v1/query", self.addr);
        let url = reqwest::Url::parse_with_params(&url, [("query", promql)]).ok()?;
        let (status, body) = http::fetch(url.as_str()).await?;
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let value = json.pointer("/data/result/0/value/1")?.as_str()?;
        value.parse().ok()
    }
}

/// A directory removed when dropped.
struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let path =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(super::unique_name(prefix));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
