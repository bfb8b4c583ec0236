//! Valid Microservices covering the whole API, as proptest strategies: a module per part of
//! the spec, and the whole object.

mod container;
mod pod;
mod rollout;
mod scaling;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use container::{env, env_from, lifecycle, ports, probes, resources};
use pod::pod_options;
use rollout::rollout;
use scaling::{autoscaling, disruption, placement};

/// An object from `(key, value)` pairs, leaving out the absent ones.
pub fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect::<Map<_, _>>(),
    )
}

pub fn some<T: Into<Value>>(value: T) -> Option<Value> {
    Some(value.into())
}

/// A DNS label of at most `max` characters.
pub fn dns_label(max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("[a-z]([-a-z0-9]{{0,{}}}[a-z0-9])?", max - 2))
        .expect("a regex")
        .boxed()
}

pub fn text(regex: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(regex)
        .expect("a regex")
        .boxed()
}

/// A pause: at most 2997h, within the year admission allows.
pub fn duration() -> BoxedStrategy<String> {
    text("([1-9][0-9]{0,2}(ms|s|m|h)){1,3}")
}

/// An analysis interval: at most 297m, within the day admission allows.
pub fn interval() -> BoxedStrategy<String> {
    text("([1-9][0-9]{0,1}(ms|s|m)){1,3}")
}

/// A number or a percentage.
pub fn int_or_percent() -> BoxedStrategy<Value> {
    prop_oneof![
        (0..10i64).prop_map(Value::from),
        (0..=100i64).prop_map(|p| Value::from(format!("{p}%"))),
    ]
    .boxed()
}

pub fn string_map(key: &str, value: &str) -> BoxedStrategy<Value> {
    prop::collection::btree_map(text(key), text(value), 0..3)
        .prop_map(|m| json!(m))
        .boxed()
}

/// A whole valid Microservice object.
pub fn valid_microservice() -> BoxedStrategy<Value> {
    dns_label(55)
        .prop_flat_map(|name| {
            let rollout = prop::option::of(rollout(name.clone()));
            (Just(name), rollout)
        })
        .prop_flat_map(|(name, rollout)| {
            let routed = rollout.as_ref().is_some_and(|(_, routed)| *routed);
            let rollout = rollout.map(|(r, _)| r);
            (
                (
                    Just(name),
                    Just(rollout),
                    text("[a-z]{1,8}\\.example/[a-z]{1,8}(:[0-9]{1,2}\\.[0-9]{1,2})?"),
                    prop::option::of(0..20i64),
                    prop::option::of(autoscaling()),
                    if routed {
                        ports(1).prop_map(Some).boxed()
                    } else {
                        prop::option::of(ports(0)).boxed()
                    },
                ),
                (
                    prop::option::of(env()),
                    prop::option::of(env_from()),
                    prop::option::of(prop::collection::vec(text("[a-z/-]{1,12}"), 0..3)),
                    prop::option::of(prop::collection::vec(text("[ -~]{0,12}"), 0..3)),
                    prop::option::of(resources()),
                    prop::option::of(probes()),
                    prop::option::of(lifecycle()),
                ),
                (
                    prop::option::of(disruption()),
                    prop::option::of(placement()),
                    prop::option::of(pod_options()),
                    prop::option::of(migrate_from()),
                ),
            )
        })
        .prop_map(|(first, second, third)| {
            let (name, rollout, image, replicas, autoscaling, ports) = first;
            let (env, env_from, command, args, resources, probes, lifecycle) = second;
            let (disruption, placement, pod, migrate_from) = third;
            // A takeover switches the Service Weir builds from the ports.
            let has_ports = ports
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(|p| !p.is_empty());
            let migrate_from = migrate_from.filter(|_| has_ports);
            // Half the routed specs name the port the route goes to: the last one.
            let routed_port = ports
                .as_ref()
                .and_then(|p| p.as_array()?.last()?.get("name").cloned())
                .filter(|_| name.len() % 2 == 0);
            let mut rollout = rollout;
            if let (Some(port), Some(gateway)) = (
                routed_port,
                rollout
                    .as_mut()
                    .and_then(|r| r.pointer_mut("/traffic/gatewayAPI")),
            ) {
                gateway["port"] = port;
            }
            let spec = object(vec![
                ("image", some(image)),
                ("replicas", replicas.map(Value::from)),
                ("autoscaling", autoscaling),
                ("ports", ports),
                ("env", env),
                ("envFrom", env_from),
                ("command", command.map(Value::from)),
                ("args", args.map(Value::from)),
                ("resources", resources),
                ("probes", probes),
                ("lifecycle", lifecycle),
                ("disruption", disruption),
                ("placement", placement),
                ("pod", pod),
                ("rollout", rollout),
                ("migrateFrom", migrate_from),
            ]);
            json!({
                "apiVersion": "weir.dev/v1alpha1",
                "kind": "Microservice",
                "metadata": {"name": name},
                "spec": spec
            })
        })
        .boxed()
}

/// A Deployment to take over (never the Microservice's own `-blue` or `-green`).
fn migrate_from() -> BoxedStrategy<Value> {
    (
        dns_label(40),
        prop::option::of(prop_oneof![
            Just("Progressively"),
            Just("OnSuccess"),
            Just("Never")
        ]),
    )
        .prop_map(|(deployment, scale_down)| {
            object(vec![
                ("deployment", some(format!("old-{deployment}"))),
                ("scaleDown", scale_down.map(Value::from)),
            ])
        })
        .boxed()
}
