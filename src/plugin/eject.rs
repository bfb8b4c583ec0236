//! `kubectl weir eject NAME`: leave Weir without an outage. What serves stays running as
//! plain Kubernetes objects: the active slot's Deployment, Service `<name>`, the slot
//! Services and HTTPRoute behind a route, the PodDisruptionBudget and the autoscaler. They
//! lose their owner reference and Weir's labels on their metadata; the pod template keeps
//! its labels, since a Deployment's selector cannot change and the Service selects on them.
//!
//! The order makes it safe against a running operator: the Microservice is deleted first
//! with `propagationPolicy: Orphan`, so from that moment the operator (which stops at a
//! deletion timestamp) writes nothing, and the garbage collector takes the owner
//! references off instead of deleting. Only then are the labels removed, and the idle
//! slot, which serves nothing, deleted.

use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::args::EjectArgs;
use super::client::Target;
use super::error::Error;
use super::print;
use crate::api::{Microservice, MigrationPhase, Slot};
use crate::build::labels::{INSTANCE_LABEL, MANAGED_BY_LABEL, SLOT_LABEL};
use crate::build::{deployment_name, traffic::slot_service_name};
use crate::release::other;

/// Labels Weir puts on its objects' metadata, taken off at an eject.
const WEIR_LABELS: [&str; 4] = [
    "app.kubernetes.io/name",
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    SLOT_LABEL,
];
/// How long the garbage collector may take to orphan the children and remove the object.
const DELETE_WAIT: Duration = Duration::from_secs(60);

/// What an eject keeps and what it deletes, by kind and name.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub deployment: String,
    pub services: Vec<String>,
    pub route: bool,
    /// The idle slot's Deployment and the preview Service: they serve nothing.
    pub idle_deployment: String,
    pub preview: String,
}

/// Why a Microservice cannot be ejected now, if it cannot. A release or a takeover under
/// way would leave traffic split between versions, or on a Deployment about to go.
pub fn refusal(ms: &Microservice) -> Option<String> {
    let name = ms.name_any();
    let status = ms.status.as_ref()?;
    if let Some(release) = &status.release {
        return Some(format!(
            "{name} is releasing revision {}: promote or abort it first, so one version serves",
            release.revision
        ));
    }
    let migrating = status
        .migration
        .as_ref()
        .filter(|m| ms.spec.migrate_from.is_some() && m.phase != MigrationPhase::Completed);
    migrating.map(|m| {
        format!(
            "{name} is taking over Deployment {} ({}): let it finish or abort it first",
            m.deployment,
            m.phase.as_str()
        )
    })
}

/// The objects of `ms` an eject keeps and deletes.
pub fn plan(ms: &Microservice) -> Plan {
    let name = ms.name_any();
    let active = ms
        .status
        .as_ref()
        .and_then(|s| s.active_slot)
        .unwrap_or_default();
    Plan {
        deployment: deployment_name(&name, active),
        services: vec![
            name.clone(),
            slot_service_name(&name, Slot::Blue),
            slot_service_name(&name, Slot::Green),
        ],
        route: true,
        idle_deployment: deployment_name(&name, other(active)),
        preview: format!("{name}-preview"),
    }
}

/// The merge patch that takes Weir's labels and owner reference off an object.
pub fn release_patch(
    object_owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    uid: &str,
) -> Value {
    let labels: serde_json::Map<String, Value> = WEIR_LABELS
        .iter()
        .map(|l| (l.to_string(), Value::Null))
        .collect();
    let owners: Vec<_> = object_owners.iter().filter(|o| o.uid != uid).collect();
    let owners = if owners.is_empty() {
        Value::Null
    } else {
        json!(owners)
    };
    json!({"metadata": {"labels": labels, "ownerReferences": owners}})
}

pub async fn run(target: &Target, args: &EjectArgs) -> Result<(), Error> {
    let ms = target.microservice(&args.name).await?;
    if let Some(why) = refusal(&ms) {
        return Err(Error::Refused(why));
    }
    let uid = ms.uid().unwrap_or_default();
    let plan = plan(&ms);
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let api = target.microservices();
    api.delete(&args.name, &orphan)
        .await
        .map_err(Error::api(format!(
            "cannot delete microservice {}",
            args.name
        )))?;
    wait_gone(&api, &args.name).await?;

    let mut kept = Vec::new();
    let client = &target.client;
    let ns = &target.namespace;
    kept.extend(release::<Deployment>(client, ns, &plan.deployment, &uid).await?);
    for service in &plan.services {
        kept.extend(release::<Service>(client, ns, service, &uid).await?);
    }
    if plan.route {
        use gateway_api::{grpcroutes::GrpcRoute, httproutes::HttpRoute};
        kept.extend(release_route::<HttpRoute>(client, ns, &args.name, &uid).await?);
        kept.extend(release_route::<GrpcRoute>(client, ns, &args.name, &uid).await?);
    }
    kept.extend(release::<PodDisruptionBudget>(client, ns, &args.name, &uid).await?);
    kept.extend(release::<HorizontalPodAutoscaler>(client, ns, &args.name, &uid).await?);
    let mut deleted = Vec::new();
    deleted.extend(delete_weirs::<Deployment>(client, ns, &plan.idle_deployment, &uid).await?);
    deleted.extend(delete_weirs::<Service>(client, ns, &plan.preview, &uid).await?);
    let mut out = format!(
        "microservice {} deleted; left running, no longer Weir's:\n",
        args.name
    );
    for line in kept {
        out.push_str(&format!("  {line}\n"));
    }
    for line in deleted {
        out.push_str(&format!("deleted {line} (it served nothing)\n"));
    }
    print(&out)
}

async fn wait_gone(api: &Api<Microservice>, name: &str) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + DELETE_WAIT;
    loop {
        let found = api
            .get_opt(name)
            .await
            .map_err(Error::api(format!("cannot read microservice {name}")))?;
        if found.is_none() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Refused(format!(
                "microservice {name} is still there after {}s: the garbage collector has not \
                 orphaned its objects yet; run eject again once it is gone",
                DELETE_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A kind an eject reads and writes.
trait Kept:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Kept for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
}

/// Object `name` when it is Weir's and was the ejected Microservice's: managed by Weir,
/// and owned by that Microservice or by nothing (the garbage collector may have taken the
/// reference off already).
async fn weirs<K: Kept>(api: &Api<K>, name: &str, uid: &str) -> Result<Option<K>, Error> {
    let kind = K::kind(&());
    let found = api
        .get_opt(name)
        .await
        .map_err(Error::api(format!("cannot read {kind} {name}")))?;
    Ok(found.filter(|object| is_weirs(object.meta(), uid)))
}

fn is_weirs(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    let managed = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == crate::build::labels::MANAGED_BY);
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    managed
        && owners
            .iter()
            .all(|o| o.uid == uid || o.controller != Some(true))
}

/// Takes Weir's labels and owner reference off object `name`, if it was Weir's.
async fn release<K: Kept>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<Option<String>, Error> {
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let Some(object) = weirs(&api, name, uid).await? else {
        return Ok(None);
    };
    let kind = K::kind(&());
    let patch = release_patch(object.owner_references(), uid);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::api(format!("cannot release {kind} {name}")))?;
    Ok(Some(format!("{kind} {name}")))
}

/// Route `name` of kind `K`, when the cluster serves that kind (a 404 says it does not).
async fn release_route<K: Kept>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<Option<String>, Error> {
    match release::<K>(client, ns, name, uid).await {
        Err(Error::Api { source, .. }) if matches!(&*source, kube::Error::Api(s) if s.code == 404) => {
            Ok(None)
        }
        other => other,
    }
}

/// Deletes object `name`, if it was Weir's.
async fn delete_weirs<K: Kept>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<Option<String>, Error> {
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    if weirs(&api, name, uid).await?.is_none() {
        return Ok(None);
    }
    let kind = K::kind(&());
    api.delete(name, &DeleteParams::background())
        .await
        .map_err(Error::api(format!("cannot delete {kind} {name}")))?;
    Ok(Some(format!("{kind} {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn ms(status: Value) -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "shop", "uid": "u1"},
            "spec": {"image": "x:1", "ports": [{"name": "http", "port": 80}],
                     "migrateFrom": {"deployment": "legacy"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn an_eject_keeps_what_serves_and_deletes_the_idle_slot() {
        let plan = plan(&ms(json!({"activeSlot": "green"})));
        assert_eq!(plan.deployment, "shop-green");
        assert_eq!(plan.idle_deployment, "shop-blue");
        assert_eq!(plan.services, ["shop", "shop-blue", "shop-green"]);
        assert_eq!(plan.preview, "shop-preview");
    }

    #[test]
    fn an_eject_waits_for_a_release_or_a_takeover_to_end() {
        assert_eq!(refusal(&ms(json!({}))), None);
        let releasing = ms(
            json!({"release": {"revision": "r2", "stepIndex": 0, "stepCount": 2, "weight": 10, "weightVerified": true,
            "stepStartedAt": "2026-01-01T00:00:00Z"}}),
        );
        assert!(refusal(&releasing).unwrap().contains("promote or abort"));
        let migration = |phase: &str| {
            json!({"migration": {"deployment": "legacy", "phase": phase,
            "originalReplicas": 2, "replicas": 2, "message": ""}})
        };
        assert!(
            refusal(&ms(migration("ScalingDown")))
                .unwrap()
                .contains("Deployment legacy")
        );
        assert_eq!(refusal(&ms(migration("Completed"))), None);
    }

    #[test]
    fn the_release_patch_drops_weirs_labels_and_owner_only() {
        let owner = |uid: &str| OwnerReference {
            uid: uid.into(),
            api_version: "v1".into(),
            kind: "X".into(),
            name: "x".into(),
            ..Default::default()
        };
        let patch = release_patch(&[owner("u1")], "u1");
        assert_eq!(patch["metadata"]["ownerReferences"], Value::Null);
        assert_eq!(patch["metadata"]["labels"][MANAGED_BY_LABEL], Value::Null);
        let patch = release_patch(&[owner("u1"), owner("other")], "u1");
        assert_eq!(patch["metadata"]["ownerReferences"][0]["uid"], "other");
    }
}
