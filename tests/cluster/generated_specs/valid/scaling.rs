//! Scaling and placement: autoscaling, disruption budget, spreading.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{int_or_percent, object, some};

pub fn autoscaling() -> BoxedStrategy<Value> {
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

pub fn disruption() -> BoxedStrategy<Value> {
    prop_oneof![
        int_or_percent().prop_map(|v| json!({"maxUnavailable": v})),
        int_or_percent().prop_map(|v| json!({"minAvailable": v})),
        Just(json!({})),
    ]
    .boxed()
}

pub fn placement() -> BoxedStrategy<Value> {
    (
        prop::sample::subsequence(vec!["zone", "node"], 0..=2),
        prop::option::of(prop_oneof![Just("Preferred"), Just("Required")]),
    )
        .prop_map(|(domains, separate)| {
            let mut placement = json!({"spreadAcross": domains});
            if let Some(separate) = separate {
                placement["separateVersions"] = separate.into();
            }
            placement
        })
        .boxed()
}
