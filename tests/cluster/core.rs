//! The everyday job: a Microservice becomes a running, self-healing, zero-downtime service
//! with honest status.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::microservice::{
    self as ms_support, microservice, pod_is_ready, wait_phase, wait_ready,
};
use support::operator::{Operator, metric_sum};
use support::{kubectl, wait_for, wait_for_all, with_temp_ns};
use tokio::task::JoinHandle;
use weir::api::conditions::{self, reason};
use weir::api::{Microservice, Phase};

const DEADLINE: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_new_microservice_becomes_ready_with_honest_status() {
    with_temp_ns(|client, ns| async move {
        let _operator = Operator::start(&ns, "core-ready", &[]).await;
        let api = ms_support::create(&client, &ns, &microservice("shop", json!({}))).await;
        kubectl(&[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            "ms/shop",
            "--timeout=90s",
        ])
        .await;
        let ms = wait_ready(&api, "shop", 1, DEADLINE).await;

        let status = ms.status.clone().unwrap();
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(
            (
                status.replicas,
                status.ready_replicas,
                status.updated_replicas
            ),
            (3, 3, 3)
        );
        assert_eq!(
            status.selector.as_deref(),
            Some("app.kubernetes.io/instance=shop")
        );
        assert_eq!(status.phase, Some(Phase::Healthy));
        let found: Vec<_> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (conditions::READY, "True", reason::AVAILABLE),
                (conditions::PROGRESSING, "False", reason::ROLLED_OUT),
                (conditions::DEGRADED, "False", reason::AS_EXPECTED),
                (conditions::RECONCILING, "False", reason::ROLLED_OUT),
                (conditions::STALLED, "False", reason::AS_EXPECTED),
            ]
        );

        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let pods = pods.list(&Default::default()).await.unwrap().items;
        assert_eq!(
            pods.iter().filter(|p| pod_is_ready(p)).count(),
            3,
            "3 ready pods on the fake nodes"
        );

        let table = kubectl(&["get", "ms", "shop", "-n", &ns]).await;
        let header: Vec<_> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["NAME", "READY", "PHASE", "WEIGHT", "IMAGE", "AGE"]);
        assert!(
            table.contains("True")
                && table.contains("Healthy")
                && table.contains("registry.example/app:1"),
            "{table}"
        );

        // Children are written by server-side apply with the `weir` field manager.
        let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
            .get("shop-blue")
            .await
            .unwrap();
        let managers: Vec<_> = deployment
            .managed_fields()
            .iter()
            .map(|m| (m.manager.clone(), m.operation.clone()))
            .collect();
        assert!(
            managers.contains(&(Some("weir".into()), Some("Apply".into()))),
            "managers: {managers:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_image_change_rolls_out_without_losing_a_ready_pod() {
    with_temp_ns(|client, ns| async move {
        let (_operator, api) =
            ms_support::ready_microservice(&client, &ns, "core-rollout", "web", json!({})).await;

        // Watch pods and phases for the whole rollout, recording the fewest ready pods seen.
        let (fewest_ready, pod_task) = record_fewest_ready_pods(&client, &ns);
        let (phases, phase_task) = record_phases(&api);

        let generation =
            ms_support::edit_spec(&api, "web", json!({"image": "registry.example/app:2"})).await;
        let ms = wait_ready(&api, "web", generation, DEADLINE).await;
        pod_task.abort();
        phase_task.abort();

        assert_eq!(ms.status.as_ref().unwrap().updated_replicas, 3);
        let fewest = *fewest_ready.lock().unwrap();
        assert!(
            fewest >= 3,
            "ready pods fell to {fewest} during the rollout"
        );
        let phases = phases.lock().unwrap().clone();
        assert!(
            phases.contains(&Phase::Progressing),
            "never reported Progressing: {phases:?}"
        );
        assert_eq!(ms.status.as_ref().unwrap().phase, Some(Phase::Healthy));
        one_rolled_out_event_names_the_image(&client, &ns).await;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items;
        let images: Vec<_> = pods
            .iter()
            .filter(|p| pod_is_ready(p))
            .flat_map(|p| {
                p.spec
                    .iter()
                    .flat_map(|s| s.containers.iter().map(|c| c.image.clone()))
            })
            .collect();
        assert_eq!(images, vec![Some("registry.example/app:2".to_string()); 3]);
    })
    .await;
}

/// Watches the pods of `web` and keeps the fewest ready seen, from the first moment the
/// settled 3 are ready; stop the task when done.
fn record_fewest_ready_pods(client: &Client, ns: &str) -> (Arc<Mutex<usize>>, JoinHandle<()>) {
    let fewest_ready = Arc::new(Mutex::new(usize::MAX));
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let (reader, writer) = kube::runtime::reflector::store();
    let pod_watch = kube::runtime::reflector(
        writer,
        watcher(
            pods,
            watcher::Config::default().labels("app.kubernetes.io/instance=web"),
        ),
    )
    .default_backoff()
    .touched_objects();
    let fewest = fewest_ready.clone();
    let pod_task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(pod_watch);
        // The cache fills only once the initial list is done: record from the first
        // moment it shows the settled 3 ready pods.
        let mut armed = false;
        while let Ok(Some(_)) = stream.try_next().await {
            let ready = reader.state().iter().filter(|p| pod_is_ready(p)).count();
            armed |= ready >= 3;
            if !armed {
                continue;
            }
            let mut fewest = fewest.lock().unwrap();
            *fewest = (*fewest).min(ready);
        }
    });
    (fewest_ready, pod_task)
}

/// Watches Microservice `web` and keeps every phase its status reports, in order; stop the
/// task when done.
fn record_phases(api: &Api<Microservice>) -> (Arc<Mutex<Vec<Phase>>>, JoinHandle<()>) {
    let phases = Arc::new(Mutex::new(Vec::new()));
    let seen = phases.clone();
    let ms_watch = watcher(
        api.clone(),
        watcher::Config::default().fields("metadata.name=web"),
    )
    .applied_objects();
    let phase_task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(ms_watch);
        while let Ok(Some(ms)) = stream.try_next().await {
            if let Some(phase) = ms.status.and_then(|s| s.phase) {
                seen.lock().unwrap().push(phase);
            }
        }
    });
    (phases, phase_task)
}

/// Exactly one RolledOut event about `web`, naming the new image.
async fn one_rolled_out_event_names_the_image(client: &Client, ns: &str) {
    let events = support::eventually(DEADLINE, "a RolledOut event", || async {
        let events = ms_support::events(client, ns, "web").await;
        events
            .iter()
            .any(|(t, r, m)| t == "Normal" && r == reason::ROLLED_OUT && m.contains("app:2"))
            .then_some(events)
    })
    .await;
    assert_eq!(
        events
            .iter()
            .filter(|(_, r, _)| r == reason::ROLLED_OUT)
            .count(),
        1,
        "{events:?}"
    );
}

#[tokio::test]
async fn drift_is_healed_and_foreign_fields_are_left_alone() {
    with_temp_ns(|client, ns| async move {
        let (_operator, _api) =
            ms_support::ready_microservice(&client, &ns, "core-drift", "cart", json!({})).await;
        let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);

        // Deleted children come back (as new objects).
        for (kind, name) in [
            ("deployment", "cart-blue"),
            ("service", "cart"),
            ("pdb", "cart"),
        ] {
            deleted_child_comes_back(&ns, kind, name).await;
        }
        assert!(pdbs.get_opt("cart").await.unwrap().is_some());

        hand_edits_are_put_back_and_foreign_annotations_stay(&client, &ns).await;
    })
    .await;
}

/// Deletes child `kind/name` and waits until it exists again with another uid.
async fn deleted_child_comes_back(ns: &str, kind: &str, name: &str) {
    let before = kubectl(&[
        "get",
        kind,
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ])
    .await;
    kubectl(&["delete", kind, name, "-n", ns, "--wait=true"]).await;
    support::eventually(
        DEADLINE,
        &format!("{kind} {name} to be recreated"),
        || async {
            let (ok, uid, _) = support::try_kubectl(&[
                "get",
                kind,
                name,
                "-n",
                ns,
                "-o",
                "jsonpath={.metadata.uid}",
            ])
            .await;
            (ok && !uid.is_empty() && uid != before).then_some(())
        },
    )
    .await;
}

/// Someone else's annotation stays; a hand edit of a field Weir owns is put back.
async fn hand_edits_are_put_back_and_foreign_annotations_stay(client: &Client, ns: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    kubectl(&[
        "annotate",
        "deployment",
        "cart-blue",
        "-n",
        ns,
        "team.example/owner=payments",
    ])
    .await;
    kubectl(&["scale", "deployment", "cart-blue", "-n", ns, "--replicas=5"]).await;
    let service_patch =
        json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9999}]}});
    services
        .patch(
            "cart",
            &PatchParams::default(),
            &Patch::Strategic(service_patch),
        )
        .await
        .unwrap();
    wait_for(
        deployments.clone(),
        "cart-blue",
        DEADLINE,
        "replicas put back to 3",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) == Some(3)
        },
    )
    .await;
    wait_for(
        services,
        "cart",
        DEADLINE,
        "the Service targetPort put back",
        |s: Option<&Service>| {
            s.and_then(|s| s.spec.as_ref())
                .and_then(|s| s.ports.as_ref())
                .and_then(|p| p.first())
                .and_then(|p| p.target_port.clone())
                == Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
        },
    )
    .await;
    let deployment = deployments.get("cart-blue").await.unwrap();
    assert_eq!(
        deployment
            .annotations()
            .get("team.example/owner")
            .map(String::as_str),
        Some("payments")
    );
}

#[tokio::test]
async fn an_object_weir_does_not_own_is_never_adopted_and_is_reported() {
    with_temp_ns(|client, ns| async move {
        let _operator = Operator::start(&ns, "core-conflict", &[]).await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let services: Api<Service> = Api::namespaced(client.clone(), &ns);
        let foreign_deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "pay-blue", "labels": {"owner": "someone-else"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "theirs"}},
                     "template": {"metadata": {"labels": {"app": "theirs"}}, "spec": {"containers": [{"name": "c", "image": "theirs:1"}]}}}
        }))
        .unwrap();
        let foreign_service: Service = serde_json::from_value(json!({
            "metadata": {"name": "pay"},
            "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 1234}]}
        }))
        .unwrap();
        let theirs = deployments.create(&PostParams::default(), &foreign_deployment).await.unwrap();
        let their_service = services.create(&PostParams::default(), &foreign_service).await.unwrap();

        let api = ms_support::create(&client, &ns, &microservice("pay", json!({}))).await;
        let ms = wait_phase(&api, "pay", Phase::Degraded, reason::NAME_CONFLICT, DEADLINE).await;
        let message = ms.status.unwrap().message.unwrap_or_default();
        assert!(message.contains("Deployment pay-blue") && message.contains("not owned"), "{message}");
        let events = ms_support::events(&client, &ns, "pay").await;
        assert!(events.iter().any(|(t, r, _)| t == "Warning" && r == reason::NAME_CONFLICT), "{events:?}");

        // Give the operator time to (wrongly) act, then check nothing of theirs changed.
        let ready = |d: Option<&Deployment>| d.is_some();
        wait_for(deployments.clone(), "pay-blue", DEADLINE, "the foreign deployment", ready).await;
        let after = deployments.get("pay-blue").await.unwrap();
        assert_untouched(&after, theirs.metadata.generation);

        // Free the Deployment's name: the Service conflict is next, and is reported too.
        deployments.delete("pay-blue", &DeleteParams::default()).await.unwrap();
        let ms = wait_phase(&api, "pay", Phase::Degraded, reason::NAME_CONFLICT, DEADLINE).await;
        support::eventually(DEADLINE, "the Service conflict to be reported", || {
            let api = api.clone();
            async move {
                let ms = api.get("pay").await.ok()?;
                ms.status?.message?.contains("Service pay").then_some(())
            }
        })
        .await;
        drop(ms);
        let service_after = services.get("pay").await.unwrap();
        assert_eq!(service_after.resource_version(), their_service.resource_version(), "the foreign Service was changed");
        assert_untouched(&service_after, their_service.metadata.generation);

        services.delete("pay", &DeleteParams::default()).await.unwrap();
        wait_ready(&api, "pay", 1, DEADLINE).await;
    })
    .await;
}

/// A Deployment the API server cannot type (two spread constraints with one key and mode:
/// a server-side apply answers 500) is reported as ApplyFailed with the server's words, not
/// retried in silence; fixing the spec brings it Ready.
#[tokio::test]
async fn a_child_the_server_cannot_type_is_reported_and_a_fixed_spec_recovers() {
    with_temp_ns(|client, ns| async move {
        let _operator = Operator::start(&ns, "core-untyped", &[]).await;
        let twice =
            json!({"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "ScheduleAnyway"});
        let spec = json!({"pod": {"topologySpreadConstraints": [twice, twice]}});
        let api = ms_support::create(&client, &ns, &microservice("pay", spec)).await;
        let ms = wait_phase(&api, "pay", Phase::Degraded, reason::APPLY_FAILED, DEADLINE).await;
        let message = ms.status.unwrap().message.unwrap_or_default();
        assert!(message.contains("duplicate entries"), "{message}");
        let events = ms_support::events(&client, &ns, "pay").await;
        assert!(
            events
                .iter()
                .any(|(t, r, _)| t == "Warning" && r == reason::APPLY_FAILED),
            "{events:?}"
        );

        let once = json!({"spec": {"pod": {"topologySpreadConstraints": [twice]}}});
        api.patch("pay", &PatchParams::default(), &Patch::Merge(&once))
            .await
            .unwrap();
        wait_ready(&api, "pay", 2, DEADLINE).await;
    })
    .await;
}

/// Weir neither wrote to `object` (no field manager of its own, same generation) nor took
/// ownership of it.
fn assert_untouched<K: kube::Resource>(object: &K, generation: Option<i64>) {
    let managers: Vec<_> = object
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        !managers.iter().any(|m| m == "weir"),
        "Weir wrote to a foreign object: {managers:?}"
    );
    assert!(
        object.owner_references().is_empty(),
        "Weir adopted a foreign object"
    );
    assert_eq!(
        object.meta().generation,
        generation,
        "the foreign object's spec changed"
    );
}

#[tokio::test]
async fn a_rollout_that_cannot_finish_turns_degraded_after_the_deadline() {
    with_temp_ns(|client, ns| async move {
        let _operator = Operator::start(&ns, "core-stuck", &[]).await;
        let spec = json!({
            "replicas": 2,
            "pod": {"annotations": {"test.weir.dev/ready": "false"}},
            "rollout": {"progressDeadlineSeconds": 5}
        });
        let api = ms_support::create(&client, &ns, &microservice("stuck", spec)).await;
        let ms = wait_phase(
            &api,
            "stuck",
            Phase::Degraded,
            reason::PROGRESS_DEADLINE_EXCEEDED,
            DEADLINE,
        )
        .await;
        let message = ms.status.unwrap().message.unwrap_or_default();
        assert!(
            message.contains("made no progress for 5s") && message.contains("0 of 2 pods ready"),
            "{message}"
        );
        let events = ms_support::events(&client, &ns, "stuck").await;
        assert!(
            events
                .iter()
                .any(|(t, r, _)| t == "Warning" && r == reason::PROGRESS_DEADLINE_EXCEEDED),
            "{events:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn metrics_count_reconciles_and_phases_with_bounded_labels() {
    with_temp_ns(|client, ns| async move {
        let (operator, _api) =
            ms_support::ready_microservice(&client, &ns, "core-metrics", "metered", json!({}))
                .await;
        let metrics = support::eventually(DEADLINE, "the Healthy gauge", || async {
            let metrics = operator.metrics().await;
            (metric_sum(&metrics, "weir_microservices", "phase=\"Healthy\"") == 1.0)
                .then_some(metrics)
        })
        .await;
        assert!(
            metric_sum(&metrics, "weir_reconciles_total", "result=\"success\"") >= 1.0,
            "{metrics}"
        );
        assert!(
            metric_sum(&metrics, "weir_reconcile_duration_seconds_count", "") >= 1.0,
            "{metrics}"
        );
        assert!(
            metrics.contains("# TYPE weir_reconcile_errors counter"),
            "{metrics}"
        );
        assert!(
            !metrics.contains("metered") && !metrics.contains(&ns),
            "labels must not carry object names"
        );
    })
    .await;
}

#[tokio::test]
async fn unwanted_children_are_deleted_and_autoscaling_targets_scale() {
    with_temp_ns(|client, ns| async move {
        let _operator = Operator::start(&ns, "core-hpa", &[]).await;
        let spec = json!({"replicas": 2, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}});
        let api = ms_support::create(&client, &ns, &microservice("auto", spec)).await;
        wait_ready(&api, "auto", 1, DEADLINE).await;
        kubectl(&["get", "hpa", "auto", "-n", &ns]).await;

        // `kubectl scale` goes through /scale; the value is clamped to the bounds.
        kubectl(&["scale", "ms/auto", "-n", &ns, "--replicas=9"]).await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        wait_for(
            deployments.clone(),
            "auto-blue",
            DEADLINE,
            "replicas clamped to 4",
            |d: Option<&Deployment>| {
                d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) == Some(4)
            },
        )
        .await;

        // Autoscaling off and one replica: the HPA and the PDB are no longer wanted.
        let patch = json!({"spec": {"autoscaling": null, "replicas": 1}});
        api.patch("auto", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
        support::eventually(DEADLINE, "the HPA and PDB to be deleted", || async {
            let (hpa, _, _) = support::try_kubectl(&["get", "hpa", "auto", "-n", &ns]).await;
            let (pdb, _, _) = support::try_kubectl(&["get", "pdb", "auto", "-n", &ns]).await;
            (!hpa && !pdb).then_some(())
        })
        .await;
        let ms: Microservice = api.get("auto").await.unwrap();
        assert_eq!(ms.spec.replicas, Some(1));
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        wait_for_all(
            pods,
            "app.kubernetes.io/instance=auto",
            DEADLINE,
            "one pod left",
            |pods| pods.len() == 1,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn replicas_set_by_a_manifest_while_autoscaling_is_warned_about() {
    with_temp_ns(|client, ns| async move {
        let _operator = Operator::start(&ns, "core-contest", &[]).await;
        let manifest = json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice", "metadata": {"name": "fight"},
            "spec": {"image": "registry.example/app:1", "replicas": 3, "autoscaling": {"minReplicas": 2, "maxReplicas": 5},
                     "ports": [{"name": "http", "port": 80}]}
        });
        let api: Api<Microservice> = Api::namespaced(client.clone(), &ns);
        api.patch("fight", &PatchParams::apply("kustomize-controller"), &Patch::Apply(manifest)).await.unwrap();
        support::eventually(DEADLINE, "a warning about spec.replicas", || {
            let api = api.clone();
            async move {
                let message = api.get("fight").await.ok()?.status?.message?;
                message.contains("spec.replicas is also set by kustomize-controller").then_some(())
            }
        })
        .await;
        let events = ms_support::events(&client, &ns, "fight").await;
        assert!(events.iter().any(|(t, r, _)| t == "Warning" && r == reason::REPLICAS_CONTESTED), "{events:?}");
    })
    .await;
}

#[tokio::test]
async fn default_pods_are_admitted_under_the_restricted_pod_security_profile() {
    with_temp_ns(|client, ns| async move {
        kubectl(&[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .await;
        let _operator = Operator::start(&ns, "core-restricted", &[]).await;
        let api = ms_support::create(&client, &ns, &microservice("locked", json!({}))).await;
        // Pods refused by admission would leave the rollout stuck short of Ready.
        wait_ready(&api, "locked", 1, DEADLINE).await;
        let events = kubectl(&[
            "get",
            "events",
            "-n",
            &ns,
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
        assert!(!events.contains("violates PodSecurity"), "{events}");
    })
    .await;
}
