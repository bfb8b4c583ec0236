//! Moving a running service in (`spec.migrateFrom`) and out (`kubectl weir eject`), judged
//! by the requests users get through the local Gateway: not one fails while Weir's pods take
//! over from a running Deployment, nor while Weir lets go of them. And the safety rules:
//! without the Service's consent nothing is touched, and when Weir's pods stop being ready
//! the old Deployment serves again, at its old size.

use crate::support;
use crate::traffic::{GRACE_SECONDS, V1, V2, assert_none_failed};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use support::dataplane::data_plane;
use support::release::DEADLINE;
use support::traffic::{
    Load, between, default_rate, route_to_service, share_percent, test_host, wait_answered_by,
};
use support::{eventually, with_temp_ns};
use weir::api::{ADOPT_ANNOTATION, Microservice, MigrationPhase, Phase};

/// Deployment `name` of `replicas` pods of `image` labelled `app: <app>`, with the preStop
/// pause a graceful service has, and Service `service` in front of it: a service as a team
/// runs it before Weir.
async fn running_service(
    client: &Client,
    ns: &str,
    name: &str,
    app: &str,
    replicas: i32,
    image: &str,
) {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": {
                "terminationGracePeriodSeconds": GRACE_SECONDS,
                "containers": [{"name": "app", "image": image,
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}]}}}
    }))
    .expect("a Deployment");
    let apply = PatchParams::apply("team");
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(name, &apply, &Patch::Apply(&deployment))
        .await
        .expect("apply the Deployment");
    wait_deployment_ready(client, ns, name, replicas).await;
}

async fn service(
    client: &Client,
    ns: &str,
    name: &str,
    app: &str,
    port_name: &str,
    annotations: Value,
) {
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"selector": {"app": app}, "ports": [{"name": port_name, "port": 80, "targetPort": 8080}]}
    }))
    .expect("a Service");
    Api::<Service>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply("team"), &Patch::Apply(&service))
        .await
        .expect("apply the Service");
}

async fn wait_deployment_ready(client: &Client, ns: &str, name: &str, replicas: i32) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    eventually(
        DEADLINE,
        &format!("Deployment {name} with {replicas} ready pods"),
        || async {
            let d = api.get_opt(name).await.ok()??;
            (d.status?.ready_replicas.unwrap_or(0) == replicas).then_some(())
        },
    )
    .await;
}

async fn apply_microservice(
    client: &Client,
    ns: &str,
    name: &str,
    spec: Value,
) -> Api<Microservice> {
    let ms = support::microservice::microservice(name, spec);
    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    api.patch(name, &PatchParams::apply("gitops"), &Patch::Apply(&ms))
        .await
        .expect("apply the Microservice");
    api
}

async fn wait_phase(api: &Api<Microservice>, name: &str, phase: MigrationPhase) -> Microservice {
    let what = format!("Microservice {name}: takeover {}", phase.as_str());
    eventually(DEADLINE, &what, || async {
        let ms = api.get_opt(name).await.ok()??;
        let migration = ms.status.as_ref()?.migration.as_ref()?;
        (migration.phase == phase).then_some(ms)
    })
    .await
}

async fn selector_of(client: &Client, ns: &str, name: &str) -> BTreeMap<String, String> {
    let service = Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("the Service");
    service.spec.and_then(|s| s.selector).unwrap_or_default()
}

fn owned_by(meta: &kube::core::ObjectMeta, ms: &Microservice) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == ms.metadata.uid.as_ref())
}

async fn kubectl_weir(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-weir"))
        .args(args)
        .output()
        .await
        .expect("run kubectl-weir");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn a_running_service_is_taken_over_and_ejected_without_one_failed_request() {
    let test = "takeover::a_running_service_is_taken_over_and_ejected_without_one_failed_request";
    let Some(plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        let _operator = support::operator::Operator::start(&ns, "shop-0", &[]).await;
        let host = test_host(&ns);
        running_service(&client, &ns, "shop", "shop", 4, V1).await;
        service(
            &client,
            &ns,
            "shop",
            "shop",
            "http",
            json!({ADOPT_ANNOTATION: "shop"}),
        )
        .await;
        let budget: PodDisruptionBudget = serde_json::from_value(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "shop", "annotations": {ADOPT_ANNOTATION: "shop"}},
            "spec": {"maxUnavailable": 2, "selector": {"matchLabels": {"app": "shop"}}}
        }))
        .expect("a PDB");
        let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
        budgets
            .patch("shop", &PatchParams::apply("team"), &Patch::Apply(&budget))
            .await
            .expect("apply the PDB");
        route_to_service(&client, &ns, "public", &host, "shop").await;
        wait_answered_by(&plane, &host, V1).await;
        let load = Load::start(&plane, &host, &[], default_rate());

        // Two replicas asked for: the takeover still starts four, the old Deployment's size.
        let spec = json!({"image": V2, "replicas": 2, "disruption": {"maxUnavailable": 1},
            "pod": {"terminationGracePeriodSeconds": GRACE_SECONDS},
            "migrateFrom": {"deployment": "shop"}});
        let api = apply_microservice(&client, &ns, "shop", spec).await;
        let old: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let switched = wait_phase(&api, "shop", MigrationPhase::ScalingDown).await;
        let slot = Api::<Deployment>::namespaced(client.clone(), &ns)
            .get("shop-blue")
            .await
            .expect("slot blue");
        assert_eq!(
            slot.spec.and_then(|s| s.replicas),
            Some(4),
            "the slot runs at the old size during the takeover"
        );
        assert_eq!(
            selector_of(&client, &ns, "shop").await,
            weir::build::labels::slot_selector("shop", weir::api::Slot::Blue),
            "the Service selects Weir's pods"
        );
        assert_eq!(
            switched.status.as_ref().and_then(|s| s.phase),
            Some(Phase::Progressing)
        );
        // Steps of at most 2 pods (the PDB's maxUnavailable), not all at once.
        let sizes = std::sync::Arc::new(std::sync::Mutex::new(vec![4]));
        let done = eventually(DEADLINE, "the takeover complete", || {
            let (old, api, sizes) = (old.clone(), api.clone(), sizes.clone());
            async move {
                if let Some(d) = old.get_opt("shop").await.ok().flatten() {
                    let n = d.spec.and_then(|s| s.replicas).unwrap_or(0);
                    let mut sizes = sizes.lock().unwrap();
                    if sizes.last() != Some(&n) {
                        sizes.push(n);
                    }
                }
                let ms = api.get_opt("shop").await.ok()??;
                (ms.status.as_ref()?.migration.as_ref()?.phase == MigrationPhase::Completed)
                    .then_some(ms)
            }
        })
        .await;
        let sizes = sizes.lock().unwrap().clone();
        assert!(sizes.len() > 2, "scaled down in steps: {sizes:?}");
        assert!(
            sizes.windows(2).all(|w| w[0] - w[1] <= 2),
            "each step at most the PDB's 2: {sizes:?}"
        );
        eventually(DEADLINE, "the old Deployment deleted", || async {
            old.get_opt("shop").await.ok()?.is_none().then_some(())
        })
        .await;
        eventually(
            DEADLINE,
            "the Service, the PDB and the slot at its own size, all Weir's",
            || async {
                let service = Api::<Service>::namespaced(client.clone(), &ns)
                    .get("shop")
                    .await
                    .ok()?;
                let pdb = budgets.get("shop").await.ok()?;
                let slot = Api::<Deployment>::namespaced(client.clone(), &ns)
                    .get("shop-blue")
                    .await
                    .ok()?;
                let own = owned_by(&service.metadata, &done) && owned_by(&pdb.metadata, &done);
                let replicas = slot.spec?.replicas;
                (own && pdb.spec?.max_unavailable
                    == Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
                    && replicas == Some(2))
                .then_some(())
            },
        )
        .await;
        let taken_over = Instant::now();

        let (ok, out) = kubectl_weir(&["eject", "shop", "-n", &ns]).await;
        assert!(ok, "eject: {out}");
        assert!(out.contains("Deployment shop-blue"), "{out}");
        assert!(
            api.get_opt("shop").await.expect("read").is_none(),
            "the Microservice is gone"
        );
        // Past the garbage collector's orphaning: everything that served still does, unowned.
        load.next_after(Instant::now() + Duration::from_secs(3), 400)
            .await;
        let slot = Api::<Deployment>::namespaced(client.clone(), &ns)
            .get("shop-blue")
            .await
            .expect("slot kept");
        let service = Api::<Service>::namespaced(client.clone(), &ns)
            .get("shop")
            .await
            .expect("Service kept");
        let pdb = budgets.get("shop").await.expect("PDB kept");
        for (kind, meta) in [
            ("Deployment", &slot.metadata),
            ("Service", &service.metadata),
            ("PDB", &pdb.metadata),
        ] {
            assert!(
                meta.owner_references.as_ref().is_none_or(Vec::is_empty),
                "{kind} unowned"
            );
            assert!(
                !meta
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("app.kubernetes.io/managed-by")),
                "{kind} without Weir's labels"
            );
        }
        assert_eq!(
            slot.status.and_then(|s| s.ready_replicas),
            Some(2),
            "the pods run on"
        );

        let samples = load.stop().await;
        assert_none_failed(&samples, "across the takeover and the eject");
        let after = between(&samples, taken_over, Instant::now());
        assert_eq!(
            share_percent(&after, V2),
            100.0,
            "after the takeover every answer comes from Weir's pods"
        );
        assert!(
            share_percent(&samples, V1) > 0.0,
            "the old Deployment served first"
        );
    })
    .await;
}

/// Marks every pod of `selector` unready, as a kubelet would when its readiness probe fails.
async fn make_unready(pods: &Api<Pod>, selector: &str) {
    for pod in pods
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
    {
        let mut status = pod.status.clone().unwrap_or_default();
        for c in status.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                c.status = "False".into();
            }
        }
        for c in status.container_statuses.iter_mut().flatten() {
            c.ready = false;
        }
        let patch = json!({"status": {"conditions": status.conditions, "containerStatuses": status.container_statuses}});
        pods.patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .expect("mark the pod unready");
    }
}

#[tokio::test]
async fn a_takeover_waits_for_consent_and_a_failing_slot_puts_the_old_deployment_back() {
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        let _operator = support::operator::Operator::start(&ns, "shop-0", &[]).await;
        running_service(&client, &ns, "legacy", "legacy-shop", 2, V1).await;
        service(&client, &ns, "shop", "legacy-shop", "web", json!({})).await;
        let old_selector = BTreeMap::from([("app".to_string(), "legacy-shop".to_string())]);
        let spec = json!({"replicas": 1, "migrateFrom": {"deployment": "legacy"},
            "pod": {"annotations": {"test.weir.dev/ready": "false"}}});
        let api = apply_microservice(&client, &ns, "shop", spec).await;

        // No consent on the Service: today's name conflict, and nothing of the old service moves.
        eventually(DEADLINE, "a name conflict reported", || async {
            let ms = api.get_opt("shop").await.ok()??;
            let ready = ms
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (ready.reason == "NameConflict").then_some(())
        })
        .await;
        assert_eq!(selector_of(&client, &ns, "shop").await, old_selector);

        let consent = json!({"metadata": {"annotations": {ADOPT_ANNOTATION: "shop"}}});
        let services: Api<Service> = Api::namespaced(client.clone(), &ns);
        services
            .patch("shop", &PatchParams::default(), &Patch::Merge(&consent))
            .await
            .expect("consent");
        // A port named otherwise than the spec names it: renaming it under traffic would
        // fail requests while gateways catch up, so the switch waits for the team.
        eventually(DEADLINE, "the port difference reported", || async {
            let ms = api.get_opt("shop").await.ok()??;
            let message = ms.status?.migration?.message;
            message
                .contains("[web 80/TCP to 8080], the spec's [http 80/TCP to 8080]")
                .then_some(())
        })
        .await;
        service(
            &client,
            &ns,
            "shop",
            "legacy-shop",
            "http",
            json!({ADOPT_ANNOTATION: "shop"}),
        )
        .await;
        let waiting = wait_phase(&api, "shop", MigrationPhase::WaitingForPods).await;
        let migration = waiting
            .status
            .as_ref()
            .and_then(|s| s.migration.clone())
            .expect("recorded");
        assert_eq!(
            (
                migration.original_replicas,
                migration.original_selector.clone()
            ),
            (2, old_selector.clone())
        );
        let slots: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        eventually(DEADLINE, "slot blue raised to the old size", || async {
            let d = slots.get_opt("shop-blue").await.ok()??;
            (d.spec?.replicas == Some(2)).then_some(())
        })
        .await;
        assert_eq!(
            selector_of(&client, &ns, "shop").await,
            old_selector,
            "unready pods get no traffic"
        );

        // Ready: the switch. Then unready: back to the old pods, at their old size.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let weirs = "app.kubernetes.io/instance=shop";
        let ready = support::release::LateReadiness::start(pods.clone(), weirs, Duration::ZERO);
        wait_phase(&api, "shop", MigrationPhase::ScalingDown).await;
        drop(ready);
        assert_ne!(selector_of(&client, &ns, "shop").await, old_selector);
        make_unready(&pods, weirs).await;
        let back = wait_phase(&api, "shop", MigrationPhase::RolledBack).await;
        assert_eq!(
            selector_of(&client, &ns, "shop").await,
            old_selector,
            "the Service selects the old pods again"
        );
        wait_deployment_ready(&client, &ns, "legacy", 2).await;
        let status = back.status.expect("a status");
        assert_eq!(status.phase, Some(Phase::Degraded));
        assert!(
            status
                .message
                .unwrap_or_default()
                .contains("no longer ready")
        );

        // A retry starts over; an abort before the switch leaves everything as it was.
        let (ok, out) = kubectl_weir(&["retry", "shop", "-n", &ns]).await;
        assert!(ok, "retry: {out}");
        wait_phase(&api, "shop", MigrationPhase::WaitingForPods).await;
        let (ok, out) = kubectl_weir(&["abort", "shop", "-n", &ns]).await;
        assert!(ok, "abort: {out}");
        wait_phase(&api, "shop", MigrationPhase::Aborted).await;
        assert_eq!(selector_of(&client, &ns, "shop").await, old_selector);
        let legacy = slots.get("legacy").await.expect("the old Deployment stays");
        assert_eq!(legacy.spec.and_then(|s| s.replicas), Some(2));
    })
    .await;
}
