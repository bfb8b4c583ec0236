//! Microservices and events for the plugin's unit tests.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use crate::api::Microservice;

/// A moment the fixtures are relative to.
pub fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// `seconds` after `now()`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// A settled canary `checkout` in `shop`, created an hour before `now()`: steps setWeight
/// 20, pause {}, setWeight 60, pause {}.
pub fn canary() -> Microservice {
    serde_json::from_value(json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "Microservice",
        "metadata": {
            "name": "checkout",
            "namespace": "shop",
            "creationTimestamp": at(-3600).to_string()
        },
        "spec": {
            "image": "registry.example/checkout:2",
            "rollout": {
                "strategy": "Canary",
                "canary": {"steps": [
                    {"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}
                ]}
            }
        },
        "status": {
            "phase": "Healthy",
            "message": "3 of 3 pods ready.",
            "activeSlot": "blue",
            "stableRevision": "5d8c7f9b6",
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Available",
                "message": "3 of 3 pods ready.", "lastTransitionTime": at(-3000).to_string()
            }]
        }
    }))
    .expect("a valid Microservice")
}

/// `canary()` waiting for a promote at its second step, with 20% on green, verified.
pub fn paused_at_second_step() -> Microservice {
    let mut ms = canary();
    let status = ms.status.as_mut().unwrap();
    status.phase = Some(crate::api::Phase::Paused);
    status.message = Some("Waiting for a promote at step 2 of 4.".into());
    status.candidate_revision = Some("84b7c6d9f".into());
    status.release = Some(
        serde_json::from_value(json!({
            "revision": "84b7c6d9f",
            "stepIndex": 1,
            "stepCount": 4,
            "stepStartedAt": at(-60).to_string(),
            "weight": 20,
            "weightVerified": true
        }))
        .unwrap(),
    );
    ms
}

/// A Normal event `reason` about `checkout`, last seen `seconds` after `now()`.
pub fn event(reason: &str, seconds: i64) -> Event {
    Event {
        type_: Some("Normal".into()),
        reason: Some(reason.into()),
        message: Some(format!("{reason} happened.")),
        last_timestamp: Some(Time(at(seconds))),
        ..Event::default()
    }
}
