use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{labels, object_meta};
use crate::api::{Microservice, Protocol, Slot};

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
    let ports = ms
        .spec
        .ports
        .iter()
        .map(|p| ServicePort {
            name: Some(p.name.clone()),
            port: p.port,
            target_port: Some(IntOrString::Int(p.target_port.unwrap_or(p.port))),
            protocol: Some(p.protocol.map_or("TCP", Protocol::as_str).into()),
            app_protocol: p.app_protocol.clone(),
            ..Default::default()
        })
        .collect();
    Some(Service {
        metadata: object_meta(ms, name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    })
}
