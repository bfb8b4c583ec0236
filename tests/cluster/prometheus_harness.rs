//! The analysis harness is real: a Prometheus server scrapes an exporter whose error rate the
//! test sets, and a rate query sees the change.

use crate::support;

use std::time::Duration;

use support::eventually;
use support::prometheus::{Exporter, Prometheus};

const ERROR_RATE: &str =
    r#"sum(rate(http_requests_total{code=~"5.."}[5s])) / sum(rate(http_requests_total[5s]))"#;

#[tokio::test]
async fn prometheus_measures_the_error_rate_the_test_sets() {
    let exporter = Exporter::start(0.2).await;
    let prometheus = Prometheus::start(&[&exporter.addr]).await;
    let deadline = Duration::from_secs(60);
    eventually(deadline, "an error rate of 0.2", || async {
        prometheus
            .query(ERROR_RATE)
            .await
            .filter(|rate| (rate - 0.2).abs() < 0.011)
    })
    .await;
    exporter.set_error_ratio(0.0);
    eventually(deadline, "the error rate to fall to 0", || async {
        prometheus
            .query(ERROR_RATE)
            .await
            .filter(|rate| *rate == 0.0)
    })
    .await;
    assert_eq!(
        prometheus.query("absent_metric_for_an_empty_result").await,
        None,
        "an empty result reads as None"
    );
}
