//! The `weir` binary as an operator process: it waits for its CRD, serves health and
//! metrics, reconciles, and stops cleanly on SIGTERM.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use support::http::{self, free_port};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn operator_serves_health_and_metrics_and_stops_on_sigterm() {
    // Without --namespace the operator reconciles every namespace, other tests' included.
    let _cluster = support::exclusive().await;
    let client = support::client().await;
    support::install_crds(&client).await;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--metrics-addr", &addr])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start weir run");

    support::eventually(DEADLINE, "/readyz to answer 200", || async {
        http::get(&addr, "/readyz")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    let (status, _) = http::get(&addr, "/healthz")
        .await
        .expect("/healthz answers");
    assert_eq!(status, 200);
    let (status, metrics) = http::get(&addr, "/metrics")
        .await
        .expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("weir_reconcile_duration_seconds"),
        "metrics: {metrics}"
    );

    let pid = operator.id().expect("operator pid").to_string();
    let signalled = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("run kill");
    assert!(signalled.success());
    let exit = tokio::time::timeout(DEADLINE, operator.wait())
        .await
        .expect("operator exits after SIGTERM")
        .expect("operator exit status");
    assert!(exit.success(), "operator exited with {exit}");
}
