//! Shared MetricTemplates against a real Prometheus: a release waits for the template its
//! metric names, measures the query resolved when it started, and a template edited
//! mid-release applies to the next release only.

use crate::release_analysis::{ERROR_RATE as FIXED_WINDOW, prometheus_measuring};
use crate::support;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::prometheus::{Exporter, Prometheus};
use support::release::{DEADLINE, Harness, canary, condition};
use support::{eventually, with_temp_ns};
use weir::api::{MetricTemplate, Outcome, Slot};

const V2: &str = "registry.example/app:2";
const V3: &str = "registry.example/app:3";
/// The error ratio over a window the metric gives as an argument.
const ERROR_RATE: &str = r#"sum(rate(http_requests_total{code=~"5.."}[{{args.window}}])) / sum(rate(http_requests_total[{{ args.window }}]))"#;

/// A MetricTemplate `name` of the error ratio, `window` defaulting to 1m, at most `max`.
fn error_rate_template(name: &str, max: f64) -> MetricTemplate {
    serde_json::from_value(json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "MetricTemplate",
        "metadata": {"name": name},
        "spec": {
            "description": "Share of requests answered with a 5xx",
            "args": [{"name": "window", "default": "1m"}],
            "prometheus": {"query": ERROR_RATE},
            "max": max
        }
    }))
    .expect("a MetricTemplate")
}

/// A canary at weight 10 then `then`, judged every second by the template `template`.
fn templated(template: &str, then: Value) -> Value {
    let mut rollout = canary(json!([{"setWeight": 10}, then]));
    rollout["analysis"] = json!({"interval": "1s", "inconclusiveLimit": 5, "metrics": [
        {"name": "error-rate", "templateRef": template, "args": {"window": "5s"}}
    ]});
    json!({"rollout": rollout})
}

/// The cluster-scoped templates, and one named after the test's namespace.
fn templates_for(client: &kube::Client, ns: &str) -> (Api<MetricTemplate>, String) {
    (Api::all(client.clone()), format!("error-rate-{ns}"))
}

#[tokio::test]
async fn a_release_waits_for_its_template_then_measures_the_query_resolved_at_its_start() {
    let (_exporter, prometheus) = prometheus_measuring(0.5).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        let (templates, name) = templates_for(&client, &ns);
        let flags = ["--prometheus-address", address.as_str()];
        let spec = templated(&name, json!({"pause": {"duration": "2s"}}));
        let h = Harness::start_with_flags(&client, &ns, "templated", spec, &flags).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let held = h.wait_degraded("TemplateNotFound").await;
        let message = &condition(&held, "Degraded").unwrap().message;
        assert!(
            message.contains(&format!(
                "names MetricTemplate {name}, which does not exist"
            )),
            "{message}"
        );
        let status = held.status.clone().unwrap();
        assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
        assert_eq!(status.candidate_revision, None, "{status:#?}");
        let candidate = h.deployments().get_opt(&h.slot(Slot::Green)).await.unwrap();
        let candidate_pods = candidate.and_then(|d| d.spec?.replicas).unwrap_or(0);
        assert_eq!(candidate_pods, 0, "nothing of the held-back revision runs");

        let template = error_rate_template(&name, 0.05);
        templates
            .create(&PostParams::default(), &template)
            .await
            .unwrap();
        let started = h.wait_release(&[&stable]).await;
        let recorded = h
            .wait("the resolved template recorded", |ms| {
                let analysis = ms
                    .status
                    .as_ref()
                    .and_then(|s| s.release.as_ref()?.analysis.as_ref());
                analysis.is_some_and(|a| !a.templates.is_empty())
            })
            .await;
        let release = recorded.status.unwrap().release.unwrap();
        let resolved = &release.analysis.unwrap().templates[0];
        assert_eq!(resolved.template, name);
        assert_eq!(resolved.metric, "error-rate");
        assert_eq!(resolved.prometheus.as_ref().unwrap().query, FIXED_WINDOW);
        assert_eq!(resolved.max, Some(0.05));

        let aborted = h.wait_degraded("AnalysisFailed").await;
        let status = aborted.status.clone().unwrap();
        assert_eq!(
            status.aborted_revision.as_deref(),
            Some(started.revision.as_str())
        );
        let message = &condition(&aborted, "Degraded").unwrap().message;
        assert!(
            message.contains("error-rate") && message.contains("0.5"),
            "the template's query measured the candidate: {message}"
        );
        templates
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_template_edited_mid_release_applies_to_the_next_release_only() {
    let (_exporter, prometheus) = prometheus_measuring(0.5).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        let (templates, name) = templates_for(&client, &ns);
        let lenient = error_rate_template(&name, 0.6);
        templates
            .create(&PostParams::default(), &lenient)
            .await
            .unwrap();
        let flags = ["--prometheus-address", address.as_str()];
        let spec = templated(&name, json!({"pause": {}}));
        let h = Harness::start_with_flags(&client, &ns, "edited", spec, &flags).await;
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        h.wait_paused_at(1).await;
        let strict = json!({"spec": {"max": 0.05}});
        let params = PatchParams::default();
        templates
            .patch(&name, &params, &Patch::Merge(&strict))
            .await
            .unwrap();
        let edited = Timestamp::now();
        let later = edited + SignedDuration::from_secs(3);
        let measured = h
            .wait("rounds measured well after the edit", |ms| {
                let release = ms.status.as_ref().and_then(|s| s.release.as_ref());
                let analysis = release.and_then(|r| r.analysis.as_ref());
                analysis.is_some_and(|a| a.measured_at.as_ref().is_some_and(|at| at.0 > later))
            })
            .await;
        let status = measured.status.unwrap();
        assert_eq!(status.aborted_revision, None, "{status:#?}");
        let analysis = status.release.unwrap().analysis.unwrap();
        assert_eq!(analysis.last_round, Some(Outcome::Passed), "{analysis:#?}");
        let resolved = &analysis.templates[0];
        assert_eq!((resolved.generation, resolved.max), (Some(1), Some(0.6)));

        h.act("promote").await;
        h.wait_healthy_on(&started.revision).await;
        h.set_image(V3).await;
        let next = h.wait_release(&[&stable, &started.revision]).await;
        let resolved = &next.analysis.as_ref().unwrap().templates[0];
        assert_eq!((resolved.generation, resolved.max), (Some(2), Some(0.05)));
        let aborted = h.wait_degraded("AnalysisFailed").await;
        let status = aborted.status.unwrap();
        assert_eq!(
            status.aborted_revision.as_deref(),
            Some(next.revision.as_str())
        );
        templates
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_template_weir_cannot_use_is_refused_at_admission_with_its_reason() {
    with_temp_ns(|client, _ns| async move { refuses_unusable_templates(client).await }).await;
}

async fn refuses_unusable_templates(client: kube::Client) {
    support::install_crds(&client).await;
    let templates: Api<MetricTemplate> = Api::all(client);
    let query = json!({"query": "up"});
    let cases = [
        (
            json!({"prometheus": query, "webhook": {"url": "http://x.svc"}, "max": 1}),
            "a MetricTemplate sets exactly one of prometheus or webhook",
        ),
        (
            json!({"max": 1}),
            "a MetricTemplate sets exactly one of prometheus or webhook",
        ),
        (
            json!({"prometheus": query, "min": 2, "max": 1}),
            "a MetricTemplate's min must not be greater than its max",
        ),
        (
            json!({"prometheus": query, "max": 1, "args": [{"name": "w"}, {"name": "w"}]}),
            "argument names must be unique",
        ),
        (
            json!({"prometheus": query, "max": 1, "args": [{"name": "a-b"}]}),
            "spec.args[0].name",
        ),
    ];
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let template: MetricTemplate = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "MetricTemplate",
            "metadata": {"name": format!("refused-{i}")}, "spec": spec
        }))
        .unwrap();
        let refused = templates.create(&PostParams::default(), &template).await;
        let message = match refused {
            Err(kube::Error::Api(status)) => status.message,
            other => panic!("case {i} was not refused: {other:?}"),
        };
        assert!(message.contains(expected), "case {i}: {message}");
    }
}

/// The latency of the candidate's slot, as the exporter reports it per slot.
const SLOT_LATENCY: &str = r#"max(request_latency_seconds{slot="{{candidateSlot}}"})"#;

/// Prometheus scraping an exporter whose slots answer in `blue` and `green` seconds.
async fn prometheus_with_latencies(blue: f64, green: f64) -> (Exporter, Prometheus) {
    let exporter = Exporter::start(0.0).await;
    exporter.set_latency("blue", blue);
    exporter.set_latency("green", green);
    let prometheus = Prometheus::start(&[&exporter.addr]).await;
    let green_query = SLOT_LATENCY.replace("{{candidateSlot}}", "green");
    eventually(
        DEADLINE,
        "Prometheus to see both slots' latency",
        || async { prometheus.query(&green_query).await },
    )
    .await;
    (exporter, prometheus)
}

/// A canary judged by comparing the candidate's latency with the stable slot's.
fn compared(max_increase: &str) -> Value {
    let mut rollout = canary(json!([{"setWeight": 10}, {"pause": {"duration": "2s"}}]));
    rollout["analysis"] = json!({"interval": "1s", "inconclusiveLimit": 5, "metrics": [
        {"name": "latency", "prometheus": {"query": SLOT_LATENCY},
         "compare": {"maxIncrease": max_increase}}
    ]});
    json!({"rollout": rollout})
}

#[tokio::test]
async fn a_candidate_slower_than_the_stable_version_by_more_than_allowed_is_aborted() {
    let (_exporter, prometheus) = prometheus_with_latencies(0.2, 0.3).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        let flags = ["--prometheus-address", address.as_str()];
        let h = Harness::start_with_flags(&client, &ns, "slower", compared("10%"), &flags).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        let aborted = h.wait_degraded("AnalysisFailed").await;
        let status = aborted.status.clone().unwrap();
        assert_eq!(status.aborted_revision, Some(started.revision));
        let message = &condition(&aborted, "Degraded").unwrap().message;
        assert!(
            message.contains("latency = 0.3 on the new version, 0.2 on the stable version")
                && message.contains("more than 10% above"),
            "{message}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_candidate_within_the_allowed_increase_is_promoted_with_its_baseline_recorded() {
    let (_exporter, prometheus) = prometheus_with_latencies(0.2, 0.3).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        let flags = ["--prometheus-address", address.as_str()];
        let h = Harness::start_with_flags(&client, &ns, "close", compared("0.15"), &flags).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        let measured = h
            .wait("a passing comparison", |ms| {
                let release = ms.status.as_ref().and_then(|s| s.release.as_ref());
                let analysis = release.and_then(|r| r.analysis.as_ref());
                analysis.is_some_and(|a| {
                    a.last
                        .iter()
                        .any(|m| m.outcome == Outcome::Passed && m.baseline.is_some())
                })
            })
            .await;
        let analysis = measured.status.unwrap().release.unwrap().analysis.unwrap();
        let passed = analysis.last.iter().find(|m| m.baseline.is_some()).unwrap();
        assert_eq!((passed.value, passed.baseline), (Some(0.3), Some(0.2)));
        h.wait_healthy_on(&started.revision).await;
    })
    .await;
}
