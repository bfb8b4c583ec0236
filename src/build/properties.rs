//! Properties of the pure builders over generated inputs: whatever valid spec comes in, the
//! objects that go out are valid and traffic never reaches a slot without pods.

use proptest::prelude::*;

use super::traffic::{Split, capacity, http_route, slot_service_name};
use super::*;
use crate::api::{MicroserviceSpec, ServicePort};
use crate::release::capacity_for;

/// A Kubernetes DNS-1123 label: what names and label values must be.
fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !text.is_empty()
        && text.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Names the CRD admits: a letter, then letters, digits and dashes, at most 55, no dash last.
fn admitted_name() -> impl Strategy<Value = String> {
    "[a-z]([-a-z0-9]{0,53}[a-z0-9])?"
}

fn microservice(name: &str, replicas: i32, ports: usize) -> Microservice {
    let ports = (0..ports)
        .map(|i| ServicePort {
            name: format!("p{i}"),
            port: 1000 + i as i32,
            ..Default::default()
        })
        .collect();
    let mut ms = Microservice::new(
        name,
        MicroserviceSpec {
            image: "x:1".into(),
            replicas: Some(replicas),
            ports,
            ..Default::default()
        },
    );
    ms.metadata.namespace = Some("ns".into());
    ms.metadata.uid = Some("uid".into());
    ms
}

fn split(weight: i32, mirror_percent: i32) -> Split {
    Split {
        stable: Slot::Blue,
        candidate: Slot::Green,
        weight,
        header_route: vec![],
        mirror_percent,
    }
}

fn any_slot() -> impl Strategy<Value = Slot> {
    prop_oneof![Just(Slot::Blue), Just(Slot::Green)]
}

proptest! {
    #[test]
    fn children_of_any_admitted_name_have_valid_names_and_labels(
        name in admitted_name(), replicas in 0..50i32, ports in 0..4usize, slot in any_slot(),
    ) {
        let ms = microservice(&name, replicas, ports);
        let deployment = slot_deployment(&ms, slot, effective_replicas(&ms), &Defaults::default());
        let services = [
            service(&ms, &name, None),
            service(&ms, &slot_service_name(&name, slot), Some(slot)),
            service(&ms, &format!("{name}-preview"), Some(slot)),
        ];
        let budget = pod_disruption_budget(&ms);
        let mut names = vec![deployment.metadata.name.clone().unwrap_or_default()];
        names.extend(services.iter().flatten().filter_map(|s| s.metadata.name.clone()));
        names.extend(budget.iter().filter_map(|p| p.metadata.name.clone()));
        names.push(format!("{name}-preview"));
        for child in &names {
            prop_assert!(is_dns_label(child), "invalid child name {child}");
        }
        let labels = deployment.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
        for value in labels.values() {
            prop_assert!(is_dns_label(value), "invalid label value {value}");
        }
        for built in &services {
            prop_assert_eq!(built.is_some(), ports > 0);
        }
        prop_assert_eq!(budget.is_some(), replicas > 1);
    }

    #[test]
    fn a_slot_with_traffic_always_has_pods(total in 1..500i32, weight in 0..=100i32, mirror in 0..=100i32) {
        let (stable, candidate) = capacity(total, &split(weight, mirror));
        if weight > 0 || mirror > 0 { prop_assert!(candidate >= 1); }
        if weight < 100 { prop_assert!(stable >= 1); }
        prop_assert!(candidate * 100 >= total * weight, "candidate short of its share");
        prop_assert!(stable * 100 >= total * (100 - weight), "stable short of its share");
    }

    /// The release machine gives the candidate a weight only when its ready pods number at
    /// least `capacity_for(total, weight)`: that many carry the share, and the slot builder
    /// asks for exactly that many, so a release never waits for pods it did not ask for.
    #[test]
    fn a_carried_weight_has_ready_pods_for_its_share(weight in 1..=100i32, total in 1..500i32, ready in 0..500i32) {
        let needed = capacity_for(total, weight);
        prop_assert!(needed >= 1, "traffic needs a ready pod");
        if ready >= needed {
            prop_assert!(ready * 100 >= total * weight, "{} ready pods cannot carry {}%", ready, weight);
        }
        prop_assert!(needed == 1 || (needed - 1) * 100 < total * weight, "{} pods asked for {}% of {}", needed, weight, total);
        prop_assert_eq!(capacity(total, &split(weight, 0)).1, needed);
    }

    #[test]
    fn route_weights_always_sum_to_100(weight in 0..=100i32, mirror in 0..=100i32) {
        let ms = microservice("checkout", 3, 1);
        let parents = [gateway_api::httproutes::HttpRouteParentRefs { name: "gw".into(), ..Default::default() }];
        let route = serde_json::to_value(http_route(&ms, &parents, &[], 80, &split(weight, mirror))).unwrap();
        let rules = route["spec"]["rules"].as_array().unwrap();
        let weighted = rules.last().unwrap();
        let sum: i64 = weighted["backendRefs"].as_array().unwrap().iter().map(|b| b["weight"].as_i64().unwrap()).sum();
        prop_assert_eq!(sum, 100);
        prop_assert_eq!(weighted.get("filters").is_some(), mirror > 0);
    }
}

/// What the removed `safe_weight` checked, for the guard the release machine runs.
#[test]
fn a_weight_needs_the_ready_pods_for_its_share() {
    assert!(capacity_for(10, 1) >= 1, "no ready pods, no traffic");
    assert_eq!(capacity_for(10, 20), 2, "two of ten pods carry 20%");
    assert_eq!(capacity_for(10, 21), 3, "but not 21%");
    assert_eq!(capacity_for(10, 50), 5);
    assert_eq!(capacity_for(10, 90), 9);
    assert_eq!(
        capacity_for(200, 1),
        2,
        "the smallest step of 200 pods needs two"
    );
    assert_eq!(capacity_for(2, 100), 2);
}
