//! The takeover of `spec.migrateFrom` in the reconcile: what observe reads of the old
//! Deployment and the Service (neither is in the watch caches: they are not Weir's yet),
//! and the writes apply makes to them. The deciding is pure, in `crate::takeover`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::children::owned_by;
use super::error::Cause;
use crate::api::{ADOPT_ANNOTATION, Microservice, MigrationPhase};
use crate::build::labels::FIELD_MANAGER;
use crate::takeover::{self, LiveService, OldDeployment, OldStep, SelectorStep};

/// What the cluster shows of an engaged takeover.
#[derive(Clone, Debug)]
pub struct View {
    pub service: LiveService,
    pub old: Option<OldDeployment>,
    /// Pods one scale-down step may take.
    pub step: i32,
}

/// The takeover's view, when the spec asks for one that is not over and has consent.
pub async fn observe(ms: &Microservice, client: &Client) -> Result<Option<View>, Cause> {
    let Some(spec) = ms.spec.migrate_from.as_ref() else {
        return Ok(None);
    };
    let recorded = ms.status.as_ref().and_then(|s| s.migration.as_ref());
    if recorded
        .is_some_and(|r| r.deployment == spec.deployment && r.phase == MigrationPhase::Completed)
    {
        return Ok(None);
    }
    let namespace = ms.namespace().unwrap_or_default();
    let name = ms.name_any();
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let Some(service) = services.get_opt(&name).await? else {
        return Ok(None);
    };
    let service = LiveService {
        consent: service.annotations().get(ADOPT_ANNOTATION) == Some(&name),
        owned: owned_by(&service, &ms.uid().unwrap_or_default()),
        differs: differences(&service, crate::build::service(ms, &name, None).as_ref()),
        selector: service.spec.and_then(|s| s.selector).unwrap_or_default(),
    };
    if !takeover::engaged(Some(spec), recorded, Some(&service)) {
        return Ok(None);
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let old = deployments.get_opt(&spec.deployment).await?;
    let original = recorded.map_or_else(
        || {
            old.as_ref()
                .and_then(|d| d.spec.as_ref()?.replicas)
                .unwrap_or(0)
        },
        |r| r.original_replicas,
    );
    // Only a scale-down step uses the budget: no list of PDBs before the switch.
    let scaling_down = recorded.is_some_and(|r| r.phase == MigrationPhase::ScalingDown);
    let step = match &old {
        Some(old) if scaling_down => {
            takeover::step_size(original, budget_of(client, &namespace, old).await?.as_ref())
        }
        _ => 1,
    };
    let old = old.map(|d| OldDeployment {
        replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        pods: d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0),
    });
    Ok(Some(View { service, old, step }))
}

/// How the live Service differs from the one Weir builds in its type and ports (name,
/// number, protocol, target), in words; None when it does not.
pub fn differences(live: &Service, built: Option<&Service>) -> Option<String> {
    let ports = |s: Option<&Service>| -> Vec<String> {
        let mut ports: Vec<String> = s
            .and_then(|s| s.spec.as_ref()?.ports.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let target = match p.target_port {
                    Some(IntOrString::Int(n)) => n.to_string(),
                    Some(IntOrString::String(name)) => name,
                    None => p.port.to_string(),
                };
                let protocol = p.protocol.unwrap_or_else(|| "TCP".into());
                let name = p.name.unwrap_or_default();
                format!("{name} {}/{protocol} to {target}", p.port)
            })
            .collect();
        ports.sort();
        ports
    };
    let kind = live
        .spec
        .as_ref()
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "ClusterIP".into());
    let mut found = Vec::new();
    if kind != "ClusterIP" {
        found.push(format!("it is of type {kind}, Weir's is ClusterIP"));
    }
    let (live_ports, built_ports) = (ports(Some(live)), ports(built));
    if live_ports != built_ports {
        found.push(format!(
            "its ports are [{}], the spec's [{}]",
            live_ports.join(", "),
            built_ports.join(", ")
        ));
    }
    (!found.is_empty()).then(|| found.join("; "))
}

/// The PodDisruptionBudget that guards the old Deployment's pods: one whose selector's
/// labels all appear on its pod template.
async fn budget_of(
    client: &Client,
    namespace: &str,
    old: &Deployment,
) -> Result<Option<k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec>, Cause> {
    let labels = old
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    let list = budgets.list(&ListParams::default()).await?;
    Ok(list.items.into_iter().filter_map(|p| p.spec).find(|spec| {
        let Some(selector) = &spec.selector else {
            return false;
        };
        let expressions = selector
            .match_expressions
            .as_ref()
            .is_some_and(|e| !e.is_empty());
        let wanted = selector.match_labels.clone().unwrap_or_default();
        !expressions && !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
    }))
}

/// Sets the Service's selector, and nothing else of it: server-side apply of that one
/// field, forced (the selector is an atomic map, so it is replaced whole).
pub async fn set_selector(
    client: &Client,
    namespace: &str,
    name: &str,
    step: &SelectorStep,
) -> Result<(), Cause> {
    let SelectorStep::Set(selector) = step else {
        return Ok(());
    };
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let patch = selector_patch(name, selector);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    services.patch(name, &params, &Patch::Apply(&patch)).await?;
    Ok(())
}

fn selector_patch(name: &str, selector: &BTreeMap<String, String>) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector},
    })
}

/// Scales or deletes the old Deployment, as the step says. Returns what it did, for the
/// events.
pub async fn move_old(
    client: &Client,
    namespace: &str,
    deployment: &str,
    step: &OldStep,
) -> Result<Option<String>, Cause> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    match step {
        OldStep::Leave => Ok(None),
        OldStep::Scale(replicas) => {
            let patch = json!({"spec": {"replicas": replicas}});
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            api.patch(deployment, &params, &Patch::Merge(&patch))
                .await?;
            Ok(None)
        }
        OldStep::Delete => match api.delete(deployment, &DeleteParams::background()).await {
            Ok(_) => Ok(Some(format!("Deployment {deployment}"))),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_differs_in_its_type_or_its_ports() {
        let service = |v: serde_json::Value| -> Service { serde_json::from_value(v).unwrap() };
        let built = service(json!({"spec": {"type": "ClusterIP",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}));
        let same =
            service(json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
        assert_eq!(differences(&same, Some(&built)), None);
        let renamed =
            service(json!({"spec": {"ports": [{"name": "web", "port": 80, "targetPort": 8080}]}}));
        assert_eq!(
            differences(&renamed, Some(&built)).unwrap(),
            "its ports are [web 80/TCP to 8080], the spec's [http 80/TCP to 8080]"
        );
        let balanced = service(json!({"spec": {"type": "LoadBalancer",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
        assert!(
            differences(&balanced, Some(&built))
                .unwrap()
                .contains("LoadBalancer")
        );
    }

    #[test]
    fn the_switch_writes_the_selector_and_nothing_else() {
        let selector =
            BTreeMap::from([("app.kubernetes.io/instance".to_string(), "shop".to_string())]);
        assert_eq!(
            selector_patch("shop", &selector),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop"},
                   "spec": {"selector": {"app.kubernetes.io/instance": "shop"}}})
        );
    }
}
