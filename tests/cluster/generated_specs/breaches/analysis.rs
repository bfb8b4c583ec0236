//! Breaches of the rules on analysis: metrics, their sources and bounds.

use serde_json::json;

use super::{Breach, analysed, breach, items, long, metric_at};

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(
            ".spec.rollout.analysis.metrics[].onFailure enum",
            "spec.rollout.analysis.metrics[0].onFailure",
            |o, _, v| {
                metric_at(o)["onFailure"] = ["record", "Ignore", "hold"][v % 3].into();
            },
        ),
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
            "a metric sets exactly one of prometheus, webhook, external or templateRef",
            "",
            |o, _, v| {
                let metric = metric_at(o);
                match v % 3 {
                    0 => metric["webhook"] = json!({"url": "http://smoke.svc"}),
                    1 => metric["templateRef"] = json!("error-rate"),
                    _ => {
                        metric.as_object_mut().unwrap().remove("prometheus");
                    }
                }
            },
        ),
        breach(
            "an external metric needs a min or a max bound, or compare",
            "",
            |o, _, v| {
                let slot = ["{{candidateSlot}}", "blue", "a"][v % 3];
                let selector = json!({ "slot": slot });
                *metric_at(o) = json!({"name": "queue",
                    "external": {"metric": "queue_depth", "selector": selector}});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].external required:metric",
            "spec.rollout.analysis.metrics[0].external.metric",
            |o, _, _| {
                *metric_at(o) =
                    json!({"name": "queue", "external": {"selector": {"a": "b"}}, "max": 1});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].external.metric minLength",
            "spec.rollout.analysis.metrics[0].external.metric",
            |o, _, _| {
                *metric_at(o) = json!({"name": "queue", "external": {"metric": ""}, "max": 1});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].external.metric maxLength",
            "spec.rollout.analysis.metrics[0].external.metric",
            |o, r, v| {
                let metric = long("q", r.number() as usize + 1 + v);
                *metric_at(o) = json!({"name": "queue", "external": {"metric": metric}, "max": 1});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].prometheus.credentials minLength",
            "spec.rollout.analysis.metrics[0].prometheus.credentials",
            |o, _, _| {
                metric_at(o)["prometheus"]["credentials"] = json!("");
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].prometheus.credentials maxLength",
            "spec.rollout.analysis.metrics[0].prometheus.credentials",
            |o, r, v| {
                metric_at(o)["prometheus"]["credentials"] =
                    long("a", r.number() as usize + 1 + v).into();
            },
        ),
        breach(
            "a metric's args are for its templateRef: set templateRef or remove args",
            "",
            |o, _, v| {
                metric_at(o)["args"] = json!({"window": format!("{}m", v + 1)});
            },
        ),
        breach(
            "an argument's value must be at most 1024 characters",
            "",
            |o, _, v| {
                *metric_at(o) = json!({"name": "m", "templateRef": "error-rate",
                    "args": {"window": long("a", 1025 + v)}});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].templateRef minLength",
            "spec.rollout.analysis.metrics[0].templateRef",
            |o, _, _| {
                *metric_at(o) = json!({"name": "m", "templateRef": ""});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].templateRef maxLength",
            "spec.rollout.analysis.metrics[0].templateRef",
            |o, r, v| {
                let name = long("a", r.number() as usize + 1 + v);
                *metric_at(o) = json!({"name": "m", "templateRef": name});
            },
        ),
        breach(
            "a prometheus metric needs a min or a max bound, or compare",
            "",
            |o, _, _| {
                metric_at(o).as_object_mut().unwrap().remove("max");
            },
        ),
        breach(
            "compare runs the metric's query on both versions: it needs prometheus, external or a templateRef, not a webhook",
            "",
            |o, _, v| {
                let limit = format!("{}%", v + 1);
                *metric_at(o) = json!({"name": "smoke", "webhook": {"url": "http://smoke.svc"},
                    "compare": {"maxIncrease": limit}});
            },
        ),
        breach(
            "compare sets maxIncrease, maxDecrease or both",
            "",
            |o, _, _| {
                metric_at(o)["compare"] = json!({});
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].compare.maxIncrease pattern",
            "spec.rollout.analysis.metrics[0].compare.maxIncrease",
            |o, _, v| {
                let limit = ["ten%", "-1", "1%%"][v % 3];
                metric_at(o)["compare"] = json!({ "maxIncrease": limit });
            },
        ),
        breach(
            ".spec.rollout.analysis.metrics[].compare.maxDecrease pattern",
            "spec.rollout.analysis.metrics[0].compare.maxDecrease",
            |o, _, v| {
                let limit = ["5 %", "0.5.1", "%"][v % 3];
                metric_at(o)["compare"] = json!({ "maxDecrease": limit });
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
    ]
}
