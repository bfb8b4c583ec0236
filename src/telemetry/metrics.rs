use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::{
    counter::Counter, family::Family, gauge::Gauge, histogram::Histogram,
};
use prometheus_client::registry::Registry;

/// How a reconcile ended. Labels carry bounded categories only, never object names.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ReconcileOutcome {
    Success,
    Error,
}

impl ReconcileOutcome {
    fn label(self) -> &'static str {
        match self {
            ReconcileOutcome::Success => "success",
            ReconcileOutcome::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabels {
    /// One of a fixed set of words (see `controller::Error::category`).
    category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// The operator's Prometheus metrics, registered once at start.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<OutcomeLabels, Counter>,
    errors: Family<CategoryLabels, Counter>,
    reconcile_duration: Histogram,
    microservices: Family<PhaseLabels, Gauge>,
}

/// Phases a Microservice can be in, plus `Unknown` before its first status.
pub const PHASES: [&str; 5] = ["Healthy", "Progressing", "Paused", "Degraded", "Unknown"];

impl Metrics {
    /// Creates the metrics and registers them under the `weir` prefix; every error
    /// category starts at zero so dashboards and alerts see the series before a failure.
    pub fn register(registry: &mut Registry, error_categories: &[&'static str]) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            reconcile_duration: Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
            microservices: Family::default(),
        };
        for category in error_categories {
            let _ = metrics.errors.get_or_create(&CategoryLabels { category });
        }
        let weir = registry.sub_registry_with_prefix("weir");
        weir.register(
            "reconciles",
            "Reconciles by result",
            metrics.reconciles.clone(),
        );
        weir.register(
            "reconcile_errors",
            "Failed reconciles by error category",
            metrics.errors.clone(),
        );
        weir.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            metrics.reconcile_duration.clone(),
        );
        weir.register(
            "microservices",
            "Microservices by phase",
            metrics.microservices.clone(),
        );
        metrics
    }

    /// Records one finished reconcile.
    pub fn observe(&self, result: ReconcileOutcome, category: &'static str, took: Duration) {
        if result == ReconcileOutcome::Error {
            self.errors
                .get_or_create(&CategoryLabels { category })
                .inc();
        }
        self.reconciles
            .get_or_create(&OutcomeLabels {
                result: result.label(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Sets the per-phase counts, from the phases of every watched Microservice.
    pub fn set_phases<'a>(&self, phases: impl Iterator<Item = Option<&'a str>>) {
        let mut counts = [0i64; PHASES.len()];
        for phase in phases {
            let index = PHASES
                .iter()
                .position(|p| Some(*p) == phase)
                .unwrap_or(PHASES.len() - 1);
            counts[index] += 1;
        }
        for (phase, count) in PHASES.iter().zip(counts) {
            self.microservices
                .get_or_create(&PhaseLabels { phase })
                .set(count);
        }
    }
}
