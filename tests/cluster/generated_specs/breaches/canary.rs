//! Breaches of the rules on canary steps.

use serde_json::json;

use super::{Breach, analysed, breach, items, long, routed};

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(
            ".spec.rollout.canary.stableScale enum",
            "spec.rollout.canary.stableScale",
            |o, _, v| {
                routed(o)["canary"]["stableScale"] = ["dynamic", "Half", "None"][v % 3].into();
            },
        ),
        breach(
            "canary.stableScale: Dynamic needs rollout.traffic.gatewayAPI",
            "",
            |o, _, v| {
                let rollout = analysed(o);
                rollout["canary"]["stableScale"] = "Dynamic".into();
                if v % 2 == 1 {
                    rollout["canary"]["steps"] = json!([{"setWeight": 20}, {"analysis": {}}]);
                }
            },
        ),
        breach(
            ".spec.rollout.canary.postPromotionAnalysis required:duration",
            "spec.rollout.canary.postPromotionAnalysis.duration",
            |o, _, v| {
                let names = vec!["errors"; v % 2];
                analysed(o)["canary"]["postPromotionAnalysis"] = json!({ "metrics": names });
            },
        ),
        breach(
            ".spec.rollout.canary.postPromotionAnalysis.duration maxLength",
            "spec.rollout.canary.postPromotionAnalysis.duration",
            |o, r, v| {
                // Whole `1m` units, so only the length is wrong.
                let n = (r.number() as usize + 2 + v) / 2 * 2;
                analysed(o)["canary"]["postPromotionAnalysis"] = json!({"duration": long("1m", n)});
            },
        ),
        breach(
            ".spec.rollout.canary.postPromotionAnalysis.duration pattern",
            "spec.rollout.canary.postPromotionAnalysis.duration",
            |o, _, v| {
                let duration = ["a week", "1d", "5"][v % 3];
                analysed(o)["canary"]["postPromotionAnalysis"] = json!({ "duration": duration });
            },
        ),
        breach(
            ".spec.rollout.canary.postPromotionAnalysis.metrics maxItems",
            "spec.rollout.canary.postPromotionAnalysis.metrics",
            |o, r, v| {
                let names = vec!["errors"; r.number() as usize + 1 + v];
                analysed(o)["canary"]["postPromotionAnalysis"] =
                    json!({"duration": "5m", "metrics": names});
            },
        ),
        breach(
            "postPromotionAnalysis.duration must be at most 168h (a week)",
            "",
            |o, _, v| {
                let duration = ["169h", "10081m", "168h1ms"][v % 3];
                analysed(o)["canary"]["postPromotionAnalysis"] = json!({ "duration": duration });
            },
        ),
        breach(
            ".spec.rollout.canary.minPods minimum",
            "spec.rollout.canary.minPods",
            |o, r, v| {
                routed(o)["canary"]["minPods"] = (r.number() - 1 - v as i64).into();
            },
        ),
        breach(
            ".spec.rollout.canary.minPods maximum",
            "spec.rollout.canary.minPods",
            |o, r, v| {
                routed(o)["canary"]["minPods"] = (r.number() + 1 + v as i64).into();
            },
        ),
        breach(
            "canary.minPods needs rollout.traffic.gatewayAPI",
            "",
            |o, _, v| {
                let rollout = analysed(o);
                rollout["canary"]["minPods"] = (1 + v as i64).into();
            },
        ),
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
    ]
}
