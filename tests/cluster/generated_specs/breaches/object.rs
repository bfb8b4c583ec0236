//! Breaches of the rules on the object itself: its name, image and replicas.

use serde_json::json;

use super::{Breach, breach, routed, spec};

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
        breach(
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
        ),
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
