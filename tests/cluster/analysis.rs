//! Release analysis against real sources: a Prometheus server scraping an exporter whose error
//! rate the test sets, and a small webhook server. No cluster is needed.

use crate::support;

use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use support::eventually;
use support::http::{Requests, Server, free_port};
use support::prometheus::{Exporter, Prometheus};
use weir::analysis::{Measurer, ReleaseFacts};
use weir::api::{Measurement, Metric, Outcome, PrometheusMetric, WebhookMetric};

/// The exporter's share of failed requests; `{{name}}` renders to the scrape job's name.
const ERROR_RATE: &str = r#"sum(rate(http_requests_total{job="{{ name }}",code=~"5.."}[5s])) / sum(rate(http_requests_total{job="{{name}}"}[5s]))"#;
const DEADLINE: Duration = Duration::from_secs(60);

fn facts() -> ReleaseFacts {
    ReleaseFacts {
        // The job the test Prometheus scrapes the exporter as.
        name: "exporter".into(),
        namespace: "shop".into(),
        candidate_slot: "green".into(),
        stable_slot: "blue".into(),
        candidate_revision: "7f9c2d".into(),
        stable_revision: "1a2b3c".into(),
        weight: 20,
        step_index: 2,
    }
}

fn prometheus_metric(address: Option<String>, query: &str, max: f64) -> Metric {
    Metric {
        name: "error-rate".into(),
        prometheus: Some(PrometheusMetric {
            credentials: None,
            address,
            query: query.into(),
        }),
        max: Some(max),
        ..Metric::default()
    }
}

fn now() -> Time {
    Time(Default::default())
}

/// Measures until `wanted` holds: Prometheus has data only after a few scrapes, and a rate
/// follows a change over its window. Each new message on the way is printed, so a test that
/// gives up shows what it saw.
async fn measure_until(
    measurer: &Measurer,
    metric: &Metric,
    what: &str,
    wanted: impl Fn(&Measurement) -> bool,
) -> Measurement {
    let seen = Mutex::new(None::<String>);
    eventually(DEADLINE, what, || async {
        let measured = measurer.measure(metric, &facts(), now()).await;
        let mut last = seen.lock().unwrap();
        if *last != measured.message {
            eprintln!("{:?}: {:?}", measured.outcome, measured.message);
            last.clone_from(&measured.message);
        }
        wanted(&measured).then_some(measured)
    })
    .await
}

#[tokio::test]
async fn a_healthy_exporter_passes_and_a_failing_one_fails_naming_the_value() {
    let exporter = Exporter::start(0.0).await;
    let prometheus = Prometheus::start(&[&exporter.addr]).await;
    let measurer = Measurer::new(Some(format!("http://{}", prometheus.addr)));
    let metric = prometheus_metric(None, ERROR_RATE, 0.05);

    let passed = measure_until(&measurer, &metric, "a passing error rate", |m| {
        m.outcome == Outcome::Passed
    })
    .await;
    assert!(passed.passed);
    assert_eq!(passed.value, Some(0.0));
    assert_eq!(passed.metric, "error-rate");
    assert_eq!(
        passed.message.as_deref(),
        Some("error-rate = 0, at most 0.05")
    );

    exporter.set_error_ratio(0.5);
    // The rate climbs to 0.5 over its 5 s window; every step above 0.05 already fails.
    let failed = measure_until(&measurer, &metric, "an error rate of 0.5", |m| {
        m.value.is_some_and(|v| (v - 0.5).abs() < 1e-9)
    })
    .await;
    assert_eq!(failed.outcome, Outcome::Failed);
    assert!(!failed.passed);
    let message = failed.message.unwrap_or_default();
    assert!(
        message.starts_with("error-rate = 0.5") && message.ends_with("above the maximum 0.05"),
        "{message}"
    );
}

#[tokio::test]
async fn no_data_is_inconclusive_and_a_bad_query_fails() {
    let prometheus = Prometheus::start(&[]).await;
    // The metric's own address wins over the operator's default.
    let address = Some(prometheus.addr.clone());
    let measurer = Measurer::new(Some("http://127.0.0.1:1".into()));

    let metric = prometheus_metric(address.clone(), "absent_metric_for_an_empty_result", 1.0);
    let measured = measurer.measure(&metric, &facts(), now()).await;
    assert_eq!(measured.outcome, Outcome::Inconclusive, "{measured:?}");
    assert!(!measured.passed);
    assert_eq!(measured.value, None);
    assert_eq!(
        measured.message.as_deref(),
        Some("error-rate: the query returned no data")
    );

    let metric = prometheus_metric(address, "sum(rate(http_requests_total[5s])", 1.0);
    let measured = measurer.measure(&metric, &facts(), now()).await;
    assert_eq!(measured.outcome, Outcome::Failed, "{measured:?}");
    let message = measured.message.unwrap_or_default();
    assert!(
        message.starts_with("error-rate: bad query: ") && message.contains("parse error"),
        "{message}"
    );
}

#[tokio::test]
async fn a_prometheus_where_nothing_listens_is_inconclusive() {
    let address = format!("http://127.0.0.1:{}", free_port());
    let metric = prometheus_metric(Some(address.clone()), ERROR_RATE, 0.05);
    let measured = Measurer::new(None).measure(&metric, &facts(), now()).await;
    assert_eq!(measured.outcome, Outcome::Inconclusive, "{measured:?}");
    assert!(!measured.passed);
    let message = measured.message.unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "error-rate: Prometheus at {address}: cannot connect"
        )),
        "{message}"
    );
}

/// A webhook server that records every request it receives. `/status/{code}` answers with
/// that status, `/value/{v}` answers 200 with `{"value": v}`, `/hang` never answers.
struct Webhook {
    requests: Requests,
    server: Server,
}

impl Webhook {
    async fn start() -> Webhook {
        let requests = Requests::default();
        let router = Router::new()
            .route("/status/{code}", post(status))
            .route("/value/{value}", post(value))
            .route("/hang", post(hang));
        let server = Server::start(requests.record(router)).await;
        Webhook { requests, server }
    }

    fn metric(&self, path: &str, min: Option<f64>, max: Option<f64>) -> Metric {
        Metric {
            name: "smoke".into(),
            webhook: Some(WebhookMetric {
                url: self.server.url(path),
                timeout_seconds: Some(1),
            }),
            min,
            max,
            ..Metric::default()
        }
    }

    /// The last body received; it must describe the release.
    fn last_body(&self) -> Value {
        let request = self.requests.last();
        let body = request.expect("the webhook received a request").body;
        let body = serde_json::from_str(&body).unwrap_or_else(|_| json!({"unreadable": body}));
        assert_eq!(body["metric"], "smoke", "{body}");
        assert_eq!(body["name"], "exporter", "{body}");
        assert_eq!(body["namespace"], "shop", "{body}");
        assert_eq!(body["candidateRevision"], "7f9c2d", "{body}");
        body
    }
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).expect("a valid status code")
}

async fn value(Path(value): Path<f64>) -> String {
    json!({ "value": value }).to_string()
}

async fn hang() -> StatusCode {
    std::future::pending().await
}

#[tokio::test]
async fn a_webhook_passes_on_2xx_and_fails_on_other_answers() {
    let webhook = Webhook::start().await;
    let measurer = Measurer::new(None);

    let measured = measurer
        .measure(&webhook.metric("/status/204", None, None), &facts(), now())
        .await;
    assert_eq!(measured.outcome, Outcome::Passed, "{measured:?}");
    assert!(measured.passed);
    assert_eq!(measured.value, None);
    let body = webhook.last_body();
    assert_eq!(body["stableRevision"], "1a2b3c", "{body}");
    assert_eq!(body["weight"], 20, "{body}");

    let measured = measurer
        .measure(&webhook.metric("/status/500", None, None), &facts(), now())
        .await;
    assert_eq!(measured.outcome, Outcome::Failed, "{measured:?}");
    assert!(!measured.passed);
    assert_eq!(
        measured.message.as_deref(),
        Some("smoke: webhook answered 500")
    );
    webhook.last_body();
}

#[tokio::test]
async fn a_webhook_value_is_recorded_and_checked_against_the_bounds() {
    let webhook = Webhook::start().await;
    let measurer = Measurer::new(None);

    let within = webhook.metric("/value/0.05", None, Some(0.1));
    let measured = measurer.measure(&within, &facts(), now()).await;
    assert_eq!(measured.outcome, Outcome::Passed, "{measured:?}");
    assert_eq!(measured.value, Some(0.05));
    webhook.last_body();

    let above = webhook.metric("/value/0.2", Some(0.0), Some(0.1));
    let measured = measurer.measure(&above, &facts(), now()).await;
    assert_eq!(measured.outcome, Outcome::Failed, "{measured:?}");
    assert_eq!(measured.value, Some(0.2));
    assert_eq!(
        measured.message.as_deref(),
        Some("smoke = 0.2, above the maximum 0.1")
    );

    let unbounded = webhook.metric("/value/7", None, None);
    let measured = measurer.measure(&unbounded, &facts(), now()).await;
    assert_eq!(measured.outcome, Outcome::Passed, "{measured:?}");
    assert_eq!(measured.value, Some(7.0));
}

#[tokio::test]
async fn a_webhook_that_does_not_answer_in_time_or_at_all_is_inconclusive() {
    let webhook = Webhook::start().await;
    let measurer = Measurer::new(None);

    let started = tokio::time::Instant::now();
    let measured = measurer
        .measure(&webhook.metric("/hang", None, None), &facts(), now())
        .await;
    assert_eq!(measured.outcome, Outcome::Inconclusive, "{measured:?}");
    assert!(!measured.passed);
    assert_eq!(
        measured.message.as_deref(),
        Some("smoke: webhook: no answer within 1s")
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the 1 s timeout took {:?}",
        started.elapsed()
    );
    webhook.last_body();

    let mut nowhere = webhook.metric("/status/200", None, None);
    nowhere.webhook.as_mut().unwrap().url = format!("http://127.0.0.1:{}/", free_port());
    let measured = measurer.measure(&nowhere, &facts(), now()).await;
    assert_eq!(measured.outcome, Outcome::Inconclusive, "{measured:?}");
    let message = measured.message.unwrap_or_default();
    assert!(
        message.starts_with("smoke: webhook: cannot connect"),
        "{message}"
    );
}
