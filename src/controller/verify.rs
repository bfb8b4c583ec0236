//! Whether the cluster, as observed, already carries a traffic plan: the live route
//! accepted by its gateways, or the Service and the pod counts in place. The release
//! machine counts a step done only then. Pure: it reads the observation, never the cluster.

use k8s_openapi::api::core::v1::Service;
use serde_json::Value;

use super::drift::is_subset;
use super::observe::Observation;
use crate::api::Microservice;
use crate::build::traffic::{self, capacity};
use crate::build::{effective_replicas, labels};
use crate::release::{Router, SlotState, TrafficPlan, other};

/// True when what `observation` shows carries `plan`, confirmed.
pub fn carries(observation: &Observation, plan: &TrafficPlan) -> bool {
    let ms = &observation.ms;
    match observation.router {
        Router::GatewayApi => route_carries(ms, observation.live_route.as_ref(), plan),
        Router::ReplicaRatio => pods_carry(
            ms,
            observation.live_service.as_ref(),
            plan,
            observation.slot(plan.split.stable),
            observation.slot(other(plan.split.stable)),
        ),
    }
}

/// True when the live route carries `plan` and every parent that reports on it has
/// accepted its current generation (and at least one has). A parent that also reports
/// `ResolvedRefs` must report it True for that generation: a gateway that cannot resolve a
/// backend (the new slot's Service) fails the requests it would send there.
pub fn route_carries(
    ms: &Microservice,
    live: Option<&impl serde::Serialize>,
    plan: &TrafficPlan,
) -> bool {
    let Some(live) = live else { return false };
    let desired = traffic::route_json(ms, &plan.split);
    let live_json = serde_json::to_value(live).unwrap_or_default();
    if !is_subset(&desired["spec"], &live_json["spec"]) {
        return false;
    }
    let generation = live_json
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let parents = live_json
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    !parents.is_empty()
        && parents.iter().all(|parent| {
            let conditions = parent["conditions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let current = |c: &&Value| c["observedGeneration"].as_i64() == generation;
            let true_now = |type_: &str| {
                conditions
                    .iter()
                    .any(|c| c["type"] == type_ && c["status"] == "True" && current(&c))
            };
            let reports = |type_: &str| conditions.iter().any(|c| c["type"] == type_);
            true_now("Accepted") && (!reports("ResolvedRefs") || true_now("ResolvedRefs"))
        })
}

/// True when Service `<name>` selects the pods `plan` asks for and, for a replica-ratio
/// canary, both slots run the pod counts of the weight.
pub fn pods_carry(
    ms: &Microservice,
    live_service: Option<&Service>,
    plan: &TrafficPlan,
    stable: &SlotState,
    candidate: &SlotState,
) -> bool {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let wanted = match plan.service_slot {
        Some(slot) => labels::slot_selector(name, slot),
        None => labels::service_selector(name),
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
    if plan.service_slot.is_some() {
        return true;
    }
    let (stable_pods, candidate_pods) = capacity(effective_replicas(ms), &plan.split);
    candidate.ready >= candidate_pods && stable.settled && stable.replicas == stable_pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Slot;
    use crate::build::traffic::{Split, route};
    use serde_json::json;

    fn ms(spec: Value) -> Microservice {
        let mut base = json!({"image": "x:1", "replicas": 4,
                              "ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
        base.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "generation": 1},
            "spec": base,
        }))
        .unwrap()
    }

    fn plan(weight: i32, service_slot: Option<Slot>) -> TrafficPlan {
        TrafficPlan {
            split: Split {
                stable: Slot::Blue,
                candidate: Slot::Green,
                weight,
                header_route: vec![],
                mirror_percent: 0,
            },
            service_slot,
            preview: false,
        }
    }

    fn slot(replicas: i32, ready: i32) -> SlotState {
        SlotState {
            exists: true,
            revision: None,
            replicas,
            ready,
            settled: ready == replicas,
            observed: true,
        }
    }

    fn service(selector: std::collections::BTreeMap<String, String>) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": {"selector": selector}}))
            .unwrap()
    }

    #[test]
    fn a_replica_ratio_is_carried_by_the_selector_and_the_pod_counts() {
        let ms = ms(json!({}));
        let both = service(labels::service_selector("a"));
        let half = plan(50, None);
        assert!(pods_carry(
            &ms,
            Some(&both),
            &half,
            &slot(2, 2),
            &slot(2, 2)
        ));
        assert!(!pods_carry(
            &ms,
            Some(&both),
            &half,
            &slot(2, 2),
            &slot(2, 1)
        ));
        assert!(!pods_carry(
            &ms,
            Some(&both),
            &half,
            &slot(4, 4),
            &slot(2, 2)
        ));
        assert!(!pods_carry(&ms, None, &half, &slot(2, 2), &slot(2, 2)));
        let blue_only = service(labels::slot_selector("a", Slot::Blue));
        let resting = plan(0, Some(Slot::Blue));
        assert!(pods_carry(
            &ms,
            Some(&blue_only),
            &resting,
            &slot(4, 4),
            &slot(0, 0)
        ));
        assert!(!pods_carry(
            &ms,
            Some(&both),
            &resting,
            &slot(4, 4),
            &slot(0, 0)
        ));
    }

    #[test]
    fn a_route_is_carried_once_every_parent_accepted_its_generation_and_resolved_its_refs() {
        let ms = ms(json!({"rollout": {"strategy": "Canary",
            "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}}}}));
        let wanted = plan(20, None);
        let mut live = route(&ms, &wanted.split);
        live.metadata.generation = Some(3);
        assert!(
            !route_carries(&ms, Some(&live), &wanted),
            "no parent reported"
        );
        let accepted = |generation: i64| {
            json!({"parents": [{"parentRef": {"name": "public"}, "controllerName": "x/y",
                "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                    "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": generation}]}]})
        };
        live.status = serde_json::from_value(accepted(2)).unwrap();
        assert!(
            !route_carries(&ms, Some(&live), &wanted),
            "an older generation"
        );
        live.status = serde_json::from_value(accepted(3)).unwrap();
        assert!(route_carries(&ms, Some(&live), &wanted));
        let with_refs = |status: &str, generation: i64| {
            let mut parents = accepted(3);
            let refs = json!({"type": "ResolvedRefs", "status": status, "reason": "BackendNotFound",
                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": generation});
            parents["parents"][0]["conditions"]
                .as_array_mut()
                .unwrap()
                .push(refs);
            serde_json::from_value(parents).unwrap()
        };
        live.status = with_refs("False", 3);
        assert!(
            !route_carries(&ms, Some(&live), &wanted),
            "a backend the gateway cannot resolve"
        );
        live.status = with_refs("True", 2);
        assert!(
            !route_carries(&ms, Some(&live), &wanted),
            "refs resolved for an older generation"
        );
        live.status = with_refs("True", 3);
        assert!(route_carries(&ms, Some(&live), &wanted));
        assert!(
            !route_carries(&ms, Some(&live), &plan(50, None)),
            "another weight"
        );
        assert!(!route_carries(&ms, None::<&Value>, &wanted));
    }
}
