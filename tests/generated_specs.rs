//! Generated Microservices against the real API server. Valid specs covering the whole API
//! are accepted (server-side dry run) and come back with every field they were sent; specs
//! that break one rule at a time, for every CEL rule and every schema bound of Weir's own
//! fields in the CRD, are refused with 422 and the rule's message, and nothing is stored.
//! No operator runs: nothing reaches a controller.
//!
//! Values come from proptest strategies driven by a fixed seed, so a run is repeatable;
//! the API calls are async, so the runner draws values instead of running properties.

mod support;

use std::collections::BTreeMap;

use kube::api::{DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{Api, CustomResourceExt};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use support::{install_crds, with_temp_ns};
use weir::api::Microservice;

/// The seed of every run: 32 bytes.
const SEED: &[u8; 32] = b"weir: generated specs, one seed.";
/// Valid Microservices sent per run.
const VALID_SPECS: usize = 300;
/// Invalid Microservices sent per rule, each built on a different valid one.
const VARIANTS: usize = 3;

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, SEED),
    )
}

fn draw<S: Strategy>(runner: &mut TestRunner, strategy: &S) -> S::Value {
    strategy
        .new_tree(runner)
        .expect("a strategy that always yields")
        .current()
}

fn api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("weir.dev", "v1alpha1", "Microservice");
    Api::namespaced_with(client, ns, &ApiResource::from_gvk(&gvk))
}

// ---------------------------------------------------------------------------------------
// Valid specs

/// An object from `(key, value)` pairs, leaving out the absent ones.
fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect::<Map<_, _>>(),
    )
}

fn some<T: Into<Value>>(value: T) -> Option<Value> {
    Some(value.into())
}

/// A DNS label of at most `max` characters.
fn dns_label(max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("[a-z]([-a-z0-9]{{0,{}}}[a-z0-9])?", max - 2))
        .expect("a regex")
        .boxed()
}

fn text(regex: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(regex)
        .expect("a regex")
        .boxed()
}

/// A pause: at most 2997h, within the year admission allows.
fn duration() -> BoxedStrategy<String> {
    text("([1-9][0-9]{0,2}(ms|s|m|h)){1,3}")
}

/// An analysis interval: at most 297m, within the day admission allows.
fn interval() -> BoxedStrategy<String> {
    text("([1-9][0-9]{0,1}(ms|s|m)){1,3}")
}

/// A number or a percentage.
fn int_or_percent() -> BoxedStrategy<Value> {
    prop_oneof![
        (0..10i64).prop_map(Value::from),
        (0..=100i64).prop_map(|p| Value::from(format!("{p}%"))),
    ]
    .boxed()
}

fn ports(min: usize) -> BoxedStrategy<Value> {
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

fn env() -> BoxedStrategy<Value> {
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

fn env_from() -> BoxedStrategy<Value> {
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

fn resources() -> BoxedStrategy<Value> {
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

fn probe() -> BoxedStrategy<Value> {
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

fn probes() -> BoxedStrategy<Value> {
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

fn autoscaling() -> BoxedStrategy<Value> {
    (
        1..10i64,
        0..20i64,
        any::<bool>(),
        prop::option::of(1..=1000i64),
        prop::option::of(1..=1000i64),
    )
        .prop_map(|(min, spread, with_min, cpu, memory)| {
            object(vec![
                ("minReplicas", with_min.then(|| Value::from(min))),
                ("maxReplicas", some(min + spread)),
                ("targetCpuUtilizationPercentage", cpu.map(Value::from)),
                ("targetMemoryUtilizationPercentage", memory.map(Value::from)),
            ])
        })
        .boxed()
}

fn disruption() -> BoxedStrategy<Value> {
    prop_oneof![
        int_or_percent().prop_map(|v| json!({"maxUnavailable": v})),
        int_or_percent().prop_map(|v| json!({"minAvailable": v})),
        Just(json!({})),
    ]
    .boxed()
}

fn placement() -> BoxedStrategy<Value> {
    prop::sample::subsequence(vec!["zone", "node"], 0..=2)
        .prop_map(|domains| json!({"spreadAcross": domains}))
        .boxed()
}

fn string_map(key: &str, value: &str) -> BoxedStrategy<Value> {
    prop::collection::btree_map(text(key), text(value), 0..3)
        .prop_map(|m| json!(m))
        .boxed()
}

fn pod_options() -> BoxedStrategy<Value> {
    let toleration = (
        prop::option::of(text("[a-z]{1,8}(\\.example/[a-z]{1,8})?")),
        prop::option::of(text("[a-z]{0,8}")),
        prop::option::of(prop::sample::select(vec![
            "NoSchedule",
            "PreferNoSchedule",
            "NoExecute",
        ])),
        prop::option::of(0..3600i64),
    )
        .prop_map(|(key, value, effect, seconds)| {
            let equal = key.is_some() && value.is_some();
            object(vec![
                ("key", key.map(Value::from)),
                ("operator", some(if equal { "Equal" } else { "Exists" })),
                ("value", value.filter(|_| equal).map(Value::from)),
                (
                    "tolerationSeconds",
                    seconds
                        .filter(|_| effect == Some("NoExecute"))
                        .map(Value::from),
                ),
                ("effect", effect.map(Value::from)),
            ])
        });
    let volume = prop_oneof![
        Just(json!({"emptyDir": {}})),
        Just(json!({"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})),
        (dns_label(20), any::<bool>())
            .prop_map(|(n, optional)| json!({"configMap": {"name": n, "optional": optional}})),
        (dns_label(20), 0..=511i64)
            .prop_map(|(n, mode)| json!({"secret": {"secretName": n, "defaultMode": mode}})),
    ];
    let volumes = prop::collection::vec((volume, any::<bool>(), any::<bool>()), 0..3).prop_map(
        |volumes| {
            let mut declared = Vec::new();
            let mut mounts = Vec::new();
            for (i, (mut volume, mounted, read_only)) in volumes.into_iter().enumerate() {
                volume["name"] = format!("v{i}").into();
                declared.push(volume);
                if mounted {
                    mounts.push(json!({"name": format!("v{i}"), "mountPath": format!("/mnt/v{i}"), "readOnly": read_only}));
                }
            }
            (declared, mounts)
        },
    );
    let security = (
        prop::option::of(any::<bool>()),
        prop::option::of(1000..65535i64),
        prop::option::of(1000..65535i64),
        any::<bool>(),
    )
        .prop_map(|(non_root, user, group, seccomp)| {
            object(vec![
                ("runAsNonRoot", non_root.map(Value::from)),
                ("runAsUser", user.map(Value::from)),
                ("fsGroup", group.map(Value::from)),
                (
                    "seccompProfile",
                    seccomp.then(|| json!({"type": "RuntimeDefault"})),
                ),
            ])
        });
    let container_security =
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(read_only, bind, non_root)| {
            let add: Vec<&str> = if bind {
                vec!["NET_BIND_SERVICE"]
            } else {
                vec![]
            };
            json!({
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": read_only,
                "runAsNonRoot": non_root,
                "capabilities": {"drop": ["ALL"], "add": add}
            })
        });
    (
        (
            prop::option::of(dns_label(30)),
            prop::option::of(string_map(
                "[a-z]{1,8}(\\.example/[a-z]{1,8})?",
                "[a-z0-9]{0,10}",
            )),
            prop::option::of(string_map(
                "[a-z]{1,8}(\\.example/[a-z]{1,8})?",
                "[ -~]{0,20}",
            )),
            prop::option::of(string_map("[a-z]{1,8}", "[a-z0-9]{1,8}")),
        ),
        (
            prop::option::of(prop::collection::vec(toleration, 0..3)),
            volumes,
            prop::option::of(security),
            prop::option::of(container_security),
            prop::option::of(prop::collection::vec(dns_label(20), 0..2)),
        ),
    )
        .prop_map(
            |(
                (account, labels, annotations, selector),
                (tolerations, volumes, security, container, pulls),
            )| {
                let (declared, mounts) = volumes;
                object(vec![
                    ("serviceAccountName", account.map(Value::from)),
                    ("labels", labels),
                    ("annotations", annotations),
                    ("nodeSelector", selector),
                    ("tolerations", tolerations.map(Value::from)),
                    (
                        "volumes",
                        (!declared.is_empty()).then(|| Value::from(declared)),
                    ),
                    (
                        "volumeMounts",
                        (!mounts.is_empty()).then(|| Value::from(mounts)),
                    ),
                    ("securityContext", security),
                    ("containerSecurityContext", container),
                    (
                        "imagePullSecrets",
                        pulls.map(|p| p.into_iter().map(|n| json!({"name": n})).collect()),
                    ),
                ])
            },
        )
        .boxed()
}

/// `rollout.traffic` for Microservice `name`: Gateways, or its own Service (a mesh).
fn traffic(name: String) -> BoxedStrategy<Value> {
    let gateway = (
        dns_label(30),
        prop::option::of(dns_label(30)),
        prop::option::of(text("[a-z]{1,10}")),
        prop::option::of(1..=65535i64),
        any::<bool>(),
    )
        .prop_map(|(n, namespace, section, port, explicit)| {
            object(vec![
                (
                    "group",
                    explicit.then(|| "gateway.networking.k8s.io".into()),
                ),
                ("kind", explicit.then(|| "Gateway".into())),
                ("name", some(n)),
                ("namespace", namespace.map(Value::from)),
                ("sectionName", section.map(Value::from)),
                ("port", port.map(Value::from)),
            ])
        });
    let service = prop::option::of(1..=65535i64).prop_map(move |port| {
        object(vec![
            ("group", some("")),
            ("kind", some("Service")),
            ("name", some(name.clone())),
            ("port", port.map(Value::from)),
        ])
    });
    let parent = prop_oneof![3 => gateway, 1 => service];
    (
        prop::collection::vec(parent, 1..4),
        prop::collection::vec(text("[a-z]{1,10}\\.example"), 0..3),
    )
        .prop_map(|(parents, hostnames)| {
            json!({"gatewayAPI": object(vec![
                ("parentRefs", some(parents)),
                ("hostnames", (!hostnames.is_empty()).then(|| Value::from(hostnames))),
            ])})
        })
        .boxed()
}

/// Bounds of a metric: (min, max) with min <= max; a Prometheus metric has at least one.
fn bounds(prometheus: bool) -> BoxedStrategy<(Option<f64>, Option<f64>)> {
    let pair = (-1000.0..1000.0f64, 0.0..1000.0f64).prop_map(|(low, span)| (low, low + span));
    let choice = if prometheus { 0..3u8 } else { 0..4u8 };
    (pair, choice)
        .prop_map(|((min, max), choice)| match choice {
            0 => (Some(min), None),
            1 => (None, Some(max)),
            2 => (Some(min), Some(max)),
            _ => (None, None),
        })
        .boxed()
}

fn metric(index: usize) -> BoxedStrategy<Value> {
    let name = text("[a-z]{1,10}").prop_map(move |n| format!("m{index}-{n}"));
    let prometheus = (
        name.clone(),
        prop::option::of(text("https?://prometheus\\.[a-z]{1,8}(\\.svc)?:9090")),
        text("[a-z_]{1,20}\\{[a-z]{1,5}=\"[a-z{}]{1,12}\"\\}"),
        bounds(true),
    )
        .prop_map(|(name, address, query, (min, max))| {
            object(vec![
                ("name", some(name)),
                (
                    "prometheus",
                    some(object(vec![
                        ("address", address.map(Value::from)),
                        ("query", some(query)),
                    ])),
                ),
                ("min", min.map(Value::from)),
                ("max", max.map(Value::from)),
            ])
        });
    let webhook = (
        name,
        text("https?://[a-z]{1,10}\\.[a-z]{1,8}\\.svc(:[0-9]{2,4})?/[a-z]{0,8}"),
        prop::option::of(1..=300i64),
        bounds(false),
    )
        .prop_map(|(name, url, timeout, (min, max))| {
            object(vec![
                ("name", some(name)),
                (
                    "webhook",
                    some(object(vec![
                        ("url", some(url)),
                        ("timeoutSeconds", timeout.map(Value::from)),
                    ])),
                ),
                ("min", min.map(Value::from)),
                ("max", max.map(Value::from)),
            ])
        });
    prop_oneof![prometheus, webhook].boxed()
}

fn analysis() -> BoxedStrategy<Value> {
    (
        1..5usize,
        prop::option::of(interval()),
        prop::option::of(0..5i64),
        prop::option::of(0..5i64),
    )
        .prop_flat_map(|(count, interval, failures, inconclusive)| {
            let metrics: Vec<_> = (0..count).map(metric).collect();
            metrics.prop_map(move |metrics| {
                object(vec![
                    ("interval", interval.clone().map(Value::from)),
                    ("failureLimit", failures.map(Value::from)),
                    ("inconclusiveLimit", inconclusive.map(Value::from)),
                    ("metrics", some(metrics)),
                ])
            })
        })
        .boxed()
}

fn metric_names(analysis: &Option<Value>) -> Vec<String> {
    analysis
        .as_ref()
        .and_then(|a| a["metrics"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect()
}

/// One canary step; header routes and mirrors only with a router, gates only with metrics.
fn step(routed: bool, metrics: Vec<String>) -> BoxedStrategy<Value> {
    let mut kinds: Vec<BoxedStrategy<Value>> = vec![
        (0..=100i64).prop_map(|w| json!({"setWeight": w})).boxed(),
        prop::option::of(duration())
            .prop_map(|d| json!({"pause": object(vec![("duration", d.map(Value::from))])}))
            .boxed(),
    ];
    if routed {
        let header = (
            text("[a-z][a-z0-9-]{0,15}"),
            any::<bool>(),
            text("[a-z0-9.^$*]{0,10}"),
        )
            .prop_map(|(name, exact, value)| {
                let key = if exact { "value" } else { "regex" };
                json!({"name": name, key: value})
            });
        kinds.push(
            prop::collection::vec(header, 0..3)
                .prop_map(|m| json!({"setHeaderRoute": {"match": m}}))
                .boxed(),
        );
        kinds.push(
            (0..=100i64)
                .prop_map(|p| json!({"setMirror": {"percent": p}}))
                .boxed(),
        );
    }
    if !metrics.is_empty() {
        let count = metrics.len();
        kinds.push(
            prop::sample::subsequence(metrics, 0..=count)
                .prop_map(|names| {
                    let gate = object(vec![(
                        "metrics",
                        (!names.is_empty()).then(|| Value::from(names)),
                    )]);
                    json!({"analysis": gate})
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(kinds).boxed()
}

/// `rollout` for Microservice `name`, and whether it needs a port (a route does).
fn rollout(name: String) -> BoxedStrategy<(Value, bool)> {
    let common = (
        prop::option::of(int_or_percent()),
        prop::option::of(1..3600i64),
    );
    let rolling = (common.clone(), any::<bool>()).prop_map(|((surge, deadline), explicit)| {
        let rollout = object(vec![
            ("strategy", explicit.then(|| "RollingUpdate".into())),
            ("maxSurge", surge),
            ("progressDeadlineSeconds", deadline.map(Value::from)),
        ]);
        (rollout, false)
    });
    let releasing = (
        common,
        prop::option::of(traffic(name)),
        prop::option::of(analysis()),
        any::<bool>(),
        prop::option::of(0..600i64),
        prop::option::of(0..600i64),
    )
        .prop_flat_map(
            |((surge, deadline), traffic, analysis, canary, delay, auto_promotion)| {
                let names = metric_names(&analysis);
                let steps = prop::collection::vec(step(traffic.is_some(), names.clone()), 0..8);
                let gate =
                    prop::option::of(prop::sample::subsequence(names.clone(), 0..=names.len()));
                (steps, gate).prop_map(move |(steps, gate)| {
                    let routed = traffic.is_some();
                    let (strategy, canary_spec, blue_green) = if canary {
                        let canary = object(vec![
                            ("steps", (!steps.is_empty()).then(|| Value::from(steps))),
                            ("scaleDownDelaySeconds", delay.map(Value::from)),
                        ]);
                        ("Canary", Some(canary), None)
                    } else {
                        let gate = gate.clone().filter(|_| analysis.is_some()).map(|names| {
                            object(vec![(
                                "metrics",
                                (!names.is_empty()).then(|| Value::from(names)),
                            )])
                        });
                        let blue_green = object(vec![
                            ("autoPromotionSeconds", auto_promotion.map(Value::from)),
                            ("scaleDownDelaySeconds", delay.map(Value::from)),
                            ("prePromotionAnalysis", gate),
                        ]);
                        ("BlueGreen", None, Some(blue_green))
                    };
                    let rollout = object(vec![
                        ("strategy", some(strategy)),
                        ("maxSurge", surge.clone()),
                        ("progressDeadlineSeconds", deadline.map(Value::from)),
                        ("traffic", traffic.clone()),
                        ("canary", canary_spec),
                        ("blueGreen", blue_green),
                        ("analysis", analysis.clone()),
                    ]);
                    (rollout, routed)
                })
            },
        );
    prop_oneof![1 => rolling, 4 => releasing].boxed()
}

/// A whole valid Microservice object.
fn valid_microservice() -> BoxedStrategy<Value> {
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
                ),
                (
                    prop::option::of(disruption()),
                    prop::option::of(placement()),
                    prop::option::of(pod_options()),
                ),
            )
        })
        .prop_map(|(first, second, third)| {
            let (name, rollout, image, replicas, autoscaling, ports) = first;
            let (env, env_from, command, args, resources, probes) = second;
            let (disruption, placement, pod) = third;
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
                ("disruption", disruption),
                ("placement", placement),
                ("pod", pod),
                ("rollout", rollout),
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

/// Where `got` lacks or changed what `sent` has (numbers compared as numbers; extra
/// fields in `got`, such as defaults, are fine).
fn differences(sent: &Value, got: &Value, at: &str, found: &mut Vec<String>) {
    match (sent, got) {
        (Value::Object(sent), Value::Object(got)) => {
            for (key, value) in sent {
                match got.get(key) {
                    Some(other) => differences(value, other, &format!("{at}.{key}"), found),
                    None => found.push(format!("{at}.{key} was dropped")),
                }
            }
        }
        (Value::Array(sent), Value::Array(got)) if sent.len() == got.len() => {
            for (i, (a, b)) in sent.iter().zip(got).enumerate() {
                differences(a, b, &format!("{at}[{i}]"), found);
            }
        }
        // serde_json's default float parsing may land one unit in the last place away.
        (Value::Number(a), Value::Number(b))
            if a.as_f64().zip(b.as_f64()).is_some_and(|(a, b)| {
                (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs())
            }) => {}
        (a, b) if a == b => {}
        (a, b) => found.push(format!("{at}: sent {a}, got {b}")),
    }
}

#[tokio::test]
async fn generated_valid_specs_are_accepted_whole() {
    install_crds(&support::client().await).await;
    with_temp_ns(|client, ns| async move {
        let api = api(client, &ns);
        let specs = {
            let mut runner = runner();
            let strategy = valid_microservice();
            (0..VALID_SPECS)
                .map(|_| draw(&mut runner, &strategy))
                .collect::<Vec<_>>()
        };
        let dry_run = PostParams {
            dry_run: true,
            field_manager: None,
        };
        let mut problems = Vec::new();
        let mut features = BTreeMap::<String, usize>::new();
        for (i, sent) in specs.into_iter().enumerate() {
            count_features(&sent["spec"], "spec", &mut features);
            if let Err(e) = serde_json::from_value::<Microservice>(sent.clone()) {
                problems.push(format!("#{i}: Weir cannot read it: {e}\n{sent:#}"));
                continue;
            }
            let object: DynamicObject = serde_json::from_value(sent.clone()).expect("an object");
            match api.create(&dry_run, &object).await {
                Ok(created) => {
                    let got = serde_json::to_value(&created).expect("serializable");
                    let mut found = Vec::new();
                    differences(&sent["spec"], &got["spec"], "spec", &mut found);
                    if !found.is_empty() {
                        problems.push(format!("#{i}: {}\n{sent:#}", found.join("; ")));
                    }
                }
                Err(e) => problems.push(format!("#{i}: refused: {e}\n{sent:#}")),
            }
        }
        assert!(
            problems.is_empty(),
            "{} of {VALID_SPECS} valid specs failed:\n{}",
            problems.len(),
            problems.join("\n\n")
        );
        // The generator reached every corner of the API, each more than once.
        for field in [
            "spec.autoscaling.targetMemoryUtilizationPercentage",
            "spec.ports[].protocol",
            "spec.env[].valueFrom.secretKeyRef",
            "spec.envFrom[].configMapRef",
            "spec.probes.startup.grpc",
            "spec.probes.readiness.httpGet.httpHeaders",
            "spec.disruption.minAvailable",
            "spec.placement.spreadAcross",
            "spec.pod.tolerations[].tolerationSeconds",
            "spec.pod.volumeMounts",
            "spec.pod.containerSecurityContext.capabilities",
            "spec.rollout.maxSurge",
            "spec.rollout.traffic.gatewayAPI.parentRefs[].sectionName",
            "spec.rollout.canary.steps[].setHeaderRoute.match[].regex",
            "spec.rollout.canary.steps[].setMirror",
            "spec.rollout.canary.steps[].analysis.metrics",
            "spec.rollout.canary.steps[].pause.duration",
            "spec.rollout.blueGreen.prePromotionAnalysis",
            "spec.rollout.blueGreen.autoPromotionSeconds",
            "spec.rollout.analysis.metrics[].webhook.timeoutSeconds",
            "spec.rollout.analysis.metrics[].prometheus.address",
            "spec.rollout.analysis.inconclusiveLimit",
        ] {
            assert!(
                features.get(field).is_some_and(|n| *n >= 2),
                "the generated specs hardly reach {field}: {features:#?}"
            );
        }
    })
    .await;
}

/// Counts each field path (arrays as `[]`) the generated specs set.
fn count_features(value: &Value, at: &str, counts: &mut BTreeMap<String, usize>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                let path = format!("{at}.{key}");
                *counts.entry(path.clone()).or_default() += 1;
                count_features(value, &path, counts);
            }
        }
        Value::Array(items) => {
            for item in items {
                count_features(item, &format!("{at}[]"), counts);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Invalid specs

/// What the CRD says about a rule: a schema bound's value, or a CEL rule's message.
#[derive(Clone, Debug)]
enum Rule {
    /// A bound of the schema at a path (`.spec.ports[].port`) by keyword (`maximum`,
    /// `required:name`), and its value.
    Bound {
        path: String,
        keyword: String,
        value: Value,
    },
    Cel(String),
}

/// Every rule of Weir's own fields: the schema under `.spec` and the root, except the
/// Kubernetes types Weir embeds (containers' env, resources, probes, pod settings), whose
/// rules are Kubernetes' own.
fn rules_in_crd() -> Vec<Rule> {
    const EMBEDDED: [&str; 10] = [
        ".spec.env",
        ".spec.envFrom",
        ".spec.resources",
        ".spec.probes",
        ".spec.pod.tolerations",
        ".spec.pod.volumes",
        ".spec.pod.volumeMounts",
        ".spec.pod.securityContext",
        ".spec.pod.containerSecurityContext",
        ".spec.pod.imagePullSecrets",
    ];
    fn embedded(path: &str) -> bool {
        EMBEDDED.iter().any(|e| {
            path == *e || path.starts_with(&format!("{e}.")) || path.starts_with(&format!("{e}["))
        })
    }
    fn walk(schema: &Value, path: &str, rules: &mut Vec<Rule>) {
        if path.starts_with(".status") || path.starts_with(".metadata") || embedded(path) {
            return;
        }
        for keyword in [
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "pattern",
            "enum",
        ] {
            if let Some(value) = schema.get(keyword) {
                rules.push(Rule::Bound {
                    path: path.to_string(),
                    keyword: keyword.to_string(),
                    value: value.clone(),
                });
            }
        }
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().expect("a field name");
            rules.push(Rule::Bound {
                path: path.to_string(),
                keyword: format!("required:{field}"),
                value: Value::Null,
            });
        }
        for rule in schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let message = rule["message"].as_str().expect("every rule has a message");
            rules.push(Rule::Cel(message.to_string()));
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (key, child) in properties {
                walk(child, &format!("{path}.{key}"), rules);
            }
        }
        if schema["items"].is_object() {
            walk(&schema["items"], &format!("{path}[]"), rules);
        }
    }
    let crd = serde_json::to_value(Microservice::crd()).expect("the CRD serializes");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut rules = Vec::new();
    walk(schema, "", &mut rules);
    rules
}

impl Rule {
    fn id(&self) -> String {
        match self {
            Rule::Bound { path, keyword, .. } => format!("{path} {keyword}"),
            Rule::Cel(message) => message.clone(),
        }
    }

    fn number(&self) -> i64 {
        match self {
            Rule::Bound { value, .. } => value.as_f64().expect("a numeric bound") as i64,
            Rule::Cel(_) => panic!("a CEL rule has no bound"),
        }
    }

    /// What the API server says when `field` breaks the rule.
    fn expected(&self, field: &str) -> Vec<String> {
        let Rule::Bound { keyword, value, .. } = self else {
            let Rule::Cel(message) = self else {
                unreachable!()
            };
            return vec![message.clone()];
        };
        let n = value.as_f64().map(|v| v as i64).unwrap_or_default();
        let phrase = match keyword.as_str() {
            "minimum" => format!("should be greater than or equal to {n}"),
            "maximum" => format!("should be less than or equal to {n}"),
            "minLength" => format!("should be at least {n} chars long"),
            "maxLength" => format!("may not be more than {n} bytes"),
            "minItems" => format!("should have at least {n} items"),
            "maxItems" => format!("must have at most {n} items"),
            "pattern" => format!("should match '{}'", value.as_str().unwrap_or_default()),
            "enum" => "Unsupported value".to_string(),
            _ => "Required value".to_string(),
        };
        vec![field.to_string(), phrase]
    }
}

/// One way to break a rule: which rule (its path and keyword, or the start of its CEL
/// message), the field the API server names, what to change on a valid object, and the
/// other CEL rules the same change may also trip.
struct Breach {
    rule: &'static str,
    field: &'static str,
    apply: fn(&mut Value, &Rule, usize),
    also: &'static [&'static str],
}

const fn breach(
    rule: &'static str,
    field: &'static str,
    apply: fn(&mut Value, &Rule, usize),
) -> Breach {
    Breach {
        rule,
        field,
        apply,
        also: &[],
    }
}

fn spec(object: &mut Value) -> &mut Value {
    &mut object["spec"]
}

fn with_port(object: &mut Value) {
    let ports = &mut spec(object)["ports"];
    if ports.as_array().is_none_or(|p| p.is_empty()) {
        *ports = json!([{"name": "http", "port": 80}]);
    }
}

/// A routed canary with one weight step.
fn routed(object: &mut Value) -> &mut Value {
    with_port(object);
    spec(object)["rollout"] = json!({
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": [{"setWeight": 10}]}
    });
    &mut spec(object)["rollout"]
}

/// A canary with one weight step and one metric, `errors`.
fn analysed(object: &mut Value) -> &mut Value {
    spec(object)["rollout"] = json!({
        "strategy": "Canary",
        "canary": {"steps": [{"setWeight": 10}]},
        "analysis": {"metrics": [{"name": "errors", "prometheus": {"query": "up"}, "max": 1}]}
    });
    &mut spec(object)["rollout"]
}

fn blue_green(object: &mut Value) -> &mut Value {
    spec(object)["rollout"] = json!({"strategy": "BlueGreen", "blueGreen": {}});
    &mut spec(object)["rollout"]
}

fn metric_at(object: &mut Value) -> &mut Value {
    &mut analysed(object)["analysis"]["metrics"][0]
}

/// A string of `n` characters that keeps to `unit`'s pattern (`unit` repeated, cut).
fn long(unit: &str, n: usize) -> String {
    unit.repeat(n / unit.len() + 1)[..n].to_string()
}

/// A valid item `i` of the list a `maxItems` breach overfills.
fn items(n: usize, item: impl Fn(usize) -> Value) -> Value {
    Value::from((0..n).map(item).collect::<Vec<_>>())
}

fn breaches() -> Vec<Breach> {
    vec![
        // The object
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
        // Autoscaling
        breach(
            ".spec.autoscaling required:maxReplicas",
            "spec.autoscaling.maxReplicas",
            |o, _, _| {
                spec(o)["autoscaling"] = json!({"targetCpuUtilizationPercentage": 50});
            },
        ),
        breach(
            ".spec.autoscaling.maxReplicas minimum",
            "spec.autoscaling.maxReplicas",
            |o, r, v| {
                spec(o)["autoscaling"] = json!({"maxReplicas": r.number() - 1 - v as i64});
            },
        ),
        breach(
            ".spec.autoscaling.minReplicas minimum",
            "spec.autoscaling.minReplicas",
            |o, r, v| {
                spec(o)["autoscaling"] =
                    json!({"minReplicas": r.number() - 1 - v as i64, "maxReplicas": 3});
            },
        ),
        breach(
            ".spec.autoscaling.targetCpuUtilizationPercentage minimum",
            "spec.autoscaling.targetCpuUtilizationPercentage",
            |o, r, v| {
                spec(o)["autoscaling"] = json!({"maxReplicas": 3, "targetCpuUtilizationPercentage": r.number() - 1 - v as i64});
            },
        ),
        breach(
            ".spec.autoscaling.targetCpuUtilizationPercentage maximum",
            "spec.autoscaling.targetCpuUtilizationPercentage",
            |o, r, v| {
                spec(o)["autoscaling"] = json!({"maxReplicas": 3, "targetCpuUtilizationPercentage": r.number() + 1 + v as i64});
            },
        ),
        breach(
            ".spec.autoscaling.targetMemoryUtilizationPercentage minimum",
            "spec.autoscaling.targetMemoryUtilizationPercentage",
            |o, r, v| {
                spec(o)["autoscaling"] = json!({"maxReplicas": 3, "targetMemoryUtilizationPercentage": r.number() - 1 - v as i64});
            },
        ),
        breach(
            ".spec.autoscaling.targetMemoryUtilizationPercentage maximum",
            "spec.autoscaling.targetMemoryUtilizationPercentage",
            |o, r, v| {
                spec(o)["autoscaling"] = json!({"maxReplicas": 3, "targetMemoryUtilizationPercentage": r.number() + 1 + v as i64});
            },
        ),
        breach(
            "autoscaling.minReplicas must not be greater",
            "",
            |o, _, v| {
                spec(o)["autoscaling"] = json!({"minReplicas": 3 + v, "maxReplicas": 2});
            },
        ),
        breach(
            "set disruption.maxUnavailable or disruption.minAvailable",
            "",
            |o, _, v| {
                spec(o)["disruption"] = json!({"maxUnavailable": v, "minAvailable": "50%"});
            },
        ),
        // Ports
        breach(".spec.ports maxItems", "spec.ports", |o, r, v| {
            let n = r.number() as usize + 1 + v;
            spec(o)["ports"] = items(n, |i| json!({"name": format!("p{i}"), "port": 1000 + i}));
        }),
        Breach {
            also: &["port names must be unique"],
            ..breach(
                ".spec.ports[] required:name",
                "spec.ports[0].name",
                |o, _, _| {
                    spec(o)["ports"] = json!([{"port": 80}]);
                },
            )
        },
        Breach {
            also: &["port numbers must be unique"],
            ..breach(
                ".spec.ports[] required:port",
                "spec.ports[0].port",
                |o, _, _| {
                    spec(o)["ports"] = json!([{"name": "http"}]);
                },
            )
        },
        breach(
            ".spec.ports[].name minLength",
            "spec.ports[0].name",
            |o, _, _| {
                spec(o)["ports"] = json!([{"name": "", "port": 80}]);
            },
        ),
        breach(
            ".spec.ports[].name maxLength",
            "spec.ports[0].name",
            |o, r, v| {
                spec(o)["ports"] =
                    json!([{"name": long("a", r.number() as usize + 1 + v), "port": 80}]);
            },
        ),
        breach(
            ".spec.ports[].name pattern",
            "spec.ports[0].name",
            |o, _, v| {
                let name = ["Http", "-a", "a_b"][v % 3];
                spec(o)["ports"] = json!([{"name": name, "port": 80}]);
            },
        ),
        breach(
            ".spec.ports[].port minimum",
            "spec.ports[0].port",
            |o, r, v| {
                spec(o)["ports"] = json!([{"name": "http", "port": r.number() - 1 - v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].port maximum",
            "spec.ports[0].port",
            |o, r, v| {
                spec(o)["ports"] = json!([{"name": "http", "port": r.number() + 1 + v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].targetPort minimum",
            "spec.ports[0].targetPort",
            |o, r, v| {
                spec(o)["ports"] =
                    json!([{"name": "http", "port": 80, "targetPort": r.number() - 1 - v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].targetPort maximum",
            "spec.ports[0].targetPort",
            |o, r, v| {
                spec(o)["ports"] =
                    json!([{"name": "http", "port": 80, "targetPort": r.number() + 1 + v as i64}]);
            },
        ),
        breach(
            ".spec.ports[].protocol enum",
            "spec.ports[0].protocol",
            |o, _, v| {
                let protocol = ["HTTP", "tcp", "QUIC"][v % 3];
                spec(o)["ports"] = json!([{"name": "http", "port": 80, "protocol": protocol}]);
            },
        ),
        breach("port names must be unique", "", |o, _, v| {
            spec(o)["ports"] =
                json!([{"name": "http", "port": 80}, {"name": "http", "port": 81 + v}]);
        }),
        breach("port numbers must be unique", "", |o, _, v| {
            spec(o)["ports"] =
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
        // Rollout
        breach(
            "rollout.canary is only used with strategy: Canary",
            "",
            |o, _, v| {
                let rollout = analysed(o);
                match v % 3 {
                    0 => rollout["strategy"] = "BlueGreen".into(),
                    1 => rollout["strategy"] = "RollingUpdate".into(),
                    _ => {
                        rollout.as_object_mut().unwrap().remove("strategy");
                    }
                }
            },
        ),
        breach(
            "rollout.blueGreen is only used with strategy: BlueGreen",
            "",
            |o, _, v| {
                let rollout = blue_green(o);
                if v % 2 == 0 {
                    rollout["strategy"] = "RollingUpdate".into();
                } else {
                    rollout.as_object_mut().unwrap().remove("strategy");
                }
            },
        ),
        breach(
            "setHeaderRoute and setMirror steps need rollout.traffic.gatewayAPI",
            "",
            |o, _, v| {
                let rollout = analysed(o);
                rollout["canary"]["steps"] = if v % 2 == 0 {
                    json!([{"setMirror": {"percent": 10}}])
                } else {
                    json!([{"setWeight": 5}, {"setHeaderRoute": {"match": [{"name": "x-group", "value": "beta"}]}}])
                };
            },
        ),
        breach("an analysis step needs rollout.analysis", "", |o, _, v| {
            let rollout = analysed(o);
            rollout.as_object_mut().unwrap().remove("analysis");
            rollout["canary"]["steps"] = if v % 2 == 0 {
                json!([{"analysis": {}}])
            } else {
                json!([{"setWeight": 10}, {"analysis": {"metrics": ["errors"]}}])
            };
        }),
        breach(
            "blueGreen.prePromotionAnalysis needs rollout.analysis",
            "",
            |o, _, _| {
                blue_green(o)["blueGreen"]["prePromotionAnalysis"] = json!({});
            },
        ),
        breach(
            "an analysis step names a metric that rollout.analysis.metrics does not define",
            "",
            |o, _, v| {
                analysed(o)["canary"]["steps"] =
                    json!([{"analysis": {"metrics": ["errors", format!("nope{v}")]}}]);
            },
        ),
        breach(
            ".spec.rollout.strategy enum",
            "spec.rollout.strategy",
            |o, _, v| {
                let strategy = ["YOLO", "canary", "Recreate"][v % 3];
                spec(o)["rollout"] = json!({"strategy": strategy});
            },
        ),
        breach(
            ".spec.rollout.progressDeadlineSeconds minimum",
            "spec.rollout.progressDeadlineSeconds",
            |o, r, v| {
                spec(o)["rollout"] = json!({"progressDeadlineSeconds": r.number() - 1 - v as i64});
            },
        ),
        // Analysis
        breach(
            ".spec.rollout.analysis required:metrics",
            "spec.rollout.analysis.metrics",
            |o, _, _| {
                analysed(o)["analysis"] = json!({"interval": "1s"});
            },
        ),
        breach(
            ".spec.rollout.analysis.failureLimit minimum",
            "spec.rollout.analysis.failureLimit",
            |o, r, v| {
                analysed(o)["analysis"]["failureLimit"] = (r.number() - 1 - v as i64).into();
            },
        ),
        breach(
            ".spec.rollout.analysis.inconclusiveLimit minimum",
            "spec.rollout.analysis.inconclusiveLimit",
            |o, r, v| {
                analysed(o)["analysis"]["inconclusiveLimit"] = (r.number() - 1 - v as i64).into();
            },
        ),
        breach(
            ".spec.rollout.analysis.interval maxLength",
            "spec.rollout.analysis.interval",
            |o, r, v| {
                // Whole `1s` units, so only the length is wrong.
                let n = (r.number() as usize + 2 + v) / 2 * 2;
                analysed(o)["analysis"]["interval"] = long("1s", n).into();
            },
        ),
        breach(
            ".spec.rollout.analysis.interval pattern",
            "spec.rollout.analysis.interval",
            |o, _, v| {
                analysed(o)["analysis"]["interval"] = ["soon", "30", "1d"][v % 3].into();
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics minItems",
            "spec.rollout.analysis.metrics",
            |o, _, _| {
                analysed(o)["analysis"]["metrics"] = json!([]);
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics maxItems",
            "spec.rollout.analysis.metrics",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                analysed(o)["analysis"]["metrics"] = items(
                    n,
                    |i| json!({"name": format!("m{i}"), "webhook": {"url": "http://smoke.svc"}}),
                );
            },
        ),
        breach("metric names must be unique", "", |o, _, v| {
            let metric =
                json!({"name": "errors", "webhook": {"url": format!("http://smoke{v}.svc")}});
            analysed(o)["analysis"]["metrics"]
                .as_array_mut()
                .unwrap()
                .push(metric);
        }),
        Breach {
            also: &["metric names must be unique"],
            ..breach(
                ".spec.rollout.analysis.metrics[] required:name",
                "spec.rollout.analysis.metrics[0].name",
                |o, _, _| {
                    metric_at(o).as_object_mut().unwrap().remove("name");
                },
            )
        },
        breach(
            ".spec.rollout.analysis.metrics[].name minLength",
            "spec.rollout.analysis.metrics[0].name",
            |o, _, _| {
                metric_at(o)["name"] = "".into();
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].name maxLength",
            "spec.rollout.analysis.metrics[0].name",
            |o, r, v| {
                metric_at(o)["name"] = long("m", r.number() as usize + 1 + v).into();
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].prometheus required:query",
            "spec.rollout.analysis.metrics[0].prometheus.query",
            |o, _, _| {
                metric_at(o)["prometheus"] = json!({"address": "http://prometheus:9090"});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].prometheus.address maxLength",
            "spec.rollout.analysis.metrics[0].prometheus.address",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                metric_at(o)["prometheus"]["address"] =
                    format!("http://{}", long("a", n - 7)).into();
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].prometheus.query minLength",
            "spec.rollout.analysis.metrics[0].prometheus.query",
            |o, _, _| {
                metric_at(o)["prometheus"]["query"] = "".into();
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].prometheus.query maxLength",
            "spec.rollout.analysis.metrics[0].prometheus.query",
            |o, r, v| {
                metric_at(o)["prometheus"]["query"] =
                    long("up+", r.number() as usize + 1 + v).into();
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].webhook required:url",
            "spec.rollout.analysis.metrics[0].webhook.url",
            |o, _, _| {
                *metric_at(o) = json!({"name": "smoke", "webhook": {"timeoutSeconds": 5}});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].webhook.timeoutSeconds minimum",
            "spec.rollout.analysis.metrics[0].webhook.timeoutSeconds",
            |o, r, v| {
                *metric_at(o) = json!({"name": "smoke", "webhook": {"url": "http://smoke.svc", "timeoutSeconds": r.number() - 1 - v as i64}});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].webhook.timeoutSeconds maximum",
            "spec.rollout.analysis.metrics[0].webhook.timeoutSeconds",
            |o, r, v| {
                *metric_at(o) = json!({"name": "smoke", "webhook": {"url": "http://smoke.svc", "timeoutSeconds": r.number() + 1 + v as i64}});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].webhook.url minLength",
            "spec.rollout.analysis.metrics[0].webhook.url",
            |o, _, _| {
                *metric_at(o) = json!({"name": "smoke", "webhook": {"url": ""}});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].webhook.url maxLength",
            "spec.rollout.analysis.metrics[0].webhook.url",
            |o, r, v| {
                let url = format!("https://{}", long("a", r.number() as usize - 7 + v));
                *metric_at(o) = json!({"name": "smoke", "webhook": {"url": url}});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].webhook.url pattern",
            "spec.rollout.analysis.metrics[0].webhook.url",
            |o, _, v| {
                let url = ["ftp://smoke", "smoke.svc/run", "HTTP://smoke"][v % 3];
                *metric_at(o) = json!({"name": "smoke", "webhook": {"url": url}});
            },
        ),
        breach(
            "a metric sets exactly one of prometheus or webhook",
            "",
            |o, _, v| {
                let metric = metric_at(o);
                if v % 2 == 0 {
                    metric["webhook"] = json!({"url": "http://smoke.svc"});
                } else {
                    metric.as_object_mut().unwrap().remove("prometheus");
                }
            },
        ),
        breach(
            "a prometheus metric needs a min or a max bound",
            "",
            |o, _, _| {
                metric_at(o).as_object_mut().unwrap().remove("max");
            },
        ),
        breach(
            "a metric's min must not be greater than its max",
            "",
            |o, _, v| {
                let metric = metric_at(o);
                metric["min"] = (2.5 + v as f64).into();
                metric["max"] = 2.0.into();
            },
        ),
        // Blue/green
        breach(
            ".spec.rollout.blueGreen.autoPromotionSeconds minimum",
            "spec.rollout.blueGreen.autoPromotionSeconds",
            |o, r, v| {
                blue_green(o)["blueGreen"]["autoPromotionSeconds"] =
                    (r.number() - 1 - v as i64).into();
            },
        ),
        breach(
            ".spec.rollout.blueGreen.scaleDownDelaySeconds minimum",
            "spec.rollout.blueGreen.scaleDownDelaySeconds",
            |o, r, v| {
                blue_green(o)["blueGreen"]["scaleDownDelaySeconds"] =
                    (r.number() - 1 - v as i64).into();
            },
        ),
        breach(
            ".spec.rollout.blueGreen.prePromotionAnalysis.metrics maxItems",
            "spec.rollout.blueGreen.prePromotionAnalysis.metrics",
            |o, r, v| {
                let names = vec!["errors"; r.number() as usize + 1 + v];
                let rollout = analysed(o);
                rollout.as_object_mut().unwrap().remove("canary");
                rollout["strategy"] = "BlueGreen".into();
                rollout["blueGreen"] = json!({"prePromotionAnalysis": {"metrics": names}});
            },
        ),
        // Canary
        breach(
            ".spec.rollout.canary.scaleDownDelaySeconds minimum",
            "spec.rollout.canary.scaleDownDelaySeconds",
            |o, r, v| {
                analysed(o)["canary"]["scaleDownDelaySeconds"] = (r.number() - 1 - v as i64).into();
            },
        ),
        breach(
            ".spec.rollout.canary.steps maxItems",
            "spec.rollout.canary.steps",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                analysed(o)["canary"]["steps"] = items(n, |i| json!({"setWeight": i % 101}));
            },
        ),
        breach("each canary step sets exactly one of", "", |o, _, v| {
            analysed(o)["canary"]["steps"] = match v % 3 {
                0 => json!([{"setWeight": 10, "pause": {}}]),
                1 => json!([{}]),
                _ => json!([{"setWeight": 10}, {"analysis": {}, "pause": {"duration": "1m"}}]),
            };
        }),
        breach(
            ".spec.rollout.canary.steps[].analysis.metrics maxItems",
            "spec.rollout.canary.steps[0].analysis.metrics",
            |o, r, v| {
                let names = vec!["errors"; r.number() as usize + 1 + v];
                analysed(o)["canary"]["steps"] = json!([{"analysis": {"metrics": names}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].pause.duration maxLength",
            "spec.rollout.canary.steps[0].pause.duration",
            |o, r, v| {
                let n = (r.number() as usize + 2 + v) / 2 * 2;
                analysed(o)["canary"]["steps"] = json!([{"pause": {"duration": long("1m", n)}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].pause.duration pattern",
            "spec.rollout.canary.steps[0].pause.duration",
            |o, _, v| {
                let duration = ["soon", "1.5s", "10"][v % 3];
                analysed(o)["canary"]["steps"] = json!([{"pause": {"duration": duration}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setHeaderRoute.match maxItems",
            "spec.rollout.canary.steps[0].setHeaderRoute.match",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                routed(o)["canary"]["steps"] = json!([{"setHeaderRoute": {
                    "match": items(n, |i| json!({"name": format!("x-h{i}"), "value": "on"}))
                }}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setHeaderRoute.match[] required:name",
            "spec.rollout.canary.steps[0].setHeaderRoute.match[0].name",
            |o, _, _| {
                routed(o)["canary"]["steps"] =
                    json!([{"setHeaderRoute": {"match": [{"value": "beta"}]}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setHeaderRoute.match[].name minLength",
            "spec.rollout.canary.steps[0].setHeaderRoute.match[0].name",
            |o, _, _| {
                routed(o)["canary"]["steps"] =
                    json!([{"setHeaderRoute": {"match": [{"name": "", "value": "beta"}]}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setHeaderRoute.match[].name maxLength",
            "spec.rollout.canary.steps[0].setHeaderRoute.match[0].name",
            |o, r, v| {
                let name = long("x", r.number() as usize + 1 + v);
                routed(o)["canary"]["steps"] =
                    json!([{"setHeaderRoute": {"match": [{"name": name, "value": "beta"}]}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setHeaderRoute.match[].name pattern",
            "spec.rollout.canary.steps[0].setHeaderRoute.match[0].name",
            |o, _, v| {
                let name = ["user group", "x:y", "é"][v % 3];
                routed(o)["canary"]["steps"] =
                    json!([{"setHeaderRoute": {"match": [{"name": name, "value": "beta"}]}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setHeaderRoute.match[].regex maxLength",
            "spec.rollout.canary.steps[0].setHeaderRoute.match[0].regex",
            |o, r, v| {
                let regex = long("a*", r.number() as usize + 1 + v);
                routed(o)["canary"]["steps"] =
                    json!([{"setHeaderRoute": {"match": [{"name": "x-group", "regex": regex}]}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setHeaderRoute.match[].value maxLength",
            "spec.rollout.canary.steps[0].setHeaderRoute.match[0].value",
            |o, r, v| {
                let value = long("b", r.number() as usize + 1 + v);
                routed(o)["canary"]["steps"] =
                    json!([{"setHeaderRoute": {"match": [{"name": "x-group", "value": value}]}}]);
            },
        ),
        breach(
            "pause.duration must be at most 8784h (a year)",
            "",
            |o, _, v| {
                let duration = ["8785h", "527041m", "8784h1ms"][v % 3];
                analysed(o)["canary"]["steps"] = json!([{"pause": {"duration": duration}}]);
            },
        ),
        breach("analysis.interval must be at most 24h", "", |o, _, v| {
            analysed(o)["analysis"]["interval"] = ["25h", "1441m", "24h1ms"][v % 3].into();
        }),
        breach(
            "a header match sets exactly one of value or regex",
            "",
            |o, _, v| {
                let header = if v % 2 == 0 {
                    json!({"name": "x-group", "value": "beta", "regex": "b.*"})
                } else {
                    json!({"name": "x-group"})
                };
                routed(o)["canary"]["steps"] = json!([{"setHeaderRoute": {"match": [header]}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setMirror required:percent",
            "spec.rollout.canary.steps[0].setMirror.percent",
            |o, _, _| {
                routed(o)["canary"]["steps"] = json!([{"setMirror": {}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setMirror.percent minimum",
            "spec.rollout.canary.steps[0].setMirror.percent",
            |o, r, v| {
                routed(o)["canary"]["steps"] =
                    json!([{"setMirror": {"percent": r.number() - 1 - v as i64}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setMirror.percent maximum",
            "spec.rollout.canary.steps[0].setMirror.percent",
            |o, r, v| {
                routed(o)["canary"]["steps"] =
                    json!([{"setMirror": {"percent": r.number() + 1 + v as i64}}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setWeight minimum",
            "spec.rollout.canary.steps[0].setWeight",
            |o, r, v| {
                analysed(o)["canary"]["steps"] = json!([{"setWeight": r.number() - 1 - v as i64}]);
            },
        ),
        breach(
            ".spec.rollout.canary.steps[].setWeight maximum",
            "spec.rollout.canary.steps[0].setWeight",
            |o, r, v| {
                analysed(o)["canary"]["steps"] = json!([{"setWeight": r.number() + 1 + v as i64}]);
            },
        ),
        // Traffic
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

#[tokio::test]
async fn specs_breaking_one_rule_are_refused_with_its_message_and_nothing_is_stored() {
    install_crds(&support::client().await).await;
    with_temp_ns(|client, ns| async move {
        let api = api(client, &ns);
        let rules = rules_in_crd();
        let cel: Vec<String> = rules
            .iter()
            .filter_map(|r| match r {
                Rule::Cel(message) => Some(message.clone()),
                Rule::Bound { .. } => None,
            })
            .collect();
        let breaches = breaches();

        // Every rule in the CRD is broken by exactly one breach, and every breach names a
        // rule that exists.
        let find = |breach: &Breach| -> Option<Rule> {
            rules
                .iter()
                .find(|r| match r {
                    Rule::Cel(message) => message.starts_with(breach.rule),
                    Rule::Bound { .. } => r.id() == breach.rule,
                })
                .cloned()
        };
        let stale: Vec<_> = breaches
            .iter()
            .filter(|b| find(b).is_none())
            .map(|b| b.rule)
            .collect();
        assert!(
            stale.is_empty(),
            "breaches of rules the CRD does not have: {stale:#?}"
        );
        let covered: Vec<String> = breaches
            .iter()
            .filter_map(|b| find(b).map(|r| r.id()))
            .collect();
        let uncovered: Vec<_> = rules
            .iter()
            .map(Rule::id)
            .filter(|id| !covered.contains(id))
            .collect();
        assert!(
            uncovered.is_empty(),
            "rules of the CRD that no generated spec breaks (add a breach for each): {uncovered:#?}"
        );

        // Each breach on a different valid Microservice.
        let cases = {
            let mut runner = runner();
            let strategy = valid_microservice();
            let mut cases = Vec::new();
            for (b, breach) in breaches.iter().enumerate() {
                let rule = find(breach).expect("checked above");
                for variant in 0..VARIANTS {
                    let mut object = draw(&mut runner, &strategy);
                    object["metadata"]["name"] = format!("breach-{b}-{variant}").into();
                    (breach.apply)(&mut object, &rule, variant);
                    cases.push((breach, rule.clone(), variant, object));
                }
            }
            cases
        };
        let mut problems = Vec::new();
        let sent = cases.len();
        for (breach, rule, variant, object) in cases {
            {
                let what = format!("{} (variant {variant})", rule.id());
                let created =
                    serde_json::from_value::<DynamicObject>(object.clone()).expect("an object");
                let message = match api.create(&PostParams::default(), &created).await {
                    Ok(_) => {
                        problems.push(format!("{what}: accepted\n{object:#}"));
                        continue;
                    }
                    Err(kube::Error::Api(status)) if status.code == 422 => status.message,
                    Err(e) => {
                        problems.push(format!("{what}: refused, but not with 422: {e}"));
                        continue;
                    }
                };
                let expected = rule.expected(breach.field);
                let missing: Vec<_> = expected.iter().filter(|e| !message.contains(*e)).collect();
                if !missing.is_empty() {
                    problems.push(format!("{what}: {missing:?} not in {message:?}"));
                }
                // Only the rule at hand (and what the same change must also trip) failed.
                let other: Vec<_> = cel
                    .iter()
                    .filter(|m| message.contains(m.as_str()) && !expected.contains(m))
                    .filter(|m| !breach.also.iter().any(|a| m.starts_with(a)))
                    .collect();
                if !other.is_empty() {
                    problems.push(format!(
                        "{what}: other rules failed too: {other:?} in {message:?}"
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{} of {sent} invalid specs were not refused as they should be:\n{}",
            problems.len(),
            problems.join("\n")
        );
        let stored = api.list(&ListParams::default()).await.expect("list");
        assert!(
            stored.items.is_empty(),
            "refused specs were stored: {:?}",
            stored
                .items
                .iter()
                .map(|o| o.metadata.name.clone())
                .collect::<Vec<_>>()
        );
    })
    .await;
}
