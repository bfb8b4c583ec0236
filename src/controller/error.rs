/// Everything a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the Microservice has no namespace")]
    MissingNamespace,
    #[error("serializing {0}: {1}")]
    Serialize(&'static str, #[source] serde_json::Error),
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
    /// A bounded word for metric labels and event reasons; never an object name.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(status)) if status.code >= 500 => "server",
            Error::Kube(kube::Error::Api(_)) => "refused",
            Error::Kube(_) => "connection",
            Error::MissingNamespace => "invalid_object",
            Error::Serialize(..) => "serialize",
        }
    }

    /// True when retrying cannot help until the object changes.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::MissingNamespace | Error::Serialize(..))
    }
}
