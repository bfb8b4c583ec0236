//! Specs Weir cannot act on are refused by the API server itself, with a message a person
//! understands, before they ever reach the controller.

mod support;

use kube::Api;
use kube::api::{DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use support::{install_crds, with_temp_ns};

/// Creates a Microservice from raw JSON; returns the refusal message, or None if accepted.
async fn refusal(api: &Api<DynamicObject>, name: &str, spec: Value) -> Option<String> {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "refused with {status:?}");
            Some(status.message)
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn bad_specs_are_refused_at_admission_with_readable_messages() {
    install_crds(&support::client().await).await;
    with_temp_ns(|client, ns| async move {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("weir.dev", "v1alpha1", "Microservice"));
        let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
        let port = |name: &str, port: i64| json!({"name": name, "port": port});
        let too_long = "n".repeat(56);
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            ("empty image", "a", json!({"image": ""}), "spec.image"),
            ("blank image", "a", json!({"image": "  "}), "image must not be empty"),
            ("negative replicas", "a", json!({"image": "x:1", "replicas": -1}), "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
            ("min above max", "a", json!({"image": "x:1", "autoscaling": {"minReplicas": 5, "maxReplicas": 2}}), "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas"),
            ("duplicate port names", "a", json!({"image": "x:1", "ports": [port("http", 80), port("http", 81)]}), "port names must be unique"),
            ("duplicate port numbers", "a", json!({"image": "x:1", "ports": [port("http", 80), port("admin", 80)]}), "port numbers must be unique"),
            ("port too high", "a", json!({"image": "x:1", "ports": [port("http", 70000)]}), "should be less than or equal to 65535"),
            ("port zero", "a", json!({"image": "x:1", "ports": [port("http", 0)]}), "should be greater than or equal to 1"),
            ("target port too high", "a", json!({"image": "x:1", "ports": [{"name": "http", "port": 80, "targetPort": 65536}]}), "should be less than or equal to 65535"),
            ("both disruption bounds", "a", json!({"image": "x:1", "disruption": {"maxUnavailable": 1, "minAvailable": 1}}), "set disruption.maxUnavailable or disruption.minAvailable, not both"),
            ("name too long", &too_long, json!({"image": "x:1"}), "metadata.name must be at most 55 characters"),
            ("name not a DNS label", "9lives", json!({"image": "x:1"}), "metadata.name must start with a letter"),
            ("wrong type", "a", json!({"image": "x:1", "replicas": "three"}), "spec.replicas"),
            ("unknown strategy", "a", json!({"image": "x:1", "rollout": {"strategy": "YOLO"}}), "spec.rollout.strategy: Unsupported value: \"YOLO\""),
        ];
        for (case, name, spec, expected) in cases {
            let message = refusal(&api, name, spec).await.unwrap_or_else(|| panic!("{case}: accepted"));
            assert!(message.contains(expected), "{case}: expected {expected:?} in {message:?}");
        }
        // The limits themselves are accepted.
        let longest = "n".repeat(55);
        let edge = json!({"image": "x:1", "replicas": 0, "ports": [port("http", 65535), port("admin", 1)],
                          "autoscaling": {"minReplicas": 2, "maxReplicas": 2}, "disruption": {"minAvailable": "50%"}});
        assert_eq!(refusal(&api, &longest, edge).await, None, "a spec at the limits must be accepted");
    })
    .await;
}
