use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};

use super::Error;
use crate::api::Microservice;
use crate::telemetry::{Metrics, ReconcileOutcome};

/// Shared by every reconcile: the client and the metrics.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
}

/// Brings the cluster in line with one Microservice.
pub async fn reconcile(ms: Arc<Microservice>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&ms, &ctx).await;
    let (outcome, category) = match &result {
        Ok(_) => (ReconcileOutcome::Success, "none"),
        Err(e) => (ReconcileOutcome::Error, e.category()),
    };
    ctx.metrics.observe(outcome, category, started.elapsed());
    result
}

async fn reconcile_inner(ms: &Microservice, _ctx: &Context) -> Result<Action, Error> {
    let namespace = ms.namespace().ok_or(Error::MissingNamespace)?;
    tracing::info!(name = %ms.name_any(), %namespace, image = %ms.spec.image, "reconciling");
    Ok(Action::await_change())
}
