/// Everything a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the Microservice has no namespace")]
    MissingNamespace,
}

impl Error {
    /// A bounded word for metric labels and event reasons; never an object name.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_api",
            Error::MissingNamespace => "invalid_object",
        }
    }

    /// True when retrying cannot help until the object changes.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::MissingNamespace)
    }
}
