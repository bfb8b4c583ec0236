use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use super::{labels, object_meta};
use crate::api::{Microservice, Slot};

/// A Service `name` over the pods of one slot, or of every slot when `slot` is None; None
/// when the Microservice declares no ports (a Service needs at least one). Service `<name>`
/// is what clients call; `<name>-blue`, `<name>-green` and `<name>-preview` serve routing.
pub fn service(ms: &Microservice, name: &str, slot: Option<Slot>) -> Option<Service> {
    let instance = ms.metadata.name.as_deref().unwrap_or_default();
    let selector = match slot {
        Some(slot) => labels::slot_selector(instance, slot),
        None => labels::service_selector(instance),
    };
    if ms.spec.ports.is_empty() {
        return None;
    }
    let ports: Vec<_> = ms
        .spec
        .ports
        .iter()
        .map(|p| {
            let mut port = json!({
                "name": p.name,
                "port": p.port,
                "targetPort": p.target_port.unwrap_or(p.port),
                "protocol": p.protocol.map(|p| serde_json::to_value(p).unwrap_or_default()).unwrap_or(json!("TCP")),
            });
            if let Some(app_protocol) = &p.app_protocol {
                port["appProtocol"] = json!(app_protocol);
            }
            port
        })
        .collect();
    let object = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(ms, name),
        "spec": {"type": "ClusterIP", "selector": selector, "ports": ports},
    });
    Some(serde_json::from_value(object).expect("the built Service matches its schema"))
}
