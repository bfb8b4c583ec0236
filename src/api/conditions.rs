//! Condition types and reasons, in one place so status, events and tests agree.

/// The service answers with enough ready pods of the current revision.
pub const READY: &str = "Ready";
/// A change is being rolled out.
pub const PROGRESSING: &str = "Progressing";
/// Something stops the service from reaching what the spec asks.
pub const DEGRADED: &str = "Degraded";
/// kstatus (Flux, kpt, cli-utils): Weir is still working towards the spec.
pub const RECONCILING: &str = "Reconciling";
/// kstatus: Weir cannot reach the spec without a change (an aborted release, a conflict).
pub const STALLED: &str = "Stalled";

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
    /// A release is moving traffic to a new revision.
    pub const RELEASING: &str = "Releasing";
    /// A release waits for a promote, or was paused by hand.
    pub const PAUSED: &str = "Paused";
    /// A release started.
    pub const RELEASE_STARTED: &str = "ReleaseStarted";
    /// A release ended with the new revision serving all traffic.
    pub const PROMOTED: &str = "Promoted";
    /// A release was stopped and traffic returned to the stable revision.
    pub const ABORTED: &str = "Aborted";
    /// The analysis failed (or stayed inconclusive) beyond its limits.
    pub const ANALYSIS_FAILED: &str = "AnalysisFailed";
    /// The analysis after the promotion failed: traffic went back to the old version.
    pub const POST_PROMOTION_ANALYSIS_FAILED: &str = "PostPromotionAnalysisFailed";
    /// The post-promotion analysis began or passed.
    pub const VERIFYING: &str = "Verifying";
    pub const VERIFIED: &str = "Verified";
    /// A failed metric with `onFailure: Hold` holds the release for a person.
    pub const HELD: &str = "Held";
    /// A release waits for its next release window.
    pub const OUTSIDE_WINDOW: &str = "OutsideWindow";
    /// Releases are frozen in the namespace or the cluster.
    pub const FROZEN: &str = "Frozen";
    /// A member of a release group waits for the others.
    pub const WAITING_FOR_GROUP: &str = "WaitingForGroup";
    /// Another member of the release group aborted.
    pub const GROUP_ABORTED: &str = "GroupAborted";
    /// The spec changed during a release, which restarts with the newest revision.
    pub const SPEC_CHANGED: &str = "SpecChanged";
    /// Manual actions received through the `weir.dev/action` annotation.
    pub const PROMOTE_REQUESTED: &str = "PromoteRequested";
    pub const ABORT_REQUESTED: &str = "AbortRequested";
    pub const RETRY_REQUESTED: &str = "RetryRequested";
    pub const PAUSE_REQUESTED: &str = "PauseRequested";
    pub const RESUME_REQUESTED: &str = "ResumeRequested";
    /// An action that cannot apply now, or is not known.
    pub const ACTION_IGNORED: &str = "ActionIgnored";
    /// `traffic.gatewayAPI` is set but the cluster does not serve HTTPRoutes.
    pub const GATEWAY_API_MISSING: &str = "GatewayAPIMissing";
    /// A route parent names a Service other than the Microservice's own.
    pub const FOREIGN_PARENT: &str = "ForeignParent";
    /// A metric names a MetricTemplate that does not exist, or leaves one of its arguments
    /// without a value: the release does not start.
    pub const TEMPLATE_NOT_FOUND: &str = "TemplateNotFound";
    /// A metric names a credential set the operator does not have, or does not allow for
    /// the Microservice's namespace: the release does not start.
    pub const CREDENTIALS_REFUSED: &str = "CredentialsRefused";
    /// A notification names a sink the operator does not have or does not allow for the
    /// Microservice's namespace: it is dropped, nothing is sent.
    pub const NOTIFICATION_REFUSED: &str = "NotificationRefused";
    /// A notification's sink kept failing; it was given up.
    pub const NOTIFICATION_FAILED: &str = "NotificationFailed";
    /// A running Deployment is being taken over (`spec.migrateFrom`).
    pub const TAKING_OVER: &str = "TakingOver";
    /// A takeover went back to the old Deployment: Weir's pods stopped being ready.
    pub const TAKEOVER_ROLLED_BACK: &str = "TakeoverRolledBack";
    /// A takeover was aborted by an `abort` action.
    pub const TAKEOVER_ABORTED: &str = "TakeoverAborted";
}
