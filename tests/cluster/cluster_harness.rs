//! Proves the local control plane is real: the scheduler, controllers, kwok's fake nodes and
//! the API server's validation all behave as on a real cluster.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::microservice::pod_is_ready;
use support::{
    eventually, in_temp_ns, install_crds, try_kubectl, wait_for, wait_for_all, with_temp_ns,
};

const DEADLINE: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32, pod_annotations: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": pod_annotations},
                "spec": {
                    "containers": [{"name": "app", "image": "registry.example/app:1", "ports": [{"containerPort": 8080}]}],
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"app": name}}
                    }]
                }
            }
        }
    }))
    .expect("valid deployment")
}

async fn create_ready_deployment(client: &Client, ns: &str, name: &str) -> Vec<Pod> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deployments
        .create(&PostParams::default(), &deployment(name, 3, json!({})))
        .await
        .expect("create deployment");
    wait_for(
        deployments,
        name,
        DEADLINE,
        "3/3 ready replicas",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.ready_replicas == Some(3))
        },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("app={name}");
    wait_for_all(pods, &selector, DEADLINE, "3 ready pods", |pods| {
        pods.len() == 3 && pods.iter().all(|p| pod_is_ready(p))
    })
    .await
    .into_iter()
    .map(|p| (*p).clone())
    .collect()
}

#[tokio::test]
async fn deployment_becomes_ready_with_pods_spread_over_fake_nodes() {
    with_temp_ns(|client, ns| async move {
        let pods = create_ready_deployment(&client, &ns, "spread").await;
        let nodes: BTreeSet<_> = pods
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        assert_eq!(nodes.len(), 3, "pods should land on 3 nodes, got {nodes:?}");
        for pod in &pods {
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
            assert!(ip.is_some(), "pod {} has no IP", pod.name_any());
        }
    })
    .await;
}

#[tokio::test]
async fn service_gets_an_endpoint_slice_with_three_ready_endpoints() {
    with_temp_ns(|client, ns| async move {
        create_ready_deployment(&client, &ns, "web").await;
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }))
        .unwrap();
        Api::<Service>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &service)
            .await
            .expect("create service");
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
        wait_for_all(
            slices,
            "kubernetes.io/service-name=web",
            DEADLINE,
            "an EndpointSlice with 3 ready endpoints",
            |slices| {
                let ready = slices
                    .iter()
                    .flat_map(|s| s.endpoints.iter().flatten())
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                    .count();
                ready == 3
            },
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_deleted_pod_is_replaced() {
    with_temp_ns(|client, ns| async move {
        let pods = create_ready_deployment(&client, &ns, "heal").await;
        let victim = pods[0].clone();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        api.delete(&victim.name_any(), &DeleteParams::default().grace_period(0))
            .await
            .expect("delete pod");
        let victim_uid = victim.uid();
        wait_for_all(api, "app=heal", DEADLINE, "a replacement pod", |pods| {
            let ready: Vec<_> = pods.iter().filter(|p| pod_is_ready(p)).collect();
            ready.len() == 3 && ready.iter().all(|p| p.uid() != victim_uid)
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn pods_annotated_not_ready_run_but_never_become_ready() {
    with_temp_ns(|client, ns| async move {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let broken = deployment("broken", 2, json!({"test.weir.dev/ready": "false"}));
        deployments
            .create(&PostParams::default(), &broken)
            .await
            .expect("create deployment");
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let running = wait_for_all(pods, "app=broken", DEADLINE, "2 running pods", |pods| {
            pods.len() == 2
                && pods
                    .iter()
                    .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        })
        .await;
        assert!(
            running.iter().all(|p| !pod_is_ready(p)),
            "no pod may be Ready"
        );
        let status = deployments.get_status("broken").await.unwrap().status;
        assert_eq!(status.and_then(|s| s.ready_replicas).unwrap_or(0), 0);
    })
    .await;
}

#[tokio::test]
async fn the_crd_installs_and_kubectl_explain_prints_the_field_docs() {
    let _cluster = support::shared().await;
    let client = support::client().await;
    install_crds(&client).await;
    // The API server publishes a new CRD's OpenAPI a moment after it is established.
    let explained = eventually(DEADLINE, "kubectl explain to know the CRD", || async {
        let (ok, stdout, _) = try_kubectl(&["explain", "microservice.spec.image"]).await;
        ok.then_some(stdout)
    })
    .await;
    assert!(
        explained.contains("Container image to run"),
        "kubectl explain did not show the doc comment:\n{explained}"
    );
}

#[tokio::test]
async fn a_microservice_with_a_wrong_type_is_refused_by_the_api_server() {
    let _cluster = support::shared().await;
    let client = support::client().await;
    install_crds(&client).await;
    in_temp_ns(|client, ns| async move {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "weir.dev",
            "v1alpha1",
            "Microservice",
        ));
        let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
        let wrong: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1",
            "kind": "Microservice",
            "metadata": {"name": "wrong"},
            "spec": {"image": "registry.example/app:1", "replicas": "three"}
        }))
        .unwrap();
        let error = api
            .create(&PostParams::default(), &wrong)
            .await
            .expect_err("a string replicas must be refused");
        let message = error.to_string();
        assert!(
            message.contains("spec.replicas"),
            "unexpected refusal: {message}"
        );
    })
    .await;
}
