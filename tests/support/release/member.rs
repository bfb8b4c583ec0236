//! `Member`: one Microservice under release in a test's namespace, with the waits, actions
//! and recorders a release test uses on it. Its operator and fake gateway belong to the
//! [`Harness`](super::Harness) that started it; a release group's other members join that
//! Harness ([`Harness::join`](super::Harness::join)), so one operator serves them all.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use weir::api::{Microservice, MicroserviceStatus, Phase, Release, Slot};

use super::super::gateway::RouteRecorder;
use super::super::microservice::{self as ms_support, pod_is_ready};
use super::super::{kubectl, unique_name, wait_for_all};
use super::{
    ACTION, DEADLINE, Entry, GITOPS, PodCount, Recorder, SlotView, StatusView, act, condition,
    phase, record_status, release, selector, wait_ms, wait_seen,
};

/// A Microservice under release in a test's namespace.
pub struct Member {
    pub client: Client,
    pub ns: String,
    pub name: String,
    pub api: Api<Microservice>,
    /// Every distinct status (and action annotation) since the first version was deployed.
    pub log: Recorder<StatusView>,
}

impl Member {
    /// Applies Microservice `name` (as the GitOps tool would) with `spec` overrides, and
    /// waits until an operator deployed its first version: Healthy in slot blue, with a
    /// stable revision and no release.
    pub async fn deploy(client: &Client, ns: &str, name: &str, spec: Value) -> Member {
        let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
        let ms = ms_support::microservice(name, spec);
        api.patch(name, &PatchParams::apply(GITOPS), &Patch::Apply(&ms))
            .await
            .expect("apply the Microservice");
        let what = format!("Microservice {name}: the first version deployed in slot blue");
        wait_ms(&api, name, DEADLINE, &what, |ms| {
            let Some(status) = ms.status.as_ref() else {
                return false;
            };
            status.observed_generation == ms.metadata.generation
                && status.phase == Some(Phase::Healthy)
                && status.stable_revision.is_some()
                && status.release.is_none()
                && status.active_slot == Some(Slot::Blue)
        })
        .await;
        let log = record_status(&api, name).await;
        Member {
            client: client.clone(),
            ns: ns.to_string(),
            name: name.to_string(),
            api,
            log,
        }
    }

    pub async fn ms(&self) -> Microservice {
        self.api
            .get(&self.name)
            .await
            .expect("get the Microservice")
    }

    pub async fn status(&self) -> MicroserviceStatus {
        self.ms()
            .await
            .status
            .expect("the Microservice has a status")
    }

    /// Merges `patch` into the spec; returns the new generation.
    pub async fn edit(&self, patch: Value) -> i64 {
        ms_support::edit_spec(&self.api, &self.name, patch).await
    }

    pub async fn set_image(&self, image: &str) -> i64 {
        self.edit(json!({"image": image})).await
    }

    /// Applies the full manifest with `spec` overrides as the GitOps tool does:
    /// `kubectl apply --server-side --field-manager=gitops`.
    pub async fn kubectl_apply(&self, spec: Value) {
        let manifest = serde_json::to_string(&ms_support::microservice(&self.name, spec))
            .expect("serialize the manifest");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("manifests");
        std::fs::create_dir_all(&dir).expect("manifest dir");
        let path = dir.join(format!("{}.json", unique_name(&self.name)));
        std::fs::write(&path, manifest).expect("write the manifest");
        let path = path.to_string_lossy().into_owned();
        let manager = format!("--field-manager={GITOPS}");
        let args = [
            "apply",
            "--server-side",
            &manager,
            "-n",
            &self.ns,
            "-f",
            &path,
        ];
        kubectl(&args).await;
        let _ = std::fs::remove_file(&path);
    }

    /// Waits until the Microservice satisfies `holds`.
    pub async fn wait(&self, what: &str, holds: impl Fn(&Microservice) -> bool) -> Microservice {
        let what = format!("Microservice {}: {what}", self.name);
        wait_ms(&self.api, &self.name, DEADLINE, &what, holds).await
    }

    /// Waits until a release of a revision other than `older` runs; returns it.
    pub async fn wait_release(&self, older: &[&str]) -> Release {
        let ms = self
            .wait("a release of a new revision", |ms| {
                let Some(status) = ms.status.as_ref() else {
                    return false;
                };
                status.release.as_ref().is_some_and(|r| {
                    !older.contains(&r.revision.as_str())
                        && status.candidate_revision.as_deref() == Some(r.revision.as_str())
                })
            })
            .await;
        release(&ms).clone()
    }

    /// Waits until a release runs and it and the phase satisfy `holds`.
    pub async fn wait_release_where(
        &self,
        what: &str,
        holds: impl Fn(Option<Phase>, &Release) -> bool,
    ) -> Microservice {
        self.wait(what, |ms| {
            let release = ms.status.as_ref().and_then(|s| s.release.as_ref());
            release.is_some_and(|r| holds(phase(ms), r))
        })
        .await
    }

    /// Waits until the release waits at step `step` in phase Paused.
    pub async fn wait_paused_at(&self, step: i32) -> Microservice {
        let what = format!("Paused at step {step}");
        self.wait_release_where(&what, |phase, r| {
            phase == Some(Phase::Paused) && r.step_index == step
        })
        .await
    }

    /// Waits until the release is over and `revision` is stable: Healthy, no release.
    pub async fn wait_healthy_on(&self, revision: &str) -> Microservice {
        self.wait(&format!("Healthy on revision {revision}"), |ms| {
            ms.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Healthy)
                    && s.release.is_none()
                    && s.stable_revision.as_deref() == Some(revision)
            })
        })
        .await
    }

    /// Waits until phase Degraded with condition Degraded=True for `reason`.
    pub async fn wait_degraded(&self, reason: &str) -> Microservice {
        // Degraded shows from the abort on; the release is over once traffic is back.
        self.wait(
            &format!("Degraded with reason {reason}, release over"),
            |ms| {
                phase(ms) == Some(Phase::Degraded)
                    && ms.status.as_ref().is_some_and(|s| s.release.is_none())
                    && condition(ms, "Degraded")
                        .is_some_and(|c| c.status == "True" && c.reason == reason)
            },
        )
        .await
    }

    /// Sets the action annotation (with a nonce); returns the value set.
    pub async fn act(&self, action: &str) -> String {
        act(&self.api, &self.name, action).await
    }

    /// Waits until action `value` was recorded in `status.handledAction` and its annotation
    /// is gone. Returns the first state that recorded it. (Weir may clear `handledAction`
    /// once the annotation is gone: the log has every state.)
    pub async fn wait_handled(&self, value: &str) -> Entry<StatusView> {
        let what = format!("action {value} recorded as handled");
        let (_, handled) = self
            .log
            .wait_seen(&what, |s| s.handled_action.as_deref() == Some(value))
            .await;
        let what = format!("the annotation {ACTION}={value} removed");
        self.log
            .wait_until(&what, |s| s.action.as_deref() != Some(value))
            .await;
        handled
    }

    /// Name of a slot's Deployment, and of its Service when routing through a gateway.
    pub fn slot(&self, slot: Slot) -> String {
        format!("{}-{}", self.name, slot.as_str())
    }

    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Label selector of one slot's pods.
    pub fn slot_pods(&self, slot: Slot) -> String {
        format!(
            "app.kubernetes.io/instance={},weir.dev/slot={}",
            self.name,
            slot.as_str()
        )
    }

    /// Waits until Service `name` satisfies `holds` (None: it does not exist).
    pub async fn wait_service(
        &self,
        name: &str,
        what: &str,
        holds: impl Fn(Option<&Service>) -> bool,
    ) -> Option<Service> {
        let what = format!("Service {name}: {what}");
        let show = |s: &Service| format!("selector {:?}", selector(Some(s)));
        wait_seen(&self.services(), name, DEADLINE, &what, show, holds).await
    }

    /// Waits until a slot's Deployment asks for `replicas` pods.
    pub async fn wait_replicas(&self, slot: Slot, replicas: i32) {
        let name = self.slot(slot);
        let what = format!("Deployment {name}: {replicas} replicas");
        let show = |d: &Deployment| format!("{:?}", SlotView::of(d));
        let holds =
            |d: Option<&Deployment>| d.is_some_and(|d| SlotView::of(d).replicas == replicas);
        wait_seen(&self.deployments(), &name, DEADLINE, &what, show, holds).await;
    }

    /// Waits until `n` pods of a slot exist, all ready.
    pub async fn wait_ready_pods(&self, slot: Slot, n: usize) {
        let what = format!("{n} ready pods in slot {}", slot.as_str());
        wait_for_all(
            self.pods(),
            &self.slot_pods(slot),
            DEADLINE,
            &what,
            |pods| pods.len() == n && pods.iter().all(|p| pod_is_ready(p)),
        )
        .await;
    }

    pub async fn record_route(&self) -> RouteRecorder {
        RouteRecorder::route(&self.client, &self.ns, &self.name).await
    }

    /// Records the release-relevant parts of the status from now on.
    pub async fn record_status(&self) -> Recorder<StatusView> {
        record_status(&self.api, &self.name).await
    }

    /// Records a slot's Deployment (None while it does not exist).
    pub async fn record_slot(&self, slot: Slot) -> Recorder<Option<SlotView>> {
        let name = self.slot(slot);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        Recorder::start(
            self.deployments(),
            config,
            &format!("Deployment {name}"),
            |all| all.first().map(|d| SlotView::of(d)),
        )
        .await
    }

    /// Records how many pods of a slot exist and how many are ready.
    pub async fn record_pods(&self, slot: Slot) -> Recorder<PodCount> {
        let config = watcher::Config::default().labels(&self.slot_pods(slot));
        let what = format!("pods of slot {}", slot.as_str());
        Recorder::start(self.pods(), config, &what, |pods| PodCount {
            pods: pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .count(),
            ready: pods.iter().filter(|p| pod_is_ready(p)).count(),
        })
        .await
    }

    /// Within the release of `revision`, the steps only moved forward: a restarted operator
    /// resumed where the last one stopped.
    pub fn assert_only_forward(&self, revision: &str) {
        let seen = self.log.values();
        let releases: Vec<_> = seen
            .iter()
            .filter_map(|s| s.release.as_ref())
            .filter(|r| r.revision == revision)
            .collect();
        for pair in releases.windows(2) {
            assert!(
                pair[1].step_index >= pair[0].step_index
                    && pair[1].step_started_at.0 >= pair[0].step_started_at.0,
                "the release of {revision} went back from step {} to step {}: {seen:#?}",
                pair[0].step_index,
                pair[1].step_index
            );
        }
    }

    /// Events about the Microservice as (type, reason, message).
    pub async fn events(&self) -> Vec<(String, String, String)> {
        ms_support::events(&self.client, &self.ns, &self.name).await
    }
}
