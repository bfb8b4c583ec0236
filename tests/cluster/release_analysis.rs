//! Analysis gates a release: a real Prometheus and an HTTP webhook judge the new version;
//! a failure, or a step that makes no progress, aborts the release with traffic back on
//! the stable version before the new one loses its pods.

use crate::support;

use serde_json::{Value, json};
use support::gateway::{FakeGateway, RouteRecorder};
use support::prometheus::{Exporter, Prometheus};
use support::release::{DEADLINE, Harness, Recorder, SlotView, Webhook, canary, condition};
use support::{eventually, with_temp_ns};
use weir::api::{Outcome, Slot};

const V2: &str = "registry.example/app:2";
pub(crate) const ERROR_RATE: &str =
    r#"sum(rate(http_requests_total{code=~"5.."}[5s])) / sum(rate(http_requests_total[5s]))"#;

/// A canary at weight 10 for two seconds, judged by `metrics` every second.
/// The in-test webhook listens on loopback, which the operator must be told it may reach.
const LOOPBACK: [&str; 2] = ["--analysis-allowed-hosts", "127.0.0.1"];

fn analysed(metrics: Value) -> Value {
    let mut rollout = canary(json!([{"setWeight": 10}, {"pause": {"duration": "2s"}}]));
    rollout["analysis"] = json!({"interval": "1s", "inconclusiveLimit": 5, "metrics": metrics});
    json!({"rollout": rollout})
}

fn error_rate_metric() -> Value {
    json!([{"name": "error-rate", "prometheus": {"query": ERROR_RATE}, "max": 0.05}])
}

/// Prometheus scraping an exporter whose error ratio is `ratio`, once a query sees it.
pub(crate) async fn prometheus_measuring(ratio: f64) -> (Exporter, Prometheus) {
    let exporter = Exporter::start(ratio).await;
    let prometheus = Prometheus::start(&[&exporter.addr]).await;
    eventually(
        DEADLINE,
        "Prometheus to measure the error ratio",
        || async {
            prometheus
                .query(ERROR_RATE)
                .await
                .filter(|rate| (rate - ratio).abs() < 0.011)
        },
    )
    .await;
    (exporter, prometheus)
}

/// Releases V2 and waits until the analysis aborts it; the aborted revision is the one
/// released.
async fn release_aborted_by_analysis(h: &Harness) -> weir::api::Microservice {
    let stable = h.status().await.stable_revision.unwrap();
    h.set_image(V2).await;
    let started = h.wait_release(&[&stable]).await;
    let ms = h.wait_degraded("AnalysisFailed").await;
    let aborted = ms
        .status
        .as_ref()
        .and_then(|s| s.aborted_revision.as_deref());
    assert_eq!(aborted, Some(started.revision.as_str()));
    ms
}

/// Asserts an abort returned traffic first: the candidate's weight went up and back to 0,
/// and only once the gateways had accepted that (by resourceVersion) did its Deployment drop
/// to 0 replicas.
async fn assert_traffic_returned_before_scale_down(
    gateway: &FakeGateway,
    route: &RouteRecorder,
    candidate: &Recorder<Option<SlotView>>,
    backend: &str,
) {
    let what =
        "weight 10 on the candidate before the abort (analysis judges a version with traffic)";
    let (up, _) = route
        .wait_seen(what, |r| {
            r.as_ref().is_some_and(|r| r.weight(backend) == 10)
        })
        .await;
    route
        .wait_route("traffic back on stable", |r| r.weight(backend) == 0)
        .await;
    let (_, back) = route.find_weight(up, backend, 0).unwrap();
    assert_eq!(route.weights(backend), [0, 10, 0], "{:#?}", route.states());

    let (ran, _) = candidate
        .wait_seen("the candidate running", |d| {
            d.as_ref().is_some_and(|d| d.replicas > 0)
        })
        .await;
    candidate
        .wait_until("the candidate scaled to 0", |d| {
            d.as_ref().is_none_or(|d| d.replicas == 0)
        })
        .await;
    let (_, stopped) = candidate
        .find(ran, |d| d.as_ref().is_none_or(|d| d.replicas == 0))
        .unwrap();
    let generation = back.value.as_ref().unwrap().generation;
    let accepted = gateway
        .accepted()
        .into_iter()
        .find(|a| a.generation == generation)
        .expect("the gateways accepted the route back on stable");
    assert!(
        back.resource_version < stopped.resource_version
            && accepted.resource_version < stopped.resource_version,
        "the candidate lost its pods (rv {}, {:?}) before traffic was back on stable \
         (written at rv {}, {:?}; accepted at rv {})",
        stopped.resource_version,
        stopped.at,
        back.resource_version,
        back.at,
        accepted.resource_version
    );
}

#[tokio::test]
async fn a_release_whose_error_rate_stays_low_is_promoted_after_a_passing_round() {
    let (_exporter, prometheus) = prometheus_measuring(0.0).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        let flags = ["--prometheus-address", address.as_str()];
        let spec = analysed(error_rate_metric());
        let h = Harness::start_with_flags(&client, &ns, "calm", spec, &flags).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&started.revision).await;
        let status = &h.log;
        status
            .wait_seen("the release over", |s| {
                s.release.is_none() && s.stable_revision.as_ref() == Some(&started.revision)
            })
            .await;

        let (passed, _) = status
            .find(0, |s| {
                s.analysis.as_ref().is_some_and(|a| {
                    a.last_round == Some(Outcome::Passed)
                        && a.last.iter().any(|(metric, value, outcome)| {
                            metric == "error-rate"
                                && *value == Some(0.0)
                                && *outcome == Outcome::Passed
                        })
                })
            })
            .unwrap_or_else(|| panic!("no passing round recorded: {:#?}", status.values()));
        let (promoting, _) = status
            .find(0, |s| {
                s.release.as_ref().is_some_and(|r| r.promoting)
                    || s.active_slot == Some(Slot::Green)
            })
            .expect("the promotion was recorded");
        assert!(
            passed <= promoting,
            "promoted before a passing round: {:#?}",
            status.values()
        );
        let failures: Vec<_> = status
            .values()
            .iter()
            .filter_map(|s| s.analysis.as_ref())
            .filter(|a| a.last_round == Some(Outcome::Failed))
            .cloned()
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    })
    .await;
}

/// `onFailure: Record`: a metric far out of bounds is measured, shown and told in an event,
/// and the release is promoted all the same; the gating metric beside it decides.
#[tokio::test]
async fn a_metric_recorded_only_is_shown_and_never_stops_the_release() {
    let (_exporter, prometheus) = prometheus_measuring(0.5).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        let flags = ["--prometheus-address", address.as_str()];
        let spec = analysed(json!([
            {"name": "error-rate", "prometheus": {"query": ERROR_RATE}, "max": 0.05, "onFailure": "Record"},
            {"name": "up", "prometheus": {"query": "vector(1)"}, "min": 1},
        ]));
        let h = Harness::start_with_flags(&client, &ns, "trial", spec, &flags).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&started.revision).await;
        let recorded = h
            .log
            .find(0, |s| {
                s.analysis.as_ref().is_some_and(|a| {
                    a.last.iter().any(|(metric, value, outcome)| {
                        metric == "error-rate" && *value == Some(0.5) && *outcome == Outcome::Failed
                    })
                })
            })
            .is_some();
        assert!(recorded, "the recorded metric's failure is in status");
        let events = h.events().await;
        assert!(
            events.iter().any(|(_, reason, message)| reason == "AnalysisRecorded"
                && message.contains("error-rate")
                && message.contains("recorded only")),
            "{events:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_release_whose_error_rate_is_too_high_is_aborted_traffic_first() {
    let (_exporter, prometheus) = prometheus_measuring(0.5).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        let flags = ["--prometheus-address", address.as_str()];
        let spec = analysed(error_rate_metric());
        let h = Harness::start_with_flags(&client, &ns, "failing", spec, &flags).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let candidate = h.record_slot(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        let ms = h.wait_degraded("AnalysisFailed").await;

        let status = ms.status.clone().unwrap();
        assert_eq!(
            status.aborted_revision.as_deref(),
            Some(started.revision.as_str())
        );
        assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
        assert_eq!(status.active_slot, Some(Slot::Blue));
        assert!(status.release.is_none(), "{status:#?}");
        let message = &condition(&ms, "Degraded").unwrap().message;
        assert!(
            message.contains("error-rate") && message.contains("0.5"),
            "the message names the metric and its value: {message}"
        );
        assert_traffic_returned_before_scale_down(h.gateway(), &route, &candidate, &green).await;
    })
    .await;
}

#[tokio::test]
async fn a_passing_webhook_lets_the_release_through() {
    let webhook = Webhook::start(200).await;
    let url = webhook.url.clone();
    with_temp_ns(move |client, ns| async move {
        let metrics = json!([{"name": "smoke", "webhook": {"url": url, "timeoutSeconds": 5}}]);
        let h =
            Harness::start_with_flags(&client, &ns, "smoked", analysed(metrics), &LOOPBACK).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&started.revision).await;

        let requests = webhook.requests();
        assert!(!requests.is_empty(), "the webhook was never called");
        assert!(
            requests.iter().all(|r| r.starts_with("POST ")),
            "{requests:#?}"
        );
        assert!(
            requests.iter().any(|r| r.contains(&started.revision)),
            "the webhook was not told which revision it judges: {requests:#?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_webhook_aborts_the_release() {
    let webhook = Webhook::start(500).await;
    let url = webhook.url.clone();
    with_temp_ns(move |client, ns| async move {
        let metrics = json!([{"name": "smoke", "webhook": {"url": url, "timeoutSeconds": 5}}]);
        let h =
            Harness::start_with_flags(&client, &ns, "smoking", analysed(metrics), &LOOPBACK).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let candidate = h.record_slot(Slot::Green).await;
        let ms = release_aborted_by_analysis(&h).await;
        assert_eq!(ms.status.as_ref().unwrap().active_slot, Some(Slot::Blue));
        let message = &condition(&ms, "Degraded").unwrap().message;
        assert!(
            message.contains("smoke"),
            "the message names the metric: {message}"
        );
        assert!(!webhook.requests().is_empty());
        assert_traffic_returned_before_scale_down(h.gateway(), &route, &candidate, &green).await;
    })
    .await;
}

#[tokio::test]
async fn a_webhook_value_out_of_bounds_fails_a_2xx_answer() {
    let webhook = Webhook::answering(200, r#"{"value": 0.2}"#).await;
    let url = webhook.url.clone();
    with_temp_ns(move |client, ns| async move {
        let metrics = json!([
            {"name": "error-rate", "webhook": {"url": url, "timeoutSeconds": 5}, "max": 0.05}
        ]);
        let h =
            Harness::start_with_flags(&client, &ns, "adapted", analysed(metrics), &LOOPBACK).await;
        let ms = release_aborted_by_analysis(&h).await;
        let message = &condition(&ms, "Degraded").unwrap().message;
        assert!(
            message.contains("error-rate") && message.contains("0.2") && message.contains("0.05"),
            "the message names the metric, its value and the bound: {message}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_step_that_makes_no_progress_is_aborted_at_the_deadline() {
    with_temp_ns(|client, ns| async move {
        let mut rollout = canary(json!([{"setWeight": 10}, {"pause": {}}]));
        rollout["progressDeadlineSeconds"] = json!(5);
        let h = Harness::start(&client, &ns, "stuck", json!({"rollout": rollout})).await;
        let green = h.slot(Slot::Green);
        let route = h.record_route().await;
        let candidate = h.record_slot(Slot::Green).await;
        let stable = h.status().await.stable_revision.unwrap();

        // The new version's pods run but never become ready.
        h.edit(json!({
            "image": V2,
            "pod": {"annotations": {"test.weir.dev/ready": "false"}}
        }))
        .await;
        let started = h.wait_release(&[&stable]).await;
        let ms = h.wait_degraded("ProgressDeadlineExceeded").await;

        let status = ms.status.clone().unwrap();
        assert_eq!(
            status.aborted_revision.as_deref(),
            Some(started.revision.as_str())
        );
        assert_eq!(status.active_slot, Some(Slot::Blue));
        candidate
            .wait_seen("the candidate running, unready", |d| {
                d.as_ref().is_some_and(|d| d.replicas > 0 && d.ready == 0)
            })
            .await;
        candidate
            .wait_until("the candidate scaled to 0", |d| {
                d.as_ref().is_none_or(|d| d.replicas == 0)
            })
            .await;
        assert_eq!(route.weights(&green), [0], "{:#?}", route.states());
    })
    .await;
}
