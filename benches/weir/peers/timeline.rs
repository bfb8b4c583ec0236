//! Where a first step's time goes: for each image change, when the API server received each
//! write that carries it to a Ready pod, read from the audit log. The same writes for every
//! controller, so the columns say which part of the time is the controller's own and which
//! the cluster's (the Deployment and ReplicaSet controllers, the scheduler, kwok).
//!
//! Moments, in seconds after the image change (all from the API server's clock but the last):
//!   - `controller_write`: the controller's first write of a Deployment or ReplicaSet of the
//!     service (Weir: its candidate Deployment; Argo Rollouts: the new ReplicaSet; Flagger:
//!     the target Deployment it scales up);
//!   - `replicaset_created`: the first ReplicaSet of the service created after the change (by
//!     the Deployment controller, or by Argo Rollouts itself);
//!   - `pod_bound`: the scheduler's binding of the first new pod of the service;
//!   - `pod_ready_written`: kwok's status write of that pod (Running and Ready);
//!   - `seen`: the Pod watch saw the pods the first step asks for (the figure of the table).
//!
//! A pod's create carries no name in the audit log (its name is generated), so the pod is
//! found by its binding.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::requests::received;
use crate::report::{median, num, rnd, round};
use crate::support::audit::AuditEvent;

/// The moments of the timeline, in order, with their row names.
pub const MOMENTS: [(&str, &str); 5] = [
    (
        "controller_write",
        "controller's first write of the workload",
    ),
    ("replicaset_created", "new ReplicaSet created"),
    ("pod_bound", "new pod bound by the scheduler"),
    ("pod_ready_written", "pod's Ready status written (kwok)"),
    ("seen", "seen Ready by the watch (the figure above)"),
];

/// One write as the timeline reads it.
struct Write<'a> {
    time: f64,
    agent: &'a str,
    verb: &'a str,
    resource: &'a str,
    subresource: &'a str,
    name: &'a str,
}

/// The writes in `namespace`, each request once, in the order received.
fn writes<'a>(entries: &'a [AuditEvent], namespace: &str) -> Vec<Write<'a>> {
    let mut seen = HashSet::new();
    let mut writes: Vec<Write> = entries
        .iter()
        .filter(|e| e.is_write() && e.namespace() == namespace)
        .filter(|e| seen.insert(e.audit_id.as_str()))
        .filter_map(|e| {
            let reference = e.object_ref.as_ref()?;
            Some(Write {
                time: received(e)?,
                agent: &e.user_agent,
                verb: &e.verb,
                resource: &reference.resource,
                subresource: &reference.subresource,
                name: &reference.name,
            })
        })
        .collect();
    writes.sort_by(|a, b| a.time.total_cmp(&b.time));
    writes
}

/// Whether `object` is the service's own (`name`) or one named after it (`name-…`).
fn of_service(object: &str, name: &str) -> bool {
    object == name
        || object
            .strip_prefix(name)
            .is_some_and(|r| r.starts_with('-'))
}

/// The timeline of each release (`name`, `changed`, `in_effect` as `first_steps` gives them),
/// from the writes of `namespace`; `agent` is the controller's userAgent prefix.
pub fn of_releases(
    entries: &[AuditEvent],
    namespace: &str,
    agent: &str,
    releases: &[Value],
) -> Vec<Value> {
    let writes = writes(entries, namespace);
    releases
        .iter()
        .map(|release| {
            let name = release["name"].as_str().unwrap_or_default();
            let changed = num(release, "changed").unwrap_or_default();
            let in_effect = num(release, "in_effect").unwrap_or_default();
            timeline(&writes, agent, name, changed, in_effect)
        })
        .collect()
}

fn timeline(writes: &[Write], agent: &str, name: &str, changed: f64, in_effect: f64) -> Value {
    let after: Vec<&Write> = writes
        .iter()
        .filter(|w| w.time >= changed && of_service(w.name, name))
        .collect();
    let first = |wanted: &dyn Fn(&Write) -> bool| after.iter().find(|w| wanted(w)).copied();
    let controller_write = first(&|w| {
        w.agent.starts_with(agent)
            && w.subresource.is_empty()
            && matches!(w.resource, "deployments" | "replicasets")
    });
    let replicaset = first(&|w| w.resource == "replicasets" && w.verb == "create");
    let bound = first(&|w| w.resource == "pods" && w.subresource == "binding");
    let ready = bound.and_then(|bound| {
        after.iter().rfind(|w| {
            w.resource == "pods"
                && w.subresource == "status"
                && w.name == bound.name
                && w.time <= in_effect
        })
    });
    let since = |write: Option<&Write>| write.map(|w| round(w.time - changed, 3));
    json!({
        "name": name,
        "controller_write": since(controller_write),
        "replicaset_created": since(replicaset),
        "pod_bound": since(bound),
        "pod_ready_written": since(ready.copied()),
        "seen": round(in_effect - changed, 3),
    })
}

/// The median of each moment over the releases.
pub fn medians(timelines: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for (key, _) in MOMENTS {
        let value = median(timelines.iter().map(|t| num(t, key)));
        out.insert(key.to_string(), json!(rnd(value, 3)));
    }
    Value::Object(out)
}
