//! What every reconcile shares: the client, the child caches, the operator's settings.

use std::sync::Arc;
use std::time::Duration;

use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::runtime::reflector::Store;

use super::own_writes::OwnWrites;
use super::recorder::Recorder;
use crate::analysis::Measurer;
use crate::api::MetricTemplate;
use crate::build::Defaults;
use crate::notify::Sinks;
use crate::telemetry::Metrics;

/// The watch caches of Weir's children (labelled `app.kubernetes.io/managed-by=weir`).
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<super::cache_form::CachedDeployment>,
    pub services: Store<super::cache_form::CachedService>,
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
    pub horizontal_pod_autoscalers: Store<HorizontalPodAutoscaler>,
    /// The slot Services' endpoints: what a gateway routes to.
    pub endpoint_slices: Store<EndpointSlice>,
    /// None when the cluster does not serve Gateway API HTTPRoutes.
    pub http_routes: Option<Store<HttpRoute>>,
    /// None when the cluster does not serve Gateway API GRPCRoutes.
    pub grpc_routes: Option<Store<GrpcRoute>>,
}

/// Shared by every reconcile, built once at start.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub caches: Caches,
    pub defaults: Defaults,
    pub resync: Duration,
    pub measurer: Measurer,
    /// Statuses written that the Microservice cache may not have seen yet.
    pub own_writes: Arc<OwnWrites>,
    /// Every MetricTemplate; None when the cluster does not serve them.
    pub metric_templates: Option<Store<MetricTemplate>>,
    /// Where notifications go, and the client that sends them.
    pub notifier: Notifier,
    /// Whether an abort lists the candidate's pods to say why they failed.
    pub pod_failure_reasons: bool,
    /// Why every release is frozen (`--freeze`), if they are.
    pub freeze: Option<String>,
    /// Whether a namespace's `weir.dev/freeze` annotation freezes its releases.
    pub namespace_freeze: bool,
    /// The Microservices of this controller, for the other members of a release group.
    pub microservices: Store<super::watches::Watched>,
    /// The ConfigMaps and Secrets Microservices may track, content hashed.
    pub config: super::config_watch::ConfigCaches,
}

/// The operator's notification sinks and an HTTP client for them (no redirects: a sink
/// gets the message at the URL configured, nowhere else).
#[derive(Clone)]
pub struct Notifier {
    pub sinks: Sinks,
    pub client: reqwest::Client,
}

impl Notifier {
    pub fn new(sinks: Option<Sinks>) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Notifier {
            sinks: sinks.unwrap_or_default(),
            client,
        }
    }
}

/// How long a reconcile waits for the child caches' first listing before trying later.
pub const CACHES_READY_WAIT: Duration = Duration::from_secs(10);

impl Caches {
    /// Waits until every cache holds its first full listing: deciding from an empty one
    /// would take a running release's candidate for missing (after a restart, say).
    pub async fn wait_until_ready(&self) -> bool {
        let routes = async {
            let http = async {
                match &self.http_routes {
                    Some(routes) => routes.wait_until_ready().await.is_ok(),
                    None => true,
                }
            };
            let grpc = async {
                match &self.grpc_routes {
                    Some(routes) => routes.wait_until_ready().await.is_ok(),
                    None => true,
                }
            };
            let (http, grpc) = futures::join!(http, grpc);
            http && grpc
        };
        let all = async {
            let (d, s, p, h, e, r) = futures::join!(
                self.deployments.wait_until_ready(),
                self.services.wait_until_ready(),
                self.pod_disruption_budgets.wait_until_ready(),
                self.horizontal_pod_autoscalers.wait_until_ready(),
                self.endpoint_slices.wait_until_ready(),
                routes,
            );
            d.is_ok() && s.is_ok() && p.is_ok() && h.is_ok() && e.is_ok() && r
        };
        tokio::time::timeout(CACHES_READY_WAIT, all)
            .await
            .unwrap_or(false)
    }
}
