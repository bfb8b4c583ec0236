use std::collections::BTreeMap;

/// The field manager every Weir write uses, so server-side apply tracks one owner.
pub const FIELD_MANAGER: &str = "weir";

/// The standard `app.kubernetes.io/*` labels that every child of a Microservice carries.
pub fn standard_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), name.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "weir".to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_service_and_the_manager() {
        let labels = standard_labels("checkout");
        assert_eq!(labels["app.kubernetes.io/name"], "checkout");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "weir");
    }
}
