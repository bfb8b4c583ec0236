//! Condition types and reasons, in one place so status, events and tests agree.

/// The service answers with enough ready pods of the current revision.
pub const READY: &str = "Ready";
/// A change is being rolled out.
pub const PROGRESSING: &str = "Progressing";
/// Something stops the service from reaching what the spec asks.
pub const DEGRADED: &str = "Degraded";

pub mod reason {
    /// Every pod runs the current revision and is ready.
    pub const AVAILABLE: &str = "Available";
    /// Pods of the current revision are starting or becoming ready.
    pub const ROLLING_OUT: &str = "RollingOut";
    /// Nothing to roll out.
    pub const ROLLED_OUT: &str = "RolledOut";
    /// The rollout made no progress within `progressDeadlineSeconds`.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// A child's name is taken by an object Weir does not own.
    pub const NAME_CONFLICT: &str = "NameConflict";
    /// The stored object cannot be read as a Microservice.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The cluster refused a child Weir built.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// Nothing is wrong.
    pub const AS_EXPECTED: &str = "AsExpected";
    /// `spec.replicas` is set by someone other than the autoscaler while autoscaling is on.
    pub const REPLICAS_CONTESTED: &str = "ReplicasContested";
    /// The Deployment has not yet seen the newest spec.
    pub const WAITING_FOR_CONTROLLER: &str = "WaitingForDeploymentController";
}
