//! Pure summaries of Microservices: the one model behind both the text and the
//! `-o json|yaml` output.

mod list;
mod status;

pub use list::{ListRow, ListSummary, rows};
pub use status::{
    EventSummary, ReleaseSummary, StatusSummary, StepState, StepSummary, TrafficSummary, summarize,
};
