//! Notification sinks, configured on the operator (a file mounted from a Secret in its own
//! namespace, `--notification-sinks`): a Slack or Teams webhook URL is a credential. A
//! Microservice only names a sink, and only one the operator allows for its namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::analysis::namespace_matches;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinksFile {
    sinks: Vec<Sink>,
}

/// The shape of the message a sink receives.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A CloudEvents 1.0 JSON event (structured mode): any HTTP receiver.
    #[default]
    Cloudevents,
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack,
    /// A Microsoft Teams incoming webhook (workflow): an Adaptive Card message.
    Teams,
}

/// One sink.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sink {
    pub name: String,
    #[serde(default)]
    pub format: Format,
    pub url: String,
    /// Namespaces whose Microservices may notify it: exact names, `prefix*`, or `*`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Headers sent with every message (an `Authorization` for a generic receiver).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Names only: a sink's URL may hold its secret.
impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sink({:?}, {:?})", self.name, self.format)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the notification sinks {path}: {problem}")]
pub struct SinksError {
    path: PathBuf,
    problem: String,
}

/// The operator's sinks by name.
#[derive(Clone, Debug, Default)]
pub struct Sinks {
    sinks: Arc<BTreeMap<String, Sink>>,
}

impl Sinks {
    /// For clap: `--notification-sinks FILE`.
    pub fn from_arg(path: &str) -> Result<Sinks, String> {
        Sinks::load(Path::new(path)).map_err(|e| e.to_string())
    }

    pub fn load(path: &Path) -> Result<Sinks, SinksError> {
        let problem = |problem: String| SinksError {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        Sinks::parse(&text).map_err(problem)
    }

    fn parse(text: &str) -> Result<Sinks, String> {
        let file: SinksFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let mut sinks = BTreeMap::new();
        for sink in file.sinks {
            let url = reqwest::Url::parse(&sink.url)
                .map_err(|e| format!("sink {:?}: url: {e}", sink.name))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("sink {:?}: url is not http or https", sink.name));
            }
            let name = sink.name.clone();
            if sinks.insert(name.clone(), sink).is_some() {
                return Err(format!("two sinks are named {name:?}"));
            }
        }
        Ok(Sinks {
            sinks: Arc::new(sinks),
        })
    }

    /// Sink `name`, if Microservices of `namespace` may notify it; else why not.
    pub fn permitted(&self, name: &str, namespace: &str) -> Result<&Sink, String> {
        let sink = self.sinks.get(name).ok_or_else(|| {
            format!("sink {name:?} is not configured on the operator (--notification-sinks)")
        })?;
        let allowed = sink
            .namespaces
            .iter()
            .any(|p| namespace_matches(p, namespace));
        if !allowed {
            return Err(format!(
                "namespace {namespace} may not notify sink {name:?}: the operator allows it for {}",
                if sink.namespaces.is_empty() {
                    "no namespace".to_string()
                } else {
                    sink.namespaces.join(", ")
                }
            ));
        }
        Ok(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
sinks:
  - name: team-slack
    format: slack
    url: https://hooks.slack.example/services/T/B/secret
    namespaces: ["shop-*"]
  - name: audit
    url: http://audit.platform.svc/events
    namespaces: ["*"]
    headers: {Authorization: "Bearer t"}
"#;

    #[test]
    fn a_sink_is_permitted_only_where_the_operator_allows_it() {
        let sinks = Sinks::parse(FILE).unwrap();
        assert_eq!(
            sinks.permitted("team-slack", "shop-eu").unwrap().format,
            Format::Slack
        );
        let refused = sinks.permitted("team-slack", "other").unwrap_err();
        assert_eq!(
            refused,
            "namespace other may not notify sink \"team-slack\": the operator allows it for shop-*"
        );
        assert_eq!(
            sinks.permitted("audit", "x").unwrap().format,
            Format::Cloudevents
        );
        assert!(
            sinks
                .permitted("nope", "x")
                .unwrap_err()
                .contains("not configured")
        );
        let shown = format!("{sinks:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn a_file_weir_cannot_use_is_refused_with_the_reason() {
        assert!(
            Sinks::parse("sinks: [{name: a, url: 'ftp://x'}]")
                .unwrap_err()
                .contains("not http")
        );
        assert!(
            Sinks::parse("sinks: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]")
                .unwrap_err()
                .contains("two sinks")
        );
        assert!(Sinks::parse("sinks: [{name: a, url: 'http://x', format: email}]").is_err());
    }
}
