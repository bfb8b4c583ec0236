//! Breaches of the rules on the object itself: its name, image and replicas.

use serde_json::json;

use super::{Breach, breach, long, routed, spec, with_port};

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(" required:spec", "spec", |o, _, _| {
            o.as_object_mut().unwrap().remove("spec");
        }),
        breach(
            "metadata.name must be at most 55 characters",
            "",
            |o, _, v| {
                o["metadata"]["name"] = "n".repeat(56 + v * 3).into();
            },
        ),
        breach("metadata.name must start with a letter", "", |o, _, v| {
            o["metadata"]["name"] = ["9lives", "ab.cd", "x-1.y"][v % 3].into();
        }),
        breach(".spec required:image", "spec.image", |o, _, _| {
            spec(o).as_object_mut().unwrap().remove("image");
        }),
        Breach {
            // A spec taking over a Deployment loses its port too.
            also: &["spec.migrateFrom needs spec.ports"],
            ..breach(
                "rollout.traffic.gatewayAPI needs at least one port",
                "",
                |o, _, v| {
                    routed(o);
                    if v % 2 == 0 {
                        spec(o).as_object_mut().unwrap().remove("ports");
                    } else {
                        spec(o)["ports"] = json!([]);
                    }
                },
            )
        },
        breach(
            "rollout.traffic.gatewayAPI.port must name one of spec.ports",
            "",
            |o, _, v| {
                routed(o)["traffic"]["gatewayAPI"]["port"] = format!("nope-{v}").into();
            },
        ),
        Breach {
            also: &["rollout.traffic.gatewayAPI.port must name one of spec.ports"],
            ..breach(
                ".spec.rollout.traffic.gatewayAPI.port minLength",
                "spec.rollout.traffic.gatewayAPI.port",
                |o, _, _| {
                    routed(o)["traffic"]["gatewayAPI"]["port"] = "".into();
                },
            )
        },
        breach(
            ".spec.rollout.traffic.gatewayAPI.port maxLength",
            "spec.rollout.traffic.gatewayAPI.port",
            |o, r, v| {
                let name = "p".repeat(r.number() as usize + 1 + v);
                routed(o)["traffic"]["gatewayAPI"]["port"] = name.into();
            },
        ),
        Breach {
            also: &["image must not be empty"],
            ..breach(".spec.image minLength", "spec.image", |o, _, _| {
                spec(o)["image"] = "".into();
            })
        },
        breach("image must not be empty", "", |o, _, v| {
            spec(o)["image"] = " ".repeat(v + 1).into();
        }),
        breach(".spec.replicas minimum", "spec.replicas", |o, r, v| {
            spec(o)["replicas"] = (r.number() - 1 - v as i64).into();
        }),
    ]
}

/// Breaches of the rules on `spec.migrateFrom`.
pub fn migrate_from_breaches() -> Vec<Breach> {
    vec![
        breach(
            "spec.migrateFrom.deployment may not be <name>-blue or <name>-green",
            "",
            |o, _, v| {
                with_port(o);
                let name = o["metadata"]["name"].as_str().unwrap().to_string();
                let own = format!("{name}-{}", ["blue", "green"][v % 2]);
                spec(o)["migrateFrom"] = json!({"deployment": own});
            },
        ),
        Breach {
            // A routed spec loses its port too.
            also: &[
                "rollout.traffic.gatewayAPI needs at least one port",
                "rollout.traffic.gatewayAPI.port must name one of spec.ports",
            ],
            ..breach("spec.migrateFrom needs spec.ports", "", |o, _, v| {
                if v % 2 == 0 {
                    spec(o).as_object_mut().unwrap().remove("ports");
                } else {
                    spec(o)["ports"] = json!([]);
                }
                spec(o)["migrateFrom"] = json!({"deployment": "checkout"});
            })
        },
        breach(
            "migrateFrom.deployment must be a Deployment name",
            "",
            |o, _, v| {
                with_port(o);
                let name = ["Checkout", "-x", "a_b"][v % 3];
                spec(o)["migrateFrom"] = json!({ "deployment": name });
            },
        ),
        Breach {
            also: &["migrateFrom.deployment must be a Deployment name"],
            ..breach(
                ".spec.migrateFrom.deployment minLength",
                "spec.migrateFrom.deployment",
                |o, _, _| {
                    with_port(o);
                    spec(o)["migrateFrom"] = json!({"deployment": ""});
                },
            )
        },
        breach(
            ".spec.migrateFrom.deployment maxLength",
            "spec.migrateFrom.deployment",
            |o, r, v| {
                with_port(o);
                let name = long("a", r.number() as usize + 1 + v);
                spec(o)["migrateFrom"] = json!({"deployment": name});
            },
        ),
        breach(
            ".spec.migrateFrom required:deployment",
            "spec.migrateFrom.deployment",
            |o, _, _| {
                with_port(o);
                spec(o)["migrateFrom"] = json!({"scaleDown": "Never"});
            },
        ),
        breach(
            ".spec.migrateFrom.scaleDown enum",
            "spec.migrateFrom.scaleDown",
            |o, _, v| {
                with_port(o);
                let value = ["progressively", "Always", "Delete"][v % 3];
                spec(o)["migrateFrom"] = json!({"deployment": "checkout", "scaleDown": value});
            },
        ),
    ]
}

/// A valid route rule: a path prefix.
fn path_rule(i: usize) -> serde_json::Value {
    json!({"matches": [{"path": {"type": "PathPrefix", "value": format!("/p{i}")}}]})
}

pub fn route_rule_breaches() -> Vec<Breach> {
    vec![
        breach(
            "rollout.traffic.gatewayAPI.rules take no backendRefs",
            "",
            |o, _, v| {
                let mut rule = path_rule(v);
                rule["backendRefs"] = json!([{"name": "elsewhere", "port": 80}]);
                routed(o)["traffic"]["gatewayAPI"]["rules"] = json!([rule]);
            },
        ),
        breach(
            "rollout.traffic.gatewayAPI.rules take no RequestMirror filter",
            "",
            |o, _, v| {
                let mut rule = path_rule(v);
                rule["filters"] = json!([{"type": "RequestMirror",
                    "requestMirror": {"backendRef": {"name": "elsewhere", "port": 80}}}]);
                routed(o)["traffic"]["gatewayAPI"]["rules"] = json!([rule]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.rules maxItems",
            "spec.rollout.traffic.gatewayAPI.rules",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let rules: Vec<_> = (0..n).map(path_rule).collect();
                routed(o)["traffic"]["gatewayAPI"]["rules"] = rules.into();
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.rules[].matches maxItems",
            "spec.rollout.traffic.gatewayAPI.rules[0].matches",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let matches: Vec<_> = (0..n)
                    .map(|i| json!({"path": {"type": "PathPrefix", "value": format!("/m{i}")}}))
                    .collect();
                routed(o)["traffic"]["gatewayAPI"]["rules"] = json!([{ "matches": matches }]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.rules[].filters maxItems",
            "spec.rollout.traffic.gatewayAPI.rules[0].filters",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let filters: Vec<_> = (0..n)
                    .map(|i| json!({"type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"add": [{"name": format!("x-{i}"), "value": "1"}]}}))
                    .collect();
                routed(o)["traffic"]["gatewayAPI"]["rules"] = json!([{ "filters": filters }]);
            },
        ),
    ]
}

/// A valid gRPC rule: calls to one service.
fn grpc_rule(i: usize) -> serde_json::Value {
    json!({"matches": [{"method": {"service": format!("shop.S{i}")}}]})
}

/// A routed canary through a GRPCRoute.
fn grpc(o: &mut serde_json::Value) -> &mut serde_json::Value {
    let gateway = &mut routed(o)["traffic"]["gatewayAPI"];
    gateway["kind"] = "GRPCRoute".into();
    gateway
}

pub fn grpc_rule_breaches() -> Vec<Breach> {
    vec![
        breach(
            "rollout.traffic.gatewayAPI.rules are HTTPRoute rules",
            "",
            |o, _, v| {
                grpc(o)["rules"] = json!([path_rule(v)]);
            },
        ),
        breach(
            "rollout.traffic.gatewayAPI.grpcRules need kind: GRPCRoute",
            "",
            |o, _, v| {
                let gateway = &mut routed(o)["traffic"]["gatewayAPI"];
                if v % 2 == 1 {
                    gateway["kind"] = "HTTPRoute".into();
                }
                gateway["grpcRules"] = json!([grpc_rule(v)]);
            },
        ),
        breach(
            "rollout.traffic.gatewayAPI.grpcRules take no RequestMirror filter",
            "",
            |o, _, v| {
                let mut rule = grpc_rule(v);
                rule["filters"] = json!([{"type": "RequestMirror",
                    "requestMirror": {"backendRef": {"name": "elsewhere", "port": 80}}}]);
                grpc(o)["grpcRules"] = json!([rule]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.kind enum",
            "spec.rollout.traffic.gatewayAPI.kind",
            |o, _, v| {
                routed(o)["traffic"]["gatewayAPI"]["kind"] =
                    ["TCPRoute", "httproute", "GrpcRoute"][v % 3].into();
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.grpcRules maxItems",
            "spec.rollout.traffic.gatewayAPI.grpcRules",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let rules: Vec<_> = (0..n).map(grpc_rule).collect();
                grpc(o)["grpcRules"] = rules.into();
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.grpcRules[].matches maxItems",
            "spec.rollout.traffic.gatewayAPI.grpcRules[0].matches",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let matches: Vec<_> = (0..n)
                    .map(|i| json!({"method": {"service": format!("shop.S{i}")}}))
                    .collect();
                grpc(o)["grpcRules"] = json!([{ "matches": matches }]);
            },
        ),
        breach(
            ".spec.rollout.traffic.gatewayAPI.grpcRules[].filters maxItems",
            "spec.rollout.traffic.gatewayAPI.grpcRules[0].filters",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let filters: Vec<_> = (0..n)
                    .map(|i| json!({"type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"add": [{"name": format!("x-{i}"), "value": "1"}]}}))
                    .collect();
                grpc(o)["grpcRules"] = json!([{ "filters": filters }]);
            },
        ),
    ]
}
