use std::collections::BTreeMap;

use crate::api::Slot;

/// The field manager every Weir write uses, so server-side apply tracks one owner.
pub const FIELD_MANAGER: &str = "weir";
/// Label with the Microservice's name on every child and pod; the Service selects on it.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label with the slot (blue or green) on a slot's Deployment and pods.
pub const SLOT_LABEL: &str = "weir.dev/slot";
/// Label that marks objects Weir manages; the controller watches children through it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "weir";

/// The standard `app.kubernetes.io/*` labels that every child of a Microservice carries.
pub fn standard_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), name.to_string()),
        (INSTANCE_LABEL.to_string(), name.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ])
}

/// Selects every pod of the Microservice, whichever slot runs it.
pub fn service_selector(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(INSTANCE_LABEL.to_string(), name.to_string())])
}

/// Selects the pods of one slot (a Deployment's immutable selector).
pub fn slot_selector(name: &str, slot: Slot) -> BTreeMap<String, String> {
    let mut selector = service_selector(name);
    selector.insert(SLOT_LABEL.to_string(), slot.as_str().to_string());
    selector
}

/// A selector as the `key=value,...` string that `/scale` and kubectl take.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_service_and_the_manager() {
        let labels = standard_labels("checkout");
        assert_eq!(labels["app.kubernetes.io/name"], "checkout");
        assert_eq!(labels[INSTANCE_LABEL], "checkout");
        assert_eq!(labels[MANAGED_BY_LABEL], "weir");
    }

    #[test]
    fn slot_selector_narrows_the_service_selector() {
        let selector = slot_selector("checkout", Slot::Green);
        assert_eq!(
            selector_string(&selector),
            "app.kubernetes.io/instance=checkout,weir.dev/slot=green"
        );
    }
}
