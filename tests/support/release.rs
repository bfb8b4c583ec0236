//! Release tests: a Microservice with its operator and fake gateway (`Harness`), waits on
//! release status, manual actions, recorders of how objects changed over time, pods made
//! ready late, and a webhook the analysis calls.
//!
//! Recorders order what they saw by resourceVersion: every object of this test cluster is
//! stored in one etcd, whose revisions order all writes, so "the route went back to 0 before
//! the Deployment was scaled down" is a comparison of two resourceVersions, free of the
//! order in which two watch streams happen to deliver.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use weir::api::{Microservice, MicroserviceStatus, Outcome, Phase, Release, Slot};

use super::gateway::{FakeGateway, RouteRecorder};
use super::microservice::{self as ms_support, pod_is_ready};
use super::operator::Operator;

/// How long one step of a release test may take: pods start, the operator reconciles, the
/// fake gateway answers.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// The annotation that carries a manual action.
pub const ACTION: &str = "weir.dev/action";
/// The field manager that plays a GitOps tool (Flux, Argo CD).
pub const GITOPS: &str = "gitops";
/// Seconds the old slot keeps its pods after a promotion in these tests.
pub const SCALE_DOWN_DELAY: i32 = 3;

/// `rollout.traffic` through two parents (a Gateway, and a listener of another), so a step
/// counts only once both report the route accepted.
pub fn gateway_traffic() -> Value {
    json!({"gatewayAPI": {"parentRefs": [
        {"name": "public", "namespace": "gateways"},
        {"name": "internal", "namespace": "gateways", "sectionName": "http"}
    ]}})
}

/// `rollout` for a canary with `steps` through the Gateway API.
pub fn canary(steps: Value) -> Value {
    json!({
        "strategy": "Canary",
        "traffic": gateway_traffic(),
        "canary": {"steps": steps, "scaleDownDelaySeconds": SCALE_DOWN_DELAY}
    })
}

/// `rollout` for a canary with `steps` and no router: the ratio of ready pods is the weight.
pub fn canary_by_replicas(steps: Value) -> Value {
    json!({
        "strategy": "Canary",
        "canary": {"steps": steps, "scaleDownDelaySeconds": SCALE_DOWN_DELAY}
    })
}

/// `rollout` for a blue/green release through the Gateway API; `settings` go into
/// `blueGreen` beside the scale-down delay.
pub fn blue_green(settings: Value) -> Value {
    let mut blue_green = json!({"scaleDownDelaySeconds": SCALE_DOWN_DELAY});
    if let (Some(into), Some(from)) = (blue_green.as_object_mut(), settings.as_object()) {
        into.extend(from.clone());
    }
    json!({"strategy": "BlueGreen", "traffic": gateway_traffic(), "blueGreen": blue_green})
}

/// The resourceVersion of an object as a number (0 when it has none).
pub fn resource_version<K: Resource>(object: &K) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_default()
}

/// The release in `ms`'s status; panics when none runs.
pub fn release(ms: &Microservice) -> &Release {
    ms.status
        .as_ref()
        .and_then(|s| s.release.as_ref())
        .unwrap_or_else(|| panic!("no release in {}", describe(ms)))
}

pub fn phase(ms: &Microservice) -> Option<Phase> {
    ms.status.as_ref().and_then(|s| s.phase)
}

pub fn condition<'a>(ms: &'a Microservice, type_: &str) -> Option<&'a Condition> {
    ms.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The selector of a Service (empty when it has none).
pub fn selector(service: Option<&Service>) -> std::collections::BTreeMap<String, String> {
    service
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// Status and the action annotation, for failure messages.
pub fn describe(ms: &Microservice) -> String {
    let status = serde_json::to_string_pretty(&ms.status).unwrap_or_default();
    let action = ms.annotations().get(ACTION).cloned();
    format!(
        "generation {:?}, action annotation {action:?}, status {status}",
        ms.metadata.generation
    )
}

/// Asks for a manual action through the `weir.dev/action` annotation, with a nonce so a
/// repeat of the same verb is a new request. Returns the value set.
pub async fn act(api: &Api<Microservice>, name: &str, action: &str) -> String {
    let value = format!("{action}@{}", super::unique_name("n"));
    let patch = json!({"metadata": {"annotations": {ACTION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("annotate {name} with {ACTION}={value}: {e}"));
    value
}

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

/// Records the release-relevant parts of Microservice `name` from now on.
pub async fn record_status(api: &Api<Microservice>, name: &str) -> Recorder<StatusView> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let what = format!("Microservice {name}");
    Recorder::start(api.clone(), config, &what, |all| {
        StatusView::of(all.first().map(|ms| &**ms))
    })
    .await
}

/// A Microservice under release, with its operator and the fake gateway of its namespace.
pub struct Harness {
    pub client: Client,
    pub ns: String,
    pub name: String,
    pub api: Api<Microservice>,
    pub operator: Operator,
    pub gateway: FakeGateway,
    /// Every distinct status (and action annotation) since the first version was deployed.
    pub log: Recorder<StatusView>,
    flags: Vec<String>,
    operators_started: u32,
}

impl Harness {
    /// Installs the CRDs, starts the fake gateway and an operator, applies Microservice
    /// `name` (as the GitOps tool would) with `spec` overrides, and waits until its first
    /// version is deployed: Healthy in slot blue, with a stable revision and no release.
    pub async fn start(client: &Client, ns: &str, name: &str, spec: Value) -> Harness {
        Harness::start_with_flags(client, ns, name, spec, &[]).await
    }

    /// `start`, with extra flags for `weir run`.
    pub async fn start_with_flags(
        client: &Client,
        ns: &str,
        name: &str,
        spec: Value,
        flags: &[&str],
    ) -> Harness {
        super::install_crds(client).await;
        let gateway = FakeGateway::start(client.clone(), ns);
        let operator = Operator::start(ns, &format!("{name}-0"), flags).await;
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
        Harness {
            client: client.clone(),
            ns: ns.to_string(),
            name: name.to_string(),
            api,
            operator,
            gateway,
            log,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            operators_started: 1,
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
        let path = dir.join(format!("{}.json", super::unique_name(&self.name)));
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
        super::kubectl(&args).await;
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
        super::wait_for_all(
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

    /// Kills the operator with SIGKILL (no chance to tidy up) and starts a new one.
    pub async fn kill_and_restart_operator(&mut self) {
        self.operator.signal("-KILL").await;
        tokio::time::timeout(DEADLINE, self.operator.child.wait())
            .await
            .expect("the operator exits after SIGKILL")
            .expect("the operator's exit status");
        let identity = format!("{}-{}", self.name, self.operators_started);
        self.operators_started += 1;
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        self.operator = Operator::start(&self.ns, &identity, &flags).await;
    }

    /// Events about the Microservice as (type, reason, message).
    pub async fn events(&self) -> Vec<(String, String, String)> {
        ms_support::events(&self.client, &self.ns, &self.name).await
    }
}

/// The release-relevant part of a Microservice's status, and its action annotation: what a
/// recorder compares between versions. The analysis is reduced to its outcomes and values,
/// without the times of the rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusView {
    /// The `weir.dev/action` annotation.
    pub action: Option<String>,
    pub phase: Option<Phase>,
    pub active_slot: Option<Slot>,
    pub stable_revision: Option<String>,
    pub candidate_revision: Option<String>,
    pub aborted_revision: Option<String>,
    pub handled_action: Option<String>,
    /// `status.release` without its analysis.
    pub release: Option<Release>,
    pub analysis: Option<AnalysisView>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisView {
    pub last_round: Option<Outcome>,
    pub consecutive_failures: i32,
    /// (metric, value, outcome) of the latest measurements.
    pub last: Vec<(String, Option<f64>, Outcome)>,
}

impl StatusView {
    pub fn of(ms: Option<&Microservice>) -> StatusView {
        let action = ms.and_then(|ms| ms.annotations().get(ACTION).cloned());
        let status = ms.and_then(|ms| ms.status.clone()).unwrap_or_default();
        let analysis = status
            .release
            .as_ref()
            .and_then(|r| r.analysis.as_ref())
            .map(|a| AnalysisView {
                last_round: a.last_round,
                consecutive_failures: a.consecutive_failures,
                last: a
                    .last
                    .iter()
                    .map(|m| (m.metric.clone(), m.value, m.outcome))
                    .collect(),
            });
        StatusView {
            action,
            phase: status.phase,
            active_slot: status.active_slot,
            stable_revision: status.stable_revision,
            candidate_revision: status.candidate_revision,
            aborted_revision: status.aborted_revision,
            handled_action: status.handled_action,
            release: status.release.map(|r| Release {
                analysis: None,
                ..r
            }),
            analysis,
        }
    }

    pub fn step_index(&self) -> Option<i32> {
        self.release.as_ref().map(|r| r.step_index)
    }
}

/// A slot's Deployment: the pods it asks for and has ready, and the image it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotView {
    pub replicas: i32,
    pub ready: i32,
    pub image: Option<String>,
}

impl SlotView {
    pub fn of(deployment: &Deployment) -> SlotView {
        let spec = deployment.spec.as_ref();
        SlotView {
            replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
            ready: deployment
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            image: spec
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone()),
        }
    }
}

/// Pods of a slot (not being deleted) and how many of them are ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodCount {
    pub pods: usize,
    pub ready: usize,
}

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

/// An HTTP endpoint for webhook metrics: answers every request with the status it is set
/// to, and keeps each request (request line, headers and body). Stops when dropped.
pub struct Webhook {
    pub url: String,
    status: Arc<AtomicU16>,
    requests: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Webhook {
    pub async fn start(status: u16) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook");
        let url = format!("http://{}/check", listener.local_addr().expect("address"));
        let answer = Arc::new(AtomicU16::new(status));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (server_answer, server_requests) = (answer.clone(), requests.clone());
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (answer, requests) = (server_answer.clone(), server_requests.clone());
                tokio::spawn(async move {
                    let request = read_request(&mut stream).await;
                    requests.lock().unwrap().push(request);
                    let status = answer.load(Ordering::SeqCst);
                    let response = format!(
                        "HTTP/1.1 {status} Status\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Webhook {
            url,
            status: answer,
            requests,
            server,
        }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests so far, each as its text.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads one HTTP/1.1 request: the head, then a body of `Content-Length` bytes.
async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return text;
            }
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&data).into_owned(),
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    }
}
