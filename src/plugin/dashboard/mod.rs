//! `kubectl weir dashboard`: a page per Microservice that shows where its release stands and
//! how it got there, updated live from watches, with the release actions behind a
//! confirmation. It runs on the user's machine with the user's kubeconfig, so it sees and
//! does exactly what the user may; it listens on loopback unless told otherwise.
//!
//! [`feed`] keeps the [`board`] current from watches, [`views`] turns it into what the pages
//! show, [`server`] serves the pages, their event streams and the actions, and [`guard`]
//! keeps other web pages from reading or acting through it.

mod board;
mod feed;
mod guard;
mod server;
mod views;

use std::net::SocketAddr;

use kube::Api;
use kube::api::ListParams;

use super::args::DashboardArgs;
use super::client::Target;
use super::error::Error;
use crate::api::Microservice;

/// Serves the dashboard until Ctrl-C.
pub async fn serve(
    target: &Target,
    args: &DashboardArgs,
    namespace_given: bool,
) -> Result<(), Error> {
    let namespace = scope(target, namespace_given).await?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.address, args.port))
        .await
        .map_err(|e| {
            Error::Serve(format!(
                "cannot listen on {}:{}: {e}",
                args.address, args.port
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::Serve(e.to_string()))?;
    let guard = guard::Guard::new(address).map_err(|e| Error::Serve(e.to_string()))?;
    let shared = feed::Shared::new();
    feed::start(&target.client, namespace.as_deref(), &shared);
    let seen = namespace.map_or("every namespace".to_string(), |ns| {
        format!("namespace {ns}")
    });
    if !args.address.is_loopback() {
        eprintln!(
            "warning: listening on {address}: anyone who reaches it sees {seen} with your \
             credentials (actions still need the page's session token)"
        );
    }
    super::print(&format!(
        "Weir dashboard for {seen}: http://{address}/ (Ctrl-C to stop)\n"
    ))?;
    server::run(listener, shared, guard, target.client.clone()).await
}

/// The namespace to watch: the one given with `-n`; else every namespace when the user may
/// list Microservices cluster-wide, else the context's namespace.
async fn scope(target: &Target, namespace_given: bool) -> Result<Option<String>, Error> {
    if namespace_given {
        return Ok(Some(target.namespace.clone()));
    }
    let everywhere: Api<Microservice> = Api::all(target.client.clone());
    match everywhere
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            eprintln!(
                "You may not list Microservices in every namespace; showing namespace {}.",
                target.namespace
            );
            Ok(Some(target.namespace.clone()))
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Err(Error::NoCrd),
        Err(e) => Err(Error::api("cannot list microservices")(e)),
    }
}
