//! What the operator's caches keep of each watched object: the caches are most of its
//! memory, so each kind drops what the reconcile never reads before it is stored. The
//! benchmark (`make bench`, its memory breakdown) stores objects through the same functions,
//! so what it measures is what the operator holds.

use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Service, ServiceSpec, ServiceStatus};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::status;
use super::watches::Watched;

/// The annotation `kubectl apply` (client-side) leaves: a second copy of the object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A kind the operator caches, with what its cache keeps.
pub trait Cached: Resource {
    /// Drops what the reconcile never reads.
    fn slim(&mut self) {
        slim_metadata(self.meta_mut());
    }
}

/// Every cached kind: managedFields (larger than most objects) and a client-side apply's
/// copy are never read.
fn slim_metadata(metadata: &mut ObjectMeta) {
    metadata.managed_fields = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

// The children Weir applies are compared field by field with what it would apply (drift),
// so their specs stay whole (the Deployment's and the Service's as JSON text, below).
impl Cached for PodDisruptionBudget {}
impl Cached for HorizontalPodAutoscaler {}
impl Cached for HttpRoute {}
impl Cached for GrpcRoute {}

/// A slot Service's EndpointSlices are read for one thing: how many endpoints are ready,
/// found by the Service's name label (and mapped to the Microservice by its instance
/// label). Addresses, targets, topology and ports go, and so do the annotations.
impl Cached for EndpointSlice {
    fn slim(&mut self) {
        slim_metadata(&mut self.metadata);
        self.metadata.annotations = None;
        self.metadata.owner_references = None;
        self.ports = None;
        for endpoint in self.endpoints.iter_mut().flatten() {
            endpoint.addresses = Vec::new();
            endpoint.target_ref = None;
            endpoint.node_name = None;
            endpoint.zone = None;
            endpoint.hostname = None;
            endpoint.hints = None;
            endpoint.deprecated_topology = None;
            if let Some(conditions) = endpoint.conditions.as_mut() {
                conditions.serving = None;
                conditions.terminating = None;
            }
        }
    }
}

/// A kind cached with its metadata and status typed and its spec kept as the JSON text the
/// API server sent: `$cached` for `$kind`. A typed spec is mostly unset optional fields (a
/// pod template is several kilobytes of them, a Service's selector a whole map node), and
/// the reconcile reads a spec only to compare it with what it would apply (drift) and for a
/// few values; the JSON text is a fraction of that size and reads back to the same value.
macro_rules! spec_as_text {
    ($(#[$doc:meta])* $cached:ident, $kind:ident = $kind_name:literal, $spec:ident, $status:ident, $api_version:literal) => {
        $(#[$doc])*
        #[derive(kube::Resource, Clone, Debug, Serialize, Deserialize)]
        #[resource(inherit = $kind_name)]
        pub struct $cached {
            pub metadata: ObjectMeta,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub spec: Option<Box<RawValue>>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<$status>,
        }

        impl Cached for $cached {}

        impl $cached {
            /// The spec, typed: read when more than a few values are needed.
            pub fn typed_spec(&self) -> Option<$spec> {
                serde_json::from_str(self.spec.as_ref()?.get()).ok()
            }

            /// The object, typed (without what slimming dropped).
            pub fn typed(&self) -> $kind {
                $kind {
                    metadata: self.metadata.clone(),
                    spec: self.typed_spec(),
                    status: self.status.clone(),
                }
            }

            /// The object as JSON, as the API server would show it (without what slimming
            /// dropped).
            pub fn to_json(&self) -> serde_json::Result<serde_json::Value> {
                let mut json = serde_json::to_value(self)?;
                json["apiVersion"] = $api_version.into();
                json["kind"] = $kind_name.into();
                Ok(json)
            }
        }

        impl From<&$kind> for $cached {
            fn from(object: &$kind) -> Self {
                $cached {
                    metadata: object.metadata.clone(),
                    spec: object
                        .spec
                        .as_ref()
                        .and_then(|spec| serde_json::value::to_raw_value(spec).ok()),
                    status: object.status.clone(),
                }
            }
        }
    };
}

spec_as_text!(
    /// A Deployment as cached: read for its replicas, its progress deadline and the
    /// configuration its template mounts.
    CachedDeployment, Deployment = "Deployment", DeploymentSpec, DeploymentStatus, "apps/v1"
);

spec_as_text!(
    /// A Service as cached: read for its selector and compared for drift.
    CachedService, Service = "Service", ServiceSpec, ServiceStatus, "v1"
);

/// The spec's numbers the reconcile reads, without building the rest.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SpecNumbers {
    pub replicas: Option<i32>,
    pub progress_deadline_seconds: Option<i32>,
}

impl CachedDeployment {
    /// `spec.replicas` and `spec.progressDeadlineSeconds`.
    pub fn numbers(&self) -> SpecNumbers {
        self.spec
            .as_ref()
            .and_then(|spec| serde_json::from_str(spec.get()).ok())
            .unwrap_or_default()
    }
}

/// A Microservice as cached: what `status::slim_for_cache` leaves of its metadata.
pub fn microservice(ms: &mut Watched) {
    let autoscaling = ms.0.as_ref().is_ok_and(|ms| ms.spec.autoscaling.is_some());
    status::slim_for_cache(ms.meta_mut(), autoscaling);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::observe::ready_endpoints;
    use serde_json::json;

    #[test]
    fn a_cached_deployment_reads_back_as_the_deployment_it_was() {
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "pay-blue", "namespace": "shop", "generation": 3},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "pay"}},
                     "template": {"metadata": {"labels": {"app": "pay"}},
                                  "spec": {"containers": [{"name": "app", "image": "pay:1",
                                    "resources": {"limits": {"cpu": "500m"}}}]}}},
            "status": {"replicas": 3, "readyReplicas": 2, "observedGeneration": 3}
        }))
        .unwrap();
        // As the watch delivers it (the API server writes "type" first): the event's JSON
        // read straight into the cached form.
        let object = serde_json::to_string(&deployment).unwrap();
        let event = format!(r#"{{"type":"ADDED","object":{object}}}"#);
        let kube::core::WatchEvent::Added(cached) =
            serde_json::from_str::<kube::core::WatchEvent<CachedDeployment>>(&event).unwrap()
        else {
            panic!("not an ADDED event")
        };
        assert_eq!(cached.numbers().replicas, Some(3));
        assert_eq!(cached.status.as_ref().unwrap().ready_replicas, Some(2));
        assert_eq!(cached.typed_spec(), deployment.spec);
        assert_eq!(
            cached.to_json().unwrap(),
            serde_json::to_value(&deployment).unwrap()
        );
        assert_eq!(
            CachedDeployment::from(&deployment).to_json().unwrap(),
            cached.to_json().unwrap()
        );
    }

    #[test]
    fn a_cached_service_reads_back_as_the_service_it_was() {
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "pay", "namespace": "shop",
                         "labels": {"app.kubernetes.io/managed-by": "weir"}},
            "spec": {"selector": {"app.kubernetes.io/name": "pay"}, "clusterIP": "10.96.0.7",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        let object = serde_json::to_string(&service).unwrap();
        let cached: CachedService = serde_json::from_str(&object).unwrap();
        assert_eq!(cached.typed(), service);
        assert_eq!(
            cached.to_json().unwrap(),
            serde_json::to_value(&service).unwrap()
        );
        assert_eq!(CachedService::from(&service).typed(), service);
    }

    #[test]
    fn a_slim_endpoint_slice_counts_the_same_ready_endpoints() {
        let mut slice: EndpointSlice = serde_json::from_value(json!({
            "addressType": "IPv4",
            "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "pay-blue"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "x"}},
            "endpoints": [
                {"addresses": ["10.128.0.1"], "conditions": {"ready": true}, "nodeName": "n",
                 "targetRef": {"kind": "Pod", "name": "p"}},
                {"addresses": ["10.128.0.2"], "conditions": {"ready": false, "terminating": true}},
                {"addresses": ["10.128.0.3"]}
            ],
            "ports": [{"port": 8080}]
        }))
        .unwrap();
        let before = ready_endpoints(std::iter::once(&slice));
        slice.slim();
        assert_eq!(ready_endpoints(std::iter::once(&slice)), before);
        assert_eq!(before, 2);
        assert_eq!(
            slice.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"],
            "pay-blue"
        );
        assert!(slice.metadata.annotations.is_none());
        assert!(
            slice
                .endpoints
                .iter()
                .flatten()
                .all(|e| e.addresses.is_empty())
        );
    }
}
