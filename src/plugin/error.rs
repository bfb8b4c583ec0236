//! What can stop a command, in words a person can act on. Every one exits with 1; usage
//! errors are clap's and exit with 2.

use std::time::Duration;

use kube::config::KubeconfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot load the kubeconfig: {0}")]
    Kubeconfig(#[source] KubeconfigError),

    #[error("cannot create a client for the cluster: {0}")]
    Client(#[source] Box<kube::Error>),

    #[error("microservice {name:?} not found in namespace {namespace:?}")]
    NotFound { name: String, namespace: String },

    #[error(
        "the cluster does not serve Microservices (weir.dev/v1alpha1): is Weir's CRD installed?"
    )]
    NoCrd,

    #[error("{name} has no release in progress")]
    NoRelease { name: String },

    #[error("{name} has no aborted release to retry")]
    NothingToRetry { name: String },

    #[error(
        "no microservice in namespace {namespace:?} is in release group {group:?} \
         (spec.rollout.group)"
    )]
    NoGroupMembers { group: String, namespace: String },

    /// `--group` found members, but each refuses the action; `reasons` says why, per member.
    #[error(
        "no member of release group {group:?} in namespace {namespace:?} can take {action}: {}",
        join(.reasons)
    )]
    NoMemberCanTake {
        group: String,
        namespace: String,
        action: String,
        reasons: Vec<Error>,
    },

    /// `--group`: the action was not set, or not acted on, for some of the `members`.
    #[error(
        "{action} on release group {group:?} failed for {} of {members} members: {}",
        .failed.len(),
        join(.failed)
    )]
    GroupIncomplete {
        group: String,
        action: String,
        members: usize,
        failed: Vec<Error>,
    },

    #[error(
        "{value} was set on {name}, but Weir did not act on it within {}s: is the operator \
         running and watching namespace {namespace:?}? The annotation stays until it does.",
        .waited.as_secs()
    )]
    NotActedOn {
        name: String,
        namespace: String,
        value: String,
        waited: Duration,
    },

    /// A request the API server refused or could not be sent.
    #[error("{doing}: {}", describe_api_error(.source))]
    Api {
        doing: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("watching microservice {name} failed: {source}")]
    Watch {
        name: String,
        #[source]
        source: Box<kube::runtime::watcher::Error>,
    },

    #[error("the dashboard cannot run: {0}")]
    Serve(String),

    #[error("cannot serialize the output: {0}")]
    Serialize(String),

    #[error("deployment {name:?} not found in namespace {namespace:?}")]
    NoDeployment { name: String, namespace: String },

    /// The request cannot be carried out now; the text says why and what to do.
    #[error("{0}")]
    Refused(String),

    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub fn api(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let doing = doing.into();
        move |source| Error::Api {
            doing,
            source: Box::new(source),
        }
    }
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The API server's own message for a refusal; the chain of causes for a request that never
/// reached it (kube's own text for those stops at "client error (Connect)").
pub fn describe_api_error(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        let reason = if status.reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", status.reason)
        };
        return format!("{}{reason}", status.message.trim());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_object_and_the_namespace() {
        let error = Error::NotFound {
            name: "x".into(),
            namespace: "y".into(),
        };
        assert_eq!(
            error.to_string(),
            r#"microservice "x" not found in namespace "y""#
        );
        let error = Error::NoRelease { name: "x".into() };
        assert_eq!(error.to_string(), "x has no release in progress");
    }

    #[test]
    fn a_group_failure_counts_the_members_and_says_what_went_wrong_with_each() {
        let error = Error::GroupIncomplete {
            group: "shop".into(),
            action: "abort".into(),
            members: 2,
            failed: vec![Error::NotFound {
                name: "frontend".into(),
                namespace: "prod".into(),
            }],
        };
        assert_eq!(
            error.to_string(),
            r#"abort on release group "shop" failed for 1 of 2 members: microservice "frontend" not found in namespace "prod""#
        );
    }

    #[test]
    fn a_refusal_reads_as_the_api_servers_message() {
        let status = kube::core::Status::failure("patch is not allowed", "Forbidden");
        let error =
            Error::api("cannot request promote on checkout")(kube::Error::Api(status.boxed()));
        assert_eq!(
            error.to_string(),
            "cannot request promote on checkout: patch is not allowed (Forbidden)"
        );
    }
}
