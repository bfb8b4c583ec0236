//! Creating Microservices and waiting on their status.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use weir::api::{Microservice, Phase};

/// A Microservice named `name` with three replicas and one HTTP port; `spec` overrides.
pub fn microservice(name: &str, spec: Value) -> Microservice {
    let mut base = json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "Microservice",
        "metadata": {"name": name},
        "spec": {
            "image": "registry.example/app:1",
            "replicas": 3,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]
        }
    });
    if let (Some(base_spec), Some(extra)) = (base["spec"].as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base_spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).expect("a valid Microservice")
}

pub async fn create(client: &Client, ns: &str, ms: &Microservice) -> Api<Microservice> {
    let api: Api<Microservice> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), ms)
        .await
        .expect("create Microservice");
    api
}

/// Starts an operator for `ns` (named `identity`) and a Microservice `name` with `spec`
/// overrides, and waits until it is Ready: the common start of a test.
pub async fn ready_microservice(
    client: &Client,
    ns: &str,
    identity: &str,
    name: &str,
    spec: Value,
) -> (super::operator::Operator, Api<Microservice>) {
    let operator = super::operator::Operator::start(ns, identity, &[]).await;
    let api = create(client, ns, &microservice(name, spec)).await;
    wait_ready(&api, name, 1, Duration::from_secs(90)).await;
    (operator, api)
}

/// Merges `patch` into the spec (as a user's edit would) and returns the new generation.
pub async fn edit_spec(api: &Api<Microservice>, name: &str, patch: Value) -> i64 {
    let patched = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": patch})),
        )
        .await
        .expect("edit the spec");
    patched.metadata.generation.expect("generation")
}

fn condition(ms: &Microservice, type_: &str) -> Option<(String, String)> {
    let status = ms.status.as_ref()?;
    let c = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// The Ready condition's status and reason.
pub fn ready(ms: &Microservice) -> Option<(String, String)> {
    condition(ms, "Ready")
}

/// Waits until the Microservice has observed `generation` and is Ready=True.
pub async fn wait_ready(
    api: &Api<Microservice>,
    name: &str,
    generation: i64,
    deadline: Duration,
) -> Microservice {
    let what = format!("Microservice {name} Ready at generation {generation}");
    wait_status(api, name, deadline, &what, move |ms| {
        ms.status.as_ref().and_then(|s| s.observed_generation) == Some(generation)
            && ready(ms).is_some_and(|(status, _)| status == "True")
    })
    .await
}

/// Waits until the Microservice reports `phase` with the Ready reason `reason`.
pub async fn wait_phase(
    api: &Api<Microservice>,
    name: &str,
    phase: Phase,
    reason: &str,
    deadline: Duration,
) -> Microservice {
    let what = format!("Microservice {name} in phase {phase:?} with reason {reason}");
    let reason = reason.to_string();
    wait_status(api, name, deadline, &what, move |ms| {
        ms.status.as_ref().and_then(|s| s.phase) == Some(phase)
            && ready(ms).is_some_and(|(_, r)| r == reason)
    })
    .await
}

async fn wait_status(
    api: &Api<Microservice>,
    name: &str,
    deadline: Duration,
    what: &str,
    holds: impl Fn(&Microservice) -> bool + Send + 'static,
) -> Microservice {
    let condition = move |ms: Option<&Microservice>| ms.is_some_and(&holds);
    super::wait_for(api.clone(), name, deadline, what, condition)
        .await
        .expect("the Microservice exists")
}

/// Events about the named Microservice, as (type, reason) pairs.
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().fields(&format!(
        "involvedObject.name={name},involvedObject.kind=Microservice"
    ));
    let mut events: Vec<_> = api
        .list(&params)
        .await
        .expect("list events")
        .items
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
        .collect();
    events.sort();
    events
}

pub fn pod_is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
