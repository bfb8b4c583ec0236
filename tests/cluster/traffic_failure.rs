//! What users get when things go wrong or pods move: a broken version aborted on the
//! gateway's own metrics (and how many users it reached first), and a rolling update, a
//! scale-down and a node drain without one failed request.

use crate::support;
use crate::traffic::{GRACE_SECONDS, V1, V2, assert_none_failed};

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use support::dataplane::data_plane;
use support::helm::apply_metric_template_presets;
use support::prometheus::Prometheus;
use support::release::{DEADLINE, Harness, SCALE_DOWN_DELAY};
use support::traffic::{
    Load, between, default_rate, failures, route_to_service, share_percent, test_host,
    through_local_gateway, wait_answered_by,
};
use support::{eventually, kubectl, with_temp_ns};

#[tokio::test]
async fn a_broken_version_is_aborted_on_the_gateways_metrics_and_users_return_to_stable() {
    let test = "traffic_failure::a_broken_version_is_aborted_on_the_gateways_metrics_and_users_return_to_stable";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    let metrics = format!("127.0.0.1:{}", plane.metrics_port);
    let prometheus = Prometheus::start(&[&metrics]).await;
    let address = format!("http://{}", prometheus.addr);
    with_temp_ns(|client, ns| async move {
        let host = test_host(&ns);
        // The chart's presets, on Traefik's own per-Service metrics: the success rate judges
        // the version, the latency is compared with the stable version's.
        let presets = apply_metric_template_presets(&client).await;
        let metrics = json!([
            {"name": "gateway-success-rate", "templateRef": format!("{presets}-gateway-success-rate"),
             "args": {"window": "5s"}, "min": 0.95},
            {"name": "gateway-latency", "templateRef": format!("{presets}-gateway-latency"),
             "args": {"window": "5s"}, "max": 5},
        ]);
        let spec = json!({
            "replicas": 4,
            "pod": {"terminationGracePeriodSeconds": GRACE_SECONDS},
            "rollout": {
                "strategy": "Canary", "traffic": through_local_gateway(&host),
                "canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "120s"}}],
                           "scaleDownDelaySeconds": SCALE_DOWN_DELAY},
                // Rounds before the first requests reach the new version find no data.
                "analysis": {"interval": "2s", "inconclusiveLimit": 30, "metrics": metrics},
            },
        });
        let flags = ["--prometheus-address", address.as_str()];
        let h = Harness::start_on_data_plane(&client, &ns, "shop", spec, &flags).await;
        wait_answered_by(&plane, &host, V1).await;
        let load = Load::start(&plane, &host, &[], default_rate());
        let stable = h.status().await.stable_revision.unwrap();

        let broken = json!({"image": V2, "env": [{"name": "DEMO_ERROR_RATE", "value": "0.5"}]});
        let released = Instant::now();
        h.edit(broken).await;
        h.wait_release(&[&stable]).await;
        let ms = h.wait_degraded("AnalysisFailed").await;
        let reported = Instant::now();
        let message = &support::release::condition(&ms, "Degraded").unwrap().message;
        eprintln!("abort: {message}");
        assert!(message.contains("gateway-success-rate"), "{message}");
        let latency_measured = h.log.values().iter().any(|s| {
            s.analysis.as_ref().is_some_and(|a| {
                a.last.iter().any(|(metric, value, _)| metric == "gateway-latency" && value.is_some())
            })
        });
        assert!(latency_measured, "the latency preset measured the new version");
        load.next_after(reported + Duration::from_secs(1), 400).await;

        let samples = load.stop().await;
        let exposed = between(&samples, released, reported);
        let (failed, examples) = failures(&samples);
        eprintln!(
            "blast radius: {failed} failed requests; the broken version answered {:.1}% of the {} requests between its release and the reported abort",
            share_percent(&exposed, V2),
            exposed.len()
        );
        assert!(failed > 0, "the broken version failed requests before the abort");
        assert!(
            samples.iter().filter(|s| !s.succeeded()).all(|s| s.image() == Some(V2)),
            "only the broken version failed requests: {examples:?}"
        );
        assert!(
            share_percent(&exposed, V2) <= 20.0 + 5.0,
            "the broken version got no more than its weight"
        );
        let after = between(&samples, reported + Duration::from_secs(1), Instant::now());
        assert!(after.len() >= 400);
        let late: Vec<String> = between(&samples, reported, Instant::now())
            .iter()
            .filter(|s| s.image() != Some(V1))
            .map(|s| format!("{:?} at +{:?}", s.outcome, s.sent - reported))
            .collect();
        eprintln!("after the report, not from stable: {late:?}");
        assert_eq!(share_percent(&after, V1), 100.0, "1 s after the abort is reported every request goes to stable");
    })
    .await;
}

/// A kwok node that only this test's pods tolerate and select.
async fn private_node(client: &kube::Client, name: &str, owner: &str) {
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": name, "weir.dev/test-node": owner}},
        "spec": {"taints": [{"key": "weir.dev/test-node", "value": owner, "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "100", "memory": "100Gi", "pods": "100"},
                   "capacity": {"cpu": "100", "memory": "100Gi", "pods": "100"}},
    }))
    .expect("a Node");
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            name,
            &PatchParams::apply("weir-tests"),
            &Patch::Apply(&node),
        )
        .await
        .unwrap_or_else(|e| panic!("create node {name}: {e}"));
}

#[tokio::test]
async fn a_rolling_update_a_scale_down_and_a_node_drain_fail_no_request() {
    let test = "traffic_failure::a_rolling_update_a_scale_down_and_a_node_drain_fail_no_request";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let host = test_host(&ns);
        let (first, second) = (format!("{ns}-a"), format!("{ns}-b"));
        private_node(&client, &first, &ns).await;
        private_node(&client, &second, &ns).await;
        let spec = json!({
            "replicas": 4,
            "disruption": {"maxUnavailable": 1},
            "pod": {
                "terminationGracePeriodSeconds": GRACE_SECONDS,
                "nodeSelector": {"weir.dev/test-node": ns},
                "tolerations": [{"key": "weir.dev/test-node", "operator": "Equal", "value": ns, "effect": "NoSchedule"}],
            },
        });
        let h = Harness::start_on_data_plane(&client, &ns, "shop", spec, &[]).await;
        route_to_service(&client, &ns, "shop", &host, "shop").await;
        wait_answered_by(&plane, &host, V1).await;
        let load = Load::start(&plane, &host, &[], default_rate());
        let stable = h.status().await.stable_revision.unwrap();

        h.set_image(V2).await;
        h.wait("a new revision stable", |ms| {
                ms.status.as_ref().is_some_and(|s| {
                    s.stable_revision.as_deref().is_some_and(|r| r != stable)
                        && s.phase == Some(weir::api::Phase::Healthy)
                })
            })
            .await;
        let updated = Instant::now();
        wait_answered_by(&plane, &host, V2).await;

        h.edit(json!({"replicas": 2})).await;
        eventually(DEADLINE, "2 pods left", || async {
            let pods = h.pods().list(&Default::default()).await.ok()?;
            (pods.items.len() == 2).then_some(())
        })
        .await;

        kubectl(&["drain", &first, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"]).await;
        eventually(DEADLINE, "every pod ready on the other node", || async {
            let pods = h.pods().list(&Default::default()).await.ok()?;
            let moved = pods.items.iter().all(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(second.as_str())
                    && support::microservice::pod_is_ready(p)
            });
            (pods.items.len() == 2 && moved).then_some(())
        })
        .await;
        load.next_after(Instant::now(), 400).await;

        let samples = load.stop().await;
        assert_none_failed(&samples, "across the rolling update, the scale-down and the drain");
        let after = between(&samples, updated + Duration::from_secs(1), Instant::now());
        assert_eq!(share_percent(&after, V2), 100.0, "the update finished for every user");
        let nodes: Api<Node> = Api::all(client.clone());
        for node in [&first, &second] {
            nodes.delete(node, &DeleteParams::default()).await.expect("delete the test node");
        }
    })
    .await;
}

/// What the default preStop pause buys: the same rolling update with the pause turned off
/// fails requests, because each old pod stops accepting the moment it is deleted while the
/// Gateway still routes to it until the endpoint change reaches it.
#[tokio::test]
async fn without_the_pause_before_sigterm_a_rolling_update_fails_requests() {
    let test = "traffic_failure::without_the_pause_before_sigterm_a_rolling_update_fails_requests";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let host = test_host(&ns);
        let spec = json!({
            "replicas": 4,
            "lifecycle": {"preStopSleepSeconds": 0},
            "pod": {"terminationGracePeriodSeconds": GRACE_SECONDS},
        });
        let h = Harness::start_on_data_plane(&client, &ns, "shop", spec, &[]).await;
        route_to_service(&client, &ns, "shop", &host, "shop").await;
        wait_answered_by(&plane, &host, V1).await;
        let load = Load::start(&plane, &host, &[], default_rate());

        h.set_image(V2).await;
        wait_answered_by(&plane, &host, V2).await;
        eventually(DEADLINE, "only the new version answers", || async {
            let recent = load.next_after(Instant::now(), 200).await;
            (share_percent(&recent, V2) == 100.0).then_some(())
        })
        .await;

        let samples = load.stop().await;
        let (failed, examples) = failures(&samples);
        eprintln!(
            "without the pause: {failed} of {} requests failed, e.g. {examples:?}",
            samples.len()
        );
        assert!(
            failed > 0,
            "without the pause the rolling update was expected to fail requests; if it no longer does, the default pause buys nothing here"
        );
    })
    .await;
}
