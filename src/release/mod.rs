//! The release state machine, pure: from the Microservice, its status and what the cluster
//! shows, decide the next status and what each slot and the traffic should be. All state
//! lives in status, so a restarted operator carries on exactly where the last one stopped.
//!
//! A decision derives the release's [`Stage`] from status, lets that stage's handler act,
//! and derives the stage again until a handler settles the decision. docs/concepts.md draws
//! the stages and their transitions.
//!
//! | file | what |
//! |---|---|
//! | `stage.rs` | the stages, and the one function that derives them |
//! | `machine.rs` | the driver; `Steady`, `Aborted`, `Starting` |
//! | `progress.rs` | `Stepping`, `Paused`, `AwaitingAnalysis`, `StepsDone`, `Promoting`; the one function that moves a release on |
//! | `promotion.rs` | the end of `Promoting` |
//! | `returning.rs` | `ReturningAfterAbort`, `ReturningAfterSpecChange` |
//! | `traffic.rs` | the split and the pods a stage asks for, capped by ready pods |
//! | `actions.rs` | manual actions |
//! | `analysis.rs` | when the analysis measures, and what its rounds mean |
//! | `steps.rs` | the steps of a strategy, and how people count them |
//! | `decision.rs` | what a decision reads and returns |

mod actions;
mod analysis;
#[cfg(test)]
mod capacity_tests;
mod decision;
mod gate;
#[cfg(test)]
mod gate_tests;
pub mod group;
#[cfg(test)]
mod group_tests;
mod hold;
#[cfg(test)]
mod holds_tests;
mod machine;
pub mod pod_failures;
mod progress;
mod promotion;
#[cfg(test)]
mod properties;
mod returning;
mod stage;
mod steps;
#[cfg(test)]
mod tests;
mod traffic;
mod verification;
pub mod window;

pub use actions::{ACTION_ANNOTATION, ManualAction, parse_action};
pub use analysis::{at_gate, due_measurement, record_round};
pub use decision::{
    Abort, Decision, HoldBack, Inputs, Note, ReleaseFields, Router, SlotPlan, SlotState,
    TrafficPlan,
};
pub use steps::{Step, StepNumber, steps};
pub use traffic::capacity_for;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{Microservice, Slot, Strategy};
use crate::build::DEFAULT_PROGRESS_DEADLINE_SECONDS;
use machine::Machine;

/// Seconds the old slot keeps its pods after a promotion when the spec does not say.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;

/// Strategy Canary or BlueGreen.
pub fn is_progressive(ms: &Microservice) -> bool {
    !matches!(strategy(ms), Strategy::RollingUpdate)
}

/// Whether asking for `revision` starts (or continues) a release: a progressive spec, and a
/// stable revision other than it. The first deploy (no stable revision yet) and the revision
/// that already serves are not released.
pub fn asks_for_release(progressive: bool, stable: Option<&str>, revision: &str) -> bool {
    progressive && stable.is_some_and(|stable| stable != revision)
}

/// The strategy the spec asks for, `RollingUpdate` when it names none.
pub fn strategy(ms: &Microservice) -> Strategy {
    ms.spec
        .rollout
        .as_ref()
        .map(|r| r.strategy())
        .unwrap_or_default()
}

/// What moves traffic during a release: an HTTPRoute when the spec names Gateway API
/// parents, else the ratio of ready pods behind Service `<name>`.
pub fn router(ms: &Microservice) -> Router {
    if ms.spec.gateway_api().is_some() {
        Router::GatewayApi
    } else {
        Router::ReplicaRatio
    }
}

/// The slot that is not `slot`.
pub fn other(slot: Slot) -> Slot {
    match slot {
        Slot::Blue => Slot::Green,
        Slot::Green => Slot::Blue,
    }
}

/// `scaleDownDelaySeconds` of the strategy.
fn scale_down_delay(ms: &Microservice) -> i32 {
    let rollout = ms.spec.rollout.clone().unwrap_or_default();
    rollout
        .canary
        .and_then(|c| c.scale_down_delay_seconds)
        .or(rollout.blue_green.and_then(|b| b.scale_down_delay_seconds))
        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
}

/// `progressDeadlineSeconds`, at least a second.
fn progress_deadline(ms: &Microservice) -> Duration {
    let seconds = ms
        .spec
        .rollout
        .as_ref()
        .and_then(|r| r.progress_deadline_seconds)
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    Duration::from_secs(seconds.max(1) as u64)
}

/// `duration` after `time`, saturating far in the future.
pub fn after(time: Timestamp, duration: Duration) -> Timestamp {
    time.checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// `duration` after `time`, rounded up to the whole second: status keeps times to the second,
/// and a deadline read back from it must not come early.
pub fn deadline_after(time: &Time, duration: Duration) -> Timestamp {
    let at = after(time.0, duration);
    if at.subsec_nanosecond() == 0 {
        return at;
    }
    Timestamp::from_second(at.as_second() + 1).unwrap_or(at)
}

/// How long from `now` to `then`; zero once it has passed.
pub fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The next step of the state machine. Pure.
pub fn decide(ms: &Microservice, inputs: &Inputs) -> Decision {
    let mut machine = Machine::new(ms, inputs);
    machine.run();
    machine.finish()
}
