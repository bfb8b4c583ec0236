//! A real Prometheus server per test, on loopback, scraping a small exporter whose error rate
//! the test sets: what canary analysis is measured against.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::operator::{free_port, http_get};

/// Serves `/metrics` with `http_requests_total{code="200"|"500"}`; every scrape adds 100
/// requests, `errors_per_mille / 10` percent of them failed.
pub struct Exporter {
    pub addr: String,
    errors_per_mille: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Exporter {
    pub async fn start(error_ratio: f64) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the exporter");
        let addr = listener.local_addr().expect("exporter address").to_string();
        let errors_per_mille = Arc::new(AtomicU64::new(0));
        let exporter_errors = errors_per_mille.clone();
        let server = tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let errors = exporter_errors.load(Ordering::Relaxed) / 10;
                failed += errors;
                ok += 100 - errors;
                let body = format!(
                    "# TYPE http_requests_total counter\n\
                     http_requests_total{{code=\"200\"}} {ok}\n\
                     http_requests_total{{code=\"500\"}} {failed}\n"
                );
                let response = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        let exporter = Exporter {
            addr,
            errors_per_mille,
            server,
        };
        exporter.set_error_ratio(error_ratio);
        exporter
    }

    /// From now on this share (0.0 to 1.0) of the counted requests fails.
    pub fn set_error_ratio(&self, ratio: f64) {
        let per_mille = (ratio.clamp(0.0, 1.0) * 1000.0).round() as u64;
        self.errors_per_mille.store(per_mille, Ordering::Relaxed);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.server.abort();
    }
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
                http_get(&addr, "/-/ready")
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
        let path = format!("/api/v1/query?query={}", encode(promql));
        let (status, body) = http_get(&self.addr, &path).await?;
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let value = json.pointer("/data/result/0/value/1")?.as_str()?;
        value.parse().ok()
    }
}

/// Percent-encodes a query string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
