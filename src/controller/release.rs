//! What the release state machine needs from the cluster, and what it asks of it: slot
//! states and traffic checks from the caches, measurements over HTTP, and status words.

use futures::future::join_all;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;

use super::Context;
use super::drift::is_subset;
use crate::analysis::ReleaseFacts;
use crate::api::{Measurement, Microservice, MicroserviceStatus, Phase, Slot, conditions::reason};
use crate::build::traffic::{capacity, route};
use crate::build::{REVISION_ANNOTATION, deployment_name, labels};
use crate::release::{self, Decision, SlotState, Step, TrafficPlan, other};

/// What a slot's Deployment shows, from the cache.
pub fn slot_state(cache: &Store<Deployment>, namespace: &str, name: &str, slot: Slot) -> SlotState {
    let key = ObjectRef::new(&deployment_name(name, slot)).within(namespace);
    let Some(deployment) = cache.get(&key) else {
        return SlotState::default();
    };
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let seen = status.observed_generation >= deployment.metadata.generation;
    let pods = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    // While a new template rolls, ready pods may run the old one: count none.
    let current = seen && updated >= pods;
    SlotState {
        exists: true,
        revision: deployment.annotations().get(REVISION_ANNOTATION).cloned(),
        replicas,
        ready: if current { ready } else { 0 },
        settled: current && pods == replicas && ready == replicas,
        observed: seen,
    }
}

/// A Service parent other than the Microservice's own, which it may not route through: a
/// Microservice touches nothing outside its own objects.
pub fn foreign_parent(ms: &Microservice) -> Option<String> {
    let name = ms.name_any();
    let gateway = ms
        .spec
        .rollout
        .as_ref()?
        .traffic
        .as_ref()?
        .gateway_api
        .as_ref()?;
    gateway
        .parent_refs
        .iter()
        .find(|p| p.kind.as_deref() == Some("Service") && (p.name != name || p.namespace.is_some()))
        .map(|p| p.name.clone())
}

/// The HTTPRoute carrying `traffic`.
pub fn route_for(ms: &Microservice, traffic: &TrafficPlan) -> HttpRoute {
    route(ms, &traffic.split)
}

/// True when the live route carries `traffic` and every parent that reports on it has
/// accepted its current generation (and at least one has).
pub fn route_carries(ms: &Microservice, live: Option<&HttpRoute>, traffic: &TrafficPlan) -> bool {
    let Some(live) = live else { return false };
    let desired = serde_json::to_value(route_for(ms, traffic)).unwrap_or_default();
    let live_json = serde_json::to_value(live).unwrap_or_default();
    if !is_subset(&desired["spec"], &live_json["spec"]) {
        return false;
    }
    let generation = live.metadata.generation;
    let parents = live_json
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    !parents.is_empty()
        && parents.iter().all(|parent| {
            parent["conditions"].as_array().is_some_and(|conditions| {
                conditions.iter().any(|c| {
                    c["type"] == "Accepted"
                        && c["status"] == "True"
                        && c["observedGeneration"].as_i64() == generation
                })
            })
        })
}

/// True when Service `<name>` selects the pods `traffic` asks for and, for a replica-ratio
/// canary, both slots run the pod counts of the weight.
pub fn pods_carry(
    ms: &Microservice,
    live_service: Option<&Service>,
    traffic: &TrafficPlan,
    stable: &SlotState,
    candidate: &SlotState,
    total: i32,
) -> bool {
    let name = ms.name_any();
    let wanted = match traffic.service_slot {
        Some(slot) => labels::slot_selector(&name, slot),
        None => labels::service_selector(&name),
    };
    // Without ports there is no Service: the pod counts alone carry the ratio.
    let selects = ms.spec.ports.is_empty()
        || live_service
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|selector| *selector == wanted);
    if !selects {
        return false;
    }
    if traffic.service_slot.is_some() {
        return true;
    }
    let (stable_pods, candidate_pods) = capacity(total, &traffic.split);
    candidate.ready >= candidate_pods && stable.settled && stable.replicas == stable_pods
}

/// Measures the named metrics (all when `names` is empty) of the running release.
pub async fn measure(ctx: &Context, ms: &Microservice, names: &[String]) -> Vec<Measurement> {
    let Some(analysis) = ms.spec.rollout.as_ref().and_then(|r| r.analysis.clone()) else {
        return vec![];
    };
    let status = ms.status.clone().unwrap_or_default();
    let Some(release) = status.release.as_ref() else {
        return vec![];
    };
    let stable = status.active_slot.unwrap_or_default();
    let facts = ReleaseFacts {
        name: ms.name_any(),
        namespace: ms.namespace().unwrap_or_default(),
        candidate_slot: other(stable).as_str().into(),
        stable_slot: stable.as_str().into(),
        candidate_revision: release.revision.clone(),
        stable_revision: status.stable_revision.clone().unwrap_or_default(),
        weight: release.weight,
        step_index: release.step_index,
    };
    let at = Time(Timestamp::now());
    let metrics = analysis
        .metrics
        .iter()
        .filter(|m| names.is_empty() || names.contains(&m.name));
    join_all(metrics.map(|metric| ctx.measurer.measure(metric, &facts, at.clone()))).await
}

/// Phase, reason and message while a release runs, or after one was aborted; None when the
/// active Deployment's rollout tells the story.
pub fn assessment(
    ms: &Microservice,
    decision: &Decision,
    revision: &str,
    old: &MicroserviceStatus,
) -> Option<(Phase, String, String)> {
    if let Some((reason, message)) = &decision.abort {
        return Some((Phase::Degraded, reason.clone(), aborted_message(message)));
    }
    let status = &decision.fields;
    if let Some(release) = &status.release {
        if let Some(returning) = &release.returning {
            let phase = if returning.abort {
                Phase::Degraded
            } else {
                Phase::Progressing
            };
            let message = format!(
                "{} Returning traffic to the stable version.",
                returning.message
            );
            return Some((phase, returning.reason.clone(), message));
        }
        let steps = release::steps(ms);
        let step = steps.get(release.step_index.max(0) as usize);
        let at = if release.promoting {
            "promoting: moving all traffic to the new version".to_string()
        } else {
            match step {
                Some(step) => format!(
                    "step {} of {}, {}",
                    release.step_index + 1,
                    release.step_count,
                    step.describe()
                ),
                None => "every step done, waiting for the analysis to pass".into(),
            }
        };
        let verified = if release.weight_verified {
            "confirmed"
        } else {
            "not yet confirmed"
        };
        let weight = format!(
            "{}% of traffic on the new version ({verified})",
            release.weight
        );
        let waiting = !release.promoting && matches!(step, Some(Step::Pause(None)));
        if release.paused || waiting {
            let why = if release.paused {
                "paused by hand; resume with the weir.dev/action annotation set to resume"
            } else {
                "waiting for a promote (weir.dev/action=promote)"
            };
            return Some((
                Phase::Paused,
                reason::PAUSED.into(),
                format!("Releasing {}: {at}, {why}; {weight}.", ms.spec.image),
            ));
        }
        return Some((
            Phase::Progressing,
            reason::RELEASING.into(),
            format!("Releasing {}: {at}; {weight}.", ms.spec.image),
        ));
    }
    if status.aborted_revision.as_deref() == Some(revision) {
        let previous = old
            .conditions
            .iter()
            .find(|c| c.type_ == crate::api::conditions::DEGRADED && c.status == "True");
        return Some(match previous {
            Some(c) => (Phase::Degraded, c.reason.clone(), c.message.clone()),
            None => (
                Phase::Degraded,
                reason::ABORTED.into(),
                aborted_message(&format!("The release of revision {revision} was aborted.")),
            ),
        });
    }
    None
}

fn aborted_message(why: &str) -> String {
    format!(
        "{why} The stable version serves all traffic. Change the spec, or retry with the \
         weir.dev/action annotation set to retry."
    )
}
