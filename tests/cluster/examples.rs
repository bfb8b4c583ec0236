//! Every release example in `examples/` is applied as written, deploys, and carries a new
//! version through to promotion: the examples are kept working, not just valid.

use crate::support;

use gateway_api::httproutes::HttpRoute;
use kube::Api;
use serde_json::Value;
use support::release::Harness;
use support::traffic::{Load, default_rate, failures, share_percent, wait_answered_by};
use support::with_temp_ns;

use std::time::{Duration, Instant};

use crate::traffic::RELOAD_ALLOWANCE;
use weir::api::Slot;

/// The example's Microservice name and spec.
pub fn example(file: &str) -> (String, Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read the example");
    let object: Value = serde_yaml::from_str(&text).expect("the example is YAML");
    assert_eq!(object["kind"], "Microservice", "{file}");
    let name = object["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_string();
    (name, object["spec"].clone())
}

/// Deploys the example, changes its image, and promotes the release fully by hand (the
/// examples' own pauses and metrics would wait on people and servers this test has not).
async fn release_example(file: &'static str) {
    with_temp_ns(|client, ns| async move {
        let (name, spec) = example(file);
        let gateway = spec.pointer("/rollout/traffic/gatewayAPI").is_some();
        let steps = spec
            .pointer("/rollout/canary/steps")
            .and_then(Value::as_array)
            .map(Vec::len);
        let harness = Harness::start(&client, &ns, &name, spec).await;
        let first = harness
            .status()
            .await
            .stable_revision
            .expect("a stable revision");
        harness.set_image("registry.example/next:2.0.0").await;
        let release = harness.wait_release(&[&first]).await;
        if let Some(steps) = steps {
            assert_eq!(
                release.step_count as usize, steps,
                "{file}: the release walks its steps"
            );
        }
        harness.act("promote-full").await;
        let done = harness.wait_healthy_on(&release.revision).await;
        let status = done.status.expect("status");
        assert_eq!(
            status.active_slot,
            Some(Slot::Green),
            "{file}: the new slot serves"
        );
        if gateway {
            let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &ns);
            let route = routes.get(&name).await.expect("the example's HTTPRoute");
            let rules = route.spec.rules.expect("rules");
            let weights: Vec<_> = rules
                .last()
                .and_then(|r| r.backend_refs.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|b| (b.name, b.weight))
                .collect();
            assert_eq!(
                weights,
                vec![
                    (format!("{name}-blue"), Some(0)),
                    (format!("{name}-green"), Some(100))
                ],
                "{file}: all traffic on the new slot"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn takeover_without_a_service_to_take_over() {
    // No Service carries the consent: the example deploys and releases as any other.
    release_example("takeover.yaml").await;
}

#[tokio::test]
async fn config_tracking() {
    release_example("config-tracking.yaml").await;
}

#[tokio::test]
async fn canary_through_a_gateway() {
    release_example("canary-gateway.yaml").await;
}

#[tokio::test]
async fn canary_in_a_mesh() {
    release_example("canary-mesh.yaml").await;
}

#[tokio::test]
async fn blue_green() {
    release_example("blue-green.yaml").await;
}

#[tokio::test]
async fn header_route() {
    release_example("header-route.yaml").await;
}

#[tokio::test]
async fn mirror() {
    release_example("mirror.yaml").await;
}

#[tokio::test]
async fn canary_with_analysis() {
    release_example("canary-analysis.yaml").await;
}

#[tokio::test]
async fn the_quickstart_without_a_router() {
    release_example("quickstart-replicas.yaml").await;
}

/// The README's quickstart as a newcomer runs it: through the local Gateway, the share of the
/// new version follows the first step, and after `promote --full` only it answers.
#[tokio::test]
async fn the_readme_quickstart_through_the_local_gateway() {
    let test = "examples::the_readme_quickstart_through_the_local_gateway";
    let Some(plane) = support::dataplane::data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let (name, spec) = example("quickstart.yaml");
        let host = spec["rollout"]["traffic"]["gatewayAPI"]["hostnames"][0]
            .as_str()
            .expect("the quickstart names its host")
            .to_string();
        let old = spec["image"].as_str().unwrap().to_string();
        let new = "registry.example/hello:1.1.0";
        let h = Harness::start_on_data_plane(&client, &ns, &name, spec, &[]).await;
        wait_answered_by(&plane, &host, &old).await;
        let load = Load::start(&plane, &host, &[], default_rate());
        let first = h.status().await.stable_revision.expect("a stable revision");

        h.set_image(new).await;
        let release = h.wait_release(&[&first]).await;
        h.wait_paused_at(1).await;
        let window = load
            .next_after(Instant::now() + RELOAD_ALLOWANCE, 400)
            .await;
        let share = share_percent(&window, new);
        assert!(
            (share - 20.0).abs() <= 5.0,
            "the first step gives the new version 20%: {share:.1}%"
        );

        h.act("promote-full").await;
        h.wait_healthy_on(&release.revision).await;
        let promoted = Instant::now();
        let after = load
            .next_after(promoted + Duration::from_secs(1), 200)
            .await;
        assert_eq!(
            share_percent(&after, new),
            100.0,
            "after promotion only the new version answers"
        );
        let (failed, examples) = failures(&load.stop().await);
        assert_eq!(failed, 0, "no request failed: {examples:?}");
    })
    .await;
}
