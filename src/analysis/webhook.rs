//! Webhooks: a POST describing the release; a 2xx answer passes. An answer whose JSON body
//! holds a numeric `value` is also judged against the metric's bounds, when it has any.

use std::time::Duration;

use serde::Serialize;

use super::{ReleaseFacts, Verdict, bounds, read_capped, why};
use crate::api::{Metric, WebhookMetric};

/// How long a webhook may take when the metric does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Only the `value` of an answer is read; a larger answer is not parsed.
const MAX_ANSWER: usize = 64 << 10;

/// What the webhook receives: the release facts and the metric's name.
#[derive(Serialize)]
struct Payload<'a> {
    metric: &'a str,
    #[serde(flatten)]
    facts: &'a ReleaseFacts,
}

/// Posts the release facts to the webhook and judges its answer.
pub async fn measure(
    client: &reqwest::Client,
    metric: &Metric,
    webhook: &WebhookMetric,
    facts: &ReleaseFacts,
) -> Verdict {
    let name = &metric.name;
    let timeout = webhook
        .timeout_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s.max(1)));
    let payload = Payload {
        metric: name,
        facts,
    };
    let sent = client
        .post(&webhook.url)
        .json(&payload)
        .timeout(timeout)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_builder() => {
            return Verdict::failed(format!("{name}: invalid webhook URL {:?}", webhook.url));
        }
        Err(e) => {
            let why = why(&e, timeout);
            return Verdict::inconclusive(format!("{name}: webhook: {why}"));
        }
    };
    let status = response.status();
    let answered = format!("{name}: webhook answered {}", status.as_u16());
    if !status.is_success() {
        return Verdict::failed(answered);
    }
    let has_bounds = metric.min.is_some() || metric.max.is_some();
    let value = match read_capped(response, MAX_ANSWER).await {
        Ok(body) => body.as_deref().and_then(value_of),
        // The status already answered; only bounds need the body.
        Err(_) if !has_bounds => None,
        Err(e) => {
            let why = why(&e, timeout);
            return Verdict::inconclusive(format!("{answered}, but its value was lost: {why}"));
        }
    };
    match value {
        Some(value) if has_bounds => bounds::judge(name, value, metric.min, metric.max),
        Some(value) => Verdict {
            value: Some(value),
            ..Verdict::passed(format!("{answered}, value {}", bounds::show(value)))
        },
        None if has_bounds => Verdict::passed(format!(
            "{answered} without a numeric value; bounds not checked"
        )),
        None => Verdict::passed(answered),
    }
}

/// The numeric `value` of a JSON answer, if it has one.
fn value_of(body: &[u8]) -> Option<f64> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    answer.get("value")?.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_the_facts_and_the_metric_name() {
        let facts = crate::analysis::template::tests::facts();
        let payload = Payload {
            metric: "smoke",
            facts: &facts,
        };
        assert_eq!(
            serde_json::to_value(&payload).unwrap(),
            serde_json::json!({
                "metric": "smoke",
                "name": "checkout",
                "namespace": "shop",
                "candidateSlot": "green",
                "stableSlot": "blue",
                "candidateRevision": "7f9c2",
                "stableRevision": "1a2b3",
                "weight": 20,
                "stepIndex": 1,
            })
        );
    }

    /// Judges `metric` by a webhook on loopback that answers 200 with `body`.
    async fn judged_by_answer(body: &'static str, min: Option<f64>, max: Option<f64>) -> Verdict {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        let router = axum::Router::new().fallback(move || async move { body });
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let metric = Metric {
            name: "error-rate".into(),
            min,
            max,
            ..Metric::default()
        };
        let webhook = WebhookMetric {
            url,
            timeout_seconds: Some(5),
        };
        let facts = crate::analysis::template::tests::facts();
        let verdict = measure(&reqwest::Client::new(), &metric, &webhook, &facts).await;
        server.abort();
        verdict
    }

    #[tokio::test]
    async fn a_value_out_of_bounds_fails_a_2xx_answer() {
        let verdict = judged_by_answer(r#"{"value": 0.2}"#, None, Some(0.05)).await;
        assert_eq!(verdict.outcome, crate::api::Outcome::Failed, "{verdict:?}");
        assert_eq!(verdict.value, Some(0.2));
        let within = judged_by_answer(r#"{"value": 0.01}"#, None, Some(0.05)).await;
        assert_eq!(within.outcome, crate::api::Outcome::Passed, "{within:?}");
        let no_value = judged_by_answer("ok", Some(0.5), None).await;
        assert_eq!(
            no_value.outcome,
            crate::api::Outcome::Passed,
            "{no_value:?}"
        );
        assert!(
            no_value.message.contains("bounds not checked"),
            "{no_value:?}"
        );
    }

    #[test]
    fn reads_a_numeric_value_only() {
        assert_eq!(value_of(br#"{"value": 0.5, "note": "ok"}"#), Some(0.5));
        assert_eq!(value_of(br#"{"value": 3}"#), Some(3.0));
        assert_eq!(value_of(br#"{"value": "0.5"}"#), None);
        assert_eq!(value_of(br#"[{"value": 1}]"#), None);
        assert_eq!(value_of(b"ok"), None);
        assert_eq!(value_of(b""), None);
    }
}
