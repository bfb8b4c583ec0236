//! The container: ports, environment, resources and probes.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{dns_label, object, some, text};

pub fn ports(min: usize) -> BoxedStrategy<Value> {
    let port = (
        prop::option::of(1..=65535i32),
        prop::option::of(prop::sample::select(vec!["TCP", "UDP", "SCTP"])),
        prop::option::of(prop::sample::select(vec![
            "http",
            "h2c",
            "kubernetes.io/ws",
        ])),
    );
    (
        prop::collection::vec(port, min..=4),
        text("[a-z]([-a-z0-9]{0,10}[a-z0-9])?"),
        1..60000i32,
    )
        .prop_map(|(ports, prefix, base)| {
            let ports = ports
                .into_iter()
                .enumerate()
                .map(|(i, (target, protocol, app))| {
                    object(vec![
                        ("name", some(format!("{prefix}{i}"))),
                        ("port", some(base + i as i32 * 7)),
                        ("targetPort", target.map(Value::from)),
                        ("protocol", protocol.map(Value::from)),
                        ("appProtocol", app.map(Value::from)),
                    ])
                })
                .collect::<Vec<_>>();
            Value::from(ports)
        })
        .boxed()
}

pub fn env() -> BoxedStrategy<Value> {
    let name = text("[A-Z_][A-Z0-9_]{0,12}");
    let var = prop_oneof![
        (name.clone(), text("[ -~]{0,20}")).prop_map(|(n, v)| json!({"name": n, "value": v})),
        (name.clone(), prop::sample::select(vec!["metadata.name", "status.podIP"])).prop_map(
            |(n, path)| json!({"name": n, "valueFrom": {"fieldRef": {"fieldPath": path}}})
        ),
        (name.clone(), dns_label(20), text("[a-z]{1,10}"), any::<bool>()).prop_map(
            |(n, secret, key, optional)| json!({"name": n, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": optional}}})
        ),
        (name, dns_label(20), text("[a-z]{1,10}")).prop_map(
            |(n, map, key)| json!({"name": n, "valueFrom": {"configMapKeyRef": {"name": map, "key": key}}})
        ),
    ];
    prop::collection::vec(var, 0..4)
        .prop_map(Value::from)
        .boxed()
}

pub fn env_from() -> BoxedStrategy<Value> {
    let source = prop_oneof![
        (dns_label(20), prop::option::of(text("[A-Z]{1,5}_"))).prop_map(|(n, prefix)| object(
            vec![
                ("configMapRef", some(json!({"name": n}))),
                ("prefix", prefix.map(Value::from)),
            ]
        )),
        (dns_label(20), any::<bool>())
            .prop_map(|(n, optional)| json!({"secretRef": {"name": n, "optional": optional}})),
    ];
    prop::collection::vec(source, 0..3)
        .prop_map(Value::from)
        .boxed()
}

pub fn resources() -> BoxedStrategy<Value> {
    let cpu = prop::sample::select(vec!["100m", "250m", "0.5", "1", "2"]);
    let memory = prop::sample::select(vec!["64Mi", "128Mi", "1Gi", "512M"]);
    let amounts = (prop::option::of(cpu), prop::option::of(memory)).prop_map(|(cpu, memory)| {
        object(vec![
            ("cpu", cpu.map(Value::from)),
            ("memory", memory.map(Value::from)),
        ])
    });
    (prop::option::of(amounts.clone()), prop::option::of(amounts))
        .prop_map(|(requests, limits)| object(vec![("requests", requests), ("limits", limits)]))
        .boxed()
}

pub fn probe() -> BoxedStrategy<Value> {
    let port = prop_oneof![
        (1..=65535i64).prop_map(Value::from),
        text("[a-z]{1,10}").prop_map(Value::from),
    ];
    let handler = prop_oneof![
        (
            text("/[a-z/]{0,12}"),
            port.clone(),
            prop::option::of(prop::sample::select(vec!["HTTP", "HTTPS"])),
            prop::collection::vec((text("X-[A-Za-z]{1,8}"), text("[a-z]{0,8}")), 0..2),
        )
            .prop_map(|(path, port, scheme, headers)| {
                let headers: Vec<Value> = headers
                    .into_iter()
                    .map(|(n, v)| json!({"name": n, "value": v}))
                    .collect();
                json!({"httpGet": object(vec![
                    ("path", some(path)),
                    ("port", Some(port)),
                    ("scheme", scheme.map(Value::from)),
                    ("httpHeaders", (!headers.is_empty()).then(|| Value::from(headers))),
                ])})
            }),
        port.prop_map(|port| json!({"tcpSocket": {"port": port}})),
        (1..=65535i64, prop::option::of(text("[a-z.]{1,12}"))).prop_map(|(port, service)| {
            json!({"grpc": object(vec![("port", some(port)), ("service", service.map(Value::from))])})
        }),
        prop::collection::vec(text("[a-z/-]{1,10}"), 1..3)
            .prop_map(|command| json!({"exec": {"command": command}})),
    ];
    (
        handler,
        prop::option::of(0..60i64),
        prop::option::of(1..60i64),
        prop::option::of(1..30i64),
        prop::option::of(1..10i64),
    )
        .prop_map(|(handler, delay, period, timeout, failures)| {
            let mut probe = handler;
            for (key, value) in [
                ("initialDelaySeconds", delay),
                ("periodSeconds", period),
                ("timeoutSeconds", timeout),
                ("failureThreshold", failures),
            ] {
                if let Some(value) = value {
                    probe[key] = value.into();
                }
            }
            probe
        })
        .boxed()
}

/// `lifecycle`: hooks of every handler kind, or the default pause's length. Sleeps stay
/// within the shortest grace period `pod_options` draws.
pub fn lifecycle() -> BoxedStrategy<Value> {
    let handler = prop_oneof![
        prop::collection::vec(text("[a-z/-]{1,10}"), 1..3)
            .prop_map(|command| json!({"exec": {"command": command}})),
        (text("/[a-z/]{0,12}"), 1..=65535i64)
            .prop_map(|(path, port)| json!({"httpGet": {"path": path, "port": port}})),
        (1..=65535i64).prop_map(|port| json!({"tcpSocket": {"port": port}})),
        (0..=5i64).prop_map(|seconds| json!({"sleep": {"seconds": seconds}})),
    ];
    (
        prop::option::of(handler.clone()),
        prop::option::of(handler),
        prop::option::of(0..=5i64),
    )
        .prop_map(|(pre_stop, post_start, pause)| {
            let pause = pause.filter(|_| pre_stop.is_none());
            object(vec![
                ("preStop", pre_stop),
                ("postStart", post_start),
                ("preStopSleepSeconds", pause.map(Value::from)),
            ])
        })
        .boxed()
}

pub fn probes() -> BoxedStrategy<Value> {
    (
        prop::option::of(probe()),
        prop::option::of(probe()),
        prop::option::of(probe()),
    )
        .prop_map(|(readiness, liveness, startup)| {
            object(vec![
                ("readiness", readiness),
                ("liveness", liveness),
                ("startup", startup),
            ])
        })
        .boxed()
}
