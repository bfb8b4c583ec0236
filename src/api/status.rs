use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::migration::MigrationStatus;
use super::rollout::{HeaderMatch, Moment, PrometheusMetric, WebhookMetric};

/// What Weir observed and did, written by the operator only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MicroserviceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// One word for where the service stands: Healthy, Progressing, Paused or Degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// A sentence that says why the phase is what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Conditions: Ready, Progressing and Degraded; Reconciling and Stalled for kstatus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Pods that exist (the `/scale` subresource reads this).
    #[serde(default)]
    pub replicas: i32,

    /// Pods that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,

    /// Pods that run the current pod template.
    #[serde(default)]
    pub updated_replicas: i32,

    /// Label selector of the pods, for the `/scale` subresource and autoscalers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// The slot whose Deployment serves traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_slot: Option<Slot>,

    /// Hash of the pod template that serves users: the last good revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,

    /// Hash of the pod template being released, while a release runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_revision: Option<String>,

    /// A revision whose release was aborted. It is not tried again until the spec changes
    /// or a `retry` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_revision: Option<String>,

    /// Where the running release stands; absent when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,

    /// When the slot that served before the last promotion loses its pods. Until then a
    /// return to that revision is immediate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_at: Option<Time>,

    /// The last `weir.dev/action` annotation acted on, so that each action takes effect
    /// exactly once even if the operator stops between acting and removing the annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_action: Option<String>,

    /// What `pod.templatePatch` did to the pod template: the fields it set, or why it could
    /// not be applied (the template is then built without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_patch: Option<String>,

    /// Notifications not yet delivered, oldest first, and the last ones delivered: a moment
    /// is queued in the same write that records it, and leaves the queue only once its sink
    /// answered 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationsStatus>,

    /// The takeover of `spec.migrateFrom`: its phase, the old Deployment's size and the
    /// Service's old selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
}

/// The notification queue.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsStatus {
    /// Waiting for delivery, oldest first; the first is sent next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Notification>,
    /// Ids of the latest delivered, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<String>,
}

/// One notification of one moment to one sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Unique and stable: sent as the CloudEvents `id` and the `Idempotency-Key` header, so
    /// a receiver can drop the one repeat a restart at the wrong moment may cause.
    pub id: String,
    pub sink: String,
    pub moment: Moment,
    pub revision: String,
    /// What happened, for a person.
    pub message: String,
    /// When it happened.
    pub at: Time,
    /// Deliveries tried so far.
    #[serde(default)]
    pub attempts: i32,
    /// When the next try is due, after a failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
    /// Why the last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The state of a release: enough for a restarted operator to carry on exactly where the
/// last one stopped.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// The revision being released.
    pub revision: String,
    /// Index of the current step; equal to `stepCount` once every step is done.
    pub step_index: i32,
    /// Number of steps of this release.
    pub step_count: i32,
    /// When the current step started, to the microsecond: a pause is timed from it, and a
    /// time stored to the second would end a one-second pause anywhere up to a second early.
    pub step_started_at: MicroTime,
    /// When each step of this release started, oldest first (`step` equals `stepCount` for
    /// the promotion), so a timeline can be drawn by anyone who opens it later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_history: Vec<StepStart>,
    /// Percent of traffic the new version receives, as applied.
    pub weight: i32,
    /// The router (or, without one, the ready pods) confirmed `weight`.
    pub weight_verified: bool,
    /// Percent of traffic copied to the new version.
    #[serde(default)]
    pub mirror_percent: i32,
    /// Requests with these headers go to the new version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_route: Vec<HeaderMatch>,
    /// A manual `pause` holds the release at its current step.
    #[serde(default)]
    pub paused: bool,
    /// Every step is done: the new version is taking all traffic and becoming stable.
    #[serde(default)]
    pub promoting: bool,
    /// Traffic is going back to the stable version: for an abort, or to restart the
    /// release with a newer revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returning: Option<Returning>,
    /// Measurements of the analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
    /// Why the release is held: a metric with `onFailure: Hold` failed, traffic went back to
    /// the stable version, and the new version keeps its pods until `retry` (which resumes
    /// at this step) or `abort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// When the post-promotion analysis began: all traffic is on the new version, the old
    /// version keeps its pods, and the new one becomes stable once the analysis passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_since: Option<Time>,
    /// The old slot still ran this revision, warm: the release switches back at once (a
    /// rollback), and neither a freeze nor a release window holds it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
    /// The current step is done and the release waits: for the rest of its release group to
    /// finish the same step, or for a release window or the end of a freeze.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub step_done: bool,
}

/// The start of one step of a release.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStart {
    /// Index of the step, from 0; `stepCount` for the promotion.
    pub step: i32,
    pub started_at: Time,
}

/// Why traffic is going back to the stable version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Returning {
    /// A condition reason: `AnalysisFailed`, `ProgressDeadlineExceeded`, `Aborted`, or
    /// `SpecChanged` for a restart.
    pub reason: String,
    /// A sentence for a person.
    pub message: String,
    /// True for an abort: the revision is recorded as aborted. False for a restart.
    pub abort: bool,
}

/// The analysis of a release so far.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStatus {
    /// Failed rounds in a row.
    #[serde(default)]
    pub consecutive_failures: i32,
    /// Inconclusive rounds in a row.
    #[serde(default)]
    pub consecutive_inconclusive: i32,
    /// Outcome of the latest round of measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_round: Option<Outcome>,
    /// When the latest round ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_at: Option<Time>,
    /// The latest measurements, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last: Vec<Measurement>,
    /// The metrics that name a MetricTemplate, as resolved when the release started: the
    /// release measures these, whatever the template says later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplatedMetric>,
}

/// A metric resolved from its MetricTemplate: the provider with the arguments filled in
/// and the bounds that apply.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplatedMetric {
    /// The metric's name in `rollout.analysis.metrics`.
    pub metric: String,
    /// The MetricTemplate it names.
    pub template: String,
    /// The template's `metadata.generation` that was read: a later edit shows as a newer
    /// generation on the template, and applies to the next release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The template's query with the arguments filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// The template's webhook with the arguments filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookMetric>,
    /// The lower bound that applies: the metric's, else the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The upper bound that applies: the metric's, else the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// One measurement of one metric.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub metric: String,
    /// The measured value; absent when nothing was measured, or when a webhook answered
    /// without a numeric `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// For a metric with `compare`: the same query's value on the stable version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// True when the value was within bounds; for a webhook, a 2xx answer whose `value`, if
    /// any, is within bounds.
    pub passed: bool,
    pub outcome: Outcome,
    /// What was seen, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub at: Time,
    /// Measured for the record only (`onFailure: Record`): never counted for or against
    /// the release.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

#[cfg(test)]
impl Measurement {
    /// A measurement judged by a bound (passed or failed, never inconclusive), for tests.
    pub fn judged(
        metric: &str,
        value: f64,
        passed: bool,
        at: k8s_openapi::jiff::Timestamp,
    ) -> Self {
        Measurement {
            metric: metric.into(),
            value: Some(value),
            baseline: None,
            passed,
            outcome: if passed {
                Outcome::Passed
            } else {
                Outcome::Failed
            },
            message: None,
            at: Time(at),
            dry_run: false,
        }
    }
}

/// What a measurement said.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Outcome {
    #[default]
    Passed,
    Failed,
    /// No data, or the source could not be reached: neither a pass nor a failure.
    Inconclusive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "Passed",
            Outcome::Failed => "Failed",
            Outcome::Inconclusive => "Inconclusive",
        }
    }
}

/// One word for where the service stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Phase {
    Healthy,
    Progressing,
    Paused,
    Degraded,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Healthy => "Healthy",
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::Degraded => "Degraded",
        }
    }
}

/// The two Deployments of a Microservice. A release puts the new revision in the inactive
/// slot; `RollingUpdate` only ever uses the active one.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    #[default]
    Blue,
    Green,
}

impl Slot {
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}
