//! What the recorders keep of a Microservice, a slot's Deployment and its pods: the parts
//! a release test compares between versions.

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::watcher;
use weir::api::{Microservice, Outcome, Phase, Release, Slot};

use super::{ACTION, Recorder};

/// Records the release-relevant parts of Microservice `name` from now on.
pub async fn record_status(api: &Api<Microservice>, name: &str) -> Recorder<StatusView> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let what = format!("Microservice {name}");
    Recorder::start(api.clone(), config, &what, |all| {
        StatusView::of(all.first().map(|ms| &**ms))
    })
    .await
}

/// The release-relevant part of a Microservice's status, and its action annotation: what a
/// recorder compares between versions. The analysis is reduced to its outcomes and values,
/// without the times of the rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusView {
    /// The `weir.dev/action` annotation.
    pub action: Option<String>,
    pub phase: Option<Phase>,
    pub active_slot: Option<Slot>,
    pub stable_revision: Option<String>,
    pub candidate_revision: Option<String>,
    pub aborted_revision: Option<String>,
    pub handled_action: Option<String>,
    /// `status.release` without its analysis.
    pub release: Option<Release>,
    pub analysis: Option<AnalysisView>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisView {
    pub last_round: Option<Outcome>,
    pub consecutive_failures: i32,
    /// (metric, value, outcome) of the latest measurements.
    pub last: Vec<(String, Option<f64>, Outcome)>,
}

impl StatusView {
    pub fn of(ms: Option<&Microservice>) -> StatusView {
        let action = ms.and_then(|ms| ms.annotations().get(ACTION).cloned());
        let status = ms.and_then(|ms| ms.status.clone()).unwrap_or_default();
        let analysis = status
            .release
            .as_ref()
            .and_then(|r| r.analysis.as_ref())
            .map(|a| AnalysisView {
                last_round: a.last_round,
                consecutive_failures: a.consecutive_failures,
                last: a
                    .last
                    .iter()
                    .map(|m| (m.metric.clone(), m.value, m.outcome))
                    .collect(),
            });
        StatusView {
            action,
            phase: status.phase,
            active_slot: status.active_slot,
            stable_revision: status.stable_revision,
            candidate_revision: status.candidate_revision,
            aborted_revision: status.aborted_revision,
            handled_action: status.handled_action,
            release: status.release.map(|r| Release {
                analysis: None,
                ..r
            }),
            analysis,
        }
    }

    pub fn step_index(&self) -> Option<i32> {
        self.release.as_ref().map(|r| r.step_index)
    }
}

/// A slot's Deployment: the pods it asks for and has ready, and the image it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotView {
    pub replicas: i32,
    pub ready: i32,
    pub image: Option<String>,
}

impl SlotView {
    pub fn of(deployment: &Deployment) -> SlotView {
        let spec = deployment.spec.as_ref();
        SlotView {
            replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
            ready: deployment
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            image: spec
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone()),
        }
    }
}

/// Pods of a slot (not being deleted) and how many of them are ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodCount {
    pub pods: usize,
    pub ready: usize,
}
