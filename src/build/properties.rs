//! Properties of the pure builders over generated inputs: whatever valid spec comes in, the
//! objects that go out are valid and traffic never reaches a slot without pods.

use proptest::prelude::*;
use serde_json::json;

use super::traffic::{Split, capacity, http_route, safe_weight};
use super::*;
use crate::api::{MicroserviceSpec, ServicePort};

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

proptest! {
    #[test]
    fn children_of_any_admitted_name_have_valid_names_and_labels(
        name in admitted_name(), replicas in 0..50i32, ports in 0..4usize,
    ) {
        let ms = microservice(&name, replicas, ports);
        let built = children(&ms, Slot::Green, &Defaults::default());
        let mut names = vec![built.deployment.metadata.name.clone().unwrap_or_default()];
        names.extend(built.service.iter().filter_map(|s| s.metadata.name.clone()));
        names.extend(built.pod_disruption_budget.iter().filter_map(|p| p.metadata.name.clone()));
        names.push(format!("{name}-preview"));
        for child in &names {
            prop_assert!(is_dns_label(child), "invalid child name {child}");
        }
        let labels = built.deployment.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
        for value in labels.values() {
            prop_assert!(is_dns_label(value), "invalid label value {value}");
        }
        prop_assert_eq!(built.service.is_some(), ports > 0);
        prop_assert_eq!(built.pod_disruption_budget.is_some(), replicas > 1);
    }

    #[test]
    fn a_slot_with_traffic_always_has_pods(total in 1..500i32, weight in 0..=100i32, mirror in 0..=100i32) {
        let (stable, candidate) = capacity(total, &split(weight, mirror));
        if weight > 0 || mirror > 0 { prop_assert!(candidate >= 1); }
        if weight < 100 { prop_assert!(stable >= 1); }
        prop_assert!(candidate * 100 >= total * weight, "candidate short of its share");
        prop_assert!(stable * 100 >= total * (100 - weight), "stable short of its share");
    }

    #[test]
    fn the_guarded_weight_is_carried_by_ready_pods(wanted in 0..=100i32, total in 1..500i32, ready in 0..500i32) {
        let weight = safe_weight(wanted, total, ready);
        prop_assert!((0..=wanted).contains(&weight));
        if ready == 0 { prop_assert_eq!(weight, 0); }
        if weight > 1 { prop_assert!(ready * 100 >= total * weight, "{} ready pods cannot carry {}%", ready, weight); }
    }

    #[test]
    fn route_weights_always_sum_to_100(weight in 0..=100i32, mirror in 0..=100i32) {
        let ms = microservice("checkout", 3, 1);
        let route = serde_json::to_value(http_route(&ms, &[json!({"name": "gw"})], &[], 80, &split(weight, mirror))).unwrap();
        let rules = route["spec"]["rules"].as_array().unwrap();
        let weighted = rules.last().unwrap();
        let sum: i64 = weighted["backendRefs"].as_array().unwrap().iter().map(|b| b["weight"].as_i64().unwrap()).sum();
        prop_assert_eq!(sum, 100);
        prop_assert_eq!(weighted.get("filters").is_some(), mirror > 0);
    }
}
