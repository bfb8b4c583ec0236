//! A `weir run` process per test, watching only the test's namespace, so tests run in
//! parallel without seeing each other's objects or writes.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::http::{self, free_port};

/// A running operator; killed when dropped.
pub struct Operator {
    pub child: Child,
    pub metrics_addr: String,
    pub identity: String,
}

impl Operator {
    /// Starts `weir run` for `namespace` with `extra` flags and waits until `/readyz` is 200.
    pub async fn start(namespace: &str, identity: &str, extra: &[&str]) -> Operator {
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let log_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("operator-logs");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let log = std::fs::File::create(log_dir.join(format!("{namespace}-{identity}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args([
                "run",
                "--metrics-addr",
                &metrics_addr,
                "--namespace",
                namespace,
            ])
            .args(["--identity", identity, "--lease-namespace", namespace])
            .args(extra)
            // One operator per namespace needs no election; tests of it pass --leader-elect=true.
            .env("WEIR_LEADER_ELECT", "false")
            .env("RUST_LOG", "info,weir=debug")
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("start weir run");
        let operator = Operator {
            child,
            metrics_addr,
            identity: identity.to_string(),
        };
        super::eventually(
            Duration::from_secs(60),
            "the operator's /readyz to answer 200",
            || async {
                http::get(&operator.metrics_addr, "/readyz")
                    .await
                    .filter(|(status, _)| *status == 200)
            },
        )
        .await;
        operator
    }

    /// The operator's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (status, body) = http::get(&self.metrics_addr, "/metrics")
            .await
            .expect("/metrics answers");
        assert_eq!(status, 200, "/metrics answered {status}");
        body
    }

    /// Sends a signal (`-TERM`, `-KILL`) to the operator.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("operator is running").to_string();
        let sent = Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .expect("run kill");
        assert!(sent.success(), "kill {signal} {pid} failed");
    }
}

/// The sum of the samples of a metric family in `/metrics` text whose line matches `filter`.
pub fn metric_sum(metrics: &str, name: &str, filter: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
