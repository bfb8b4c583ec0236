//! Moving a running service in: the Deployment a Microservice takes over, and where that
//! takeover stands.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The annotation on an existing Service (or PodDisruptionBudget, or autoscaler) of the
/// Microservice's name that lets Weir take it over; its value names the Microservice.
pub const ADOPT_ANNOTATION: &str = "weir.dev/adopt";

/// A running Deployment to take over without an outage. Weir brings its own pods to the old
/// Deployment's size, switches the Service of the Microservice's name to them (only once
/// the Service carries `weir.dev/adopt: <microservice>`), then scales the old Deployment
/// down.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrateFrom {
    /// The Deployment that serves today, in the Microservice's namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("migrateFrom.deployment must be a Deployment name: lowercase letters, digits, '-' and '.'"))]
    pub deployment: String,

    /// What becomes of the old Deployment once Weir's pods carry the traffic:
    /// `Progressively` (the default) scales it down step by step, at most as many pods a
    /// step as its PodDisruptionBudget lets go (a quarter without one), and deletes it at
    /// 0; `OnSuccess` scales it to 0 in one step and deletes it; `Never` scales it down
    /// step by step and leaves it at 0 replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
}

/// What becomes of a taken-over Deployment.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ScaleDown {
    #[default]
    Progressively,
    OnSuccess,
    Never,
}

/// Where a takeover stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum MigrationPhase {
    /// Weir's pods are starting; the old Deployment serves.
    WaitingForPods,
    /// The Service selects Weir's pods; the old Deployment is being scaled down.
    ScalingDown,
    /// The old Deployment is gone (or at 0 with `scaleDown: Never`) and Weir owns the
    /// Service.
    Completed,
    /// Weir's pods stopped being ready: the Service selects the old pods again, at their
    /// old size. Tried again after a spec change or a `retry` action.
    RolledBack,
    /// Aborted by an `abort` action: as RolledBack.
    Aborted,
}

impl MigrationPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationPhase::WaitingForPods => "WaitingForPods",
            MigrationPhase::ScalingDown => "ScalingDown",
            MigrationPhase::Completed => "Completed",
            MigrationPhase::RolledBack => "RolledBack",
            MigrationPhase::Aborted => "Aborted",
        }
    }
}

/// The takeover of `spec.migrateFrom`, recorded so that a restarted operator goes on from
/// the same step and an abort can put the old selector back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// The Deployment taken over.
    pub deployment: String,
    pub phase: MigrationPhase,
    /// The old Deployment's replicas when the takeover started: Weir's pods match it.
    pub original_replicas: i32,
    /// The Service's selector before the switch, put back on a rollback or an abort.
    #[serde(default)]
    pub original_selector: BTreeMap<String, String>,
    /// The old Deployment's replicas as Weir last set them.
    pub replicas: i32,
    /// When the last step (the switch, a scale-down) was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step_at: Option<Time>,
    /// The `metadata.generation` a rollback or an abort happened at: a newer one tries again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at_generation: Option<i64>,
    /// What the takeover is doing, for a person.
    pub message: String,
}
