//! The local cluster's Gateway API data plane (hack/cluster-up.sh): the upstream
//! standard-channel CRDs Traefik is built against take the HTTPRoute Weir builds field for
//! field, Gateway weir-local is programmed by Traefik on the recorded port, and requests
//! through it reach the pods' own answers.

use crate::support;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use std::collections::BTreeMap;
use std::time::Duration;

use gateway_api::httproutes::{HttpRoute, HttpRouteParentRefs};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams, ValidationDirective};
use serde_json::{Value, json};
use support::dataplane::{
    BUNDLE_VERSION_ANNOTATION, CONTROLLER_NAME, GATEWAY_NAME, GATEWAY_NAMESPACE, data_plane,
    ports_env,
};
use support::{eventually, wait_for, with_temp_ns};
use weir::api::{Microservice, MicroserviceSpec, Slot};
use weir::build::traffic::{HeaderMatch, Split, http_route};

/// The Gateway API version of hack/versions.env: the CRDs cluster-up installs.
fn gateway_api_version() -> &'static str {
    include_str!("../../hack/versions.env")
        .lines()
        .find_map(|l| l.strip_prefix("GATEWAY_API_VERSION="))
        .expect("hack/versions.env sets GATEWAY_API_VERSION")
}

/// Paths under `sent` whose value does not come back unchanged in `returned` (values the
/// API server only adds, its defaults, are fine).
pub fn changed_fields(sent: &Value, returned: &Value, path: &str) -> Vec<String> {
    match (sent, returned) {
        (Value::Object(sent), Value::Object(returned)) => sent
            .iter()
            .flat_map(|(key, value)| match returned.get(key) {
                Some(back) => changed_fields(value, back, &format!("{path}.{key}")),
                None => vec![format!("{path}.{key}")],
            })
            .collect(),
        (Value::Array(sent), Value::Array(returned)) if sent.len() == returned.len() => sent
            .iter()
            .zip(returned)
            .enumerate()
            .flat_map(|(i, (value, back))| changed_fields(value, back, &format!("{path}[{i}]")))
            .collect(),
        _ if sent == returned => vec![],
        _ => vec![path.to_string()],
    }
}

#[tokio::test]
async fn the_release_route_fits_the_upstream_httproute_crd_field_for_field() {
    let _cluster = support::shared().await;
    let client = support::client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .get("httproutes.gateway.networking.k8s.io")
        .await
        .expect("the HTTPRoute CRD (hack/cluster-up.sh installs it)");
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert_eq!(
        (
            annotations
                .get(BUNDLE_VERSION_ANNOTATION)
                .map(String::as_str),
            annotations
                .get("gateway.networking.k8s.io/channel")
                .map(String::as_str),
        ),
        (Some(gateway_api_version()), Some("standard")),
        "the cluster serves the upstream standard-channel CRDs of hack/versions.env"
    );

    with_temp_ns(|client, ns| async move {
        let mut ms = Microservice::new("checkout", MicroserviceSpec::default());
        ms.metadata.namespace = Some(ns.clone());
        ms.metadata.uid = Some("00000000-0000-0000-0000-000000000001".into());
        // Every kind of field Weir writes: both header match types, weights, the mirror
        // filter, hostnames, and parents of both kinds.
        let split = Split {
            stable: Slot::Blue,
            candidate: Slot::Green,
            weight: 10,
            header_route: vec![
                HeaderMatch {
                    name: "x-user-group".into(),
                    value: Some("beta".into()),
                    regex: None,
                },
                HeaderMatch {
                    name: "x-canary".into(),
                    value: None,
                    regex: Some("^(yes|true)$".into()),
                },
            ],
            mirror_percent: 50,
        };
        let parents: Vec<HttpRouteParentRefs> = serde_json::from_value(json!([
            {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE, "sectionName": "http"},
            {"group": "", "kind": "Service", "name": "checkout"},
        ]))
        .expect("parent references");
        let route = http_route(&ms, &parents, &["shop.example".into()], 80, &split);
        let sent = serde_json::to_value(&route).expect("the route serializes");
        let routes: Api<HttpRoute> = Api::namespaced(client, &ns);
        // Strict: a field the CRD does not know is an error, not silently dropped.
        let params = PatchParams::apply("weir")
            .dry_run()
            .validation(ValidationDirective::Strict);
        let accepted = routes
            .patch("checkout", &params, &Patch::Apply(&route))
            .await
            .expect("the upstream CRD accepts the route under strict field validation");
        let returned = serde_json::to_value(&accepted).expect("the route serializes");
        assert_eq!(
            changed_fields(&sent["spec"], &returned["spec"], "spec"),
            Vec::<String>::new(),
            "every field Weir sends comes back as sent"
        );
    })
    .await;
}

#[tokio::test]
async fn gateway_weir_local_is_programmed_by_traefik_on_the_recorded_port() {
    let _cluster = support::shared().await;
    let client = support::client().await;
    let class: Api<GatewayClass> = Api::all(client.clone());
    let class = class
        .get(GATEWAY_NAME)
        .await
        .expect("GatewayClass weir-local");
    assert_eq!(class.spec.controller_name, CONTROLLER_NAME);
    let accepted = |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
                    kind: &str| {
        conditions
            .iter()
            .any(|c| c.type_ == kind && c.status == "True")
    };
    let class_conditions = class.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        accepted(&class_conditions, "Accepted"),
        "Traefik accepted the GatewayClass: {class_conditions:?}"
    );

    let gateways: Api<Gateway> = Api::namespaced(client, GATEWAY_NAMESPACE);
    let gateway = gateways
        .get(GATEWAY_NAME)
        .await
        .expect("Gateway weir-local");
    let conditions = gateway
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for kind in ["Accepted", "Programmed"] {
        assert!(
            accepted(&conditions, kind),
            "Gateway {kind}: {conditions:?}"
        );
    }
    let port = ports_env()
        .get("GATEWAY_PORT")
        .expect("ports.env records GATEWAY_PORT")
        .parse::<i32>()
        .expect("GATEWAY_PORT is a port");
    let listener_ports: Vec<i32> = gateway.spec.listeners.iter().map(|l| l.port).collect();
    assert_eq!(
        listener_ports,
        [port],
        "the listener answers on GATEWAY_PORT"
    );
}

/// Traefik's Accepted and ResolvedRefs, both True at the route's generation.
fn resolved_by_traefik(route: Option<&HttpRoute>) -> bool {
    let Some(route) = route else { return false };
    let parents = route.status.as_ref().map_or(&[][..], |s| &s.parents[..]);
    parents.iter().any(|p| {
        p.controller_name == CONTROLLER_NAME
            && ["Accepted", "ResolvedRefs"].iter().all(|kind| {
                p.conditions.iter().any(|c| {
                    c.type_ == *kind
                        && c.status == "True"
                        && c.observed_generation == route.metadata.generation
                })
            })
    })
}

#[tokio::test]
async fn requests_through_the_gateway_are_answered_by_each_pod() {
    let Some(plane) =
        data_plane("dataplane::requests_through_the_gateway_are_answered_by_each_pod").await
    else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        let host = format!("{ns}.local");
        let apply = PatchParams::apply("weir-tests");
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "echo"}},
                "template": {
                    "metadata": {"labels": {"app": "echo", "weir.dev/slot": "blue"}},
                    "spec": {"containers": [{"name": "app", "image": "echo:1",
                        "ports": [{"name": "http", "containerPort": 8080}]}]},
                },
            },
        }))
        .unwrap();
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }))
        .unwrap();
        let route: HttpRoute = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "echo"},
            "spec": {
                "parentRefs": [{"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
                "hostnames": [host],
                "rules": [{"backendRefs": [{"name": "echo", "port": 80}]}],
            },
        }))
        .unwrap();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let services: Api<Service> = Api::namespaced(client.clone(), &ns);
        let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &ns);
        deployments
            .patch("echo", &apply, &Patch::Apply(&deployment))
            .await
            .unwrap();
        services
            .patch("echo", &apply, &Patch::Apply(&service))
            .await
            .unwrap();
        routes
            .patch("echo", &apply, &Patch::Apply(&route))
            .await
            .unwrap();
        let deadline = Duration::from_secs(60);
        wait_for(
            deployments,
            "echo",
            deadline,
            "2 ready pods",
            |d: Option<&Deployment>| {
                d.and_then(|d| d.status.as_ref())
                    .is_some_and(|s| s.ready_replicas == Some(2))
            },
        )
        .await;
        let what = "Traefik's Accepted and ResolvedRefs on the route";
        wait_for(routes, "echo", deadline, what, resolved_by_traefik).await;

        // Traefik applies a route within its reload throttle: the first answers may be 404s.
        let http = reqwest::Client::new();
        let get = || http.get(plane.gateway_url()).header("host", &host).send();
        eventually(deadline, "an answer through the Gateway", || async {
            get().await.ok().filter(|r| r.status() == 200)
        })
        .await;
        // Traefik may still be loading the second endpoint after the first answer: ask until
        // both pods have answered (at least 40 requests), every answer a 200.
        let mut answers: BTreeMap<(u16, String), usize> = BTreeMap::new();
        let give_up = std::time::Instant::now() + deadline;
        let mut sent = 0;
        while sent < 40 || (answers.len() < 2 && std::time::Instant::now() < give_up) {
            sent += 1;
            let response = get().await.expect("the Gateway answers");
            let status = response.status().as_u16();
            let pod = response
                .headers()
                .get("x-pod")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap_or_default();
            assert_eq!(
                body["pod"].as_str(),
                pod.as_deref(),
                "the body and the header agree"
            );
            assert_eq!(
                (&body["slot"], &body["image"]),
                (&json!("blue"), &json!("echo:1"))
            );
            *answers
                .entry((status, pod.unwrap_or_default()))
                .or_default() += 1;
        }
        let statuses: Vec<u16> = answers.keys().map(|(status, _)| *status).collect();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "every answer is a 200: {answers:?}"
        );
        assert_eq!(answers.len(), 2, "both pods answer: {answers:?}");
    })
    .await;
}
