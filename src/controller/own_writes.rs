//! The status this process last wrote to each Microservice, kept until the watch cache has
//! caught up with it.
//!
//! A reconcile triggered by a child (a Deployment's status, a route's acceptance) reads the
//! Microservice from the cache, which may not have seen the status written a moment before.
//! Deciding from that older status would walk the release back a step (hold an old weight,
//! drop a mirror) or act on a manual action a second time. Whichever of the two is newer is
//! the one to decide from.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::api::MicroserviceStatus;

/// The last status written per Microservice UID, with the resourceVersion the write made.
#[derive(Default)]
pub struct OwnWrites(Mutex<HashMap<String, (String, MicroserviceStatus)>>);

impl OwnWrites {
    /// Remembers the status a write stored at `resource_version`.
    pub fn record(&self, uid: &str, resource_version: &str, status: MicroserviceStatus) {
        self.entries()
            .insert(uid.to_string(), (resource_version.to_string(), status));
    }

    /// The status last written, if the cached object (at `cached_version`) has not seen it
    /// yet; once it has, the entry is dropped.
    pub fn newer_than(&self, uid: &str, cached_version: &str) -> Option<MicroserviceStatus> {
        let mut entries = self.entries();
        match entries.get(uid) {
            Some((written, status)) if is_older(cached_version, written) => Some(status.clone()),
            Some(_) => {
                entries.remove(uid);
                None
            }
            None => None,
        }
    }

    /// Drops what is kept of a deleted Microservice.
    pub fn forget(&self, uid: &str) {
        self.entries().remove(uid);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, MicroserviceStatus)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// True when resourceVersion `a` is older than `b`. Both are etcd revisions, comparable as
/// integers (Kubernetes documents this since 1.35); anything else counts as not older, so an
/// unexpected format falls back to trusting the cache.
fn is_older(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(message: &str) -> MicroserviceStatus {
        MicroserviceStatus {
            message: Some(message.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_cache_behind_the_last_write_gets_the_written_status_until_it_catches_up() {
        let writes = OwnWrites::default();
        assert_eq!(writes.newer_than("a", "10"), None, "nothing written yet");
        writes.record("a", "12", status("written"));
        assert_eq!(writes.newer_than("a", "11"), Some(status("written")));
        assert_eq!(writes.newer_than("a", "11"), Some(status("written")));
        assert_eq!(writes.newer_than("b", "11"), None, "another object");
        assert_eq!(writes.newer_than("a", "12"), None, "caught up");
        assert_eq!(writes.newer_than("a", "11"), None, "dropped once caught up");
    }

    #[test]
    fn a_newer_cache_wins_and_deleted_objects_are_forgotten() {
        let writes = OwnWrites::default();
        writes.record("a", "12", status("written"));
        assert_eq!(writes.newer_than("a", "15"), None);
        writes.record("a", "20", status("again"));
        writes.forget("a");
        assert_eq!(writes.newer_than("a", "19"), None);
    }

    #[test]
    fn versions_compare_as_numbers_and_anything_else_trusts_the_cache() {
        assert!(is_older("9", "10"));
        assert!(!is_older("10", "9"));
        assert!(!is_older("10", "10"));
        assert!(!is_older("x", "10"));
        assert!(!is_older("9", ""));
    }
}
