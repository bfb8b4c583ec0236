//! Breaches of the rules on blue/green.

use serde_json::{Value, json};

use super::{Breach, analysed, blue_green, breach, long};

pub fn breaches() -> Vec<Breach> {
    vec![
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
                analysed_blue_green(o)["prePromotionAnalysis"] = json!({ "metrics": names });
            },
        ),
        breach(
            ".spec.rollout.blueGreen.postPromotionAnalysis required:duration",
            "spec.rollout.blueGreen.postPromotionAnalysis.duration",
            |o, _, v| {
                let names = vec!["errors"; v % 2];
                analysed_blue_green(o)["postPromotionAnalysis"] = json!({ "metrics": names });
            },
        ),
        breach(
            ".spec.rollout.blueGreen.postPromotionAnalysis.duration maxLength",
            "spec.rollout.blueGreen.postPromotionAnalysis.duration",
            |o, r, v| {
                // Whole `1s` units, so only the length is wrong.
                let n = (r.number() as usize + 2 + v) / 2 * 2;
                analysed_blue_green(o)["postPromotionAnalysis"] =
                    json!({"duration": long("1s", n)});
            },
        ),
        breach(
            ".spec.rollout.blueGreen.postPromotionAnalysis.duration pattern",
            "spec.rollout.blueGreen.postPromotionAnalysis.duration",
            |o, _, v| {
                let duration = ["", "1w", "-5m"][v % 3];
                analysed_blue_green(o)["postPromotionAnalysis"] = json!({ "duration": duration });
            },
        ),
        breach(
            ".spec.rollout.blueGreen.postPromotionAnalysis.metrics maxItems",
            "spec.rollout.blueGreen.postPromotionAnalysis.metrics",
            |o, r, v| {
                let names = vec!["errors"; r.number() as usize + 1 + v];
                analysed_blue_green(o)["postPromotionAnalysis"] =
                    json!({"duration": "1h", "metrics": names});
            },
        ),
        breach(
            "postPromotionAnalysis.duration must be at most 168h (a week)",
            "",
            |o, _, v| {
                let duration = ["200h", "604801s", "167h61m"][v % 3];
                analysed_blue_green(o)["postPromotionAnalysis"] = json!({ "duration": duration });
            },
        ),
    ]
}

/// A blue/green with one metric, `errors`: its `blueGreen`.
fn analysed_blue_green(object: &mut Value) -> &mut Value {
    let rollout = analysed(object);
    rollout.as_object_mut().unwrap().remove("canary");
    rollout["strategy"] = "BlueGreen".into();
    rollout["blueGreen"] = json!({});
    &mut rollout["blueGreen"]
}
