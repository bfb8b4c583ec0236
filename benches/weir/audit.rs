//! The operator's requests, read out of the API server's audit log (Metadata level, JSON
//! lines) with the cluster tests' reader.
//!
//! The operator is every entry whose userAgent starts with `weir/` (the benchmark's own
//! clients are kube-rs's and kubectl's). Each request is counted once, by auditID; a watch
//! logs two stages and counts once. Leader-election Lease requests are marked, so callers
//! can count them apart.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::jiff::Timestamp;

use crate::support::audit::{self, AuditEvent};

/// One operator request.
#[derive(Clone, Debug)]
pub struct Request {
    /// Epoch seconds: when the API server received it (requests), or completed it (writes).
    pub time: f64,
    pub verb: String,
    /// `resource[/subresource]`.
    pub resource: String,
    pub namespace: String,
    pub is_lease: bool,
}

impl Request {
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    /// "verb resource", the key of the breakdowns.
    pub fn key(&self) -> String {
        format!("{} {}", self.verb, self.resource)
    }
}

/// An audit timestamp as epoch seconds.
pub fn timestamp(text: &str) -> Option<f64> {
    let time: Timestamp = text.parse().ok()?;
    Some(time.as_microsecond() as f64 / 1e6)
}

/// When the API server received the request (the stage's time when the entry lacks it).
pub fn received(entry: &AuditEvent) -> Option<f64> {
    let received = if entry.request_received_timestamp.is_empty() {
        &entry.stage_timestamp
    } else {
        &entry.request_received_timestamp
    };
    timestamp(received)
}

fn request(entry: &AuditEvent, time: f64) -> Request {
    let (resource, api_group) = entry
        .object_ref
        .as_ref()
        .map(|r| {
            let resource = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            (resource, r.api_group.as_str())
        })
        .unwrap_or_default();
    Request {
        time,
        verb: entry.verb.clone(),
        is_lease: entry.resource() == "leases" && api_group == "coordination.k8s.io",
        resource,
        namespace: entry.namespace().to_string(),
    }
}

fn by_operator(entry: &AuditEvent) -> bool {
    entry.user_agent.starts_with("weir/")
}

/// Every write the operator made, at the time it completed (stage ResponseComplete).
pub fn operator_writes() -> Vec<Request> {
    let mut seen = HashSet::new();
    audit::since(0)
        .iter()
        .filter(|e| by_operator(e) && e.is_write())
        .filter(|e| seen.insert(e.audit_id.clone()))
        .filter_map(|e| Some(request(e, timestamp(&e.stage_timestamp)?)))
        .collect()
}

/// Every operator request the API server received within [start, end].
pub fn operator_requests(start: f64, end: f64) -> Vec<Request> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for entry in audit::entries_since(0).iter().filter(|e| by_operator(e)) {
        if seen.contains(&entry.audit_id) {
            continue;
        }
        let Some(received) = received(entry) else {
            continue;
        };
        if received < start || received > end {
            continue;
        }
        seen.insert(entry.audit_id.clone());
        found.push(request(entry, received));
    }
    found
}

/// Write counts per userAgent product in a namespace: a diagnostic for when the operator's
/// writes cannot be found (a userAgent that does not start with weir/).
pub fn writers_in(namespace: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for entry in audit::since(0) {
        if entry.namespace() == namespace && entry.is_write() {
            let product = entry.user_agent.split(' ').next().unwrap_or_default();
            *counts.entry(product.to_string()).or_default() += 1;
        }
    }
    counts
}

/// Counts by "verb resource", most frequent first (ties in the order first seen).
pub fn breakdown<'a>(requests: impl IntoIterator<Item = &'a Request>) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for r in requests {
        let key = r.key();
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, count)) => *count += 1,
            None => counts.push((key, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
}

/// A breakdown as a JSON object.
pub fn breakdown_json(counts: &[(String, u64)]) -> serde_json::Value {
    serde_json::Value::Object(
        counts
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect(),
    )
}

/// A breakdown as "key: count, ..." in its order.
pub fn breakdown_text(counts: &[(String, u64)]) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
