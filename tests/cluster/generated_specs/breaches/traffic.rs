//! Breaches of the rules on traffic routing through the Gateway API.

use serde_json::json;

use super::{Breach, breach, items, long, routed};

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(
            ".spec.rollout.traffic.gatewayAPI required:parentRefs",
            "spec.rollout.traffic.gatewayAPI.parentRefs",
            |o, _, _| {
                routed(o)["traffic"]["gatewayAPI"] = json!({"hostnames": ["shop.example"]});
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.hostnames maxItems",
            "spec.rollout.traffic.gatewayAPI.hostnames",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                routed(o)["traffic"]["gatewayAPI"]["hostnames"] =
                    items(n, |i| format!("h{i}.example").into());
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.parentRefs minItems",
            "spec.rollout.traffic.gatewayAPI.parentRefs",
            |o, _, _| {
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] = json!([]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.parentRefs maxItems",
            "spec.rollout.traffic.gatewayAPI.parentRefs",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] =
                    items(n, |i| json!({"name": format!("gateway-{i}")}));
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.parentRefs[] required:name",
            "spec.rollout.traffic.gatewayAPI.parentRefs[0].name",
            |o, _, _| {
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] =
                    json!([{"namespace": "gateways"}]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.parentRefs[].name minLength",
            "spec.rollout.traffic.gatewayAPI.parentRefs[0].name",
            |o, _, _| {
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] = json!([{"name": ""}]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.parentRefs[].name maxLength",
            "spec.rollout.traffic.gatewayAPI.parentRefs[0].name",
            |o, r, v| {
                let name = long("g", r.number() as usize + 1 + v);
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] = json!([{"name": name}]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.parentRefs[].port minimum",
            "spec.rollout.traffic.gatewayAPI.parentRefs[0].port",
            |o, r, v| {
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] =
                    json!([{"name": "public", "port": r.number() - 1 - v as i64}]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.parentRefs[].port maximum",
            "spec.rollout.traffic.gatewayAPI.parentRefs[0].port",
            |o, r, v| {
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] =
                    json!([{"name": "public", "port": r.number() + 1 + v as i64}]);
            },
        ),
        breach(
            "a parentRef's kind is Gateway (north-south) or Service (a mesh)",
            "",
            |o, _, v| {
                let kind = ["Pod", "HTTPRoute", "gateway"][v % 3];
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] =
                    json!([{"name": "public", "kind": kind}]);
            },
        ),
        breach(
            "a Service parent is the Microservice's own Service",
            "",
            |o, _, _| {
                let name = o["metadata"]["name"].clone();
                routed(o)["traffic"]["gatewayAPI"]["parentRefs"] = json!([{"group": "", "kind": "Service", "name": name, "namespace": "elsewhere"}]);
            },
        ),
    ]
}
