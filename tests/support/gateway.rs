//! Gateway API for release tests: the HTTPRoute CRD, a fake gateway controller that accepts
//! routes the way a real one reports it (per parent, at a generation), and a recorder of the
//! traffic split a route carried over time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::release::{Recorder, resource_version};

/// The `controllerName` the fake gateway writes into route status.
pub const CONTROLLER_NAME: &str = "test.weir.dev/gateway";
/// The field manager of the fake gateway's status writes.
pub const FIELD_MANAGER: &str = "test-gateway";

/// Installs the HTTPRoute CRD, generated from the `gateway-api` crate's types (no download),
/// unless the cluster already serves the upstream CRDs (hack/cluster-up.sh installs them).
pub async fn install_crd(client: &Client) {
    if super::dataplane::upstream_crds_installed(client).await {
        return;
    }
    let mut crd = HttpRoute::crd();
    // *.k8s.io groups need an approval annotation; "unapproved, ..." is the honest value.
    crd.metadata.annotations = Some(
        [(
            "api-approved.kubernetes.io".to_string(),
            "unapproved, generated from the gateway-api crate for tests".to_string(),
        )]
        .into(),
    );
    super::install_crd(client, crd).await;
}

/// One status write of the fake gateway: the route generation it accepted, and the
/// resourceVersion the route had right after the write; the weights that generation carries,
/// when the gateway took the route up and when the write returned (for the benchmark).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub route: String,
    pub generation: i64,
    pub resource_version: u64,
    pub weights: BTreeMap<String, i32>,
    pub seen: SystemTime,
    pub at: SystemTime,
}

/// Plays the controller of every Gateway a route names: each route in the namespace whose
/// status lacks it gets, for every `spec.parentRefs` entry, `Accepted=True` at the route's
/// current generation. Stops when dropped.
pub struct FakeGateway {
    accepting: Arc<AtomicBool>,
    resolved_refs: Arc<Mutex<Option<bool>>>,
    wake: Arc<Notify>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeGateway {
    pub fn start(client: Client, ns: &str) -> FakeGateway {
        let routes: Api<HttpRoute> = Api::namespaced(client, ns);
        let accepting = Arc::new(AtomicBool::new(true));
        let resolved_refs = Arc::new(Mutex::new(None));
        let wake = Arc::new(Notify::new());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(run(
            routes,
            Reporting {
                accepting: accepting.clone(),
                resolved_refs: resolved_refs.clone(),
            },
            wake.clone(),
            accepted.clone(),
        ));
        FakeGateway {
            accepting,
            resolved_refs,
            wake,
            accepted,
            task,
        }
    }

    /// Stops (false) or resumes (true) accepting routes. Resuming accepts at once every
    /// route changed meanwhile.
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::SeqCst);
        if accepting {
            self.wake.notify_one();
        }
    }

    /// From now on also reports `ResolvedRefs` with this status on every parent (`None`: not
    /// at all, as before), rewriting the status of routes that say otherwise.
    pub fn set_resolved_refs(&self, resolved: Option<bool>) {
        *self.resolved_refs.lock().unwrap() = resolved;
        self.wake.notify_one();
    }

    /// Every status write so far, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the fake gateway reports, as the test sets it.
#[derive(Clone)]
struct Reporting {
    accepting: Arc<AtomicBool>,
    resolved_refs: Arc<Mutex<Option<bool>>>,
}

async fn run(
    routes: Api<HttpRoute>,
    reporting: Reporting,
    wake: Arc<Notify>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
) {
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(routes.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let mut stream = std::pin::pin!(stream);
    // A failed write is retried on the next pass.
    let mut resync = tokio::time::interval(Duration::from_secs(1));
    // Our own last write per route: a cached copy older than it is not acted on again.
    let mut written: HashMap<String, u64> = HashMap::new();
    loop {
        let candidates: Vec<HttpRoute> = tokio::select! {
            next = stream.try_next() => match next {
                Ok(Some(route)) => vec![route],
                Ok(None) => return,
                Err(e) => {
                    eprintln!("fake gateway: watch error: {e}");
                    continue;
                }
            },
            _ = wake.notified() => reader.state().iter().map(|r| (**r).clone()).collect(),
            _ = resync.tick() => reader.state().iter().map(|r| (**r).clone()).collect(),
        };
        if !reporting.accepting.load(Ordering::SeqCst) {
            continue;
        }
        let resolved_refs = *reporting.resolved_refs.lock().unwrap();
        let taken_up = SystemTime::now();
        for route in candidates {
            let name = route.metadata.name.clone().unwrap_or_default();
            let seen = resource_version(&route);
            if written.get(&name).is_some_and(|&ours| seen < ours)
                || is_accepted(&route, resolved_refs)
            {
                continue;
            }
            // Checked again right before the write: a test that stops accepting must not
            // see a write it did not allow.
            if !reporting.accepting.load(Ordering::SeqCst) {
                break;
            }
            match accept(&routes, &route, taken_up, resolved_refs).await {
                Ok(done) => {
                    written.insert(name, done.resource_version);
                    accepted.lock().unwrap().push(done);
                }
                Err(e) => eprintln!("fake gateway: accepting route {name} failed: {e}"),
            }
        }
    }
}

/// Every parent in the spec has our Accepted=True at the route's current generation, and
/// `ResolvedRefs` as the test wants it.
fn is_accepted(route: &HttpRoute, resolved_refs: Option<bool>) -> bool {
    let generation = route.metadata.generation;
    let parents = route
        .status
        .as_ref()
        .map(|s| &s.parents[..])
        .unwrap_or_default();
    route.spec.parent_refs.iter().flatten().all(|wanted| {
        let wanted = serde_json::to_value(wanted).unwrap_or_default();
        parents.iter().any(|p| {
            p.controller_name == CONTROLLER_NAME
                && serde_json::to_value(&p.parent_ref).unwrap_or_default() == wanted
                && p.conditions.iter().any(|c| {
                    c.type_ == "Accepted"
                        && c.status == "True"
                        && c.observed_generation == generation
                })
                && resolved_refs_status(&p.conditions) == resolved_refs
        })
    })
}

/// The status of a `ResolvedRefs` condition, if there is one.
fn resolved_refs_status(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Option<bool> {
    conditions
        .iter()
        .find(|c| c.type_ == "ResolvedRefs")
        .map(|c| c.status == "True")
}

async fn accept(
    routes: &Api<HttpRoute>,
    route: &HttpRoute,
    seen: SystemTime,
    resolved_refs: Option<bool>,
) -> kube::Result<Accepted> {
    let name = route.metadata.name.clone().unwrap_or_default();
    let generation = route.metadata.generation.unwrap_or_default();
    let now = Time(Timestamp::now());
    let parents: Vec<Value> = route
        .spec
        .parent_refs
        .iter()
        .flatten()
        .map(|parent| {
            let mut conditions = vec![json!({
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "accepted",
                "observedGeneration": generation,
                "lastTransitionTime": now,
            })];
            if let Some(resolved) = resolved_refs {
                conditions.push(json!({
                    "type": "ResolvedRefs",
                    "status": if resolved { "True" } else { "False" },
                    "reason": if resolved { "ResolvedRefs" } else { "BackendNotFound" },
                    "message": if resolved { "resolved" } else { "a backend Service is missing" },
                    "observedGeneration": generation,
                    "lastTransitionTime": now,
                }));
            }
            json!({
                "parentRef": parent,
                "controllerName": CONTROLLER_NAME,
                "conditions": conditions,
            })
        })
        .collect();
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let patch = Patch::Merge(json!({"status": {"parents": parents}}));
    let written = routes.patch_status(&name, &params, &patch).await?;
    Ok(Accepted {
        route: name,
        generation,
        resource_version: resource_version(&written),
        weights: RouteState::of(route).weights,
        seen,
        at: SystemTime::now(),
    })
}

/// What a release route carries: the weighted rule's backends, the header rule, the mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteState {
    pub generation: i64,
    /// Weight per backend (Service name) of the weighted rule: the rule without header
    /// matches. A backend that is not listed has weight 0.
    pub weights: BTreeMap<String, i32>,
    /// The header rule's matches as (name, value), empty without one.
    pub headers: Vec<(String, String)>,
    /// Backends of the header rule.
    pub header_backends: Vec<String>,
    /// The RequestMirror filter of the weighted rule: (backend, percent).
    pub mirror: Option<(String, i32)>,
}

impl RouteState {
    pub fn of(route: &HttpRoute) -> RouteState {
        let rules = route.spec.rules.clone().unwrap_or_default();
        let has_headers = |rule: &gateway_api::httproutes::HttpRouteRules| {
            rule.matches
                .iter()
                .flatten()
                .any(|m| m.headers.as_ref().is_some_and(|h| !h.is_empty()))
        };
        let backends = |rule: &gateway_api::httproutes::HttpRouteRules| {
            rule.backend_refs
                .iter()
                .flatten()
                .map(|b| (b.name.clone(), b.weight.unwrap_or(1)))
                .collect::<Vec<_>>()
        };
        let header_rule = rules.iter().find(|r| has_headers(r));
        let weighted = rules.iter().rev().find(|r| !has_headers(r));
        RouteState {
            generation: route.metadata.generation.unwrap_or_default(),
            weights: weighted
                .map(backends)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            headers: header_rule
                .and_then(|r| r.matches.as_ref()?.first()?.headers.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            header_backends: header_rule
                .map(|r| backends(r).into_iter().map(|(name, _)| name).collect())
                .unwrap_or_default(),
            mirror: weighted
                .and_then(|r| r.filters.as_ref())
                .into_iter()
                .flatten()
                .find_map(|f| f.request_mirror.as_ref())
                .map(|m| (m.backend_ref.name.clone(), m.percent.unwrap_or(100))),
        }
    }

    /// Weight of `backend` in the weighted rule; 0 when it is not listed.
    pub fn weight(&self, backend: &str) -> i32 {
        self.weights.get(backend).copied().unwrap_or(0)
    }

    pub fn has_header_rule(&self) -> bool {
        !self.headers.is_empty()
    }

    pub fn mirror_percent(&self) -> i32 {
        self.mirror.as_ref().map_or(0, |(_, percent)| *percent)
    }
}

/// Every distinct state of HTTPRoute `name`, in order (None while it does not exist).
pub type RouteRecorder = Recorder<Option<RouteState>>;

impl Recorder<Option<RouteState>> {
    /// Records HTTPRoute `name` in `ns` from now on.
    pub async fn route(client: &Client, ns: &str, name: &str) -> RouteRecorder {
        let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        Recorder::start(routes, config, &format!("HTTPRoute {name}"), |routes| {
            routes.first().map(|r| RouteState::of(r))
        })
        .await
    }

    /// The weights `backend` had, in order, repeats folded; states without the route skipped.
    pub fn weights(&self, backend: &str) -> Vec<i32> {
        fold(self.states().iter().map(|s| s.weight(backend)))
    }

    /// The first entry, at index `from` or later, that gives `backend` weight `weight`.
    pub fn find_weight(
        &self,
        from: usize,
        backend: &str,
        weight: i32,
    ) -> Option<(usize, super::release::Entry<Option<RouteState>>)> {
        self.find(from, |r| {
            r.as_ref().is_some_and(|r| r.weight(backend) == weight)
        })
    }

    /// The states the route had, in order, skipping the time it did not exist.
    pub fn states(&self) -> Vec<RouteState> {
        self.values().into_iter().flatten().collect()
    }

    /// Waits until the route, as it is now, satisfies `holds`.
    pub async fn wait_route(
        &self,
        what: &str,
        holds: impl Fn(&RouteState) -> bool,
    ) -> super::release::Entry<Option<RouteState>> {
        self.wait_until(what, |s| s.as_ref().is_some_and(&holds))
            .await
    }
}

/// `values` with consecutive repeats folded into one.
pub fn fold<T: PartialEq>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut folded: Vec<T> = Vec::new();
    for value in values {
        if folded.last() != Some(&value) {
            folded.push(value);
        }
    }
    folded
}
