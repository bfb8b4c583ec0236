//! The Microservice controller: wiring, the reconcile pipeline and its error policy.

mod error;
mod reconcile;

pub use error::Error;
pub use reconcile::{Context, reconcile};

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::{Controller, controller::Action, wait, watcher};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use prometheus_client::registry::Registry;

use crate::api::Microservice;
use crate::cli::RunArgs;
use crate::telemetry::{self, Health, Metrics};

/// Errors that stop the operator before or while it starts.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no usable Kubernetes configuration: {0}")]
    Config(#[source] kube::Error),
    #[error("CRD {0} is not established; install it with `weir crd | kubectl apply -f -`")]
    CrdNotEstablished(String),
    #[error("waiting for the CRD failed: {0}")]
    CrdWait(#[source] wait::Error),
    #[error("health server: {0}")]
    Server(#[source] std::io::Error),
}

/// Runs the operator until SIGTERM or SIGINT, then returns after a clean shutdown.
pub async fn run(args: RunArgs) -> Result<(), StartError> {
    let client = Client::try_default().await.map_err(StartError::Config)?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let health = Health::default();

    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(telemetry::serve(
        args.metrics_addr,
        health.clone(),
        Arc::new(registry),
        async {
            let _ = server_stopped.await;
        },
    ));

    wait_for_crd(client.clone(), Duration::from_secs(args.crd_wait_seconds)).await?;
    health.set_ready(true);
    tracing::info!("controller starting");

    let context = Arc::new(Context {
        client: client.clone(),
        metrics,
    });
    Controller::new(Api::<Microservice>::all(client), watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, context)
        .for_each(|_| futures::future::ready(()))
        .await;

    tracing::info!("controller stopped, shutting down");
    health.set_ready(false);
    let _ = stop_server.send(());
    match server.await {
        Ok(result) => result.map_err(StartError::Server),
        Err(_) => Ok(()),
    }
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
fn error_policy(object: Arc<Microservice>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %object.name_any(), category = error.category(), %error, "reconcile failed");
    if error.is_permanent() {
        Action::await_change()
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
