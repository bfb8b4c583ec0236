//! The Microservice controller: wiring, the reconcile pipeline and its error policy.

mod apply;
mod drift;
mod error;
mod events;
mod leader;
pub mod lease;
mod own_writes;
mod reconcile;
mod release;
pub mod status;
mod watches;

pub use error::Error;
pub use reconcile::{Caches, Context, reconcile};
use watches::{ChildWatches, Generations};

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{Controller, WatchStreamExt, controller, controller::Action, wait, watcher};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::api::Microservice;
use crate::cli::RunArgs;
use crate::telemetry::{self, Health, Metrics};

/// Errors that stop the operator before or while it runs.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no usable Kubernetes configuration: {0}")]
    Config(String),
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
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    // One controller per watched namespace (or one for all): with a list, every watch is
    // namespaced, so Roles in those namespaces are all the rights Weir needs.
    let namespaces: Vec<Option<String>> = if args.namespace.is_empty() {
        vec![None]
    } else {
        args.namespace.iter().cloned().map(Some).collect()
    };
    let resource = ApiResource::erase::<Microservice>(&());
    let writers: Vec<_> = namespaces
        .iter()
        .map(|_| reflector::store::Writer::new(resource.clone()))
        .collect();
    let server = start_health_server(
        &args,
        health.clone(),
        registry,
        metrics.clone(),
        writers.iter().map(|w| w.as_reader()).collect(),
        stop.clone(),
    )
    .await?;

    wait_for_crd(client.clone(), Duration::from_secs(args.crd_wait_seconds)).await?;
    health.set_ready(true);

    let leadership = if args.leader_elect {
        let ttl = Duration::from_secs(args.lease_seconds);
        let acquired = leader::acquire(
            lease_client,
            &args.lease_namespace,
            &args.lease_name,
            &identity,
            ttl,
            fence,
            stop.clone(),
        )
        .await;
        match acquired {
            Some(leadership) => Some(leadership),
            None => return finish(server, None, false).await,
        }
    } else {
        None
    };
    let lost = leadership.as_ref().map(|l| l.lost());

    let gateway_api = serves_http_routes(&client).await;
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "weir".into(),
            instance: Some(identity.clone()),
        },
    );
    let measurer = crate::analysis::Measurer::new(args.prometheus_address.clone())
        .with_ca_bundle(args.analysis_ca_bundle.as_ref())
        .allowing_only(args.allowed_analysis_hosts());
    let controllers = namespaces
        .into_iter()
        .zip(writers)
        .map(|(namespace, writer)| {
            let shared = Shared {
                client: client.clone(),
                metrics: metrics.clone(),
                recorder: recorder.clone(),
                measurer: measurer.clone(),
                gateway_api,
                shutdown: stop_or_lost(stop.clone(), lost.clone()),
            };
            run_namespace(&args, namespace, writer, shared)
        });
    // Running reconciles may finish after a stop, but not for ever: a pod has a grace period.
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

    let lost_leadership = lost.is_some_and(|l| *l.borrow());
    finish(server, leadership, lost_leadership).await
}

/// What every namespace's controller shares.
struct Shared<S> {
    client: Client,
    metrics: Metrics,
    recorder: Recorder,
    measurer: crate::analysis::Measurer,
    gateway_api: bool,
    shutdown: S,
}

/// The controller of one namespace (or of all when `namespace` is None), until `shutdown`.
async fn run_namespace<S>(
    args: &RunArgs,
    namespace: Option<String>,
    ms_writer: reflector::store::Writer<DynamicObject>,
    shared: Shared<S>,
) where
    S: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let resource = ApiResource::erase::<Microservice>(&());
    let client = shared.client.clone();
    let microservices: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let ms_cache = ms_writer.as_reader();
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("all"),
        "controller starting"
    );
    let own_writes = Arc::new(own_writes::OwnWrites::default());
    let caches_and_streams = ChildWatches::start(&client, namespace.as_deref(), shared.gateway_api);
    let context = Arc::new(Context {
        client: client.clone(),
        metrics: shared.metrics,
        recorder: shared.recorder,
        caches: caches_and_streams.caches.clone(),
        defaults: args.defaults(),
        resync: Duration::from_secs(args.resync_seconds),
        measurer: shared.measurer,
        debounce: Duration::from_millis(args.debounce_ms),
        own_writes: own_writes.clone(),
    });

    // Reconcile on spec changes only: Weir's own status writes must not trigger reconciles.
    let ms_watch =
        watcher(microservices, watcher::Config::default()).modify(|ms: &mut DynamicObject| {
            let autoscaling = ms.data.pointer("/spec/autoscaling").is_some();
            status::slim_for_cache(&mut ms.metadata, autoscaling);
        });
    let mut generations = Generations::default();
    let ms_stream = reflector(ms_writer, ms_watch)
        .default_backoff()
        .map_ok(move |event| {
            if let watcher::Event::Delete(gone) = &event {
                own_writes.forget(&gone.uid().unwrap_or_default());
            }
            futures::stream::iter(generations.changed(event).into_iter().map(Ok))
        })
        .try_flatten();
    let ms_stream = watches::without_errors(ms_stream, "Microservice".to_string());
    let ChildWatches {
        deployments,
        services,
        pdbs,
        hpas,
        http_routes,
        ..
    } = caches_and_streams;
    Controller::for_stream_with(ms_stream, ms_cache, resource)
        .owns_stream(deployments)
        .owns_stream(services)
        .owns_stream(pdbs)
        .owns_stream(hpas)
        .owns_stream(http_routes)
        .with_config(
            controller::Config::default().debounce(Duration::from_millis(args.debounce_ms)),
        )
        .graceful_shutdown_on(shared.shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Serves health and metrics until `stop`; the per-phase gauge is refreshed from the
/// Microservice cache at each scrape.
async fn start_health_server(
    args: &RunArgs,
    health: Health,
    registry: Registry,
    metrics: Metrics,
    caches: Vec<Store<DynamicObject>>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, StartError> {
    let refresh: telemetry::Refresh = Arc::new(move || {
        let objects: Vec<_> = caches.iter().flat_map(|cache| cache.state()).collect();
        let phases = objects
            .iter()
            .map(|o| o.data.pointer("/status/phase").and_then(|p| p.as_str()));
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
/// Gateway API CRDs before Weir, or restart it after).
async fn serves_http_routes(client: &Client) -> bool {
    let served = client
        .list_api_group_resources("gateway.networking.k8s.io/v1")
        .await
        .is_ok_and(|list| list.resources.iter().any(|r| r.name == "httproutes"));
    tracing::info!(served, "Gateway API HTTPRoutes");
    served
}

/// A client whose requests say who sends them: `weir/<version> (<identity>)`, and whose
/// writes pass `fence` when given.
async fn client(identity: &str, fence: Option<&leader::Fence>) -> Result<Client, StartError> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| StartError::Config(e.to_string()))?;
    let agent = format!("weir/{} ({identity})", env!("CARGO_PKG_VERSION"));
    let value = agent
        .parse()
        .map_err(|_| StartError::Config(format!("invalid identity {identity:?}")))?;
    config.headers.push((http::header::USER_AGENT, value));
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| StartError::Config(e.to_string()))?;
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
fn error_policy(object: Arc<DynamicObject>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %object.name_any(), category = error.category(), %error, "reconcile failed");
    if error.is_permanent() {
        Action::await_change()
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
