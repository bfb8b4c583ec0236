//! Pure summaries of Microservices: the one model behind both the text and the
//! `-o json|yaml` output.

mod list;
mod status;

pub use list::{ListRow, ListSummary, row as summary_row, rows};
pub use status::{
    EventSummary, ReleaseSummary, StatusSummary, StepState, StepSummary, TrafficSummary, last_seen,
    recent_events, summarize,
};

/// The step a release is at, counted from 1 as everywhere else; `stepCount` once every step
/// is done.
fn current_step(release: &crate::api::Release) -> i32 {
    crate::release::StepNumber::of(release).map_or(release.step_count, |step| step.number)
}
