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
