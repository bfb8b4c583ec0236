//! `Recorder`: every distinct state of a projection over watched objects, in order, with
//! the resourceVersion that made it so.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{DEADLINE, resource_version};

/// One distinct state a recorder saw: the resourceVersion that made it so, when it arrived.
#[derive(Clone, Debug)]
pub struct Entry<T> {
    pub resource_version: u64,
    pub at: Instant,
    pub value: T,
}

/// Watches objects and keeps every distinct value of `project` over them, in order.
/// Stops when dropped.
pub struct Recorder<T> {
    what: String,
    entries: watch::Receiver<Vec<Entry<T>>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Recorder<T>
where
    T: Clone + PartialEq + Debug + Send + Sync + 'static,
{
    /// Starts watching; returns once the first state (after the initial list) is recorded.
    pub async fn start<K>(
        api: Api<K>,
        config: watcher::Config,
        what: &str,
        project: impl Fn(&[Arc<K>]) -> T + Send + 'static,
    ) -> Recorder<T>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let (sender, entries) = watch::channel(Vec::new());
        let name = what.to_string();
        let task = tokio::spawn(async move {
            let (reader, writer) = reflector::store();
            let stream = reflector(writer, watcher(api, config)).default_backoff();
            let mut stream = std::pin::pin!(stream);
            let (mut listed, mut latest) = (false, 0u64);
            while let Some(event) = stream.try_next().await.transpose() {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        eprintln!("recorder of {name}: watch error: {e}");
                        continue;
                    }
                };
                match &event {
                    watcher::Event::Apply(o)
                    | watcher::Event::Delete(o)
                    | watcher::Event::InitApply(o) => latest = latest.max(resource_version(o)),
                    watcher::Event::InitDone => listed = true,
                    watcher::Event::Init => {}
                }
                if !listed || matches!(event, watcher::Event::Init | watcher::Event::InitApply(_)) {
                    continue;
                }
                let value = project(&reader.state());
                sender.send_if_modified(|entries| {
                    if entries.last().is_some_and(|e: &Entry<T>| e.value == value) {
                        return false;
                    }
                    entries.push(Entry {
                        resource_version: latest,
                        at: Instant::now(),
                        value,
                    });
                    true
                });
            }
        });
        let mut recorder = Recorder {
            what: what.to_string(),
            entries,
            task,
        };
        let first = tokio::time::timeout(DEADLINE, recorder.entries.wait_for(|e| !e.is_empty()));
        match first.await {
            Ok(Ok(_)) => {}
            _ => panic!("the recorder of {what} saw no first state within {DEADLINE:?}"),
        }
        recorder
    }

    pub fn entries(&self) -> Vec<Entry<T>> {
        self.entries.borrow().clone()
    }

    pub fn values(&self) -> Vec<T> {
        self.entries
            .borrow()
            .iter()
            .map(|e| e.value.clone())
            .collect()
    }

    /// The newest state recorded.
    pub fn latest(&self) -> T {
        self.entries
            .borrow()
            .last()
            .expect("a first state")
            .value
            .clone()
    }

    /// The state at `resource_version`: the newest entry recorded at or before it.
    pub fn value_at(&self, resource_version: u64) -> Option<T> {
        self.entries
            .borrow()
            .iter()
            .take_while(|e| e.resource_version <= resource_version)
            .last()
            .map(|e| e.value.clone())
    }

    /// The first entry, at index `from` or later, whose value satisfies `holds`.
    pub fn find(&self, from: usize, holds: impl Fn(&T) -> bool) -> Option<(usize, Entry<T>)> {
        self.entries
            .borrow()
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, e)| holds(&e.value))
            .map(|(i, e)| (i, e.clone()))
    }

    /// Waits until any state, recorded so far or later, satisfies `holds`; returns the first
    /// such entry and its index. For states that may pass quickly.
    pub async fn wait_seen(&self, what: &str, holds: impl Fn(&T) -> bool) -> (usize, Entry<T>) {
        let mut entries = self.entries.clone();
        let seen = entries.wait_for(|e| e.iter().any(|e| holds(&e.value)));
        let waited = tokio::time::timeout(DEADLINE, seen)
            .await
            .is_ok_and(|r| r.is_ok());
        if !waited {
            panic!(
                "{}: {what} did not happen within {DEADLINE:?}; seen: {:#?}",
                self.what,
                self.values()
            );
        }
        self.find(0, holds).expect("an entry that holds")
    }

    /// Waits until the newest state satisfies `holds`; returns that entry.
    pub async fn wait_until(&self, what: &str, holds: impl Fn(&T) -> bool) -> Entry<T> {
        let mut entries = self.entries.clone();
        let waited = tokio::time::timeout(
            DEADLINE,
            entries.wait_for(|e| e.last().is_some_and(|e| holds(&e.value))),
        )
        .await;
        match waited {
            Ok(Ok(entries)) => entries.last().expect("an entry").clone(),
            _ => panic!(
                "{}: {what} did not happen within {DEADLINE:?}; seen: {:#?}",
                self.what,
                self.values()
            ),
        }
    }

    /// Fails if the state changes within `window`: for showing that something waits.
    pub async fn assert_unchanged_for(&self, window: Duration) {
        let mut entries = self.entries.clone();
        let before = entries.borrow_and_update().len();
        if let Ok(Ok(_)) =
            tokio::time::timeout(window, entries.wait_for(|e| e.len() > before)).await
        {
            panic!(
                "{} changed within {window:?}: {:#?}",
                self.what,
                &self.values()[before - 1..]
            );
        }
    }
}

impl<T> Drop for Recorder<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
