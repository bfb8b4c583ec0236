//! The watches that keep the [`Board`] current: Microservices, their events, and Weir's
//! slot Deployments, with the user's own credentials. Each change bumps a counter that the
//! open pages wait on, so a page hears of a change the moment the API server sends it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::core::DeserializeGuard;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;

use super::board::{Board, Key};
use crate::api::Microservice;
use crate::build::labels::{MANAGED_BY, MANAGED_BY_LABEL};

/// The board, and the counter of its changes.
pub struct Shared {
    board: Mutex<Board>,
    changes: watch::Sender<u64>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            board: Mutex::new(Board::default()),
            changes: watch::Sender::new(0),
        })
    }

    pub fn board(&self) -> MutexGuard<'_, Board> {
        // A panic while holding the lock leaves a board that is still a board.
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that wakes on every change from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn update(&self, change: impl FnOnce(&mut Board)) {
        change(&mut self.board());
        self.changes.send_modify(|count| *count += 1);
    }
}

/// Starts the three watches on `namespace`, or on every namespace when `None`.
pub fn start(client: &Client, namespace: Option<&str>, shared: &Arc<Shared>) {
    let microservices: Api<DeserializeGuard<Microservice>> = api(client, namespace);
    let events: Api<Event> = api(client, namespace);
    let deployments: Api<Deployment> = api(client, namespace);
    let by_kind = watcher::Config::default().fields("involvedObject.kind=Microservice");
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    tokio::spawn(follow_microservices(
        watcher(microservices, watcher::Config::default()),
        shared.clone(),
    ));
    let shared_events = shared.clone();
    tokio::spawn(follow(watcher(events, by_kind), move |change| {
        shared_events.update(|board| match change {
            watcher::Event::Apply(e) | watcher::Event::InitApply(e) => board.apply_event(e),
            watcher::Event::Delete(e) => board.delete_event(&e),
            watcher::Event::Init | watcher::Event::InitDone => {}
        })
    }));
    let shared_deployments = shared.clone();
    tokio::spawn(follow(watcher(deployments, managed), move |change| {
        shared_deployments.update(|board| match change {
            watcher::Event::Apply(d) | watcher::Event::InitApply(d) => board.apply_deployment(&d),
            watcher::Event::Delete(d) => board.delete_deployment(&d),
            watcher::Event::Init | watcher::Event::InitDone => {}
        })
    }));
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Applies every change of a watch, retrying with back-off when it breaks (a page shows
/// what it last saw meanwhile).
async fn follow<K, S>(stream: S, mut apply: impl FnMut(watcher::Event<K>))
where
    S: Stream<Item = watcher::Result<watcher::Event<K>>> + Send,
{
    let mut stream = std::pin::pin!(stream.default_backoff());
    while let Some(change) = stream.next().await {
        match change {
            Ok(change) => apply(change),
            Err(error) => tracing::warn!(%error, "a watch of the dashboard failed; retrying"),
        }
    }
}

/// Microservices, skipping objects that do not read as one; a re-list drops the ones gone.
async fn follow_microservices<S>(stream: S, shared: Arc<Shared>)
where
    S: Stream<Item = watcher::Result<watcher::Event<DeserializeGuard<Microservice>>>> + Send,
{
    let mut listed: BTreeSet<Key> = BTreeSet::new();
    follow(stream, |change| {
        shared.update(|board| match change {
            watcher::Event::Init => listed.clear(),
            watcher::Event::InitApply(DeserializeGuard(Ok(ms))) => {
                listed.insert(key(&ms));
                board.apply_microservice(ms, Timestamp::now());
            }
            watcher::Event::Apply(DeserializeGuard(Ok(ms))) => {
                board.apply_microservice(ms, Timestamp::now())
            }
            watcher::Event::Delete(DeserializeGuard(Ok(ms))) => {
                board.delete_microservice(&key(&ms))
            }
            watcher::Event::InitDone => board.retain_microservices(&listed),
            _ => {}
        })
    })
    .await
}

fn key(ms: &Microservice) -> Key {
    (ms.namespace().unwrap_or_default(), ms.name_any())
}
