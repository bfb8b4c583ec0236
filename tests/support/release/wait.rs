//! Waits on one object, by name, with a deadline: each names what it waited for and shows
//! what it saw last.

use std::fmt::Debug;
use std::time::Duration;

use futures::TryStreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use weir::api::Microservice;

use super::describe;

/// Waits until Microservice `name` satisfies `holds`; on timeout panics with its last status.
pub async fn wait_ms(
    api: &Api<Microservice>,
    name: &str,
    deadline: Duration,
    what: &str,
    holds: impl Fn(&Microservice) -> bool,
) -> Microservice {
    let found = wait_seen(api, name, deadline, what, describe, |ms| {
        ms.is_some_and(&holds)
    });
    found.await.expect("the Microservice exists")
}

/// Waits until object `name` satisfies `holds` (None: it does not exist); on timeout panics
/// with what it was last seen as, told by `show`.
pub async fn wait_seen<K>(
    api: &Api<K>,
    name: &str,
    deadline: Duration,
    what: &str,
    show: impl Fn(&K) -> String,
    holds: impl Fn(Option<&K>) -> bool,
) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut last = "nothing yet".to_string();
    let watch = async {
        let (reader, writer) = reflector::store();
        let stream = reflector(writer, watcher(api.clone(), config)).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut listed = false;
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::InitDone)) => listed = true,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the watch for {what} ended"),
                Err(e) => eprintln!("watch error while waiting for {what}: {e}"),
            }
            if !listed {
                continue;
            }
            let object = reader.state().first().map(|o| (**o).clone());
            if holds(object.as_ref()) {
                return object;
            }
            last = object
                .as_ref()
                .map(&show)
                .unwrap_or_else(|| "absent".into());
        }
    };
    let outcome = tokio::time::timeout(deadline, watch).await;
    match outcome {
        Ok(object) => object,
        Err(_) => panic!("{what} did not happen within {deadline:?}; last seen: {last}"),
    }
}
