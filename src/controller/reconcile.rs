//! The reconcile of one Microservice: four stages with a plain value between each, none
//! calling back into an earlier one.
//!
//! ```text
//! observe  object → Observation      the Microservice, its newest status, both slots, the live
//!                                    route and Service, the pending action (or an early stop)
//! decide   Observation → Plan        measure when due, the release decision
//!                                    (and when an abort begins, what the candidate's pods show)
//! apply    Plan → Applied            children written, the active Deployment, problems found
//! report   Applied → Action          events, the status write, the action cleared, the requeue
//! ```

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::Context;
use super::error::{Cause, Error, Stage};
use super::observe::{self, Observed};
use super::watches::Watched;
use super::{apply, decide, failure_reasons, report};
use crate::telemetry::ReconcileOutcome;

/// Brings the cluster in line with one Microservice.
pub async fn reconcile(object: Arc<Watched>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = run_stages(&object, &ctx).await;
    let (outcome, category) = match &result {
        Ok(_) => (ReconcileOutcome::Success, "none"),
        Err(e) => (ReconcileOutcome::Error, e.category()),
    };
    ctx.metrics.observe(outcome, category, started.elapsed());
    result
}

async fn run_stages(object: &Watched, ctx: &Context) -> Result<Action, Error> {
    let key = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let key = key.as_str();
    let failed = |stage| move |cause: Cause| Error::new(stage, key, cause);
    let observed = observe::observe(object, ctx).await;
    let observation = match observed.map_err(failed(Stage::Observe))? {
        Observed::Microservice(observation) => observation,
        Observed::Early(early) => return Ok(report::early(&early, ctx).await),
    };
    let mut plan = decide::decide(&observation, &ctx.measurer).await;
    failure_reasons::explain(&observation, &mut plan, ctx).await;
    let applied = apply::apply(&observation, &plan, ctx).await;
    let applied = applied.map_err(failed(Stage::Apply))?;
    let reported = report::report(&observation, &plan, &applied, ctx).await;
    reported.map_err(failed(Stage::Report))
}
