//! The Microservice controller: wiring, the reconcile pipeline and its error policy.

mod apply;
pub mod cache_form;
mod children;
mod config;
mod config_watch;
mod context;
mod decide;
mod drift;
mod error;
mod events;
mod failure_reasons;
mod gateway_features;
mod groups;
mod leader;
pub mod lease;
mod observe;
mod own_writes;
mod problem;
mod reconcile;
mod recorder;
mod report;
pub mod status;
mod takeover;
mod templates;
mod throttle;
mod verify;
mod watches;

pub use context::{Caches, Context};
pub use error::{Cause, Error, Stage};
pub use reconcile::reconcile;
use recorder::Recorder;
use watches::{ChildWatches, Watched};

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::CancelableJoinHandle;
use kube::runtime::{controller, controller::Action, wait};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tracing::Instrument;

use crate::api::Microservice;
use crate::cli::RunArgs;
use crate::telemetry::{self, Health, Metrics};

/// Errors that stop the operator before or while it runs.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no usable Kubernetes configuration: {0}")]
    Config(#[source] kube::config::InferConfigError),
    #[error("the identity {identity:?} cannot go in a User-Agent header: {source}")]
    Identity {
        identity: String,
        #[source]
        source: http::header::InvalidHeaderValue,
    },
    #[error("cannot build a Kubernetes client from the configuration: {0}")]
    Client(#[source] kube::Error),
    #[error(
        "CRD {0} is not established; install it with `weir crd | kubectl apply --server-side -f -`"
    )]
    CrdNotEstablished(String),
    #[error("waiting for the CRD failed: {0}")]
    CrdWait(#[source] wait::Error),
    #[error("health server: {0}")]
    Server(#[source] std::io::Error),
    #[error("lost leadership; exiting so that a restart rejoins the election")]
    LostLeadership,
}

/// How long running reconciles may go on after a stop before the operator exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the operator until SIGTERM or SIGINT, then returns after a clean shutdown.
pub async fn run(args: RunArgs) -> Result<(), StartError> {
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    // The lease is renewed through a client of its own; every other write passes the fence.
    let fence = if args.leader_elect {
        leader::Fence::closed()
    } else {
        leader::Fence::open()
    };
    let lease_client = client(&identity, None).await?;
    let client = client(&identity, Some(&fence)).await?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry, &error::CATEGORIES);
    let health = Health::default();
    let stop = stop_on_signal();

    // One controller per watched namespace (or one for all): with a list, every watch is
    // namespaced, so Roles in those namespaces are all the rights Weir needs.
    let namespaces: Vec<Option<String>> = if args.namespace.is_empty() {
        vec![None]
    } else {
        args.namespace.iter().cloned().map(Some).collect()
    };
    let writers: Vec<_> = namespaces
        .iter()
        .map(|_| reflector::store::Writer::<Watched>::default())
        .collect();
    let readers = writers.iter().map(|w| w.as_reader()).collect();
    let server = start_health_server(
        &args,
        health.clone(),
        registry,
        metrics.clone(),
        readers,
        stop.clone(),
    )
    .await?;

    wait_for_crd(client.clone(), Duration::from_secs(args.crd_wait_seconds)).await?;
    health.set_ready(true);

    let Ok(leadership) = lead(&args, lease_client, &identity, fence, &stop).await else {
        return finish(server, None, false).await;
    };
    let lost = leadership.as_ref().map(|l| l.lost());
    let shared = Shared::new(&args, client, metrics, &identity).await;
    run_controllers(
        &args,
        namespaces.into_iter().zip(writers),
        &shared,
        &stop,
        &lost,
    )
    .await;
    let lost_leadership = lost.is_some_and(|l| *l.borrow());
    finish(server, leadership, lost_leadership).await
}

/// A receiver that turns true on SIGTERM or SIGINT.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    stop
}

/// Stopped before leadership was acquired.
struct NeverLed;

/// Leadership when leader election is on, once acquired; none when it is off.
async fn lead(
    args: &RunArgs,
    lease_client: Client,
    identity: &str,
    fence: leader::Fence,
    stop: &watch::Receiver<bool>,
) -> Result<Option<leader::Leadership>, NeverLed> {
    if !args.leader_elect {
        return Ok(None);
    }
    let ttl = Duration::from_secs(args.lease_seconds);
    let acquired = leader::acquire(
        lease_client,
        &args.lease_namespace,
        &args.lease_name,
        identity,
        ttl,
        fence,
        stop.clone(),
    )
    .await;
    acquired.map(Some).ok_or(NeverLed)
}

/// How often the events published over six minutes ago are forgotten (recorder.rs).
const FORGET_EVENTS_EVERY: Duration = Duration::from_secs(60);

/// What every namespace's controller shares.
#[derive(Clone)]
struct Shared {
    client: Client,
    metrics: Metrics,
    recorder: Recorder,
    measurer: crate::analysis::Measurer,
    gateway_api: watches::RouteKinds,
    metric_templates: Option<Store<crate::api::MetricTemplate>>,
    notifier: context::Notifier,
}

impl Shared {
    async fn new(args: &RunArgs, client: Client, metrics: Metrics, identity: &str) -> Self {
        let reporter = Reporter {
            controller: "weir".into(),
            instance: Some(identity.to_string()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        tokio::spawn(recorder.clone().forget_old_every(FORGET_EVENTS_EVERY));
        Shared {
            gateway_api: serves_routes(&client).await,
            metric_templates: templates::watch(&client).await,
            notifier: context::Notifier::new(args.notification_sinks.clone()),
            recorder,
            measurer: crate::analysis::Measurer::new(args.prometheus_address.clone())
                .with_ca_bundle(args.analysis_ca_bundle.as_ref())
                .with_credentials(args.analysis_credentials.as_ref())
                .with_kube_client(client.clone())
                .allowing_only(args.allowed_analysis_hosts()),
            client,
            metrics,
        }
    }
}

/// Runs a controller per namespace until they all end, or until the grace period after a
/// stop (or a loss of leadership) is over: a pod has a grace period too.
async fn run_controllers(
    args: &RunArgs,
    namespaces: impl Iterator<Item = (Option<String>, reflector::store::Writer<Watched>)>,
    shared: &Shared,
    stop: &watch::Receiver<bool>,
    lost: &Option<watch::Receiver<bool>>,
) {
    let controllers = namespaces.map(|(namespace, writer)| {
        let shutdown = stop_or_lost(stop.clone(), lost.clone());
        run_namespace(args, namespace, writer, shared.clone(), shutdown)
    });
    let stopped_late = {
        let stopping = stop_or_lost(stop.clone(), lost.clone());
        async move {
            stopping.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    tokio::select! {
        _ = futures::future::join_all(controllers) => {}
        _ = stopped_late => tracing::warn!(grace = ?SHUTDOWN_GRACE, "controllers still busy after the grace period; exiting"),
    }
}

/// The controller of one namespace (or of all when `namespace` is None), until `shutdown`.
async fn run_namespace<S>(
    args: &RunArgs,
    namespace: Option<String>,
    ms_writer: reflector::store::Writer<Watched>,
    shared: Shared,
    shutdown: S,
) where
    S: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let client = shared.client.clone();
    let microservices: Api<Watched> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ms_cache = ms_writer.as_reader();
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("all"),
        "controller starting"
    );
    let own_writes = Arc::new(own_writes::OwnWrites::default());
    let children = ChildWatches::start(&client, namespace.as_deref(), shared.gateway_api);
    let (config_maps, config_map_changes) =
        config_watch::watch_if::<ConfigMap>(args.track_configmaps, &client, namespace.as_deref());
    let (secrets, secret_changes) =
        config_watch::watch_if::<Secret>(args.track_secrets, &client, namespace.as_deref());
    let context = Arc::new(Context {
        client,
        metrics: shared.metrics,
        recorder: shared.recorder,
        caches: children.caches.clone(),
        defaults: args.defaults(),
        resync: Duration::from_secs(args.resync_seconds),
        measurer: shared.measurer,
        own_writes: own_writes.clone(),
        metric_templates: shared.metric_templates,
        notifier: shared.notifier,
        pod_failure_reasons: args.pod_failure_reasons,
        freeze: args.freeze.clone().filter(|reason| !reason.is_empty()),
        namespace_freeze: args.namespace_freeze,
        microservices: ms_cache.clone(),
        config: config_watch::ConfigCaches {
            config_maps,
            secrets,
        },
    });
    let (group_trigger, group_changes) = futures::channel::mpsc::unbounded();
    let triggers = watches::microservices(microservices, ms_writer, own_writes, group_trigger);
    let ChildWatches {
        deployments,
        services,
        pdbs,
        hpas,
        http_routes,
        grpc_routes,
        endpoint_slices,
        ..
    } = children;
    let referencing_config_map = config_watch::referencing::<ConfigMap>(&ms_cache);
    let referencing_secret = config_watch::referencing::<Secret>(&ms_cache);
    let ms_cache_for_groups = ms_cache.clone();
    // The triggers of every watch, as kube's Controller would merge them, then throttled on
    // the leading edge (throttle.rs) instead of debounced: the scheduler adds no delay.
    let queue = futures::stream::select_all([
        controller::trigger_self(triggers, ()).boxed(),
        controller::trigger_owners(deployments, (), ()).boxed(),
        controller::trigger_owners(services, (), ()).boxed(),
        controller::trigger_owners(pdbs, (), ()).boxed(),
        controller::trigger_owners(hpas, (), ()).boxed(),
        controller::trigger_owners(http_routes, (), ()).boxed(),
        controller::trigger_owners(grpc_routes, (), ()).boxed(),
        controller::trigger_with(endpoint_slices, watches::microservice_of_labels).boxed(),
        controller::trigger_with(config_map_changes, referencing_config_map).boxed(),
        controller::trigger_with(secret_changes, referencing_secret).boxed(),
        controller::trigger_with(
            group_changes.map(Ok::<_, kube::runtime::watcher::Error>),
            groups::other_members(ms_cache_for_groups),
        )
        .boxed(),
    ]);
    let window = Duration::from_millis(args.debounce_ms);
    let queue = throttle::throttle(queue, window).take_until(shutdown);
    controller::applier(
        |ms, ctx| {
            let reconciling = reconcile(ms, ctx).in_current_span();
            CancelableJoinHandle::spawn(reconciling, &tokio::runtime::Handle::current())
        },
        error_policy,
        context,
        ms_cache,
        queue,
        controller::Config::default()
            .debounce(Duration::ZERO)
            .concurrency(args.concurrency),
    )
    .for_each(|_| futures::future::ready(()))
    .await;
}

/// Serves health and metrics until `stop`; the per-phase gauge is refreshed from the
/// Microservice caches at each scrape (an object that does not read counts as Unknown).
async fn start_health_server(
    args: &RunArgs,
    health: Health,
    registry: Registry,
    metrics: Metrics,
    caches: Vec<Store<Watched>>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, StartError> {
    let refresh: telemetry::Refresh = Arc::new(move || {
        let objects: Vec<_> = caches.iter().flat_map(|cache| cache.state()).collect();
        let phases = objects.iter().map(|o| {
            let ms = o.0.as_ref().ok()?;
            Some(ms.status.as_ref()?.phase?.as_str())
        });
        metrics.set_phases(phases);
    });
    let listener = telemetry::bind(args.metrics_addr)
        .await
        .map_err(StartError::Server)?;
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    Ok(tokio::spawn(telemetry::serve(
        listener,
        health,
        Arc::new(registry),
        refresh,
        stopped,
    )))
}

/// Resolves on SIGTERM/SIGINT, or when leadership is lost: either way the controller stops.
async fn stop_or_lost(mut stop: watch::Receiver<bool>, lost: Option<watch::Receiver<bool>>) {
    let lost = async {
        match lost {
            Some(mut lost) => {
                let _ = lost.wait_for(|l| *l).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop.wait_for(|s| *s) => {}
        _ = lost => {}
    }
}

async fn finish(
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    leadership: Option<leader::Leadership>,
    lost_leadership: bool,
) -> Result<(), StartError> {
    tracing::info!("controller stopped, shutting down");
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    if lost_leadership {
        return Err(StartError::LostLeadership);
    }
    match server.await {
        Ok(result) => result.map_err(StartError::Server),
        Err(_) => Ok(()),
    }
}

/// True when the cluster serves Gateway API HTTPRoutes; checked once at start (install the
/// Gateway API CRDs before Weir, or restart it after). The group is looked up in the list
/// of groups first: asking a server without it for its resources answers a plain-text 404,
/// which the client would log as a warning of its own.
async fn serves_routes(client: &Client) -> watches::RouteKinds {
    const GROUP: &str = "gateway.networking.k8s.io";
    let resources = match client.list_api_groups().await {
        Ok(groups) => {
            let v1 = groups
                .groups
                .iter()
                .any(|g| g.name == GROUP && g.versions.iter().any(|v| v.version == "v1"));
            match v1 {
                true => client
                    .list_api_group_resources(&format!("{GROUP}/v1"))
                    .await
                    .map(|list| list.resources)
                    .unwrap_or_default(),
                false => Vec::new(),
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot list the API groups; working without Gateway API");
            Vec::new()
        }
    };
    let served = |name: &str| resources.iter().any(|r| r.name == name);
    let kinds = watches::RouteKinds {
        http: served("httproutes"),
        grpc: served("grpcroutes"),
    };
    if kinds.grpc {
        tracing::info!("Gateway API GRPCRoutes are served: releases can route through them");
    }
    let served = kinds.http;
    if served {
        tracing::info!("Gateway API HTTPRoutes are served: releases can route through them");
    } else {
        tracing::info!(
            "Gateway API HTTPRoutes are not served by this cluster: a Microservice with \
             rollout.traffic.gatewayAPI reports GatewayAPIMissing until the Gateway API CRDs \
             are installed and Weir restarts"
        );
    }
    kinds
}

/// A client whose requests say who sends them: `weir/<version> (<identity>)`, and whose
/// writes pass `fence` when given.
async fn client(identity: &str, fence: Option<&leader::Fence>) -> Result<Client, StartError> {
    let mut config = kube::Config::infer().await.map_err(StartError::Config)?;
    let agent = format!("weir/{} ({identity})", env!("CARGO_PKG_VERSION"));
    let value = agent.parse().map_err(|source| StartError::Identity {
        identity: identity.to_string(),
        source,
    })?;
    config.headers.push((http::header::USER_AGENT, value));
    let builder = kube::client::ClientBuilder::try_from(config).map_err(StartError::Client)?;
    Ok(match fence {
        Some(fence) => builder.with_layer(&fence.layer()).build(),
        None => builder.build(),
    })
}

fn default_identity() -> String {
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "weir".into());
    format!("{}-{}", host.trim(), std::process::id())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown requested");
}

async fn wait_for_crd(client: Client, deadline: Duration) -> Result<(), StartError> {
    let name = Microservice::crd_name();
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let established = wait::await_condition(crds, name, wait::conditions::is_crd_established());
    match tokio::time::timeout(deadline, established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(StartError::CrdWait(e)),
        Err(_) => Err(StartError::CrdNotEstablished(name.to_string())),
    }
}

/// A spec that cannot work waits for a change; anything else retries with a delay.
fn error_policy(object: Arc<Watched>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %object.name_any(), stage = %error.stage, category = error.category(), %error, "reconcile failed");
    if error.is_permanent() {
        Action::await_change()
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
