//! One line per Microservice: what `list` prints, as a table or as `-o json|yaml`.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use super::current_step;
use crate::api::Microservice;

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    pub namespace: String,
    pub name: String,
    pub phase: Option<String>,
    /// Percent of traffic the new version receives; absent when no release runs.
    pub weight: Option<i32>,
    /// `current/count` of the running release, for example `2/5`.
    pub step: Option<String>,
    pub image: String,
    pub created: Option<Timestamp>,
}

/// The `-o json|yaml` form of `list`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ListSummary {
    pub items: Vec<ListRow>,
}

/// Rows sorted by namespace, then name.
pub fn rows(items: &[Microservice]) -> Vec<ListRow> {
    let mut rows: Vec<ListRow> = items.iter().map(row).collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows
}

pub fn row(ms: &Microservice) -> ListRow {
    let status = ms.status.as_ref();
    let release = status.and_then(|s| s.release.as_ref());
    ListRow {
        namespace: ms.namespace().unwrap_or_default(),
        name: ms.name_any(),
        phase: status.and_then(|s| s.phase).map(|p| p.as_str().to_string()),
        weight: release.map(|r| r.weight),
        step: release.map(|r| format!("{}/{}", current_step(r), r.step_count)),
        image: ms.spec.image.clone(),
        created: ms.metadata.creation_timestamp.as_ref().map(|t| t.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::fixtures::{canary, paused_at_second_step};

    #[test]
    fn a_release_shows_its_weight_and_step() {
        let row = row(&paused_at_second_step());
        assert_eq!(row.weight, Some(20));
        assert_eq!(row.step.as_deref(), Some("2/4"));
        assert_eq!(row.phase.as_deref(), Some("Paused"));
    }

    #[test]
    fn without_a_release_weight_and_step_are_absent() {
        let row = row(&canary());
        assert_eq!((row.weight, row.step), (None, None));
        assert_eq!(row.phase.as_deref(), Some("Healthy"));
    }
}
