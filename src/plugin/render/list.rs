//! The table of `kubectl weir list`.

use k8s_openapi::jiff::Timestamp;

use super::{age, table};
use crate::plugin::summary::ListRow;

/// One line per Microservice; a NAMESPACE column with `all_namespaces`.
pub fn list_text(rows: &[ListRow], all_namespaces: bool, now: Timestamp) -> String {
    let mut header = vec!["NAME", "PHASE", "WEIGHT", "STEP", "IMAGE", "AGE"];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut lines = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    lines.extend(rows.iter().map(|row| {
        let mut line = vec![
            row.name.clone(),
            row.phase.clone().unwrap_or_else(|| "-".into()),
            row.weight.map_or("-".into(), |w| format!("{w}%")),
            row.step.clone().unwrap_or_else(|| "-".into()),
            row.image.clone(),
            age(row.created, now),
        ];
        if all_namespaces {
            line.insert(0, row.namespace.clone());
        }
        line
    }));
    table("", &lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::fixtures::{canary, now, paused_at_second_step};
    use crate::plugin::summary::rows;

    #[test]
    fn one_line_per_microservice_with_its_release() {
        let mut settled = canary();
        settled.metadata.name = Some("cart".into());
        let rows = rows(&[paused_at_second_step(), settled]);
        let expected = "\
NAME       PHASE     WEIGHT   STEP   IMAGE                         AGE
cart       Healthy   -        -      registry.example/checkout:2   60m
checkout   Paused    20%      2/4    registry.example/checkout:2   60m
";
        assert_eq!(list_text(&rows, false, now()), expected);
    }

    #[test]
    fn all_namespaces_adds_the_namespace_first() {
        let text = list_text(&rows(&[canary()]), true, now());
        assert!(text.starts_with("NAMESPACE   NAME"), "{text}");
        assert!(text.contains("\nshop        checkout"), "{text}");
    }
}
