//! A controller's requests, from the API server's audit log, by the start of their userAgent.
//! Each request counts once (by auditID; a watch logs two stages), at the time the API server
//! received it. Lease requests are marked, and Events are writes like any other: the counts
//! say how many of the writes were Events.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::jiff::Timestamp;

use crate::audit::Request;
use crate::support::audit::{self, AuditEvent};

fn timestamp(text: &str) -> Option<f64> {
    let time: Timestamp = text.parse().ok()?;
    Some(time.as_microsecond() as f64 / 1e6)
}

/// When the API server received the request, in seconds since the epoch.
pub fn received(entry: &AuditEvent) -> Option<f64> {
    if entry.request_received_timestamp.is_empty() {
        timestamp(&entry.stage_timestamp)
    } else {
        timestamp(&entry.request_received_timestamp)
    }
}

fn request(entry: &AuditEvent, time: f64) -> Request {
    let reference = entry.object_ref.as_ref();
    let resource = reference.map_or_else(String::new, |r| {
        if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        }
    });
    Request {
        time,
        verb: entry.verb.clone(),
        is_lease: reference
            .is_some_and(|r| r.resource == "leases" && r.api_group == "coordination.k8s.io"),
        resource,
        namespace: entry.namespace().to_string(),
    }
}

/// Every request whose userAgent starts with `prefix`, received within [start, end].
pub fn by_agent(entries: &[AuditEvent], prefix: &str, start: f64, end: f64) -> Vec<Request> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .filter(|e| e.user_agent.starts_with(prefix))
        .filter_map(|e| Some((e, received(e)?)))
        .filter(|(_, time)| start <= *time && *time <= end)
        .filter(|(e, _)| seen.insert(e.audit_id.clone()))
        .map(|(e, time)| request(e, time))
        .collect()
}

/// Requests per userAgent product (the part before the first space): which clients were
/// there, for when a controller's requests cannot be found by its prefix.
pub fn agents(entries: &[AuditEvent]) -> BTreeMap<String, u64> {
    let mut seen = HashSet::new();
    let mut counts = BTreeMap::new();
    for entry in entries.iter().filter(|e| seen.insert(e.audit_id.clone())) {
        let product = entry.user_agent.split(' ').next().unwrap_or_default();
        *counts.entry(product.to_string()).or_default() += 1;
    }
    counts
}

/// Every entry of the cluster's audit log.
pub fn all_entries() -> Vec<AuditEvent> {
    audit::entries_since(0)
}

pub fn is_event(request: &Request) -> bool {
    request.resource == "events"
}

/// Requests, writes and Event writes among `requests`, Leases left out (and counted apart).
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: usize,
    pub writes: usize,
    pub event_writes: usize,
    pub leases: usize,
}

pub fn count(requests: &[Request]) -> Counts {
    let mut counts = Counts::default();
    for r in requests {
        if r.is_lease {
            counts.leases += 1;
            continue;
        }
        counts.requests += 1;
        if r.is_write() {
            counts.writes += 1;
            if is_event(r) {
                counts.event_writes += 1;
            }
        }
    }
    counts
}
