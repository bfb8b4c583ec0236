use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};
use prometheus_client::registry::Registry;

/// How a reconcile ended. Labels carry bounded categories only, never object names.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum ReconcileOutcome {
    Success,
    Error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: ReconcileOutcome,
    /// Error category (`none` on success): one of a fixed set of words.
    category: &'static str,
}

/// The operator's Prometheus metrics, registered once at start.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<OutcomeLabels, Counter>,
    reconcile_duration: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them under the `weir` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
        };
        let weir = registry.sub_registry_with_prefix("weir");
        weir.register(
            "reconciles",
            "Reconciles by outcome and error category",
            metrics.reconciles.clone(),
        );
        weir.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            metrics.reconcile_duration.clone(),
        );
        metrics
    }

    /// Records one finished reconcile.
    pub fn observe(&self, outcome: ReconcileOutcome, category: &'static str, took: Duration) {
        self.reconciles
            .get_or_create(&OutcomeLabels { outcome, category })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }
}
