//! `pod.templatePatch`: a strategic-merge patch over the pod template Weir built, applied
//! last, for the fields Weir does not type. Pure.
//!
//! The subset of Kubernetes' strategic merge that a pod template needs: objects merge key by
//! key and `null` removes a key; a list whose items all carry a `name` (containers, volumes,
//! env, ports of a container) merges item by item on that name, a patch item with
//! `$patch: delete` removes its namesake, and new names are appended; any other list is
//! replaced whole. Written here because no maintained Rust crate implements strategic merge
//! (json-patch has RFC 7386 merge, which replaces every list).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Map, Value};

/// `template` with `patch` merged in, or why the result is not a pod template.
pub fn patched(template: &PodTemplateSpec, patch: &Value) -> Result<PodTemplateSpec, String> {
    let mut merged = serde_json::to_value(template).map_err(|e| e.to_string())?;
    merge(&mut merged, patch);
    serde_json::from_value(merged)
        .map_err(|e| format!("the patched pod template does not read: {e}"))
}

/// The fields `patch` sets, as paths (`spec.containers[checkout].env`), for status.
pub fn touched(patch: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    collect(patch, "", &mut paths);
    paths
}

fn collect(patch: &Value, at: &str, paths: &mut Vec<String>) {
    let Value::Object(fields) = patch else {
        paths.push(at.to_string());
        return;
    };
    for (key, value) in fields {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match value {
            Value::Object(_) => collect(value, &path, paths),
            Value::Array(items) if named(items) => {
                for item in items {
                    let name = item["name"].as_str().unwrap_or_default();
                    let mut rest = item.as_object().cloned().unwrap_or_default();
                    rest.remove("name");
                    let at = format!("{path}[{name}]");
                    if rest.is_empty() {
                        paths.push(at);
                    } else {
                        collect(&Value::Object(rest), &at, paths);
                    }
                }
            }
            _ => paths.push(path),
        }
    }
}

/// Merges `patch` into `target` with the rules above.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => merge_objects(target, patch),
        (Value::Array(target), Value::Array(patch)) if named(target) && named(patch) => {
            merge_named(target, patch)
        }
        (target, patch) => *target = without_directives(patch),
    }
}

fn merge_objects(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match target.get_mut(key) {
            Some(existing) => merge(existing, value),
            None => {
                target.insert(key.clone(), without_directives(value));
            }
        }
    }
}

fn merge_named(target: &mut Vec<Value>, patch: &[Value]) {
    for item in patch {
        let name = &item["name"];
        let position = target.iter().position(|t| &t["name"] == name);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => merge(&mut target[i], item),
            (None, false) => target.push(without_directives(item)),
        }
    }
}

/// Items that are all objects with a string `name` (an empty list counts: it merges into
/// anything named).
fn named(items: &[Value]) -> bool {
    items
        .iter()
        .all(|item| item.get("name").is_some_and(Value::is_string))
}

/// `value` without `$patch` keys, for what is added rather than merged.
fn without_directives(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| key.as_str() != "$patch")
                .map(|(key, value)| (key.clone(), without_directives(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut target = target;
        merge(&mut target, &patch);
        target
    }

    #[test]
    fn objects_merge_key_by_key_and_null_removes() {
        assert_eq!(
            merged(
                json!({"a": 1, "b": {"c": 2, "d": 3}}),
                json!({"b": {"c": 4, "d": null}, "e": 5})
            ),
            json!({"a": 1, "b": {"c": 4}, "e": 5})
        );
    }

    #[test]
    fn named_lists_merge_by_name_delete_on_request_and_append_new_names() {
        let containers = json!([
            {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "proxy", "image": "p:1"}
        ]);
        let patch = json!([
            {"name": "app", "env": [{"name": "B", "value": "2"}]},
            {"name": "proxy", "$patch": "delete"},
            {"name": "debug", "image": "d:1"}
        ]);
        assert_eq!(
            merged(containers, patch),
            json!([
                {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "debug", "image": "d:1"}
            ])
        );
    }

    #[test]
    fn other_lists_are_replaced_whole() {
        assert_eq!(
            merged(json!({"args": ["a", "b"]}), json!({"args": ["c"]})),
            json!({"args": ["c"]})
        );
    }

    #[test]
    fn the_paths_a_patch_touches_name_list_items() {
        let patch = json!({
            "metadata": {"annotations": {"sidecar.example/inject": "false"}},
            "spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}]}],
                     "enableServiceLinks": false}
        });
        assert_eq!(
            touched(&patch),
            [
                "metadata.annotations.sidecar.example/inject",
                "spec.containers[app].env[B].value",
                "spec.enableServiceLinks"
            ]
        );
    }

    #[test]
    fn a_patch_that_breaks_the_template_is_refused_with_the_reason() {
        let template = PodTemplateSpec::default();
        let broken = json!({"spec": {"containers": "not a list"}});
        let error = patched(&template, &broken).unwrap_err();
        assert!(
            error.starts_with("the patched pod template does not read"),
            "{error}"
        );
    }
}
