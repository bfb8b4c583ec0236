//! Breaches of the rules on the rollout as a whole.

use serde_json::json;

use super::{Breach, analysed, blue_green, breach, spec};

pub fn breaches() -> Vec<Breach> {
    vec![
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
            "postPromotionAnalysis needs rollout.analysis with the metrics to run",
            "",
            |o, _, v| {
                let rollout = if v % 2 == 0 {
                    &mut analysed(o)["canary"]
                } else {
                    &mut blue_green(o)["blueGreen"]
                };
                rollout["postPromotionAnalysis"] = json!({"duration": format!("{}m", v + 1)});
                let rollout = &mut spec(o)["rollout"];
                rollout.as_object_mut().unwrap().remove("analysis");
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
    ]
}

/// A valid subscription to `sink`.
fn subscription(sink: &str) -> serde_json::Value {
    json!({"moments": ["Started", "Aborted"], "sink": sink})
}

pub fn notify_breaches() -> Vec<Breach> {
    vec![
        breach(
            ".spec.rollout.notify maxItems",
            "spec.rollout.notify",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let list: Vec<_> = (0..n).map(|i| subscription(&format!("sink-{i}"))).collect();
                analysed(o)["notify"] = list.into();
            },
        ),
        breach(
            ".spec.rollout.notify[] required:moments",
            "spec.rollout.notify[0].moments",
            |o, _, _| {
                analysed(o)["notify"] = json!([{"sink": "team"}]);
            },
        ),
        breach(
            ".spec.rollout.notify[] required:sink",
            "spec.rollout.notify[0].sink",
            |o, _, _| {
                analysed(o)["notify"] = json!([{"moments": ["Started"]}]);
            },
        ),
        breach(
            ".spec.rollout.notify[].moments minItems",
            "spec.rollout.notify[0].moments",
            |o, _, _| {
                analysed(o)["notify"] = json!([{"moments": [], "sink": "team"}]);
            },
        ),
        breach(
            ".spec.rollout.notify[].moments maxItems",
            "spec.rollout.notify[0].moments",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let on: Vec<_> = (0..n).map(|_| "Started").collect();
                analysed(o)["notify"] = json!([{ "moments": on, "sink": "team" }]);
            },
        ),
        breach(
            ".spec.rollout.notify[].moments[] enum",
            "spec.rollout.notify[0].moments[0]",
            |o, _, v| {
                let moment = ["started", "Deployed", ""][v % 3];
                analysed(o)["notify"] = json!([{ "moments": [moment], "sink": "team" }]);
            },
        ),
        breach(
            ".spec.rollout.notify[].sink minLength",
            "spec.rollout.notify[0].sink",
            |o, _, _| {
                analysed(o)["notify"] = json!([subscription("")]);
            },
        ),
        breach(
            ".spec.rollout.notify[].sink maxLength",
            "spec.rollout.notify[0].sink",
            |o, r, v| {
                let sink = "s".repeat(r.number() as usize + 1 + v);
                analysed(o)["notify"] = json!([subscription(&sink)]);
            },
        ),
    ]
}
