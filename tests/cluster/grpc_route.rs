//! `gatewayAPI.kind: GRPCRoute`: the GRPCRoute Weir writes fits the upstream CRD field for
//! field, and a canary moves through it on the real data plane with the same release as an
//! HTTPRoute: each weight counted only once Traefik accepted the route and resolved its
//! backends, the header route and the promotion.

use crate::support;
use crate::traffic::{GRACE_SECONDS, V2};

use gateway_api::grpcroutes::GrpcRoute;
use kube::Api;
use kube::api::{Patch, PatchParams, ValidationDirective};
use serde_json::{Value, json};
use support::dataplane::data_plane;
use support::release::{Harness, SCALE_DOWN_DELAY};
use support::traffic::{test_host, through_local_gateway};
use support::with_temp_ns;
use weir::api::{Microservice, Slot};
use weir::build::traffic::{HeaderMatch, Split};

fn grpc_microservice(ns: &str) -> Microservice {
    let mut ms = support::microservice::microservice(
        "pay",
        json!({"rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {
            "kind": "GRPCRoute",
            "parentRefs": [{"name": "public"}, {"group": "", "kind": "Service", "name": "pay"}],
            "hostnames": ["pay.example"],
            "grpcRules": [{
                "matches": [{"method": {"service": "shop.Payments", "method": "Charge"},
                             "headers": [{"name": "x-tenant", "value": "a"}]}],
                "filters": [{"type": "RequestHeaderModifier",
                             "requestHeaderModifier": {"set": [{"name": "x-via", "value": "weir"}]}}]
            }]
        }}}}),
    );
    ms.metadata.namespace = Some(ns.to_string());
    ms.metadata.uid = Some("00000000-0000-0000-0000-000000000002".into());
    ms
}

#[tokio::test]
async fn the_release_grpc_route_fits_the_upstream_crd_field_for_field() {
    let _cluster = support::shared().await;
    with_temp_ns(|client, ns| async move {
        assert!(
            support::dataplane::upstream_crds_installed(&client).await,
            "cluster-up installs the upstream Gateway API CRDs"
        );
        let ms = grpc_microservice(&ns);
        let split = Split {
            stable: Slot::Blue,
            candidate: Slot::Green,
            weight: 10,
            header_route: vec![HeaderMatch {
                name: "x-user-group".into(),
                value: Some("beta".into()),
                regex: None,
            }],
            mirror_percent: 50,
        };
        let route = weir::build::grpc_route::route(&ms, &split);
        let sent = serde_json::to_value(&route).expect("the route serializes");
        let routes: Api<GrpcRoute> = Api::namespaced(client, &ns);
        let params = PatchParams::apply("weir")
            .dry_run()
            .validation(ValidationDirective::Strict);
        let accepted = routes
            .patch("pay", &params, &Patch::Apply(&route))
            .await
            .expect("the upstream CRD accepts the GRPCRoute under strict field validation");
        let returned = serde_json::to_value(&accepted).expect("the route serializes");
        assert_eq!(
            crate::dataplane::changed_fields(&sent["spec"], &returned["spec"], "spec"),
            Vec::<String>::new(),
            "every field Weir sends comes back as sent"
        );
    })
    .await;
}

/// The weights of the live GRPCRoute's last rule (the weighted one), by backend.
fn weights(route: &GrpcRoute) -> Vec<(String, i32)> {
    let rules = route.spec.rules.clone().unwrap_or_default();
    let weighted = rules
        .last()
        .and_then(|r| r.backend_refs.clone())
        .unwrap_or_default();
    weighted
        .into_iter()
        .map(|b| (b.name, b.weight.unwrap_or(1)))
        .collect()
}

#[tokio::test]
async fn a_canary_moves_through_a_grpc_route_accepted_by_the_gateway() {
    let test = "grpc_route::a_canary_moves_through_a_grpc_route_accepted_by_the_gateway";
    let Some(_plane) = data_plane(test).await else {
        return;
    };
    with_temp_ns(|client, ns| async move {
        // examples/grpc.yaml, through the local Gateway for this test's host, with steps that
        // wait for the test rather than the clock.
        let host = test_host(&ns);
        let (_, mut spec) = crate::examples::example("grpc.yaml");
        let local = through_local_gateway(&host);
        let gateway = &mut spec["rollout"]["traffic"]["gatewayAPI"];
        gateway["parentRefs"] = local["gatewayAPI"]["parentRefs"].clone();
        gateway["hostnames"] = local["gatewayAPI"]["hostnames"].clone();
        assert_eq!(gateway["kind"], "GRPCRoute");
        spec["image"] = crate::traffic::V1.into();
        spec["pod"] = json!({"terminationGracePeriodSeconds": GRACE_SECONDS});
        spec["rollout"]["canary"] = json!({"scaleDownDelaySeconds": SCALE_DOWN_DELAY, "steps": [
            {"setHeaderRoute": {"match": [{"name": "x-beta", "value": "yes"}]}},
            {"setWeight": 30}, {"pause": {}}]});
        let h = Harness::start_on_data_plane(&client, &ns, "payments", spec, &[]).await;
        let routes: Api<GrpcRoute> = Api::namespaced(client.clone(), &ns);
        let stable = h.status().await.stable_revision.expect("stable");
        h.set_image(V2).await;
        h.wait_release(&[&stable]).await;
        // Paused after the weight: both steps were verified through Traefik's status.
        h.wait_paused_at(2).await;
        let route = routes.get("payments").await.expect("GRPCRoute payments");
        assert_eq!(
            weights(&route),
            [
                ("payments-blue".to_string(), 70),
                ("payments-green".to_string(), 30)
            ]
        );
        let status = serde_json::to_value(&route.status).expect("json");
        let parents = status["parents"].as_array().cloned().unwrap_or_default();
        let traefik = parents
            .iter()
            .find(|p| p["controllerName"] == support::dataplane::CONTROLLER_NAME)
            .unwrap_or_else(|| panic!("Traefik reports on the GRPCRoute: {status}"));
        for kind in ["Accepted", "ResolvedRefs"] {
            let condition = traefik["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == kind).cloned())
                .unwrap_or(Value::Null);
            assert_eq!(condition["status"], "True", "{kind}: {traefik}");
        }
        let http: Api<gateway_api::httproutes::HttpRoute> = Api::namespaced(client.clone(), &ns);
        assert!(
            http.get_opt("payments").await.expect("read").is_none(),
            "no HTTPRoute besides"
        );

        h.act("promote").await;
        let promoted = h
            .wait("Healthy on the new revision", |ms| {
                ms.status.as_ref().is_some_and(|s| {
                    s.release.is_none()
                        && s.stable_revision.as_deref() != Some(stable.as_str())
                        && s.phase == Some(weir::api::Phase::Healthy)
                })
            })
            .await;
        let active = promoted
            .status
            .and_then(|s| s.active_slot)
            .expect("an active slot");
        let route = routes.get("payments").await.expect("GRPCRoute payments");
        let everything: Vec<_> = weights(&route)
            .into_iter()
            .filter(|(_, w)| *w == 100)
            .collect();
        assert_eq!(everything, [(format!("payments-{}", active.as_str()), 100)]);
    })
    .await;
}
