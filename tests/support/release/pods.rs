//! Pods of a version that take a while to become ready: the fake nodes leave pods annotated
//! `test.weir.dev/ready: "false"` unready, and these make them ready as a kubelet would.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::super::microservice::pod_is_ready;

/// Marks a pod Ready, as a kubelet would once its readiness probe passes: for pods of a
/// version started unready (annotation `test.weir.dev/ready: "false"`), which the fake
/// nodes leave Running and unready.
pub async fn make_ready(pods: &Api<Pod>, name: &str) -> kube::Result<()> {
    let pod = pods.get(name).await?;
    let mut status = pod.status.unwrap_or_default();
    let now = Time(Timestamp::now());
    for c in status.conditions.iter_mut().flatten() {
        if c.type_ == "Ready" || c.type_ == "ContainersReady" {
            c.status = "True".into();
            c.reason = None;
            c.message = None;
            c.last_transition_time = Some(now.clone());
        }
    }
    for c in status.container_statuses.iter_mut().flatten() {
        c.ready = true;
        c.started = Some(true);
    }
    let patch = json!({"status": {
        "conditions": status.conditions,
        "containerStatuses": status.container_statuses,
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// Makes every pod matching a selector ready `startup` after it starts running: a version
/// whose pods take a while to become ready. Stops when dropped.
pub struct LateReadiness {
    task: tokio::task::JoinHandle<()>,
}

impl LateReadiness {
    pub fn start(pods: Api<Pod>, selector: &str, startup: Duration) -> LateReadiness {
        let config = watcher::Config::default().labels(selector);
        let task = tokio::spawn(async move {
            let stream = watcher(pods.clone(), config)
                .default_backoff()
                .applied_objects();
            let mut stream = std::pin::pin!(stream);
            let mut started = HashSet::new();
            let mut pending = tokio::task::JoinSet::new();
            while let Ok(Some(pod)) = stream.try_next().await {
                let running =
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if !running || pod_is_ready(&pod) || !started.insert(pod.name_any()) {
                    continue;
                }
                let pods = pods.clone();
                let name = pod.name_any();
                pending.spawn(async move {
                    // The simulated start-up time of the version, not a wait on the system.
                    tokio::time::sleep(startup).await;
                    if let Err(e) = make_ready(&pods, &name).await {
                        eprintln!("making pod {name} ready failed: {e}");
                    }
                });
            }
        });
        LateReadiness { task }
    }
}

impl Drop for LateReadiness {
    fn drop(&mut self) {
        self.task.abort();
    }
}
