//! "First canary step in effect", observed the same way for all three controllers: a watch of
//! the namespace's Pods, and the first time as many pods of the new image are Ready as the
//! first step asks for. Each released service gets an image of its own, so a pod's image says
//! which release it belongs to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::cluster::now;

#[derive(Default)]
pub struct PodState {
    /// Pod name -> (its images, whether it is Ready).
    pods: HashMap<String, (Vec<String>, bool)>,
    /// Image -> Ready pods wanted.
    wanted: HashMap<String, u64>,
    /// Image -> when the wanted count of Ready pods was first seen.
    pub reached: HashMap<String, f64>,
    synced: bool,
}

impl PodState {
    fn ready_with(&self, image: &str) -> u64 {
        self.pods
            .values()
            .filter(|(images, ready)| *ready && images.iter().any(|i| i == image))
            .count() as u64
    }

    fn record(&mut self, pod: &Pod, received: f64) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let images: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .filter_map(|c| c.image.clone())
            .collect();
        self.pods.insert(name, (images.clone(), pod_ready(pod)));
        for image in images {
            self.check(&image, received);
        }
    }

    fn check(&mut self, image: &str, at: f64) {
        let Some(&want) = self.wanted.get(image) else {
            return;
        };
        if !self.reached.contains_key(image) && self.ready_with(image) >= want {
            self.reached.insert(image.to_string(), at);
        }
    }
}

fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub struct PodWatch {
    state: Arc<Mutex<PodState>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    /// Starts the watch and returns once its first list is in.
    pub async fn start(client: &Client, ns: &str) -> PodWatch {
        let state = Arc::new(Mutex::new(PodState::default()));
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let task = tokio::spawn(watch(api, state.clone()));
        let watch = PodWatch { state, task };
        let give_up = now() + 120.0;
        while !watch.state().synced {
            if now() >= give_up {
                die!("the Pod watch of {ns} did not start within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        watch
    }

    pub fn state(&self) -> MutexGuard<'_, PodState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, notes when `count` pods of `image` are Ready.
    pub fn expect(&self, image: &str, count: u64) {
        let mut state = self.state();
        state.wanted.insert(image.to_string(), count);
        state.check(image, now());
    }

    /// When `image` first had the Ready pods it was expected to have.
    pub fn reached(&self, image: &str) -> Option<f64> {
        self.state().reached.get(image).copied()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(api: Api<Pod>, state: Arc<Mutex<PodState>>) {
    crate::cluster::follow(api, "Pod", |event, received| {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                state.record(&pod, received);
            }
            watcher::Event::Delete(pod) => {
                state.pods.remove(&pod.metadata.name.unwrap_or_default());
            }
            watcher::Event::InitDone => state.synced = true,
            watcher::Event::Init => {}
        }
    })
    .await;
}
