//! Deciding, without the API server, whether a child must be written: the change-detection
//! that keeps a settled reconcile at zero writes.

use serde_json::Value;

use crate::build::fnv1a;

/// Annotation holding a hash of what Weir last applied; a changed hash means the desired
/// object changed (including fields it no longer sets, which a subset check cannot see).
pub const APPLIED_HASH_ANNOTATION: &str = "weir.dev/applied-hash";

/// Adds the hash of `desired` as an annotation and returns the object to apply.
pub fn stamp(mut desired: Value) -> Value {
    let hash = format!("{:016x}", fnv1a(desired.to_string().as_bytes()));
    desired["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = Value::String(hash);
    desired
}

/// True when `live` differs from the stamped `desired`: another hash, or a field Weir sets
/// that someone changed by hand.
pub fn needs_apply(stamped: &Value, live: &Value) -> bool {
    !is_subset(stamped, live)
}

/// Every field set in `desired` has the same value in `live` (which may hold more: server
/// defaults, fields of other managers). Quantities compare by value (`1000m` equals `1`).
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Null, _) => true,
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .all(|(k, v)| v.is_null() || l.get(k).is_some_and(|lv| is_subset(v, lv))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv))
        }
        (Value::String(d), Value::String(l)) => d == l || same_quantity(d, l),
        (d, l) => d == l,
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    // Only strings that start like numbers can be quantities; names never compare equal.
    let numeric = |s: &str| s.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if !(numeric(a) && numeric(b)) {
        return false;
    }
    match (crate::analysis::quantity(a), crate::analysis::quantity(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()) * 4.0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_defaults_and_other_managers_fields_are_not_drift() {
        let desired = stamp(json!({"metadata": {"name": "a"}, "spec": {"replicas": 3}}));
        let mut live = desired.clone();
        live["spec"]["revisionHistoryLimit"] = json!(10);
        live["metadata"]["annotations"]["someone/else"] = json!("x");
        assert!(!needs_apply(&desired, &live));
    }

    #[test]
    fn a_hand_edited_field_is_drift() {
        let desired = stamp(json!({"spec": {"replicas": 3}}));
        let mut live = desired.clone();
        live["spec"]["replicas"] = json!(5);
        assert!(needs_apply(&desired, &live));
    }

    #[test]
    fn a_field_weir_stopped_setting_changes_the_hash() {
        let before = stamp(json!({"spec": {"replicas": 3, "paused": true}}));
        let after = stamp(json!({"spec": {"replicas": 3}}));
        assert!(needs_apply(&after, &before));
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(is_subset(&json!("1000m"), &json!("1")));
        assert!(is_subset(&json!("0.5Gi"), &json!("512Mi")));
        assert!(!is_subset(&json!("100m"), &json!("1")));
        assert!(!is_subset(&json!("blue"), &json!("green")));
    }
}
