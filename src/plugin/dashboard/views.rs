//! What the pages show, computed from the [`Board`]: the list and one Microservice. Pure, so
//! the pages' content is tested without a browser.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::board::{Board, Key, RecordedMeasurement, SlotDeployment, Tracked, WeightPoint};
use crate::api::{Microservice, Slot, conditions};
use crate::plugin::actions::check_applicable;
use crate::plugin::summary::{
    EventSummary, ListRow, StatusSummary, recent_events, summarize, summary_row,
};
use crate::release::{ManualAction, other};

/// The list page: every Microservice the dashboard watches, optionally of one namespace.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListView {
    /// Every namespace with a Microservice, for the filter.
    pub namespaces: Vec<String>,
    pub items: Vec<ListItem>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListItem {
    #[serde(flatten)]
    pub row: ListRow,
    pub active_slot: Option<Slot>,
    pub last_event: Option<EventSummary>,
}

/// One Microservice: its release, how it moved, and what can be done to it now.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DetailView {
    pub summary: StatusSummary,
    /// The revision the timeline, weights and measurements are of: the running release's,
    /// else the last one the dashboard saw.
    pub revision: Option<String>,
    /// When each step started, from the release's own record (`stepHistory`).
    pub step_starts: Vec<StepStartView>,
    pub weights: Vec<WeightPoint>,
    pub metrics: Vec<MetricSeries>,
    pub slots: Vec<SlotView>,
    pub failure: Option<Failure>,
    /// The actions Weir would act on now (`promote`, `abort`, ...).
    pub actions: Vec<&'static str>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepStartView {
    /// Counted from 1; `stepCount + 1` is the promotion.
    pub number: i32,
    pub started_at: Timestamp,
}

/// One metric's measurements over time, with its bounds.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricSeries {
    pub name: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub points: Vec<RecordedMeasurement>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    #[serde(flatten)]
    pub deployment: SlotDeployment,
    /// `active` (users are on it), `candidate` (the release's new version) or `idle`.
    pub role: &'static str,
}

/// Why a release failed, and the measurement that failed it when one did.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub reason: String,
    pub message: String,
    pub metric: Option<RecordedMeasurement>,
}

/// The actions the page offers, in the order of its buttons.
static ACTIONS: [ManualAction; 6] = [
    ManualAction::Promote,
    ManualAction::PromoteFull,
    ManualAction::Abort,
    ManualAction::Retry,
    ManualAction::Pause,
    ManualAction::Resume,
];

/// The list, of `namespace` only when given.
pub fn list_view(board: &Board, namespace: Option<&str>) -> ListView {
    let mut namespaces: Vec<String> = board
        .tracked
        .iter()
        .filter(|(_, t)| t.microservice.is_some())
        .map(|((ns, _), _)| ns.clone())
        .collect();
    namespaces.dedup();
    let items = board
        .tracked
        .iter()
        .filter(|((ns, _), _)| namespace.is_none_or(|wanted| wanted == ns))
        .filter_map(|(_, tracked)| {
            let ms = tracked.microservice.as_ref()?;
            Some(ListItem {
                row: summary_row(ms),
                active_slot: ms.status.as_ref().and_then(|s| s.active_slot),
                last_event: recent_events(&tracked.events, 1).pop(),
            })
        })
        .collect();
    ListView { namespaces, items }
}

/// One Microservice, or `None` when the dashboard does not see it.
pub fn detail_view(board: &Board, key: &Key) -> Option<DetailView> {
    let tracked = board.tracked.get(key)?;
    let ms = tracked.microservice.as_ref()?;
    let summary = summarize(ms, &tracked.events, tracked.events.len());
    let status = ms.status.clone().unwrap_or_default();
    let release = status.release.as_ref();
    let revision = release
        .map(|r| r.revision.clone())
        .or_else(|| tracked.weights.last().map(|w| w.revision.clone()));
    let of_revision = |r: &str| revision.as_deref() == Some(r);
    let step_starts = release
        .map(|r| &r.step_history)
        .into_iter()
        .flatten()
        .map(|start| StepStartView {
            number: start.step + 1,
            started_at: start.started_at.0,
        })
        .collect();
    let weights = tracked
        .weights
        .iter()
        .filter(|w| of_revision(&w.revision))
        .cloned()
        .collect();
    Some(DetailView {
        revision: revision.clone(),
        step_starts,
        weights,
        metrics: metric_series(ms, tracked, revision.as_deref()),
        slots: slot_views(ms, tracked),
        failure: failure(ms, tracked),
        actions: ACTIONS
            .iter()
            .filter(|action| check_applicable(ms, action).is_ok())
            .map(ManualAction::as_str)
            .collect(),
        summary,
    })
}

/// Each metric of the spec (and any measured one the spec no longer names), with the
/// measurements of `revision`.
fn metric_series(
    ms: &Microservice,
    tracked: &Tracked,
    revision: Option<&str>,
) -> Vec<MetricSeries> {
    let spec = ms
        .spec
        .rollout
        .as_ref()
        .and_then(|r| r.analysis.as_ref())
        .map(|a| a.metrics.clone())
        .unwrap_or_default();
    let mut series: Vec<MetricSeries> = spec
        .iter()
        .map(|metric| MetricSeries {
            name: metric.name.clone(),
            min: metric.min,
            max: metric.max,
            points: vec![],
        })
        .collect();
    let measured = tracked
        .measurements
        .iter()
        .filter(|m| revision == Some(m.revision.as_str()));
    for recorded in measured {
        let name = &recorded.measurement.metric;
        let index = match series.iter().position(|s| &s.name == name) {
            Some(index) => index,
            None => {
                series.push(MetricSeries {
                    name: name.clone(),
                    min: None,
                    max: None,
                    points: vec![],
                });
                series.len() - 1
            }
        };
        series[index].points.push(recorded.clone());
    }
    series
}

fn slot_views(ms: &Microservice, tracked: &Tracked) -> Vec<SlotView> {
    let status = ms.status.as_ref();
    let active = status.and_then(|s| s.active_slot);
    let releasing = status.is_some_and(|s| s.release.is_some());
    tracked
        .slots
        .values()
        .map(|deployment| {
            let slot = [Slot::Blue, Slot::Green]
                .into_iter()
                .find(|s| s.as_str() == deployment.slot);
            let role = match (slot, active) {
                (Some(slot), Some(active)) if slot == active => "active",
                (Some(slot), Some(active)) if releasing && slot == other(active) => "candidate",
                _ => "idle",
            };
            SlotView {
                deployment: deployment.clone(),
                role,
            }
        })
        .collect()
}

/// A release on its way back to stable after an abort, or an aborted revision: why, and
/// the failed measurement of that revision when there is one.
fn failure(ms: &Microservice, tracked: &Tracked) -> Option<Failure> {
    let status = ms.status.as_ref()?;
    let failed_metric = |revision: &str| {
        tracked
            .measurements
            .iter()
            .rev()
            .find(|m| m.revision == revision && !m.measurement.passed)
            .cloned()
    };
    if let Some(release) = &status.release {
        let returning = release.returning.as_ref().filter(|r| r.abort)?;
        return Some(Failure {
            reason: returning.reason.clone(),
            message: returning.message.clone(),
            metric: failed_metric(&release.revision),
        });
    }
    let aborted = status.aborted_revision.as_ref()?;
    let condition = status
        .conditions
        .iter()
        .filter(|c| c.status == "True")
        .find(|c| c.type_ == conditions::STALLED || c.type_ == conditions::DEGRADED)?;
    Some(Failure {
        reason: condition.reason.clone(),
        message: condition.message.clone(),
        metric: failed_metric(aborted),
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    use super::*;
    use crate::api::{AnalysisStatus, Measurement, Returning};
    use crate::plugin::fixtures::{at, canary, event, paused_at_second_step};

    fn key() -> Key {
        ("shop".into(), "checkout".into())
    }

    fn measured(value: f64, passed: bool, second: i64) -> Measurement {
        Measurement::judged("error-rate", value, passed, at(second))
    }

    /// `paused_at_second_step()` at `weight`, verified or not, with `measurements`.
    fn at_weight(weight: i32, verified: bool, measurements: Vec<Measurement>) -> Microservice {
        let mut ms = paused_at_second_step();
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.weight = weight;
        release.weight_verified = verified;
        release.analysis = Some(AnalysisStatus {
            last: measurements,
            ..AnalysisStatus::default()
        });
        ms
    }

    fn slot_deployment(slot: &str, image: &str, ready: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": format!("checkout-{slot}"), "namespace": "shop",
                "labels": {"app.kubernetes.io/instance": "checkout"},
                "annotations": {"weir.dev/revision": format!("rev-{slot}")}},
            "spec": {"replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/instance": "checkout", "weir.dev/slot": slot}},
                "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"readyReplicas": ready}
        }))
        .unwrap()
    }

    #[test]
    fn the_weight_history_keeps_each_change_once() {
        let mut board = Board::default();
        board.apply_microservice(at_weight(20, false, vec![]), at(0));
        board.apply_microservice(at_weight(20, false, vec![]), at(1));
        board.apply_microservice(at_weight(20, true, vec![]), at(2));
        board.apply_microservice(at_weight(50, false, vec![]), at(3));
        let view = detail_view(&board, &key()).unwrap();
        let seen: Vec<_> = view
            .weights
            .iter()
            .map(|w| (w.weight, w.verified))
            .collect();
        assert_eq!(seen, [(20, false), (20, true), (50, false)]);
        assert_eq!(view.revision.as_deref(), Some("84b7c6d9f"));
    }

    #[test]
    fn an_ended_release_ends_its_plot_with_all_traffic_or_none() {
        let mut board = Board::default();
        board.apply_microservice(at_weight(50, true, vec![]), at(0));
        let mut aborted = canary();
        aborted.status.as_mut().unwrap().aborted_revision = Some("84b7c6d9f".into());
        board.apply_microservice(aborted, at(1));
        let view = detail_view(&board, &key()).unwrap();
        let last = view.weights.last().unwrap();
        assert_eq!((last.weight, last.verified), (0, true));
        assert_eq!(
            view.revision.as_deref(),
            Some("84b7c6d9f"),
            "the plot stays"
        );

        board.apply_microservice(at_weight(50, true, vec![]), at(2));
        let mut promoted = canary();
        promoted.status.as_mut().unwrap().stable_revision = Some("84b7c6d9f".into());
        board.apply_microservice(promoted, at(3));
        let last = detail_view(&board, &key()).unwrap().weights.pop().unwrap();
        assert_eq!((last.weight, last.verified), (100, true));
    }

    #[test]
    fn measurements_accumulate_per_metric_with_the_bounds_of_the_spec() {
        let mut board = Board::default();
        let mut ms = at_weight(20, true, vec![measured(0.01, true, 0)]);
        ms.spec.rollout.as_mut().unwrap().analysis = serde_json::from_value(json!({
            "metrics": [{"name": "error-rate", "webhook": {"url": "http://judge"}, "max": 0.05}]
        }))
        .unwrap();
        board.apply_microservice(ms.clone(), at(0));
        board.apply_microservice(ms.clone(), at(1));
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.analysis.as_mut().unwrap().last = vec![measured(0.02, true, 1)];
        board.apply_microservice(ms, at(1));
        let view = detail_view(&board, &key()).unwrap();
        assert_eq!(view.metrics.len(), 1);
        let series = &view.metrics[0];
        assert_eq!((series.min, series.max), (None, Some(0.05)));
        let values: Vec<_> = series.points.iter().map(|p| p.measurement.value).collect();
        assert_eq!(values, [Some(0.01), Some(0.02)]);
    }

    #[test]
    fn an_abort_shows_its_reason_and_the_failed_measurement() {
        let mut board = Board::default();
        let mut ms = at_weight(20, true, vec![measured(0.2, false, 5)]);
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.returning = Some(Returning {
            reason: "AnalysisFailed".into(),
            message: "error-rate 0.2 is above 0.05.".into(),
            abort: true,
        });
        board.apply_microservice(ms, at(5));
        let view = detail_view(&board, &key()).unwrap();
        let failure = view.failure.unwrap();
        assert_eq!(failure.reason, "AnalysisFailed");
        assert_eq!(failure.metric.unwrap().measurement.value, Some(0.2));
        assert!(!view.actions.contains(&"promote"), "{:?}", view.actions);
    }

    #[test]
    fn the_actions_are_those_weir_would_act_on() {
        let mut board = Board::default();
        board.apply_microservice(paused_at_second_step(), at(0));
        let releasing = detail_view(&board, &key()).unwrap().actions;
        assert_eq!(
            releasing,
            ["promote", "promote-full", "abort", "pause", "resume"]
        );
        board.apply_microservice(canary(), at(1));
        assert!(detail_view(&board, &key()).unwrap().actions.is_empty());
    }

    #[test]
    fn slots_show_their_role_image_and_ready_pods() {
        let mut board = Board::default();
        board.apply_microservice(paused_at_second_step(), at(0));
        board.apply_deployment(&slot_deployment("blue", "app:1", 2));
        board.apply_deployment(&slot_deployment("green", "app:2", 1));
        let slots = detail_view(&board, &key()).unwrap().slots;
        let shown: Vec<_> = slots
            .iter()
            .map(|s| (s.deployment.slot.as_str(), s.role, s.deployment.ready))
            .collect();
        assert_eq!(shown, [("blue", "active", 2), ("green", "candidate", 1)]);
        assert_eq!(slots[1].deployment.image.as_deref(), Some("app:2"));
        assert_eq!(slots[1].deployment.revision.as_deref(), Some("rev-green"));
        board.delete_deployment(&slot_deployment("green", "app:2", 1));
        assert_eq!(detail_view(&board, &key()).unwrap().slots.len(), 1);
    }

    #[test]
    fn the_list_filters_by_namespace_and_shows_the_last_event() {
        let mut board = Board::default();
        board.apply_microservice(paused_at_second_step(), at(0));
        let mut other = canary();
        other.metadata.namespace = Some("billing".into());
        board.apply_microservice(other, at(0));
        let mut about = |reason: &str, second: i64, uid: &str| {
            let mut e = event(reason, second);
            e.metadata.uid = Some(uid.into());
            e.involved_object.kind = Some("Microservice".into());
            e.involved_object.name = Some("checkout".into());
            e.involved_object.namespace = Some("shop".into());
            board.apply_event(e);
        };
        about("ReleaseStarted", 1, "a");
        about("PromoteRequested", 2, "b");
        let all = list_view(&board, None);
        assert_eq!(all.namespaces, ["billing", "shop"]);
        assert_eq!(all.items.len(), 2);
        let shop = list_view(&board, Some("shop"));
        assert_eq!(shop.items.len(), 1);
        let item = &shop.items[0];
        assert_eq!(item.row.step.as_deref(), Some("2/4"));
        assert_eq!(item.last_event.as_ref().unwrap().reason, "PromoteRequested");
    }

    #[test]
    fn a_deleted_microservice_leaves_nothing_behind() {
        let mut board = Board::default();
        board.apply_microservice(paused_at_second_step(), at(0));
        board.delete_microservice(&key());
        assert!(detail_view(&board, &key()).is_none());
        assert!(list_view(&board, None).items.is_empty());
    }
}
