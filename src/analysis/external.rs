//! Kubernetes external metrics (`external.metrics.k8s.io/v1beta1`): read through the API
//! server with the operator's own ServiceAccount, from whatever adapter serves them.

use std::time::Duration;

use super::{ReleaseFacts, Verdict, template};
use crate::api::ExternalMetric;

/// How long the API server (and the adapter behind it) may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The path of `metric`'s values in `namespace`, its selector rendered with `facts`.
pub fn path(metric: &ExternalMetric, facts: &ReleaseFacts) -> String {
    let selector = metric
        .selector
        .iter()
        .map(|(key, value)| format!("{key}={}", template::render(value, facts)))
        .collect::<Vec<_>>()
        .join(",");
    let mut url = reqwest::Url::parse("https://api.invalid").expect("a URL");
    url.path_segments_mut().expect("a base").extend([
        "apis",
        "external.metrics.k8s.io",
        "v1beta1",
        "namespaces",
        &facts.namespace,
        &metric.metric,
    ]);
    if !selector.is_empty() {
        url.query_pairs_mut()
            .append_pair("labelSelector", &selector);
    }
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// The first value of `metric` for the release, or the verdict of a read that gave none.
pub async fn sample(
    client: &kube::Client,
    metric: &ExternalMetric,
    facts: &ReleaseFacts,
    name: &str,
) -> Result<f64, Verdict> {
    let path = path(metric, facts);
    let request = http::Request::get(&path)
        .body(Vec::new())
        .expect("a GET request");
    let read = tokio::time::timeout(TIMEOUT, client.request::<serde_json::Value>(request)).await;
    let list = match read {
        Err(_) => {
            let message = format!(
                "{name}: the external metric did not answer within {}s",
                TIMEOUT.as_secs()
            );
            return Err(Verdict::inconclusive(message));
        }
        Ok(Err(kube::Error::Api(status))) => {
            let hint = match status.code {
                404 => {
                    "no adapter serves it (is an APIService registered for external.metrics.k8s.io?)"
                }
                403 => "the operator may not read it: grant get on external.metrics.k8s.io",
                _ => "",
            };
            let message = format!(
                "{name}: external metric {}: {} {}",
                metric.metric, status.code, status.message
            );
            let message = if hint.is_empty() {
                message
            } else {
                format!("{message}; {hint}")
            };
            return Err(Verdict::inconclusive(message));
        }
        Ok(Err(error)) => {
            return Err(Verdict::inconclusive(format!(
                "{name}: external metric {}: {error}",
                metric.metric
            )));
        }
        Ok(Ok(list)) => list,
    };
    let value = list["items"][0]["value"].as_str();
    match value.and_then(quantity) {
        Some(value) => Ok(value),
        None if list["items"].as_array().is_some_and(|i| i.is_empty()) => {
            Err(Verdict::inconclusive(format!(
                "{name}: external metric {} has no series for the selector",
                metric.metric
            )))
        }
        None => Err(Verdict::failed(format!(
            "{name}: external metric {} answered a value that is not a quantity: {}",
            metric.metric, list["items"][0]["value"]
        ))),
    }
}

/// A Kubernetes quantity as a number: `1.5`, `500m`, `2k`, `3Mi`, `1e3`. None for anything
/// else (drift detection compares quantities with it too).
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, scale) = suffixes
        .iter()
        .find_map(|(suffix, scale)| Some((text.strip_suffix(suffix)?, *scale)))
        .unwrap_or((text, 1.0));
    let value: f64 = number.parse().ok()?;
    value.is_finite().then_some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::template::tests::facts;

    #[test]
    fn quantities_read_as_numbers() {
        assert_eq!(quantity("1.5"), Some(1.5));
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2k"), Some(2000.0));
        assert_eq!(quantity("3Mi"), Some(3.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("-2"), Some(-2.0));
        for bad in ["", "m", "ten", "1.5.2"] {
            assert_eq!(quantity(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_path_names_the_namespace_the_metric_and_the_rendered_selector() {
        let metric = ExternalMetric {
            metric: "http_errors".into(),
            selector: [
                ("service".to_string(), "{{name}}".to_string()),
                ("slot".to_string(), "{{candidateSlot}}".to_string()),
            ]
            .into(),
        };
        assert_eq!(
            path(&metric, &facts()),
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/http_errors?labelSelector=service%3Dcheckout%2Cslot%3Dgreen"
        );
        let bare = ExternalMetric {
            metric: "queue_depth".into(),
            selector: Default::default(),
        };
        assert_eq!(
            path(&bare, &facts()),
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/queue_depth"
        );
    }
}
