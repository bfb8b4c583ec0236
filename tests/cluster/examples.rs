//! Every release example in `examples/` is applied as written, deploys, and carries a new
//! version through to promotion: the examples are kept working, not just valid.

use crate::support;

use gateway_api::httproutes::HttpRoute;
use kube::Api;
use serde::Deserialize;
use serde_json::Value;
use support::release::{Harness, Member, condition};
use support::traffic::{Load, default_rate, failures, share_percent, wait_answered_by};
use support::with_temp_ns;

use std::time::{Duration, Instant};

use crate::traffic::RELOAD_ALLOWANCE;
use weir::api::{Release, Slot};

/// The Microservices of an example file, each as its name and spec, in order.
pub fn examples_in(file: &str) -> Vec<(String, Value)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read the example");
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let object = Value::deserialize(document).expect("the example is YAML");
            assert_eq!(object["kind"], "Microservice", "{file}");
            let name = object["metadata"]["name"]
                .as_str()
                .expect("a name")
                .to_string();
            (name, object["spec"].clone())
        })
        .collect()
}

/// The example's Microservice name and spec.
pub fn example(file: &str) -> (String, Value) {
    let mut all = examples_in(file);
    assert_eq!(all.len(), 1, "{file} holds one Microservice");
    all.remove(0)
}

/// The image every example's release changes to.
const NEXT: &str = "registry.example/next:2.0.0";

/// Deploys the example, changes its image, and promotes the release fully by hand.
async fn release_example(file: &'static str) {
    with_temp_ns(|client, ns| async move {
        let (name, spec) = example(file);
        let harness = Harness::start(&client, &ns, &name, spec.clone()).await;
        let first = stable_revision(&harness).await;
        harness.set_image(NEXT).await;
        promote_fully(&harness, &first, &spec, file).await;
    })
    .await;
}

async fn stable_revision(member: &Member) -> String {
    let status = member.status().await;
    status.stable_revision.expect("a stable revision")
}

/// Waits for the release of a revision other than `first` (it walks the steps of `spec`,
/// the example's), promotes it fully by hand (the examples' own pauses and metrics would
/// wait on people and servers this test has not), and checks that the new slot serves: all
/// of the example's route, if it routes through a gateway. Returns the release.
async fn promote_fully(member: &Member, first: &str, spec: &Value, file: &str) -> Release {
    let release = member.wait_release(&[first]).await;
    let steps = spec
        .pointer("/rollout/canary/steps")
        .and_then(Value::as_array);
    if let Some(steps) = steps {
        assert_eq!(
            release.step_count as usize,
            steps.len(),
            "{file}: the release walks its steps"
        );
    }
    member.act("promote-full").await;
    let done = member.wait_healthy_on(&release.revision).await;
    let status = done.status.expect("status");
    assert_eq!(
        status.active_slot,
        Some(Slot::Green),
        "{file}: the new slot serves"
    );
    if spec.pointer("/rollout/traffic/gatewayAPI").is_some() {
        let name = &member.name;
        let routes: Api<HttpRoute> = Api::namespaced(member.client.clone(), &member.ns);
        let route = routes.get(name).await.expect("the example's HTTPRoute");
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
    release
}

/// The release group example: a backend and a frontend that starts after it. Both change at
/// once; the frontend waits, running nothing new and saying for whom, until the backend's
/// release is promoted, and only then releases.
#[tokio::test]
async fn a_release_group_one_member_after_the_other() {
    let file = "release-group.yaml";
    with_temp_ns(move |client, ns| async move {
        let [(backend, backend_spec), (frontend, frontend_spec)] =
            <[_; 2]>::try_from(examples_in(file)).expect("two Microservices");
        let backend = Harness::start(&client, &ns, &backend, backend_spec.clone()).await;
        let frontend = backend.join(&frontend, frontend_spec.clone()).await;
        let firsts = [
            stable_revision(&backend).await,
            stable_revision(&frontend).await,
        ];
        backend.set_image(NEXT).await;
        frontend.set_image(NEXT).await;
        backend.wait_release(&[&firsts[0]]).await;
        frontend
            .wait("waiting for the backend's promotion", |ms| {
                let status = ms.status.as_ref();
                status.is_some_and(|s| {
                    s.observed_generation == ms.metadata.generation
                        && s.release.is_none()
                        && s.message.as_deref().is_some_and(|m| {
                            m.contains("waits for backend (its release is in progress)")
                        })
                }) && condition(ms, "Progressing").is_some_and(|c| c.reason == "WaitingForGroup")
            })
            .await;

        let promoted = promote_fully(&backend, &firsts[0], &backend_spec, file).await;
        promote_fully(&frontend, &firsts[1], &frontend_spec, file).await;
        let (_, stable) = backend
            .log
            .find(0, |s| {
                s.stable_revision.as_ref() == Some(&promoted.revision)
            })
            .expect("the backend's new revision stable");
        let (_, started) = frontend
            .log
            .find(0, |s| s.release.is_some())
            .expect("the frontend's release");
        assert!(
            started.resource_version > stable.resource_version,
            "the frontend's release began (rv {}) before the backend's was promoted (rv {})",
            started.resource_version,
            stable.resource_version
        );
    })
    .await;
}

#[tokio::test]
async fn takeover_without_a_service_to_take_over() {
    // No Service carries the consent: the example deploys and releases as any other.
    release_example("takeover.yaml").await;
}

#[tokio::test]
async fn a_complete_pod() {
    release_example("complete-pod.yaml").await;
}

#[tokio::test]
async fn a_canary_mounted_at_a_path() {
    release_example("path-mounted.yaml").await;
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
