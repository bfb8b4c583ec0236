//! What a reconcile can fail with: the stage that failed, the object, and the cause. The
//! stages return a `Cause`; the driver adds the stage and the object.

use std::fmt;

/// The stage of the reconcile an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Observe,
    Apply,
    Report,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Observe => "observe",
            Stage::Apply => "apply",
            Stage::Report => "report",
        })
    }
}

/// A failed reconcile of one Microservice.
#[derive(Debug, thiserror::Error)]
#[error("{stage} {object}: {cause}")]
pub struct Error {
    pub stage: Stage,
    /// `namespace/name`.
    pub object: String,
    #[source]
    pub cause: Cause,
}

/// Why a stage failed.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the Microservice has no namespace")]
    MissingNamespace,
    #[error("serializing {0}: {1}")]
    Serialize(&'static str, #[source] serde_json::Error),
    /// A tracked ConfigMap or Secret changed between the cache and the snapshot's read.
    #[error("{0}")]
    ConfigMoved(String),
}

/// Every value `Error::category` returns, so metrics can start each at zero.
pub const CATEGORIES: [&str; 6] = [
    "conflict",
    "server",
    "refused",
    "connection",
    "invalid_object",
    "serialize",
];

impl Error {
    pub fn new(stage: Stage, object: impl Into<String>, cause: Cause) -> Self {
        Error {
            stage,
            object: object.into(),
            cause,
        }
    }

    /// A bounded word for metric labels and event reasons; never an object name.
    pub fn category(&self) -> &'static str {
        match &self.cause {
            Cause::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Cause::ConfigMoved(_) => "conflict",
            Cause::Kube(kube::Error::Api(status)) if status.code >= 500 => "server",
            Cause::Kube(kube::Error::Api(_)) => "refused",
            Cause::Kube(_) => "connection",
            Cause::MissingNamespace => "invalid_object",
            Cause::Serialize(..) => "serialize",
        }
    }

    /// True when retrying cannot help until the object changes.
    pub fn is_permanent(&self) -> bool {
        matches!(self.cause, Cause::MissingNamespace | Cause::Serialize(..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Cause {
        let status = kube::core::Status::failure("no", "Because").with_code(code);
        Cause::Kube(kube::Error::Api(status.boxed()))
    }

    #[test]
    fn errors_name_their_stage_and_object_and_keep_their_category() {
        let error = Error::new(Stage::Apply, "shop/checkout", api(409));
        assert_eq!(error.category(), "conflict");
        assert!(
            error.to_string().starts_with("apply shop/checkout: "),
            "{error}"
        );
        assert!(std::error::Error::source(&error).is_some());
        let categories = [
            api(409),
            api(503),
            api(403),
            Cause::MissingNamespace,
            Cause::Serialize("Service", serde_json::from_str::<u8>("x").unwrap_err()),
        ]
        .map(|cause| Error::new(Stage::Observe, "a/b", cause).category());
        assert_eq!(
            categories,
            [
                "conflict",
                "server",
                "refused",
                "invalid_object",
                "serialize"
            ]
        );
        assert!(categories.iter().all(|c| CATEGORIES.contains(c)));
    }
}
