//! Why a release failed, in words: a candidate whose pods cannot run is aborted at its
//! progress deadline, and the abort's condition, its event and `kubectl weir status` name
//! what the pods show. The fake nodes put pods in each state (hack/kwok/pod-failing.yaml);
//! `Unschedulable` comes from the real scheduler.

use crate::support;

use serde_json::{Value, json};
use support::release::Harness;
use support::with_temp_ns;

/// Releases a version whose pods get `pod` (the fields that make them fail), and checks
/// that the abort says `expected`.
async fn abort_names(pod: Value, expected: &'static str) {
    with_temp_ns(|client, ns| async move {
        let spec = json!({
            "replicas": 2,
            "rollout": {"strategy": "Canary", "progressDeadlineSeconds": 6,
                        "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        });
        let h = Harness::start(&client, &ns, "shop", spec).await;
        h.edit(json!({"image": "registry.example/app:2", "pod": pod}))
            .await;
        let aborted = h.wait_degraded("ProgressDeadlineExceeded").await;
        let degraded = aborted
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Degraded").cloned())
            .expect("a Degraded condition");
        assert!(
            degraded.message.contains("The new version's pods: ")
                && degraded.message.contains(expected),
            "the abort names {expected:?}: {}",
            degraded.message
        );
        let events = h.events().await;
        assert!(
            events
                .iter()
                .any(|(_, _, message)| message.contains(expected)),
            "an event names {expected:?}: {events:?}"
        );
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-weir"))
            .args(["status", "shop", "-n", &ns])
            .output()
            .await
            .expect("run kubectl-weir");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(expected),
            "kubectl weir status names {expected:?}: {text}"
        );
    })
    .await;
}

fn failing(state: &str) -> Value {
    json!({"annotations": {"test.weir.dev/ready": "false", "test.weir.dev/state": state}})
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled() {
    abort_names(
        failing("ImagePullBackOff"),
        "ImagePullBackOff (1 pod): container shop: Back-off pulling image \"registry.example/app:2\"",
    )
    .await;
}

#[tokio::test]
async fn a_container_that_keeps_crashing() {
    abort_names(
        failing("CrashLoopBackOff"),
        "CrashLoopBackOff (1 pod): container shop: back-off",
    )
    .await;
}

#[tokio::test]
async fn a_container_whose_configuration_is_missing() {
    abort_names(
        failing("CreateContainerConfigError"),
        "CreateContainerConfigError (1 pod): container shop: secret \"missing\" not found",
    )
    .await;
}

#[tokio::test]
async fn a_container_killed_for_its_memory() {
    abort_names(
        failing("OOMKilled"),
        "OOMKilled (1 pod): container shop was killed for using more memory than its limit",
    )
    .await;
}

#[tokio::test]
async fn pods_no_node_can_take() {
    abort_names(
        json!({"nodeSelector": {"weir.dev/no-such-node": "anywhere"}}),
        "Unschedulable (1 pod): 0/",
    )
    .await;
}
