//! The objects core applies, as one multi-document YAML each side:
//!   floor  the N Deployments and N Services Weir builds for them, applied with no operator;
//!   weir   N Microservices asking Weir for the same.
//! The floor's objects come from Weir's own builders, so the only difference between the
//! phases is who turns the request into Deployments and Services, and what that costs.

pub const IMAGE: &str = "registry.example/bench:1";

/// `bench-0000`, `bench-0001`, ...
pub fn name(i: u64) -> String {
    format!("bench-{i:04}")
}

/// The floor: the Deployments and Services Weir builds for `weir(n, replicas)`'s
/// Microservices, rendered by its own builders (`weir::build`, with the operator's default
/// requests and limits) and applied directly, without an owner. The floor is then the
/// cluster's cost of the very objects Weir asks for (readiness probe, security context,
/// topology spread), and the difference is the operator's own work.
pub fn floor(n: u64, replicas: u64) -> String {
    let defaults = weir::build::Defaults::default();
    let replicas = i32::try_from(replicas).unwrap_or(i32::MAX);
    let mut docs = Vec::new();
    for i in 0..n {
        let app = name(i);
        let ms: weir::api::Microservice = serde_json::from_value(serde_json::json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": app},
            "spec": {"image": IMAGE, "replicas": replicas,
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }))
        .unwrap_or_else(|e| die!("the floor's Microservice {app}: {e}"));
        let deployment = weir::build::slot_deployment(&ms, Default::default(), replicas, &defaults);
        let service = weir::build::service(&ms, &app, None);
        docs.push(as_not_weirs(serde_json::to_value(deployment)));
        docs.extend(service.map(|s| as_not_weirs(serde_json::to_value(s))));
    }
    docs.join("\n---\n")
}

/// An object as JSON text (YAML reads it), without what makes it Weir's: the owner
/// reference no Microservice backs, and the label Weir's watches select (the operator,
/// running during the floor, does not cache these).
fn as_not_weirs(object: serde_json::Result<serde_json::Value>) -> String {
    let mut object = object.unwrap_or_else(|e| die!("the floor's objects: {e}"));
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("ownerReferences");
    }
    if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
        labels.remove(weir::build::labels::MANAGED_BY_LABEL);
    }
    object.to_string()
}

pub fn weir(n: u64, replicas: u64) -> String {
    let docs: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "apiVersion: weir.dev/v1alpha1
kind: Microservice
metadata:
  name: {}
spec:
  image: {IMAGE}
  replicas: {replicas}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
",
                name(i)
            )
        })
        .collect();
    docs.join("---\n")
}
