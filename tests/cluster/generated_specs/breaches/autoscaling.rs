//! Breaches of the rules on autoscaling and the disruption budget.

use serde_json::json;

use super::{Breach, breach, spec};

pub fn breaches() -> Vec<Breach> {
    vec![
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
    ]
}
