//! Notifications to real HTTP receivers: each moment once per subscribed sink in its format,
//! a failing sink retried, nothing to a sink the namespace may not use, and what "once" means
//! when the operator is killed between a sink's answer and the status write that records it.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use support::http::{Received, Requests, Server};
use support::release::{DEADLINE, Harness, canary};
use support::{eventually, with_temp_ns};
use tokio::sync::Notify;

const V2: &str = "registry.example/app:2";

/// How the receiver answers.
#[derive(Default)]
struct Behaviour {
    /// Requests still to answer 503.
    failures: AtomicU32,
    /// When set, the first request waits for this before it is answered.
    hold: Option<Arc<Notify>>,
    answered: AtomicU32,
}

/// A receiver of notifications on `/events`, `/chat`, `/elsewhere` and a webhook metric on
/// `/metric` that answers a value of 0.5.
struct Receiver {
    server: Server,
    requests: Requests,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Receiver {
        let requests = Requests::default();
        let router = Router::new()
            .route("/events", post(answer))
            .route("/chat", post(answer))
            .route("/elsewhere", post(answer))
            .route(
                "/metric",
                post(|| async { axum::Json(json!({"value": 0.5})) }),
            )
            .with_state(Arc::new(behaviour));
        let server = Server::start(requests.record(router)).await;
        Receiver { server, requests }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The notifications received on `path`.
    fn at(&self, path: &str) -> Vec<Received> {
        self.requests
            .all()
            .into_iter()
            .filter(|r| r.uri == path)
            .collect()
    }
}

async fn answer(State(behaviour): State<Arc<Behaviour>>) -> StatusCode {
    let first = behaviour.answered.fetch_add(1, Ordering::SeqCst) == 0;
    if let (true, Some(hold)) = (first, &behaviour.hold) {
        hold.notified().await;
    }
    let failing = behaviour.failures.load(Ordering::SeqCst);
    if failing > 0 {
        behaviour.failures.store(failing - 1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

fn header(request: &Received, name: &str) -> String {
    let found = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name));
    found.map(|(_, v)| v.clone()).unwrap_or_default()
}

/// The operator's sinks file: `events` (CloudEvents) and `chat` (Slack) allowed in `ns`,
/// `elsewhere` allowed only in another namespace.
fn sinks_file(ns: &str, receiver: &Receiver) -> String {
    let sinks = json!({"sinks": [
        {"name": "events", "url": receiver.url("/events"), "namespaces": [ns]},
        {"name": "chat", "format": "slack", "url": receiver.url("/chat"), "namespaces": ["*"]},
        {"name": "elsewhere", "url": receiver.url("/elsewhere"), "namespaces": ["another-team"]}
    ]});
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}-sinks.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&sinks).unwrap()).unwrap();
    path.display().to_string()
}

/// A canary at 50% for a second, notifying `notify`.
fn notifying(notify: Value) -> Value {
    let mut rollout = canary(json!([{"setWeight": 50}, {"pause": {"duration": "1s"}}]));
    rollout["notify"] = notify;
    json!({"rollout": rollout})
}

async fn start(client: &kube::Client, ns: &str, receiver: &Receiver, spec: Value) -> Harness {
    let file = sinks_file(ns, receiver);
    let flags = [
        "--notification-sinks",
        file.as_str(),
        "--analysis-allowed-hosts",
        "127.0.0.1",
    ];
    Harness::start_with_flags(client, ns, "notified", spec, &flags).await
}

/// Waits until the queue in status is empty and `path` received `n` notifications.
async fn wait_delivered(h: &Harness, receiver: &Receiver, path: &str, n: usize) {
    let what = format!("{n} notifications on {path} and none pending");
    eventually(DEADLINE, &what, || async {
        let status = h.status().await;
        let pending = status
            .notifications
            .as_ref()
            .is_some_and(|q| !q.pending.is_empty());
        (!pending && receiver.at(path).len() >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn each_moment_reaches_each_subscribed_sink_once_and_nothing_reaches_a_refused_one() {
    let receiver = Receiver::start(Behaviour::default()).await;
    with_temp_ns(|client, ns| async move {
        let notify = json!([
            {"moments": ["Started", "Promoted"], "sink": "events"},
            {"moments": ["Promoted"], "sink": "chat"},
            {"moments": ["Started"], "sink": "elsewhere"}
        ]);
        let h = start(&client, &ns, &receiver, notifying(notify)).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let release = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&release.revision).await;
        wait_delivered(&h, &receiver, "/events", 2).await;
        wait_delivered(&h, &receiver, "/chat", 1).await;

        let events: Vec<Value> = receiver
            .at("/events")
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["dev.weir.release.started", "dev.weir.release.promoted"]
        );
        assert_ne!(events[0]["id"], events[1]["id"]);
        assert_eq!(events[0]["data"]["revision"], release.revision.as_str());
        assert_eq!(
            header(&receiver.at("/events")[0], "content-type"),
            "application/cloudevents+json"
        );
        let chat = &receiver.at("/chat")[0];
        let text: Value = serde_json::from_str(&chat.body).unwrap();
        let text = text["text"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("{ns}/notified: Promoted")),
            "{text}"
        );
        assert!(
            receiver.at("/elsewhere").is_empty(),
            "nothing to a sink outside the allow-list"
        );
        let events = h.events().await;
        assert!(
            events
                .iter()
                .any(|(_, reason, _)| reason == "NotificationRefused"),
            "{events:?}"
        );
        let delivered = h.status().await.notifications.unwrap().delivered;
        assert_eq!(delivered.len(), 3, "{delivered:?}");
    })
    .await;
}

#[tokio::test]
async fn a_failing_sink_is_retried_and_the_abort_names_the_metric_value_and_bound() {
    let failing = Behaviour {
        failures: AtomicU32::new(2),
        ..Behaviour::default()
    };
    let receiver = Receiver::start(failing).await;
    let metric_url = receiver.url("/metric");
    with_temp_ns(|client, ns| async move {
        let mut spec = notifying(json!([{"moments": ["AnalysisFailed"], "sink": "events"}]));
        spec["rollout"]["analysis"] = json!({"interval": "1s", "metrics": [
            {"name": "smoke", "webhook": {"url": metric_url}, "max": 0.05}
        ]});
        let h = start(&client, &ns, &receiver, spec).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        h.wait_release(&[&stable]).await;
        h.wait_degraded("AnalysisFailed").await;
        wait_delivered(&h, &receiver, "/events", 3).await;

        let tries = receiver.at("/events");
        assert_eq!(tries.len(), 3, "two 503s, then the delivery");
        let ids: Vec<String> = tries.iter().map(|r| header(r, "idempotency-key")).collect();
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "one notification tried three times: {ids:?}"
        );
        let event: Value = serde_json::from_str(&tries[2].body).unwrap();
        let message = event["data"]["message"].as_str().unwrap();
        assert!(
            message.contains("smoke = 0.5, above the maximum 0.05"),
            "the abort notice names the metric, its value and the bound: {message}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_kill_between_send_and_record_repeats_only_that_notification_with_its_id() {
    let hold = Arc::new(Notify::new());
    let held = Behaviour {
        hold: Some(hold.clone()),
        ..Behaviour::default()
    };
    let receiver = Receiver::start(held).await;
    with_temp_ns(|client, ns| async move {
        let notify = json!([{"moments": ["Started", "Promoted"], "sink": "events"}]);
        let mut h = start(&client, &ns, &receiver, notifying(notify)).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        eventually(DEADLINE, "the Started notification in flight", || async {
            (!receiver.at("/events").is_empty()).then_some(())
        })
        .await;
        // The sink has the message; the operator has not recorded an answer yet.
        h.kill_and_restart_operator().await;
        hold.notify_one();
        let release = h.wait_release(&[&stable]).await;
        h.wait_healthy_on(&release.revision).await;
        wait_delivered(&h, &receiver, "/events", 3).await;

        let received = receiver.at("/events");
        let ids: Vec<String> = received
            .iter()
            .map(|r| header(r, "idempotency-key"))
            .collect();
        assert_eq!(received.len(), 3, "{ids:?}");
        assert_eq!(
            ids[0], ids[1],
            "the one in flight at the kill is sent again, same id"
        );
        assert_ne!(ids[1], ids[2]);
        let types: Vec<String> = received
            .iter()
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["type"].to_string())
            .collect();
        assert_eq!(
            types,
            [
                "\"dev.weir.release.started\"",
                "\"dev.weir.release.started\"",
                "\"dev.weir.release.promoted\""
            ]
        );
    })
    .await;
}
