//! The GRPCRoute a release moves traffic with when `gatewayAPI.kind` is `GRPCRoute`: the
//! same split as the HTTPRoute (a header rule, then the weighted rule over the two slot
//! Services, with the mirror filter while mirroring), inside each of the spec's `grpcRules`.

use gateway_api::grpcroutes::{
    GrpcRoute, GrpcRouteParentRefs, GrpcRouteRules, GrpcRouteRulesBackendRefs,
    GrpcRouteRulesFilters, GrpcRouteRulesFiltersRequestMirror,
    GrpcRouteRulesFiltersRequestMirrorBackendRef, GrpcRouteRulesFiltersType, GrpcRouteRulesMatches,
    GrpcRouteRulesMatchesHeaders, GrpcRouteRulesMatchesHeadersType, GrpcRouteSpec,
};

use super::traffic::{Split, routed_port, slot_service_name, split_rules};
use super::{non_empty, object_meta};
use crate::api::{GrpcRouteRule, HeaderMatch, Microservice, Slot};

/// GRPCRoute `<name>` as the spec's Gateway API settings and `split` ask for.
pub fn route(ms: &Microservice, split: &Split) -> GrpcRoute {
    let gateway = ms.spec.gateway_api().cloned().unwrap_or_default();
    let parents: Vec<GrpcRouteParentRefs> = gateway
        .parent_refs
        .into_iter()
        .map(|p| GrpcRouteParentRefs {
            group: p.group,
            kind: p.kind,
            name: p.name,
            namespace: p.namespace,
            section_name: p.section_name,
            port: p.port,
        })
        .collect();
    grpc_route(ms, &parents, &gateway.hostnames, routed_port(ms), split)
}

/// GRPCRoute `<name>` for `split`, on Service port `port`.
pub fn grpc_route(
    ms: &Microservice,
    parent_refs: &[GrpcRouteParentRefs],
    hostnames: &[String],
    port: i32,
    split: &Split,
) -> GrpcRoute {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let backend = |slot: Slot, weight: i32| GrpcRouteRulesBackendRefs {
        kind: Some("Service".into()),
        name: slot_service_name(name, slot),
        port: Some(port),
        weight: Some(weight),
        ..Default::default()
    };
    let spec_rules = ms
        .spec
        .gateway_api()
        .map(|g| g.grpc_rules.clone())
        .filter(|rules| !rules.is_empty())
        .unwrap_or_else(|| vec![GrpcRouteRule::default()]);
    let mut rules = Vec::new();
    for rule in &spec_rules {
        for planned in split_rules(split) {
            let mut filters = rule.filters.clone();
            if planned.mirror {
                filters.push(mirror(name, port, split));
            }
            rules.push(GrpcRouteRules {
                matches: match planned.header_route {
                    true => Some(with_headers(&rule.matches, &split.header_route)),
                    false => non_empty(rule.matches.clone()),
                },
                backend_refs: Some(
                    planned
                        .backends
                        .iter()
                        .map(|(s, w)| backend(*s, *w))
                        .collect(),
                ),
                filters: non_empty(filters),
                ..Default::default()
            });
        }
    }
    GrpcRoute {
        metadata: object_meta(ms, name),
        spec: GrpcRouteSpec {
            parent_refs: Some(parent_refs.to_vec()),
            hostnames: non_empty(hostnames.to_vec()),
            rules: Some(rules),
        },
        status: None,
    }
}

/// `matches` with the header route's headers added to each; the headers alone when none.
fn with_headers(
    matches: &[GrpcRouteRulesMatches],
    headers: &[HeaderMatch],
) -> Vec<GrpcRouteRulesMatches> {
    let headers: Vec<_> = headers
        .iter()
        .map(|h| {
            let (kind, value) = match &h.regex {
                Some(regex) => (
                    GrpcRouteRulesMatchesHeadersType::RegularExpression,
                    regex.clone(),
                ),
                None => (
                    GrpcRouteRulesMatchesHeadersType::Exact,
                    h.value.clone().unwrap_or_default(),
                ),
            };
            GrpcRouteRulesMatchesHeaders {
                name: h.name.clone(),
                r#type: Some(kind),
                value,
            }
        })
        .collect();
    let base = if matches.is_empty() {
        vec![GrpcRouteRulesMatches::default()]
    } else {
        matches.to_vec()
    };
    base.into_iter()
        .map(|mut m| {
            m.headers
                .get_or_insert_with(Vec::new)
                .extend(headers.iter().cloned());
            m
        })
        .collect()
}

fn mirror(name: &str, port: i32, split: &Split) -> GrpcRouteRulesFilters {
    GrpcRouteRulesFilters {
        r#type: GrpcRouteRulesFiltersType::RequestMirror,
        request_mirror: Some(GrpcRouteRulesFiltersRequestMirror {
            backend_ref: GrpcRouteRulesFiltersRequestMirrorBackendRef {
                kind: Some("Service".into()),
                name: slot_service_name(name, split.candidate),
                port: Some(port),
                ..Default::default()
            },
            percent: Some(split.mirror_percent),
            fraction: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ms(gateway: Value) -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "pay", "namespace": "shop", "uid": "u1"},
            "spec": {"image": "x:1", "ports": [{"name": "grpc", "port": 9000}],
                     "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": gateway}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_grpc_route_carries_the_split_inside_each_rule() {
        let ms = ms(
            json!({"kind": "GRPCRoute", "parentRefs": [{"name": "public"}],
            "grpcRules": [{"matches": [{"method": {"service": "shop.Payments"}}],
                           "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-team", "value": "pay"}]}}]}]}),
        );
        let split = Split {
            stable: Slot::Blue,
            candidate: Slot::Green,
            weight: 20,
            header_route: vec![HeaderMatch {
                name: "x-beta".into(),
                value: Some("yes".into()),
                regex: None,
            }],
            mirror_percent: 10,
        };
        let route = serde_json::to_value(route(&ms, &split)).unwrap();
        let rules = &route["spec"]["rules"];
        assert_eq!(
            rules.as_array().unwrap().len(),
            2,
            "a header rule, then the weighted rule"
        );
        assert_eq!(
            rules[0]["matches"],
            json!([{"method": {"service": "shop.Payments"}, "headers": [{"name": "x-beta", "type": "Exact", "value": "yes"}]}])
        );
        assert_eq!(
            rules[0]["backendRefs"],
            json!([{"kind": "Service", "name": "pay-green", "port": 9000, "weight": 1}])
        );
        assert_eq!(
            rules[1]["backendRefs"],
            json!([{"kind": "Service", "name": "pay-blue", "port": 9000, "weight": 80},
                   {"kind": "Service", "name": "pay-green", "port": 9000, "weight": 20}])
        );
        assert_eq!(rules[1]["filters"][0]["type"], "RequestHeaderModifier");
        assert_eq!(rules[1]["filters"][1]["requestMirror"]["percent"], 10);
        assert_eq!(route["spec"]["parentRefs"], json!([{"name": "public"}]));
    }
}
