//! Traffic between the two slots during a release: how many pods each slot needs for its
//! share, and the HTTPRoute that carries the split. Pure; the release machine decides the
//! weight (never more than the candidate's ready pods carry, `release::capacity_for`) and
//! the controller applies the route.

use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs,
    HttpRouteRulesFilters, HttpRouteRulesFiltersRequestMirror,
    HttpRouteRulesFiltersRequestMirrorBackendRef, HttpRouteRulesFiltersType, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeaders, HttpRouteRulesMatchesHeadersType, HttpRouteSpec,
};

use super::{non_empty, object_meta};
pub use crate::api::HeaderMatch;
use crate::api::{Microservice, RouteKind, RouteRule, Slot};

/// Where a release's traffic should go right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub stable: Slot,
    pub candidate: Slot,
    /// Percent of plain traffic to the candidate, 0 to 100.
    pub weight: i32,
    /// Requests matching these go to the candidate whatever the weight.
    pub header_route: Vec<HeaderMatch>,
    /// Percent of traffic copied to the candidate, its answers dropped; 0 for none.
    pub mirror_percent: i32,
}

/// Pods per slot for a total of `total`: the candidate gets `ceil(total × weight / 100)`
/// (or the mirror's share when larger; at least one while it gets any traffic, headers or a
/// mirror). With a router the release keeps the stable slot at full size; without one the
/// stable slot keeps
/// `ceil(total × (100 − weight) / 100)`, so neither is short of its share.
pub fn capacity(total: i32, split: &Split) -> (i32, i32) {
    let share = |percent: i32| ((i64::from(total) * i64::from(percent) + 99) / 100) as i32;
    let busy = split.weight > 0 || split.mirror_percent > 0 || !split.header_route.is_empty();
    // A mirror copies its share of requests: the candidate needs pods for that load too.
    let load = split.weight.max(split.mirror_percent);
    let candidate = if busy { share(load).max(1) } else { 0 };
    let stable = share(100 - split.weight);
    (stable, candidate)
}

/// Name of the Service that selects one slot's pods: `<name>-blue` or `<name>-green`.
pub fn slot_service_name(name: &str, slot: Slot) -> String {
    format!("{name}-{}", slot.as_str())
}

/// The Gateway API settings of the Microservice as the route's parents and hostnames.
fn route_parents(ms: &Microservice) -> (Vec<HttpRouteParentRefs>, Vec<String>) {
    let gateway = ms.spec.gateway_api().cloned().unwrap_or_default();
    let parents = gateway
        .parent_refs
        .into_iter()
        .map(|p| HttpRouteParentRefs {
            group: p.group,
            kind: p.kind,
            name: p.name,
            namespace: p.namespace,
            section_name: p.section_name,
            port: p.port,
        })
        .collect();
    (parents, gateway.hostnames)
}

/// HTTPRoute `<name>` as the spec's Gateway API settings and `split` ask for, on the port
/// `gatewayAPI.port` names (the first port by default).
pub fn route(ms: &Microservice, split: &Split) -> HttpRoute {
    let (parents, hostnames) = route_parents(ms);
    http_route(ms, &parents, &hostnames, routed_port(ms), split)
}

/// The kind of route the spec asks for.
pub fn route_kind(ms: &Microservice) -> RouteKind {
    ms.spec
        .gateway_api()
        .and_then(|g| g.kind)
        .unwrap_or_default()
}

/// The route of the spec's kind for `split`, as JSON (what verification compares).
pub fn route_json(ms: &Microservice, split: &Split) -> serde_json::Value {
    let route = match route_kind(ms) {
        RouteKind::HttpRoute => serde_json::to_value(route(ms, split)),
        RouteKind::GrpcRoute => serde_json::to_value(super::grpc_route::route(ms, split)),
    };
    route.unwrap_or_default()
}

/// The Service port the route sends traffic to: the one `gatewayAPI.port` names, else the
/// first (admission refuses a name that is not a port; such a spec stored earlier routes to
/// the first).
pub fn routed_port(ms: &Microservice) -> i32 {
    let named = ms.spec.gateway_api().and_then(|g| g.port.as_deref());
    let ports = &ms.spec.ports;
    named
        .and_then(|name| ports.iter().find(|p| p.name == name))
        .or(ports.first())
        .map_or(80, |p| p.port)
}

/// HTTPRoute `<name>`: for each of the spec's rules (one taking every request when it has
/// none), a header rule first (Gateway API prefers more specific matches), then the weighted
/// rule over the two slot Services, with a RequestMirror filter to the candidate while
/// mirroring; each keeps the spec rule's matches, filters and timeouts. `parent_refs` are
/// Gateways, or the Service itself for a mesh.
pub fn http_route(
    ms: &Microservice,
    parent_refs: &[HttpRouteParentRefs],
    hostnames: &[String],
    port: i32,
    split: &Split,
) -> HttpRoute {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let backend = |slot: Slot, weight: i32| HttpRouteRulesBackendRefs {
        kind: Some("Service".into()),
        name: slot_service_name(name, slot),
        port: Some(port),
        weight: Some(weight),
        ..Default::default()
    };
    let spec_rules = ms
        .spec
        .gateway_api()
        .map(|g| g.rules.clone())
        .filter(|rules| !rules.is_empty())
        .unwrap_or_else(|| vec![RouteRule::default()]);
    let mut rules = Vec::new();
    for rule in &spec_rules {
        for planned in split_rules(split) {
            let mut filters = rule.filters.clone();
            if planned.mirror {
                filters.push(mirror(name, port, split));
            }
            rules.push(HttpRouteRules {
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
                timeouts: rule.timeouts.clone(),
                ..Default::default()
            });
        }
    }
    HttpRoute {
        metadata: object_meta(ms, name),
        spec: HttpRouteSpec {
            parent_refs: Some(parent_refs.to_vec()),
            hostnames: non_empty(hostnames.to_vec()),
            rules: Some(rules),
        },
        status: None,
    }
}

/// One rule of the split, before it takes a route kind's types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitRule {
    /// The header rule: the spec rule's matches with the header route's headers.
    pub header_route: bool,
    pub backends: Vec<(Slot, i32)>,
    /// It carries the mirror filter.
    pub mirror: bool,
}

/// The rules of a split, inside each spec rule: a header rule first (Gateway API prefers
/// more specific matches) while the header route is on, then the weighted rule over the two
/// slot Services, with the mirror while mirroring. Backends are in slot order, so that a
/// promotion (the candidate becoming stable at 100) leaves the route unchanged.
pub fn split_rules(split: &Split) -> Vec<SplitRule> {
    let mut rules = Vec::new();
    if !split.header_route.is_empty() {
        rules.push(SplitRule {
            header_route: true,
            backends: vec![(split.candidate, 1)],
            mirror: false,
        });
    }
    let mut backends = vec![
        (split.stable, 100 - split.weight),
        (split.candidate, split.weight),
    ];
    backends.sort_by_key(|(slot, _)| slot.as_str());
    rules.push(SplitRule {
        header_route: false,
        backends,
        mirror: split.mirror_percent > 0,
    });
    rules
}

/// `matches` with the header route's headers added to each (a request must match both);
/// one match of the headers alone when the rule has none.
fn with_headers(
    matches: &[HttpRouteRulesMatches],
    headers: &[HeaderMatch],
) -> Vec<HttpRouteRulesMatches> {
    let headers: Vec<_> = headers.iter().map(header_match).collect();
    let base = if matches.is_empty() {
        vec![HttpRouteRulesMatches::default()]
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

/// A header the request must carry: an exact value, or a regular expression.
fn header_match(header: &HeaderMatch) -> HttpRouteRulesMatchesHeaders {
    let (kind, value) = match &header.regex {
        Some(regex) => (
            HttpRouteRulesMatchesHeadersType::RegularExpression,
            regex.clone(),
        ),
        None => (
            HttpRouteRulesMatchesHeadersType::Exact,
            header.value.clone().unwrap_or_default(),
        ),
    };
    HttpRouteRulesMatchesHeaders {
        name: header.name.clone(),
        r#type: Some(kind),
        value,
    }
}

/// The filter copying `split.mirror_percent` of the requests to the candidate's Service.
fn mirror(name: &str, port: i32, split: &Split) -> HttpRouteRulesFilters {
    HttpRouteRulesFilters {
        r#type: HttpRouteRulesFiltersType::RequestMirror,
        request_mirror: Some(HttpRouteRulesFiltersRequestMirror {
            backend_ref: HttpRouteRulesFiltersRequestMirrorBackendRef {
                kind: Some("Service".into()),
                name: slot_service_name(name, split.candidate),
                port: Some(port),
                ..Default::default()
            },
            percent: Some(split.mirror_percent),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::MicroserviceSpec;

    fn split(weight: i32) -> Split {
        Split {
            stable: Slot::Blue,
            candidate: Slot::Green,
            weight,
            header_route: vec![],
            mirror_percent: 0,
        }
    }

    #[test]
    fn capacity_follows_the_share_of_traffic() {
        assert_eq!(capacity(10, &split(0)), (10, 0));
        assert_eq!(capacity(10, &split(10)), (9, 1));
        assert_eq!(capacity(10, &split(25)), (8, 3));
        assert_eq!(capacity(3, &split(1)), (3, 1));
        assert_eq!(capacity(3, &split(50)), (2, 2));
        assert_eq!(capacity(4, &split(100)), (0, 4));
        let mirrored = Split {
            mirror_percent: 50,
            ..split(0)
        };
        assert_eq!(
            capacity(4, &mirrored),
            (4, 2),
            "a mirror needs pods for the copied share"
        );
    }

    #[test]
    fn each_spec_rule_keeps_its_matches_filters_and_timeouts_around_weir_s_split() {
        let ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"image": "a:1", "ports": [{"name": "http", "port": 8080}],
                "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {
                    "parentRefs": [{"name": "public"}],
                    "rules": [{
                        "matches": [{"path": {"type": "PathPrefix", "value": "/api/checkout"}}],
                        "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                            "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
                        "timeouts": {"request": "10s"}
                    }]}}}}
        }))
        .unwrap();
        let plan = Split {
            header_route: vec![HeaderMatch {
                name: "x-beta".into(),
                value: Some("1".into()),
                regex: None,
            }],
            mirror_percent: 20,
            ..split(10)
        };
        let route = serde_json::to_value(route(&ms, &plan)).unwrap();
        let rules = route["spec"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2, "the header rule, then the weighted rule");
        let path = json!({"type": "PathPrefix", "value": "/api/checkout"});
        assert_eq!(
            rules[0]["matches"],
            json!([{"path": path,
            "headers": [{"name": "x-beta", "type": "Exact", "value": "1"}]}])
        );
        assert_eq!(rules[0]["backendRefs"].as_array().unwrap().len(), 1);
        assert_eq!(rules[1]["matches"], json!([{"path": path}]));
        let filters: Vec<_> = rules[1]["filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["type"].clone())
            .collect();
        assert_eq!(
            filters,
            [json!("URLRewrite"), json!("RequestMirror")],
            "the spec's filters, then the mirror"
        );
        assert_eq!(rules[0]["timeouts"], json!({"request": "10s"}));
        assert_eq!(rules[1]["timeouts"], json!({"request": "10s"}));
        assert_eq!(rules[1]["backendRefs"][1]["weight"], 10);
    }

    #[test]
    fn the_route_goes_to_the_named_port_else_the_first() {
        let mut ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"image": "a:1", "ports": [
                {"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}],
                "rollout": {"strategy": "Canary",
                    "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}], "port": "http"}}}}
        }))
        .unwrap();
        let backend_port = |ms: &Microservice| {
            let route = serde_json::to_value(route(ms, &split(10))).unwrap();
            route["spec"]["rules"][0]["backendRefs"][0]["port"].clone()
        };
        assert_eq!(backend_port(&ms), json!(8080));
        let gateway = ms.spec.rollout.as_mut().unwrap().traffic.as_mut().unwrap();
        gateway.gateway_api.as_mut().unwrap().port = None;
        assert_eq!(backend_port(&ms), json!(9090), "the first port by default");
    }

    #[test]
    fn the_route_carries_headers_weights_and_the_mirror() {
        let mut ms = Microservice::new("checkout", MicroserviceSpec::default());
        ms.metadata.namespace = Some("shop".into());
        let plan = Split {
            header_route: vec![HeaderMatch {
                name: "x-user-group".into(),
                value: Some("beta".into()),
                regex: None,
            }],
            mirror_percent: 50,
            ..split(10)
        };
        let parents = [HttpRouteParentRefs {
            name: "public".into(),
            namespace: Some("gateways".into()),
            ..Default::default()
        }];
        let route = serde_json::to_value(http_route(
            &ms,
            &parents,
            &["shop.example".into()],
            80,
            &plan,
        ))
        .unwrap();
        assert_eq!(
            route["spec"],
            json!({
                "parentRefs": [{"name": "public", "namespace": "gateways"}],
                "hostnames": ["shop.example"],
                "rules": [
                    {
                        "matches": [{"headers": [{"name": "x-user-group", "type": "Exact", "value": "beta"}]}],
                        "backendRefs": [{"kind": "Service", "name": "checkout-green", "port": 80, "weight": 1}]
                    },
                    {
                        "backendRefs": [
                            {"kind": "Service", "name": "checkout-blue", "port": 80, "weight": 90},
                            {"kind": "Service", "name": "checkout-green", "port": 80, "weight": 10}
                        ],
                        "filters": [{"type": "RequestMirror", "requestMirror": {
                            "backendRef": {"kind": "Service", "name": "checkout-green", "port": 80},
                            "percent": 50
                        }}]
                    }
                ]
            })
        );
    }
}
