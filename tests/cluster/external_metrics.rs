//! Kubernetes external metrics as an analysis provider: a real aggregated API (the test's
//! adapter behind an APIService) read through the API server with the operator's own
//! credentials, judging the new version by the series its selector picks.

use crate::support;

use serde_json::json;
use support::dataplane::data_plane;
use support::external_metrics::{Adapter, unregister};
use support::release::{Harness, canary, condition};

const V2: &str = "registry.example/app:2";

#[tokio::test]
async fn an_external_metric_over_its_bound_for_the_new_version_aborts_the_release() {
    let test = "external_metrics::an_external_metric_over_its_bound_for_the_new_version_aborts_the_release";
    // Alone on the cluster: the APIService changes discovery for every client meanwhile.
    let _cluster = support::exclusive().await;
    let Some(plane) = data_plane(test).await else {
        return;
    };
    support::in_temp_ns(|client, ns| async move {
        // An address of this cluster's pod range no pod gets: local, as the data plane made it.
        let base = plane.pod_cidr.split('.').take(2).collect::<Vec<_>>().join(".");
        let ip = format!("{base}.255.250");
        let values = [("blue", "100m"), ("green", "500m")]
            .map(|(slot, value)| (slot.to_string(), value.to_string()))
            .into();
        let adapter = Adapter::register(&client, &ns, &ip, values).await;

        let mut rollout = canary(json!([{"setWeight": 10}, {"pause": {"duration": "30s"}}]));
        rollout["analysis"] = json!({"interval": "1s", "metrics": [{
            "name": "queue-latency",
            "external": {"metric": "queue_latency_seconds", "selector": {"slot": "{{candidateSlot}}"}},
            "max": 0.3
        }]});
        let h = Harness::start(&client, &ns, "external", json!({"rollout": rollout})).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        h.wait_release(&[&stable]).await;
        let aborted = h.wait_degraded("AnalysisFailed").await;
        let message = &condition(&aborted, "Degraded").unwrap().message;
        assert!(
            message.contains("queue-latency = 0.5, above the maximum 0.3"),
            "the candidate's series judged: {message}"
        );
        let asked = adapter.selectors.lock().unwrap().clone();
        assert!(asked.iter().any(|s| s == "slot=green"), "{asked:?}");
        unregister(&client).await;
    })
    .await;
}
