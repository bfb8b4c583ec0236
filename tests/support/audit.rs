//! Reads the API server's audit log, to count who wrote what.

use serde::Deserialize;

/// One audit record, the fields tests read.
#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub verb: String,
    #[serde(default)]
    pub user_agent: String,
    pub stage: String,
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    #[serde(default)]
    pub stage_timestamp: String,
    /// One request logs an entry per stage (a watch: ResponseStarted, ResponseComplete).
    #[serde(default, rename = "auditID")]
    pub audit_id: String,
    #[serde(default)]
    pub request_received_timestamp: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub subresource: String,
}

impl AuditEvent {
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    pub fn namespace(&self) -> &str {
        self.object_ref
            .as_ref()
            .map(|o| o.namespace.as_str())
            .unwrap_or_default()
    }

    pub fn resource(&self) -> &str {
        self.object_ref
            .as_ref()
            .map(|o| o.resource.as_str())
            .unwrap_or_default()
    }
}

/// The audit log of the test cluster: `.../logs/audit.log` beside its kubeconfig.
pub fn path() -> std::path::PathBuf {
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG is set for cluster tests");
    std::path::Path::new(&kubeconfig)
        .parent()
        .expect("kubeconfig has a parent directory")
        .join("logs/audit.log")
}

/// The log's current length: read from here later to see only what came after.
pub fn mark() -> u64 {
    std::fs::metadata(path()).map(|m| m.len()).unwrap_or(0)
}

/// Completed requests logged since `from` (a `mark()`).
pub fn since(from: u64) -> Vec<AuditEvent> {
    entries_since(from)
        .into_iter()
        .filter(|e| e.stage == "ResponseComplete")
        .collect()
}

/// Every entry logged since `from` (a `mark()`), of every stage.
pub fn entries_since(from: u64) -> Vec<AuditEvent> {
    let text = std::fs::read(path()).expect("read the audit log");
    let start = (from as usize).min(text.len());
    String::from_utf8_lossy(&text[start..])
        .lines()
        .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
        .collect()
}

/// Writes by Weir (user agent `weir/...`) in `namespace`, leases excluded.
pub fn weir_writes(events: &[AuditEvent], namespace: &str) -> Vec<AuditEvent> {
    events
        .iter()
        .filter(|e| e.user_agent.starts_with("weir/") && e.is_write())
        .filter(|e| e.namespace() == namespace && e.resource() != "leases")
        .cloned()
        .collect()
}
