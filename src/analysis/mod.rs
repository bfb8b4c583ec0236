//! Release analysis: measuring the new version with Prometheus queries and webhooks.
//! The controller asks for a round of measurements; this module only measures.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Measurement, Metric, Outcome};

/// What a query template or a webhook may know about the release.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseFacts {
    pub name: String,
    pub namespace: String,
    pub candidate_slot: String,
    pub stable_slot: String,
    pub candidate_revision: String,
    pub stable_revision: String,
    pub weight: i32,
    pub step_index: i32,
}

/// Measures metrics over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct Measurer {
    pub default_prometheus: Option<String>,
}

impl Measurer {
    pub fn new(default_prometheus: Option<String>) -> Self {
        Measurer { default_prometheus }
    }

    /// One measurement of `metric`; never fails: an unreachable source is Inconclusive.
    pub async fn measure(&self, metric: &Metric, facts: &ReleaseFacts, at: Time) -> Measurement {
        let _ = facts;
        Measurement {
            metric: metric.name.clone(),
            value: None,
            passed: false,
            outcome: Outcome::Inconclusive,
            message: Some("not measured".into()),
            at,
        }
    }
}

/// Parses `30s`, `2m`, `1h30m`, `500ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        total += match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                Duration::from_millis(n)
            }
            'm' => Duration::from_secs(n * 60),
            's' => Duration::from_secs(n),
            'h' => Duration::from_secs(n * 3600),
            _ => return None,
        };
    }
    number.is_empty().then_some(total)
}

/// The outcome of a round: Failed if any failed, else Inconclusive if any was, else Passed.
pub fn round_outcome(measurements: &[Measurement]) -> Outcome {
    if measurements.iter().any(|m| m.outcome == Outcome::Failed) {
        Outcome::Failed
    } else if measurements.iter().any(|m| m.outcome == Outcome::Inconclusive) {
        Outcome::Inconclusive
    } else {
        Outcome::Passed
    }
}
