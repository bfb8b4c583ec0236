//! A load generator for traffic tests: a steady rate of requests through the local Gateway,
//! each recorded with when it was sent, how it ended, and which version answered (the pod
//! server's `x-image` header), so a test judges a release by the requests users got.
//!
//! Requests are sent on a fixed schedule whatever the answers take (each in its own task), so
//! a slow or failing version cannot lower the rate and hide itself. The rate is 200 requests
//! per second unless `WEIR_LOAD_RATE` says otherwise.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::dataplane::DataPlane;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How one request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// An HTTP answer: its status and the image of the pod that answered (None when no pod
    /// answered, e.g. the Gateway's own 404 or 503).
    Answered { status: u16, image: Option<String> },
    /// No answer: a connection error or a timeout.
    Failed(String),
}

/// One request of the load.
#[derive(Clone, Debug)]
pub struct Sample {
    pub sent: Instant,
    pub outcome: Outcome,
}

impl Sample {
    /// A pod answered with a success.
    pub fn succeeded(&self) -> bool {
        matches!(&self.outcome, Outcome::Answered { status, image: Some(_) } if *status < 400)
    }

    /// The image of the pod that answered, if one did.
    pub fn image(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Answered { image, .. } => image.as_deref(),
            Outcome::Failed(_) => None,
        }
    }
}

/// Steady requests to one host through the Gateway, recorded until stopped (or dropped).
pub struct Load {
    samples: Arc<Mutex<Vec<Sample>>>,
    sender: JoinHandle<()>,
    pub rate: u32,
}

/// The rate of `WEIR_LOAD_RATE`, else 200 requests per second.
pub fn default_rate() -> u32 {
    std::env::var("WEIR_LOAD_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(200)
}

impl Load {
    /// Starts `rate` requests per second to `host` through the Gateway, with `headers`.
    pub fn start(plane: &DataPlane, host: &str, headers: &[(&str, &str)], rate: u32) -> Load {
        Load::start_at(plane, host, "/", headers, rate)
    }

    /// `start`, for requests to `path`.
    pub fn start_at(
        plane: &DataPlane,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        rate: u32,
    ) -> Load {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("an HTTP client");
        let url = format!("{}{path}", plane.gateway_url());
        let mut request = http.get(url).header("host", host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let recorded = samples.clone();
        let sender = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
            loop {
                ticks.tick().await;
                let request = request.try_clone().expect("a plain GET clones");
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let sent = Instant::now();
                    let outcome = outcome(request.send().await);
                    recorded.lock().unwrap().push(Sample { sent, outcome });
                });
            }
        });
        Load {
            samples,
            sender,
            rate,
        }
    }

    /// Every request answered so far, in the order they were sent.
    pub fn samples(&self) -> Vec<Sample> {
        let mut samples = self.samples.lock().unwrap().clone();
        samples.sort_by_key(|s| s.sent);
        samples
    }

    /// The first `n` requests sent at or after `from`, once they are all answered.
    pub async fn next_after(&self, from: Instant, n: usize) -> Vec<Sample> {
        let patience = REQUEST_TIMEOUT + Duration::from_secs_f64(2.0 * n as f64 / self.rate as f64);
        let what = format!("{n} answered requests sent after the mark");
        super::eventually(patience + Duration::from_secs(10), &what, || async {
            // Requests sent up to REQUEST_TIMEOUT before the newest answer may still be out.
            let samples = self.samples();
            let newest = samples.last()?.sent;
            let settled = newest.checked_sub(REQUEST_TIMEOUT)?;
            let after: Vec<Sample> = samples.into_iter().filter(|s| s.sent >= from).collect();
            let complete = after.iter().take(n).filter(|s| s.sent <= settled).count() == n;
            complete.then(|| after.into_iter().take(n).collect())
        })
        .await
    }

    /// Stops sending and waits for the answers still out; returns every sample.
    pub async fn stop(self) -> Vec<Sample> {
        self.sender.abort();
        tokio::time::sleep(REQUEST_TIMEOUT).await;
        self.samples()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

fn outcome(answer: reqwest::Result<reqwest::Response>) -> Outcome {
    match answer {
        Ok(response) => Outcome::Answered {
            status: response.status().as_u16(),
            image: response
                .headers()
                .get("x-image")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        },
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

/// The host name a test's routes answer for: its own, so tests share the Gateway.
pub fn test_host(ns: &str) -> String {
    format!("{ns}.weir.test")
}

/// `rollout.traffic` through the local data plane's Gateway for `host`.
pub fn through_local_gateway(host: &str) -> serde_json::Value {
    serde_json::json!({"gatewayAPI": {
        "parentRefs": [{"name": super::dataplane::GATEWAY_NAME, "namespace": super::dataplane::GATEWAY_NAMESPACE}],
        "hostnames": [host],
    }})
}

/// Waits until a request to `host` through the Gateway is answered by `image`: Traefik has
/// loaded the route and reaches the pods.
pub async fn wait_answered_by(plane: &DataPlane, host: &str, image: &str) {
    wait_answered_by_at(plane, host, "/", image).await;
}

/// `wait_answered_by`, for requests to `path`.
pub async fn wait_answered_by_at(plane: &DataPlane, host: &str, path: &str, image: &str) {
    let http = reqwest::Client::new();
    let what = format!("{host}{path} answered by {image} through the Gateway");
    let url = format!("{}{path}", plane.gateway_url());
    super::eventually(Duration::from_secs(60), &what, || async {
        let response = http.get(&url).header("host", host).send();
        let answer = outcome(response.await);
        (answer
            == Outcome::Answered {
                status: 200,
                image: Some(image.to_string()),
            })
        .then_some(())
    })
    .await;
}

/// HTTPRoute `name` from the local Gateway for `host` to port 80 of Service `service`: a
/// route a team writes itself (a preview host, a Deployment not released by Weir).
pub async fn route_to_service(
    client: &kube::Client,
    ns: &str,
    name: &str,
    host: &str,
    service: &str,
) {
    use super::dataplane::{GATEWAY_NAME, GATEWAY_NAMESPACE};
    let route: gateway_api::httproutes::HttpRoute = serde_json::from_value(serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
            "hostnames": [host],
            "rules": [{"backendRefs": [{"name": service, "port": 80}]}],
        },
    }))
    .expect("an HTTPRoute");
    let routes: kube::Api<gateway_api::httproutes::HttpRoute> =
        kube::Api::namespaced(client.clone(), ns);
    let apply = kube::api::PatchParams::apply("weir-tests");
    routes
        .patch(name, &apply, &kube::api::Patch::Apply(&route))
        .await
        .unwrap_or_else(|e| panic!("apply HTTPRoute {name}: {e}"));
}

/// The share (0–100) of `samples` answered by `image`.
pub fn share_percent(samples: &[Sample], image: &str) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let by_image = samples.iter().filter(|s| s.image() == Some(image)).count();
    100.0 * by_image as f64 / samples.len() as f64
}

/// The requests that did not succeed, with a few examples for a failure message.
pub fn failures(samples: &[Sample]) -> (usize, Vec<Outcome>) {
    let failed: Vec<&Sample> = samples.iter().filter(|s| !s.succeeded()).collect();
    let examples = failed.iter().take(5).map(|s| s.outcome.clone()).collect();
    (failed.len(), examples)
}

/// The requests sent in `[from, to)`.
pub fn between(samples: &[Sample], from: Instant, to: Instant) -> Vec<Sample> {
    samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(image: &str, status: u16) -> Sample {
        Sample {
            sent: Instant::now(),
            outcome: Outcome::Answered {
                status,
                image: Some(image.into()),
            },
        }
    }

    #[test]
    fn shares_and_failures_count_what_answered() {
        let samples = vec![
            answered("v1", 200),
            answered("v2", 200),
            answered("v2", 500),
            Sample {
                sent: Instant::now(),
                outcome: Outcome::Failed("refused".into()),
            },
        ];
        assert_eq!(share_percent(&samples, "v2"), 50.0);
        assert_eq!(failures(&samples).0, 2);
        assert_eq!(share_percent(&[], "v2"), 0.0);
    }
}
