//! Operator-wide defaults for what a spec leaves out, set once at start (Helm values).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Requests and limits a container gets when its spec does not say.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    pub cpu_request: String,
    pub memory_request: String,
    /// No CPU limit by default: CPU is compressible, and limits throttle latency.
    pub cpu_limit: Option<String>,
    pub memory_limit: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            cpu_request: "100m".into(),
            memory_request: "128Mi".into(),
            cpu_limit: None,
            memory_limit: "256Mi".into(),
        }
    }
}

impl Defaults {
    /// Fills what `given` leaves out, keeping every value the spec sets. A value the spec
    /// gives on one side stands in for the other (as Kubernetes does for a request), so a
    /// default never makes a request exceed its limit.
    pub fn resources(&self, given: Option<&ResourceRequirements>) -> ResourceRequirements {
        let mut resources = given.cloned().unwrap_or_default();
        let mut requests = resources.requests.take().unwrap_or_default();
        let mut limits = resources.limits.take().unwrap_or_default();
        for (resource, request, limit) in [
            ("cpu", &self.cpu_request, self.cpu_limit.as_ref()),
            ("memory", &self.memory_request, Some(&self.memory_limit)),
        ] {
            let given_request = requests.get(resource).cloned();
            let given_limit = limits.get(resource).cloned();
            let request = given_request
                .clone()
                .or(given_limit.clone())
                .unwrap_or_else(|| Quantity(request.clone()));
            requests.insert(resource.to_string(), request);
            let limit = given_limit
                .or(given_request)
                .or(limit.map(|l| Quantity(l.clone())));
            if let Some(limit) = limit {
                limits.insert(resource.to_string(), limit);
            }
        }
        resources.requests = Some(requests);
        resources.limits = Some(limits);
        resources
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn quantities(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        )
    }

    #[test]
    fn an_empty_spec_gets_the_operator_defaults() {
        let resources = Defaults::default().resources(None);
        assert_eq!(
            resources.requests,
            quantities(&[("cpu", "100m"), ("memory", "128Mi")])
        );
        assert_eq!(resources.limits, quantities(&[("memory", "256Mi")]));
    }

    #[test]
    fn a_given_request_also_bounds_the_missing_limit() {
        let given = ResourceRequirements {
            requests: quantities(&[("memory", "1Gi")]),
            ..Default::default()
        };
        let resources = Defaults::default().resources(Some(&given));
        assert_eq!(
            resources.requests,
            quantities(&[("cpu", "100m"), ("memory", "1Gi")])
        );
        assert_eq!(resources.limits, quantities(&[("memory", "1Gi")]));
    }

    #[test]
    fn a_given_limit_stands_in_for_the_missing_request() {
        let given = ResourceRequirements {
            limits: quantities(&[("memory", "64Mi")]),
            ..Default::default()
        };
        let resources = Defaults::default().resources(Some(&given));
        assert_eq!(
            resources.requests,
            quantities(&[("cpu", "100m"), ("memory", "64Mi")])
        );
    }
}
