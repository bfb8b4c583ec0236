//! `kubectl weir migrate deployment/NAME [--service NAME]`: a Microservice written from a
//! running Deployment (and its Service, HorizontalPodAutoscaler and PodDisruptionBudget), with
//! what it could not carry over said on stderr. The mapping is pure.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use serde_json::{Map, Value, json};

use super::args::MigrateArgs;
use super::client::Target;
use super::error::Error;
use super::print;

/// Pod fields `pod` carries as they are.
const POD_FIELDS: [&str; 16] = [
    "initContainers",
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "volumes",
    "securityContext",
    "imagePullSecrets",
    "terminationGracePeriodSeconds",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
    "runtimeClassName",
    "dnsConfig",
    "hostAliases",
    "shareProcessNamespace",
    "automountServiceAccountToken",
];

/// Pod fields at the values Kubernetes fills in: they say nothing of the service.
const POD_DEFAULTS: [(&str, &str); 3] = [
    ("dnsPolicy", "ClusterFirst"),
    ("restartPolicy", "Always"),
    ("schedulerName", "default-scheduler"),
];

/// Fields of the service's container the Microservice carries.
const CONTAINER_FIELDS: [&str; 15] = [
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "resources",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "lifecycle",
    "ports",
    "volumeMounts",
    "securityContext",
    "imagePullPolicy",
];

pub async fn run(target: &Target, args: &MigrateArgs) -> Result<(), Error> {
    let name = args
        .deployment
        .strip_prefix("deployment/")
        .or(args.deployment.strip_prefix("deployments/"))
        .unwrap_or(&args.deployment);
    let ns = &target.namespace;
    let read = |e: kube::Error| Error::Client(Box::new(e));
    let deployments: Api<Deployment> = Api::namespaced(target.client.clone(), ns);
    let deployment = deployments
        .get_opt(name)
        .await
        .map_err(read)?
        .ok_or_else(|| Error::NoDeployment {
            name: name.to_string(),
            namespace: ns.clone(),
        })?;
    let service_name = args.service.as_deref().unwrap_or(name);
    let services: Api<Service> = Api::namespaced(target.client.clone(), ns);
    let service = services.get_opt(service_name).await.map_err(read)?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(target.client.clone(), ns);
    let hpa = hpas
        .list(&Default::default())
        .await
        .map_err(read)?
        .items
        .into_iter()
        .find(|h| {
            let target = &h.spec.scale_target_ref;
            target.kind == "Deployment" && target.name == name
        });
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(target.client.clone(), ns);
    let pod_labels = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref()?.labels.clone())
        .unwrap_or_default();
    let pdb = pdbs
        .list(&Default::default())
        .await
        .map_err(read)?
        .items
        .into_iter()
        .find(|p| {
            let wanted = p
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref()?.match_labels.clone());
            wanted.is_some_and(|w| {
                !w.is_empty() && w.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
            })
        });
    let (manifest, left_out) =
        microservice_from(&deployment, service.as_ref(), hpa.as_ref(), pdb.as_ref());
    if args.service.is_some() && service.is_none() {
        eprintln!("warning: service {service_name:?} not found: ports come from the containers");
    }
    for item in &left_out {
        eprintln!("not carried over: {item}");
    }
    let yaml = serde_yaml::to_string(&manifest).map_err(|e| Error::Serialize(e.to_string()))?;
    print(&yaml)
}

/// The Microservice manifest for `deployment`, and what it could not carry over.
pub fn microservice_from(
    deployment: &Deployment,
    service: Option<&Service>,
    hpa: Option<&HorizontalPodAutoscaler>,
    pdb: Option<&PodDisruptionBudget>,
) -> (Value, Vec<String>) {
    let mut left_out = Vec::new();
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let spec = deployment.spec.clone().unwrap_or_default();
    let mut containers = spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let main_index = containers.iter().position(|c| c.name == name).unwrap_or(0);
    if containers.is_empty() {
        return (json!({}), vec!["the Deployment has no container".into()]);
    }
    let main = containers.remove(main_index);
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| !v.is_null() && v != &json!([]) && v != &json!({})) {
            out.insert(key.to_string(), value);
        }
    };
    for (key, value) in container_spec(&main, &name, &mut left_out) {
        put(key, value);
    }
    put(
        "replicas",
        spec.replicas.filter(|_| hpa.is_none()).map(Value::from),
    );
    put("ports", Some(ports(&main, service, &mut left_out)));
    put("autoscaling", hpa.map(|h| autoscaling(h, &mut left_out)));
    put("disruption", pdb.map(disruption));
    let surge = spec.strategy.and_then(|s| s.rolling_update?.max_surge);
    put("rollout", surge.map(|s| json!({"maxSurge": s})));
    let selector = spec.selector.match_labels.unwrap_or_default();
    if !selector.is_empty() {
        left_out.push(format!(
            "the selector {selector:?}: Weir selects its pods by its own labels (the old Deployment keeps serving until it is removed)"
        ));
    }
    let pod = pod_options(&spec.template, &main, containers, &selector, &mut left_out);
    put("pod", Some(Value::Object(pod)));
    let manifest = json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "Microservice",
        "metadata": {"name": name},
        "spec": Value::Object(out),
    });
    (manifest, left_out)
}

/// The spec fields the service's container gives, by the Microservice's names; reports the
/// container's fields that have none, and a name other than the Deployment's.
fn container_spec(
    main: &Container,
    name: &str,
    left_out: &mut Vec<String>,
) -> Vec<(&'static str, Option<Value>)> {
    let fields = serde_json::to_value(main).unwrap_or_default();
    for key in fields.as_object().into_iter().flat_map(|o| o.keys()) {
        if !CONTAINER_FIELDS.contains(&key.as_str()) {
            left_out.push(format!("container {}: {key}", main.name));
        }
    }
    if main.name != name {
        left_out.push(format!(
            "container name {:?}: the service's container is named {name:?}",
            main.name
        ));
    }
    let field = |key: &str| fields.get(key).cloned();
    let probes = json!({"readiness": field("readinessProbe"), "liveness": field("livenessProbe"),
                        "startup": field("startupProbe")});
    vec![
        ("image", field("image")),
        ("env", field("env")),
        ("envFrom", field("envFrom")),
        ("command", field("command")),
        ("args", field("args")),
        ("resources", field("resources")),
        ("probes", Some(without_nulls(probes))),
        ("lifecycle", field("lifecycle")),
    ]
}

/// `pod`: the pod fields Weir types, the `others` containers, the service container's
/// mounts, security context and pull policy, and the template's labels (but the selector's)
/// and annotations; reports the pod fields it has no place for.
fn pod_options(
    template: &PodTemplateSpec,
    main: &Container,
    others: Vec<Container>,
    selector: &BTreeMap<String, String>,
    left_out: &mut Vec<String>,
) -> Map<String, Value> {
    let pod = serde_json::to_value(template.spec.clone().unwrap_or_default()).unwrap_or_default();
    let mut options = Map::new();
    for (key, value) in pod.as_object().into_iter().flatten() {
        let defaulted = POD_DEFAULTS.contains(&(key.as_str(), value.as_str().unwrap_or_default()));
        if POD_FIELDS.contains(&key.as_str()) {
            options.insert(key.clone(), value.clone());
        } else if key != "containers" && !defaulted {
            left_out.push(format!("pod {key}"));
        }
    }
    if !others.is_empty() {
        options.insert(
            "containers".into(),
            serde_json::to_value(others).unwrap_or_default(),
        );
    }
    let main = serde_json::to_value(main).unwrap_or_default();
    for (key, field) in [
        ("volumeMounts", "volumeMounts"),
        ("containerSecurityContext", "securityContext"),
        ("imagePullPolicy", "imagePullPolicy"),
    ] {
        if let Some(value) = main.get(field) {
            options.insert(key.into(), value.clone());
        }
    }
    let metadata = template.metadata.clone().unwrap_or_default();
    let labels: Map<String, Value> = metadata
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !selector.contains_key(k))
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    if !labels.is_empty() {
        options.insert("labels".into(), Value::Object(labels));
    }
    if let Some(annotations) = metadata.annotations {
        options.insert(
            "annotations".into(),
            serde_json::to_value(annotations).unwrap_or_default(),
        );
    }
    options
}

/// The ports: the Service's (a named target resolved against the container's ports), else
/// the container's.
fn ports(main: &Container, service: Option<&Service>, left_out: &mut Vec<String>) -> Value {
    let container_ports = main.ports.clone().unwrap_or_default();
    let Some(service_ports) = service.and_then(|s| s.spec.as_ref()?.ports.clone()) else {
        let ports: Vec<Value> = container_ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = p.name.clone().unwrap_or_else(|| format!("port-{i}"));
                json!({"name": name, "port": p.container_port})
            })
            .collect();
        return Value::from(ports);
    };
    if let Some(kind) = service
        .and_then(|s| s.spec.as_ref()?.type_.clone())
        .filter(|t| t != "ClusterIP")
    {
        left_out.push(format!("service type {kind}: Weir's Service is ClusterIP"));
    }
    let ports: Vec<Value> = service_ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut name = p.name.clone().unwrap_or_else(|| format!("port-{i}"));
            let target = match &p.target_port {
                Some(IntOrString::Int(n)) => Some(*n),
                Some(IntOrString::String(named)) => {
                    // Weir names the container's port after the Service's: keep the name the
                    // container (and its probes) use.
                    if named != &name {
                        left_out.push(format!(
                            "service port name {name:?}: it is {named:?}, the container's name for it"
                        ));
                        name = named.clone();
                    }
                    container_ports
                        .iter()
                        .find(|c| c.name.as_deref() == Some(named))
                        .map(|c| c.container_port)
                }
                None => None,
            };
            let mut port = json!({"name": name, "port": p.port});
            if let Some(target) = target.filter(|t| *t != p.port) {
                port["targetPort"] = target.into();
            }
            port
        })
        .collect();
    Value::from(ports)
}

fn autoscaling(hpa: &HorizontalPodAutoscaler, left_out: &mut Vec<String>) -> Value {
    let spec = hpa.spec.clone();
    let mut scaling = json!({"minReplicas": spec.min_replicas, "maxReplicas": spec.max_replicas});
    for metric in spec.metrics.unwrap_or_default() {
        let utilization = metric
            .resource
            .as_ref()
            .and_then(|r| Some((r.name.clone(), r.target.average_utilization?)));
        match utilization {
            Some((resource, percent)) if resource == "cpu" => {
                scaling["targetCPUUtilizationPercentage"] = percent.into()
            }
            Some((resource, percent)) if resource == "memory" => {
                scaling["targetMemoryUtilizationPercentage"] = percent.into()
            }
            _ => left_out.push(format!("autoscaler metric of type {}", metric.type_)),
        }
    }
    without_nulls(scaling)
}

fn disruption(pdb: &PodDisruptionBudget) -> Value {
    let spec = pdb.spec.clone().unwrap_or_default();
    without_nulls(
        json!({"maxUnavailable": spec.max_unavailable, "minAvailable": spec.min_available}),
    )
}

fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(fields) => {
            Value::Object(fields.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}
