//! Breaches of the rules on blue/green.

use serde_json::json;

use super::{Breach, analysed, blue_green, breach};

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
                let rollout = analysed(o);
                rollout.as_object_mut().unwrap().remove("canary");
                rollout["strategy"] = "BlueGreen".into();
                rollout["blueGreen"] = json!({"prePromotionAnalysis": {"metrics": names}});
            },
        ),
    ]
}
