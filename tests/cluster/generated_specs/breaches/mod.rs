//! One way to break each rule of the CRD (`Breach`), in a table per part of the spec, and
//! the valid pieces a breach builds on.

mod analysis;
mod autoscaling;
mod blue_green;
mod canary;
mod lifecycle;
mod object;
mod pod;
mod ports;
mod rollout;
mod traffic;
mod windows;

use serde_json::{Value, json};

use super::rules::Rule;

/// One way to break a rule: which rule (its path and keyword, or the start of its CEL
/// message), the field the API server names, what to change on a valid object, and the
/// other CEL rules the same change may also trip.
pub struct Breach {
    pub rule: &'static str,
    pub field: &'static str,
    pub apply: fn(&mut Value, &Rule, usize),
    pub also: &'static [&'static str],
}

pub const fn breach(
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

pub fn spec(object: &mut Value) -> &mut Value {
    &mut object["spec"]
}

pub fn with_port(object: &mut Value) {
    let ports = &mut spec(object)["ports"];
    if ports.as_array().is_none_or(|p| p.is_empty()) {
        *ports = json!([{"name": "http", "port": 80}]);
    }
}

/// A routed canary with one weight step.
pub fn routed(object: &mut Value) -> &mut Value {
    with_port(object);
    spec(object)["rollout"] = json!({
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": [{"setWeight": 10}]}
    });
    &mut spec(object)["rollout"]
}

/// A canary with one weight step and one metric, `errors`.
pub fn analysed(object: &mut Value) -> &mut Value {
    spec(object)["rollout"] = json!({
        "strategy": "Canary",
        "canary": {"steps": [{"setWeight": 10}]},
        "analysis": {"metrics": [{"name": "errors", "prometheus": {"query": "up"}, "max": 1}]}
    });
    &mut spec(object)["rollout"]
}

pub fn blue_green(object: &mut Value) -> &mut Value {
    spec(object)["rollout"] = json!({"strategy": "BlueGreen", "blueGreen": {}});
    &mut spec(object)["rollout"]
}

pub fn metric_at(object: &mut Value) -> &mut Value {
    &mut analysed(object)["analysis"]["metrics"][0]
}

/// A string of `n` characters that keeps to `unit`'s pattern (`unit` repeated, cut).
pub fn long(unit: &str, n: usize) -> String {
    unit.repeat(n / unit.len() + 1)[..n].to_string()
}

/// A valid item `i` of the list a `maxItems` breach overfills.
pub fn items(n: usize, item: impl Fn(usize) -> Value) -> Value {
    Value::from((0..n).map(item).collect::<Vec<_>>())
}

/// Every breach, always in this order: a case is named after its breach's position, and
/// built on the valid object drawn at that point of the seeded sequence.
pub fn breaches() -> Vec<Breach> {
    [
        object::breaches(),
        object::route_rule_breaches(),
        object::grpc_rule_breaches(),
        object::migrate_from_breaches(),
        autoscaling::breaches(),
        ports::breaches(),
        lifecycle::breaches(),
        pod::breaches(),
        rollout::breaches(),
        rollout::notify_breaches(),
        windows::breaches(),
        windows::group_breaches(),
        analysis::breaches(),
        blue_green::breaches(),
        canary::breaches(),
        traffic::breaches(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
