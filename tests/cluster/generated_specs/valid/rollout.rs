//! The rollout: traffic, analysis, canary steps, blue/green.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{dns_label, duration, int_or_percent, interval, object, some, string_map, text};

/// `rollout.traffic` for Microservice `name`: Gateways, or its own Service (a mesh).
pub fn traffic(name: String) -> BoxedStrategy<Value> {
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
        prop::option::of(prop::collection::vec(route_rule(), 1..3)),
        prop::option::of(prop::option::of(prop::collection::vec(grpc_rule(), 1..3))),
    )
        .prop_map(|(parents, hostnames, rules, grpc)| {
            // A third of the routes are GRPCRoutes, half of those with rules of their own.
            let (kind, rules, grpc_rules) = match grpc {
                Some(grpc_rules) => (some("GRPCRoute"), None, grpc_rules),
                None => (rules.as_ref().map(|_| "HTTPRoute".into()), rules, None),
            };
            json!({"gatewayAPI": object(vec![
                ("parentRefs", some(parents)),
                ("hostnames", (!hostnames.is_empty()).then(|| Value::from(hostnames))),
                ("kind", kind),
                ("rules", rules.map(Value::from)),
                ("grpcRules", grpc_rules.map(Value::from)),
            ])})
        })
        .boxed()
}

/// A GRPCRoute rule: a service (and maybe a method), maybe a header and a header modifier.
fn grpc_rule() -> impl Strategy<Value = Value> {
    (
        text("[a-z]{1,8}\\.[A-Z][a-z]{1,8}"),
        prop::option::of(text("[A-Z][a-z]{1,8}")),
        prop::option::of(text("x-[a-z]{1,8}")),
    )
        .prop_map(|(service, method, header)| {
            let matched = object(vec![
                (
                    "method",
                    Some(object(vec![
                        ("service", some(service)),
                        ("method", method.map(Value::from)),
                    ])),
                ),
                (
                    "headers",
                    header.as_ref().map(|h| json!([{"name": h, "value": "1"}])),
                ),
            ]);
            object(vec![
                ("matches", some(json!([matched]))),
                (
                    "filters",
                    header.map(|h| {
                        json!([{"type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"set": [{"name": h, "value": "2"}]}}])
                    }),
                ),
            ])
        })
}

/// A route rule of Gateway API's own shapes: a path, maybe a header modifier and timeouts.
fn route_rule() -> impl Strategy<Value = Value> {
    (
        text("/[a-z]{1,8}(/[a-z]{1,8})?"),
        prop::option::of(text("x-[a-z]{1,8}")),
        prop::option::of(1..60i64),
    )
        .prop_map(|(path, header, seconds)| {
            object(vec![
                (
                    "matches",
                    some(json!([{"path": {"type": "PathPrefix", "value": path}}])),
                ),
                (
                    "filters",
                    header.map(|h| {
                        json!([{"type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"set": [{"name": h, "value": "weir"}]}}])
                    }),
                ),
                (
                    "timeouts",
                    seconds.map(|s| json!({"request": format!("{s}s")})),
                ),
            ])
        })
}

/// Bounds of a metric: (min, max) with min <= max; a Prometheus metric has at least one.
pub fn bounds(prometheus: bool) -> BoxedStrategy<(Option<f64>, Option<f64>)> {
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

pub fn metric(index: usize) -> BoxedStrategy<Value> {
    let name = text("[a-z]{1,10}").prop_map(move |n| format!("m{index}-{n}"));
    let prometheus = (
        name.clone(),
        prop::option::of(text("https?://prometheus\\.[a-z]{1,8}(\\.svc)?:9090")),
        text("[a-z_]{1,20}\\{[a-z]{1,5}=\"[a-z{}]{1,12}\"\\}"),
        bounds(true),
        (prop::option::of(dns_label(20)), prop::option::of(compare())),
    )
        .prop_map(
            |(name, address, query, (min, max), (credentials, compare))| {
                object(vec![
                    ("name", some(name)),
                    (
                        "prometheus",
                        some(object(vec![
                            ("address", address.map(Value::from)),
                            ("credentials", credentials.map(Value::from)),
                            ("query", some(query)),
                        ])),
                    ),
                    ("compare", compare),
                    ("min", min.map(Value::from)),
                    ("max", max.map(Value::from)),
                ])
            },
        );
    let templated = (
        name.clone(),
        dns_label(40),
        prop::option::of(string_map("[a-z_]{1,8}", "[a-z0-9]{1,6}")),
        bounds(false),
        prop::option::of(compare()),
    )
        .prop_map(|(name, template, args, (min, max), compare)| {
            object(vec![
                ("name", some(name)),
                ("templateRef", some(template)),
                ("args", args),
                ("compare", compare),
                ("min", min.map(Value::from)),
                ("max", max.map(Value::from)),
            ])
        });
    let webhook = (
        name.clone(),
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
    let external = (
        name,
        dns_label(30),
        prop::option::of(string_map("[a-z]{1,8}", "[a-z0-9{}]{1,12}")),
        bounds(true),
    )
        .prop_map(|(name, metric, selector, (min, max))| {
            object(vec![
                ("name", some(name)),
                (
                    "external",
                    some(object(vec![
                        ("metric", some(metric)),
                        ("selector", selector),
                    ])),
                ),
                ("min", min.map(Value::from)),
                ("max", max.map(Value::from)),
            ])
        });
    let on_failure = prop::option::of(prop_oneof![Just("Abort"), Just("Hold"), Just("Record")]);
    (
        prop_oneof![prometheus, webhook, templated, external],
        on_failure,
    )
        .prop_map(|(mut metric, on_failure)| {
            if let Some(on_failure) = on_failure {
                metric["onFailure"] = on_failure.into();
            }
            metric
        })
        .boxed()
}

/// Limits against the stable version: a percentage or an absolute difference.
fn compare() -> impl Strategy<Value = Value> {
    let limit = || text("[0-9]{1,3}(\\.[0-9]{1,2})?%?");
    (
        prop::option::of(limit()),
        prop::option::of(limit()),
        any::<bool>(),
    )
        .prop_map(|(increase, decrease, both)| {
            let increase = increase.or_else(|| (!both).then(|| "10%".to_string()));
            object(vec![
                ("maxIncrease", increase.map(Value::from)),
                (
                    "maxDecrease",
                    decrease
                        .or_else(|| both.then(|| "0.01".into()))
                        .map(Value::from),
                ),
            ])
        })
}

pub fn analysis() -> BoxedStrategy<Value> {
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

/// Subscriptions of the release's moments to sinks.
fn notify() -> impl Strategy<Value = Value> {
    let moments = ["Started", "Paused", "Promoted", "Aborted", "AnalysisFailed"];
    let subscription = (
        prop::sample::subsequence(moments.to_vec(), 1..=5),
        dns_label(20),
    )
        .prop_map(|(on, sink)| json!({"moments": on, "sink": sink}));
    prop::collection::vec(subscription, 1..4).prop_map(Value::from)
}

/// Release windows: some days (or every day), a start and an end, maybe a time zone.
fn windows() -> impl Strategy<Value = Value> {
    let week = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let clock = || text("([01][0-9]|2[0-3]):[0-5][0-9]");
    let zone = prop_oneof![
        Just("UTC"),
        Just("Europe/Berlin"),
        Just("America/Argentina/Buenos_Aires"),
        Just("America/Port-au-Prince"),
        Just("Etc/GMT+5"),
    ];
    let window = (
        prop::sample::subsequence(week.to_vec(), 0..=7).prop_shuffle(),
        clock(),
        clock(),
        prop::option::of(zone),
    )
        .prop_map(|(days, start, end, zone)| {
            object(vec![
                ("days", (!days.is_empty()).then(|| Value::from(days))),
                ("start", some(start)),
                ("end", some(end)),
                ("timeZone", zone.map(Value::from)),
            ])
        });
    prop::collection::vec(window, 1..4).prop_map(Value::from)
}

/// A release group, and the members released before this one.
fn group() -> impl Strategy<Value = (String, Vec<String>)> {
    (dns_label(63), prop::collection::vec(dns_label(40), 0..4))
}

/// Analysis after the promotion, within the week admission allows, on some of `metrics`.
fn post_promotion(metrics: Vec<String>) -> impl Strategy<Value = Value> {
    let count = metrics.len();
    (
        text("([1-9][0-9]{0,1}(ms|s|m)){1,2}|[1-9][0-9]{0,1}h([1-9][0-9]?m)?"),
        prop::sample::subsequence(metrics, 0..=count),
    )
        .prop_map(|(duration, names)| {
            object(vec![
                ("duration", some(duration)),
                ("metrics", (!names.is_empty()).then(|| Value::from(names))),
            ])
        })
}

pub fn metric_names(analysis: &Option<Value>) -> Vec<String> {
    analysis
        .as_ref()
        .and_then(|a| a["metrics"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect()
}

/// One canary step; header routes and mirrors only with a router, gates only with metrics.
pub fn step(routed: bool, metrics: Vec<String>) -> BoxedStrategy<Value> {
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
pub fn rollout(name: String) -> BoxedStrategy<(Value, bool)> {
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
                let track = prop::option::of((
                    prop::option::of(any::<bool>()),
                    prop::option::of(any::<bool>()),
                ));
                // Analysis after the promotion only with the metrics to run.
                let post = if analysis.is_some() {
                    prop::option::of(post_promotion(names.clone())).boxed()
                } else {
                    Just(None).boxed()
                };
                let release = (
                    prop::option::of(windows()),
                    prop::option::of(group()),
                    post,
                    any::<bool>(),
                );
                (steps, gate, prop::option::of(notify()), track, release).prop_map(
                    move |(steps, gate, notify, track, release)| {
                        let (windows, group, post, dynamic) = release;
                        let routed = traffic.is_some();
                        let (group, after) = match group {
                            Some((group, after)) => (
                                Some(Value::from(group)),
                                (!after.is_empty()).then(|| Value::from(after)),
                            ),
                            None => (None, None),
                        };
                        let (strategy, canary_spec, blue_green) = if canary {
                            // Half the routed canaries run a floor of pods.
                            let min_pods =
                                delay.filter(|d| routed && d % 2 == 0).map(|d| d % 5 + 1);
                            // A stable version that shrinks only behind a router.
                            let stable_scale = auto_promotion
                                .map(|_| if dynamic && routed { "Dynamic" } else { "Full" });
                            let canary = object(vec![
                                ("steps", (!steps.is_empty()).then(|| Value::from(steps))),
                                ("scaleDownDelaySeconds", delay.map(Value::from)),
                                ("minPods", min_pods.map(Value::from)),
                                ("stableScale", stable_scale.map(Value::from)),
                                ("postPromotionAnalysis", post),
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
                                ("postPromotionAnalysis", post),
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
                            ("notify", notify),
                            ("windows", windows),
                            ("group", group),
                            ("after", after),
                            (
                                "trackConfig",
                                track.map(|(config_maps, secrets)| {
                                    object(vec![
                                        ("configMaps", config_maps.map(Value::from)),
                                        ("secrets", secrets.map(Value::from)),
                                    ])
                                }),
                            ),
                        ]);
                        (rollout, routed)
                    },
                )
            },
        );
    prop_oneof![1 => rolling, 4 => releasing].boxed()
}
