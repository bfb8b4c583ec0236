//! A canary released by whatever operator the chart runs: each step needs one of its
//! rights.

use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use weir::api::{Microservice, Phase, Slot};

use crate::support;
use crate::support::gateway::FakeGateway;
use crate::support::microservice as ms_support;
use crate::support::release::{ACTION, DEADLINE, GITOPS, canary, wait_ms, wait_seen};
use crate::support::wait_for_all;

const V2: &str = "registry.example/app:2";

/// Microservice `web` in `ns`, released as a canary through the Gateway API by whatever
/// operator watches `ns`: created (Deployment, Services, HTTPRoute, PDB, HPA, an event),
/// paused at 50%, promoted with the action annotation (removed once handled), the old slot
/// deleted after its delay, then routing and autoscaling dropped (their children deleted).
/// Each step needs one of the operator's rights.
pub async fn release_a_canary(client: &Client, ns: &str) {
    let _gateway = FakeGateway::start(client.clone(), ns);
    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    let stable = create_web(&api).await;
    webs_children_and_event_exist(client, ns).await;
    let candidate = pause_web_at_half(&api, &stable).await;
    promote_web(client, ns, &api, &candidate).await;
    drop_webs_routing_and_autoscaling(client, ns, &api).await;
}

/// Applies `web` (a canary through the Gateway API, autoscaled) and waits until its first
/// version is Healthy in slot blue; returns its stable revision.
pub async fn create_web(api: &Api<Microservice>) -> String {
    let spec = json!({
        "replicas": 2,
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
        "rollout": canary(json!([{"setWeight": 50}, {"pause": {}}]))
    });
    let ms = ms_support::microservice("web", spec);
    api.patch("web", &PatchParams::apply(GITOPS), &Patch::Apply(&ms))
        .await
        .expect("apply the Microservice");
    let first = wait_ms(api, "web", DEADLINE, "web Healthy in slot blue", |ms| {
        ms.status.as_ref().is_some_and(|s| {
            s.observed_generation == ms.metadata.generation
                && s.phase == Some(Phase::Healthy)
                && s.stable_revision.is_some()
                && s.release.is_none()
                && s.active_slot == Some(Slot::Blue)
        })
    })
    .await;
    first.status.and_then(|s| s.stable_revision).unwrap()
}

/// Deployment, Services, HTTPRoute, PDB and HPA of `web`, and a Created event from Weir.
pub async fn webs_children_and_event_exist(client: &Client, ns: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    assert!(deployments.get_opt("web-blue").await.unwrap().is_some());
    for service in ["web", "web-blue", "web-green"] {
        assert!(
            services.get_opt(service).await.unwrap().is_some(),
            "Service {service}"
        );
    }
    assert!(
        routes.get_opt("web").await.unwrap().is_some(),
        "HTTPRoute web"
    );
    assert!(pdbs.get_opt("web").await.unwrap().is_some(), "PDB web");
    assert!(hpas.get_opt("web").await.unwrap().is_some(), "HPA web");
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    wait_for_all(
        events,
        "",
        DEADLINE,
        "a Created event about web from weir",
        |events| {
            events.iter().any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
                    && e.reason.as_deref() == Some("Created")
                    && e.reporting_controller.as_deref() == Some("weir")
            })
        },
    )
    .await;
}

/// Releases V2 and waits at its pause at 50%; returns the candidate revision.
pub async fn pause_web_at_half(api: &Api<Microservice>, stable: &str) -> String {
    ms_support::edit_spec(api, "web", json!({"image": V2})).await;
    let paused = wait_ms(api, "web", DEADLINE, "web Paused at 50%", |ms| {
        ms.status.as_ref().is_some_and(|s| {
            s.phase == Some(Phase::Paused)
                && s.release
                    .as_ref()
                    .is_some_and(|r| r.revision != stable && r.step_index == 1 && r.weight == 50)
        })
    })
    .await;
    paused.status.unwrap().release.unwrap().revision
}

/// Promotes with the action annotation: Healthy on the candidate in slot green, the
/// annotation removed, the old slot deleted after its delay.
pub async fn promote_web(client: &Client, ns: &str, api: &Api<Microservice>, candidate: &str) {
    support::release::act(api, "web", "promote").await;
    let what = format!("web Healthy on {candidate} in slot green, the action annotation removed");
    wait_ms(api, "web", DEADLINE, &what, |ms| {
        !ms.annotations().contains_key(ACTION)
            && ms.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Healthy)
                    && s.release.is_none()
                    && s.stable_revision.as_deref() == Some(candidate)
                    && s.active_slot == Some(Slot::Green)
            })
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let show = |d: &Deployment| format!("{:?}", d.spec.as_ref().and_then(|s| s.replicas));
    wait_seen(
        &deployments,
        "web-blue",
        DEADLINE,
        "the old slot deleted",
        show,
        |d| d.is_none(),
    )
    .await;
}

/// Drops routing and autoscaling: the HPA, PDB, HTTPRoute and slot Services go, and `web`
/// is Healthy on one replica.
pub async fn drop_webs_routing_and_autoscaling(client: &Client, ns: &str, api: &Api<Microservice>) {
    let generation = ms_support::edit_spec(
        api,
        "web",
        json!({"rollout": null, "autoscaling": null, "replicas": 1}),
    )
    .await;
    let gone = |what: &str| format!("{what} deleted once no longer wanted");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    wait_seen(
        &hpas,
        "web",
        DEADLINE,
        &gone("HPA web"),
        |_| String::new(),
        |h| h.is_none(),
    )
    .await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    wait_seen(
        &pdbs,
        "web",
        DEADLINE,
        &gone("PDB web"),
        |_| String::new(),
        |p| p.is_none(),
    )
    .await;
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
    wait_seen(
        &routes,
        "web",
        DEADLINE,
        &gone("HTTPRoute web"),
        |_| String::new(),
        |r| r.is_none(),
    )
    .await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    for service in ["web-blue", "web-green"] {
        let what = gone(&format!("Service {service}"));
        wait_seen(
            &services,
            service,
            DEADLINE,
            &what,
            |_| String::new(),
            |s| s.is_none(),
        )
        .await;
    }
    let what = "web Healthy on one replica without routing";
    wait_ms(api, "web", DEADLINE, what, |ms| {
        ms.status.as_ref().is_some_and(|s| {
            s.observed_generation == Some(generation)
                && s.phase == Some(Phase::Healthy)
                && s.replicas == 1
                && s.ready_replicas == 1
        })
    })
    .await;
}
