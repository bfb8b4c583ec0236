//! Breaches of the rules on ports.

use serde_json::json;

use super::{Breach, breach, items, long, spec};

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(".spec.ports maxItems", "spec.ports", |o, r, v| {
            let n = r.number() as usize + 1 + v;
            *ports(o) = items(n, |i| json!({"name": format!("p{i}"), "port": 1000 + i}));
        }),
        Breach {
            also: &["port names must be unique"],
            ..breach(
                ".spec.ports[] required:name",
                "spec.ports[0].name",
                |o, _, _| {
                    *ports(o) = json!([{"port": 80}]);
                },
            )
        },
        Breach {
            also: &["port numbers must be unique"],
            ..breach(
                ".spec.ports[] required:port",
                "spec.ports[0].port",
                |o, _, _| {
                    *ports(o) = json!([{"name": "http"}]);
                },
            )
        },
        breach(
            ".spec.ports[].name minLength",
            "spec.ports[0].name",
            |o, _, _| {
                *ports(o) = json!([{"name": "", "port": 80}]);
            },
        ),
        breach(
            ".spec.ports[].name maxLength",
            "spec.ports[0].name",
            |o, r, v| {
                *ports(o) = json!([{"name": long("a", r.number() as usize + 1 + v), "port": 80}]);
            },
        ),
        breach(
            ".spec.ports[].name pattern",
            "spec.ports[0].name",
            |o, _, v| {
                let name = ["Http", "-a", "a_b"][v % 3];
                *ports(o) = json!([{"name": name, "port": 80}]);
            },
        ),
        breach(
            ".spec.ports[].port minimum",
            "spec.ports[0].port",
            |o, r, v| {
                *ports(o) = json!([{"name": "http", "port": r.number() - 1 - v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].port maximum",
            "spec.ports[0].port",
            |o, r, v| {
                *ports(o) = json!([{"name": "http", "port": r.number() + 1 + v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].targetPort minimum",
            "spec.ports[0].targetPort",
            |o, r, v| {
                *ports(o) =
                    json!([{"name": "http", "port": 80, "targetPort": r.number() - 1 - v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].targetPort maximum",
            "spec.ports[0].targetPort",
            |o, r, v| {
                *ports(o) =
                    json!([{"name": "http", "port": 80, "targetPort": r.number() + 1 + v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].protocol enum",
            "spec.ports[0].protocol",
            |o, _, v| {
                let protocol = ["HTTP", "tcp", "QUIC"][v % 3];
                *ports(o) = json!([{"name": "http", "port": 80, "protocol": protocol}]);
            },
        ),
        breach("port names must be unique", "", |o, _, v| {
            *ports(o) = json!([{"name": "http", "port": 80}, {"name": "http", "port": 81 + v}]);
        }),
        breach("port numbers must be unique", "", |o, _, v| {
            *ports(o) =
                json!([{"name": "http", "port": 80 + v}, {"name": "admin", "port": 80 + v}]);
        }),
        breach(
            ".spec.placement.spreadAcross[] enum",
            "spec.placement.spreadAcross[0]",
            |o, _, v| {
                let domain = ["rack", "Zone", "region"][v % 3];
                spec(o)["placement"] = json!({"spreadAcross": [domain]});
            },
        ),
        breach(
            ".spec.placement.separateVersions enum",
            "spec.placement.separateVersions",
            |o, _, v| {
                let how = ["required", "Always", "Never"][v % 3];
                spec(o)["placement"] = json!({"separateVersions": how});
            },
        ),
    ]
}

/// The spec's ports, to be replaced by a breach: the route's port name goes too, since the
/// new ports need not have it (each breach breaks one rule, not that one as well).
fn ports(o: &mut serde_json::Value) -> &mut serde_json::Value {
    if let Some(gateway) = o.pointer_mut("/spec/rollout/traffic/gatewayAPI") {
        gateway.as_object_mut().map(|g| g.remove("port"));
    }
    &mut spec(o)["ports"]
}
