//! The HTTPRoute Weir builds for a release is accepted by an API server that serves the
//! Gateway API (CRDs generated from the `gateway-api` crate's types: no download).

use crate::support;

use gateway_api::httproutes::{HttpRoute, HttpRouteParentRefs};
use kube::Api;
use kube::api::{Patch, PatchParams};
use support::in_temp_ns;
use weir::api::{Microservice, MicroserviceSpec, Slot};
use weir::build::traffic::{HeaderMatch, Split, http_route};

#[tokio::test]
async fn a_release_route_with_headers_weights_and_a_mirror_is_accepted() {
    let _cluster = support::shared().await;
    let client = support::client().await;
    support::gateway::install_crd(&client).await;

    in_temp_ns(|client, ns| async move {
        let mut ms = Microservice::new("checkout", MicroserviceSpec::default());
        ms.metadata.namespace = Some(ns.clone());
        ms.metadata.uid = Some("00000000-0000-0000-0000-000000000001".into());
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
        let parents = [HttpRouteParentRefs {
            name: "public".into(),
            namespace: Some("gateways".into()),
            ..Default::default()
        }];
        let route = http_route(&ms, &parents, &["shop.example".into()], 80, &split);
        let routes: Api<HttpRoute> = Api::namespaced(client, &ns);
        let params = PatchParams::apply("weir").dry_run();
        let accepted = routes
            .patch("checkout", &params, &Patch::Apply(&route))
            .await
            .expect("the API server accepts the route");
        let rules = accepted.spec.rules.expect("rules");
        assert_eq!(rules.len(), 2, "a header rule and the weighted rule");
        let weights: Vec<_> = rules[1]
            .backend_refs
            .iter()
            .flatten()
            .map(|b| b.weight)
            .collect();
        assert_eq!(weights, vec![Some(90), Some(10)]);
    })
    .await;
}

#[tokio::test]
async fn a_route_of_spec_rules_with_matches_filters_and_timeouts_is_accepted() {
    let _cluster = support::shared().await;
    let client = support::client().await;
    support::gateway::install_crd(&client).await;

    in_temp_ns(|client, ns| async move {
        let mut ms: Microservice = serde_json::from_value(serde_json::json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "checkout", "namespace": ns,
                         "uid": "00000000-0000-0000-0000-000000000002"},
            "spec": {"image": "a:1", "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}],
                "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {
                    "parentRefs": [{"name": "public", "namespace": "gateways"}],
                    "hostnames": ["shop.example"],
                    "port": "http",
                    "rules": [
                        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/checkout"}}],
                         "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                                        "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}},
                                     {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                                        "set": [{"name": "x-served-by", "value": "weir"}]}}],
                         "timeouts": {"request": "10s", "backendRequest": "5s"}},
                        {"matches": [{"headers": [{"name": "x-legacy", "value": "1"}],
                                      "queryParams": [{"name": "v", "value": "2"}]},
                                     {"path": {"type": "Exact", "value": "/checkout"}, "method": "POST"}]}
                    ]}}}}
        }))
        .expect("a Microservice");
        ms.metadata.namespace = Some(ns.clone());
        let split = Split {
            stable: Slot::Blue,
            candidate: Slot::Green,
            weight: 30,
            header_route: vec![HeaderMatch {
                name: "x-user-group".into(),
                value: Some("beta".into()),
                regex: None,
            }],
            mirror_percent: 10,
        };
        let route = weir::build::traffic::route(&ms, &split);
        let routes: Api<HttpRoute> = Api::namespaced(client, &ns);
        let params = PatchParams::apply("weir").dry_run();
        let accepted = routes
            .patch("checkout", &params, &Patch::Apply(&route))
            .await
            .expect("the API server accepts the route");
        let rules = accepted.spec.rules.expect("rules");
        assert_eq!(rules.len(), 4, "per spec rule: a header rule and a weighted rule");
        let ports: Vec<_> = rules.iter().flat_map(|r| r.backend_refs.iter().flatten()).map(|b| b.port).collect();
        assert!(ports.iter().all(|p| *p == Some(8080)), "{ports:?}");
        assert_eq!(rules[2].matches.as_ref().unwrap().len(), 2, "each spec match, with the header");
        assert_eq!(rules[1].timeouts.as_ref().and_then(|t| t.request.clone()).as_deref(), Some("10s"));
        assert_eq!(rules[1].filters.as_ref().unwrap().len(), 3, "rewrite, header, mirror");
    })
    .await;
}
