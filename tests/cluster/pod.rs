//! A complete pod on the real API server: init containers, a native sidecar, a container
//! beside the service's, scheduling and DNS settings, and the template patch, all in the
//! Deployment Weir writes, its pods running and ready, and status saying what the patch did.

use crate::support;

use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::release::Harness;
use support::with_temp_ns;
use weir::api::Slot;

/// A PriorityClass and a RuntimeClass named `name` (cluster-scoped), which the pod names.
async fn classes(client: &kube::Client, name: &str) {
    let params = PatchParams::apply("weir-tests").force();
    let priorities: Api<PriorityClass> = Api::all(client.clone());
    let priority: PriorityClass = serde_json::from_value(
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": 1000}),
    )
    .unwrap();
    priorities
        .patch(name, &params, &Patch::Apply(&priority))
        .await
        .unwrap();
    let runtimes: Api<RuntimeClass> = Api::all(client.clone());
    let runtime: RuntimeClass = serde_json::from_value(
        json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": name}, "handler": "runc"}),
    )
    .unwrap();
    runtimes
        .patch(name, &params, &Patch::Apply(&runtime))
        .await
        .unwrap();
}

fn complete_pod(classes: &str) -> Value {
    json!({"pod": {
        "initContainers": [
            {"name": "migrate", "image": "registry.example/migrate:1", "args": ["up"]},
            {"name": "proxy", "image": "registry.example/proxy:2", "restartPolicy": "Always"}
        ],
        "containers": [{"name": "agent", "image": "registry.example/agent:7"}],
        "imagePullPolicy": "IfNotPresent",
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "complete"}}}}]}},
        "topologySpreadConstraints": [{"maxSkew": 3, "topologyKey": "kubernetes.io/os",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
        "priorityClassName": classes,
        "runtimeClassName": classes,
        "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["legacy.internal"]}],
        "shareProcessNamespace": true,
        "automountServiceAccountToken": false,
        "templatePatch": {
            "metadata": {"annotations": {"sidecar.example/inject": "false"}},
            "spec": {"containers": [{"name": "complete", "env": [{"name": "GOMAXPROCS", "value": "2"}]}],
                     "enableServiceLinks": false}
        }
    }})
}

#[tokio::test]
async fn a_complete_pod_runs_with_every_field_and_the_patch_applied_last() {
    with_temp_ns(|client, ns| async move {
        let class = format!("{ns}-class");
        classes(&client, &class).await;
        let h = Harness::start(&client, &ns, "complete", complete_pod(&class)).await;
        h.wait_ready_pods(Slot::Blue, 3).await;

        let deployment = h.deployments().get(&h.slot(Slot::Blue)).await.unwrap();
        let template = serde_json::to_value(deployment.spec.unwrap().template).unwrap();
        let pod = &template["spec"];
        let init = &pod["initContainers"];
        assert_eq!((init[0]["name"].as_str(), init[1]["restartPolicy"].as_str()), (Some("migrate"), Some("Always")));
        assert_eq!(init[0]["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(init[1]["resources"]["requests"]["cpu"], "100m");
        assert_eq!(pod["containers"][1]["name"], "agent");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["containers"][0]["env"], json!([{"name": "GOMAXPROCS", "value": "2"}]));
        assert_eq!(pod["enableServiceLinks"], false);
        assert_eq!(template["metadata"]["annotations"]["sidecar.example/inject"], "false");
        assert_eq!(pod["priorityClassName"], class.as_str());
        assert_eq!(pod["runtimeClassName"], class.as_str());
        assert_eq!(pod["shareProcessNamespace"], true);
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["hostAliases"][0]["hostnames"][0], "legacy.internal");
        assert_eq!(pod["dnsConfig"]["options"][0]["value"], "2");
        assert_eq!(pod["topologySpreadConstraints"].as_array().unwrap().len(), 3);
        assert!(pod["affinity"]["podAntiAffinity"].is_object());

        let pods = h.pods().list(&Default::default()).await.unwrap();
        let running = pods.items.iter().filter(|p| {
            p.spec.as_ref().is_some_and(|s| s.priority == Some(1000) && s.init_containers.as_ref().is_some_and(|i| i.len() == 2))
        });
        assert_eq!(running.count(), 3, "the pods were admitted with the priority and both init containers");

        let status = h.status().await;
        assert_eq!(
            status.template_patch.as_deref(),
            Some("Applied to the pod template: metadata.annotations.sidecar.example/inject, spec.containers[complete].env[GOMAXPROCS].value, spec.enableServiceLinks.")
        );
        let priorities: Api<PriorityClass> = Api::all(client.clone());
        priorities.delete(&class, &DeleteParams::default()).await.unwrap();
        let runtimes: Api<RuntimeClass> = Api::all(client.clone());
        runtimes.delete(&class, &DeleteParams::default()).await.unwrap();
    })
    .await;
}
