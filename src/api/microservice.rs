use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, HostAlias, LifecycleHandler, LocalObjectReference,
    PodDNSConfig, PodSecurityContext, Probe, ResourceRequirements, SecurityContext, Toleration,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::migration::MigrateFrom;
use super::rollout::Rollout;
use super::status::MicroserviceStatus;

/// Longest Microservice name: its longest child, `<name>-preview`, must stay a DNS label.
pub const MAX_NAME_LENGTH: usize = 55;

/// Seconds a pod may take to stop when `pod.terminationGracePeriodSeconds` is not set
/// (Kubernetes' own default).
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

/// Seconds of the preStop pause a container gets when the spec sets no preStop hook.
pub const DEFAULT_PRE_STOP_SLEEP_SECONDS: i64 = 5;

/// The grace period a CEL rule of the spec compares sleeps with: the spec's, or the default.
const GRACE_PERIOD_CEL: &str = "(has(self.pod) && has(self.pod.terminationGracePeriodSeconds) ? self.pod.terminationGracePeriodSeconds : 30)";

// `kube` derives the `Microservice` type itself from this spec struct.
/// What the team declares about the service. Weir keeps the cluster equal to it.
// Several `printcolumn(...)` entries repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "weir.dev",
    version = "v1alpha1",
    kind = "Microservice",
    namespaced,
    shortname = "ms",
    category = "weir",
    status = "MicroserviceStatus",
    doc = "A Microservice declares one service: its image, size and ports. Weir turns it into Deployments, Services and, during a release, the routes that move traffic.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    validation = Rule::new("size(self.metadata.name) <= 55").message("metadata.name must be at most 55 characters: Weir names children <name>-preview, which must fit in 63"),
    validation = Rule::new("!has(self.spec.pod) || ((has(self.spec.pod.initContainers) ? self.spec.pod.initContainers.map(c, c.name) : []) + (has(self.spec.pod.containers) ? self.spec.pod.containers.map(c, c.name) : [])).all(n, n != self.metadata.name)").message("pod.initContainers and pod.containers may not take the Microservice's name: its own container has it"),
    validation = Rule::new("!has(self.spec.migrateFrom) || !(self.spec.migrateFrom.deployment in [self.metadata.name + '-blue', self.metadata.name + '-green'])").message("spec.migrateFrom.deployment may not be <name>-blue or <name>-green: those are the Microservice's own Deployments"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must start with a letter and contain only lowercase letters, digits and '-', so that it can name a Service"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Weight", type_ = "integer", json_path = ".status.release.weight"),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.rollout) || !has(self.rollout.traffic) || !has(self.rollout.traffic.gatewayAPI) || (has(self.ports) && size(self.ports) > 0)").message("rollout.traffic.gatewayAPI needs at least one port: the route sends traffic to the first port"),
    validation = Rule::new("!has(self.rollout) || !has(self.rollout.traffic) || !has(self.rollout.traffic.gatewayAPI) || !has(self.rollout.traffic.gatewayAPI.port) || (has(self.ports) && self.ports.exists(p, p.name == self.rollout.traffic.gatewayAPI.port))").message("rollout.traffic.gatewayAPI.port must name one of spec.ports"),
    validation = Rule::new("!has(self.migrateFrom) || (has(self.ports) && size(self.ports) > 0)").message("spec.migrateFrom needs spec.ports: the takeover switches the Service of the Microservice's name, which Weir builds from them"),
    validation = Rule::new(format!("!has(self.lifecycle) || !has(self.lifecycle.preStopSleepSeconds) || self.lifecycle.preStopSleepSeconds <= {GRACE_PERIOD_CEL}")).message("lifecycle.preStopSleepSeconds must not be longer than pod.terminationGracePeriodSeconds (30 by default): the pause counts against the grace period"),
    validation = Rule::new(format!("!has(self.lifecycle) || ((!has(self.lifecycle.preStop) || !has(self.lifecycle.preStop.sleep) || self.lifecycle.preStop.sleep.seconds <= {GRACE_PERIOD_CEL}) && (!has(self.lifecycle.postStart) || !has(self.lifecycle.postStart.sleep) || self.lifecycle.postStart.sleep.seconds <= {GRACE_PERIOD_CEL}))")).message("a lifecycle sleep must not be longer than pod.terminationGracePeriodSeconds (30 by default)")
)]
pub struct MicroserviceSpec {
    /// Container image to run, for example `registry.example/checkout:1.4.2`. Changing it
    /// starts a rollout of the new version.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.trim() != ''").message("image must not be empty"))]
    pub image: String,

    /// Number of pods to run. Defaults to 1. With `autoscaling` set, the autoscaler writes this
    /// field through the `/scale` subresource and Weir keeps it within
    /// [minReplicas, maxReplicas].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,

    /// Scale between bounds on CPU or memory use, through a HorizontalPodAutoscaler that
    /// targets this Microservice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,

    /// Ports the service listens on. Each becomes a port of the Service named after the
    /// Microservice. Names and port numbers must be unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(
        validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("port names must be unique"),
        validation = Rule::new("self.all(p, self.exists_one(q, q.port == p.port))").message("port numbers must be unique")
    )]
    pub ports: Vec<ServicePort>,

    /// Environment variables of the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Sources of environment variables (ConfigMaps, Secrets) for the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,

    /// Entrypoint of the container; the image's ENTRYPOINT when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,

    /// Arguments to the entrypoint; the image's CMD when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,

    /// CPU and memory requests and limits. Where a value is missing the operator's defaults
    /// apply, so every pod has requests and a memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Health probes. Readiness defaults to a TCP check on the first port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Box<Probes>>,

    /// Hooks around the container's life. Without a `preStop` hook the container pauses
    /// 5 s (`preStopSleepSeconds`) before it gets SIGTERM, so that gateways and Services
    /// stop sending it requests before it stops serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Box<Lifecycle>>,

    /// How many pods voluntary disruptions (node drains) may take at once. Defaults to
    /// `maxUnavailable: 1` whenever more than one replica can run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,

    /// Where pods go. Defaults to spreading over zones and nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,

    /// Pod-level settings: service account, labels, annotations, scheduling, volumes,
    /// security context, image pull secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Box<PodOptions>>,

    /// How a new version reaches users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// A running Deployment this Microservice takes over without an outage, with the
    /// consent of the Service it serves through (annotation `weir.dev/adopt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_from: Option<MigrateFrom>,
}

/// Bounds and targets of the HorizontalPodAutoscaler Weir creates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not be greater than autoscaling.maxReplicas"))]
pub struct Autoscaling {
    /// Fewest pods. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,

    /// Most pods.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,

    /// Average CPU use, in percent of the request, to aim for. Defaults to 80 when no target
    /// is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_utilization_percentage: Option<i32>,

    /// Average memory use, in percent of the request, to aim for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_memory_utilization_percentage: Option<i32>,
}

/// A port that clients reach through the Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Name of the port (a DNS label, for example `http`), unique within the Microservice.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,

    /// Port the Service exposes, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Port the container listens on, 1 to 65535. Defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<i32>,

    /// TCP (default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,

    /// Application protocol, for example `http`, `h2c` or `kubernetes.io/ws`; routers and
    /// meshes use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// Transport protocol of a port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The name Kubernetes gives the protocol in a port.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Health probes of the container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probes {
    /// When the pod may receive traffic. Defaults to a TCP check on the first port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    /// When the container must be restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    /// Holds the other probes back until a slow start is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
}

/// Counts the handlers a LifecycleHandler sets: Kubernetes wants exactly one.
macro_rules! one_handler {
    ($hook:literal) => {
        concat!(
            "!has(self.",
            $hook,
            ") || (has(self.",
            $hook,
            ".exec) ? 1 : 0) + (has(self.",
            $hook,
            ".httpGet) ? 1 : 0) + (has(self.",
            $hook,
            ".tcpSocket) ? 1 : 0) + (has(self.",
            $hook,
            ".sleep) ? 1 : 0) == 1"
        )
    };
}

/// Lifecycle hooks of the container (Kubernetes' LifecycleHandler: `exec`, `httpGet`,
/// `tcpSocket` or `sleep`), and the length of Weir's default preStop pause.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(one_handler!("preStop")).message("lifecycle.preStop sets exactly one of exec, httpGet, tcpSocket or sleep"),
    validation = Rule::new(one_handler!("postStart")).message("lifecycle.postStart sets exactly one of exec, httpGet, tcpSocket or sleep"),
    validation = Rule::new("!(has(self.preStop) && has(self.preStopSleepSeconds))").message("set lifecycle.preStop or lifecycle.preStopSleepSeconds, not both: preStopSleepSeconds is the length of the default preStop pause")
)]
pub struct Lifecycle {
    /// Runs before the container gets SIGTERM, in place of the default pause; its time
    /// counts against `pod.terminationGracePeriodSeconds`. A failure is only reported (an
    /// event); the container is stopped anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<LifecycleHandler>,
    /// Runs right after the container starts; the container counts as started, and its
    /// probes begin, only once it returns. A failure kills and restarts the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<LifecycleHandler>,
    /// Seconds the container pauses before it gets SIGTERM when `preStop` is not set: the
    /// time for its removal from the Service's endpoints to reach gateways and proxies.
    /// Defaults to 5 (at most the grace period); 0 turns the pause off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub pre_stop_sleep_seconds: Option<i64>,
}

/// The PodDisruptionBudget: set one of the two.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.maxUnavailable) && has(self.minAvailable))").message("set disruption.maxUnavailable or disruption.minAvailable, not both"))]
pub struct Disruption {
    /// Pods (a number or a percentage) a voluntary disruption may take down at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Pods (a number or a percentage) that must stay up during a voluntary disruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
}

/// Where pods are scheduled.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Failure domains to spread pods over, best effort (`ScheduleAnyway`). Defaults to
    /// `[zone, node]`; an empty list turns spreading off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_across: Option<Vec<SpreadDomain>>,
    /// Keep the two versions of a release off each other's nodes, so a bad new version
    /// (a noisy neighbour, a node-level fault it triggers) cannot take the stable pods with
    /// it: `Preferred` asks the scheduler, `Required` insists (the new version's pods then
    /// wait for nodes without stable pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separate_versions: Option<SeparateVersions>,
}

/// How strictly the two versions keep apart.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SeparateVersions {
    Preferred,
    Required,
}

/// A failure domain.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SpreadDomain {
    /// `topology.kubernetes.io/zone`
    Zone,
    /// `kubernetes.io/hostname`
    Node,
}

/// Pod-level settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("((has(self.initContainers) ? self.initContainers.map(c, c.name) : []) + (has(self.containers) ? self.containers.map(c, c.name) : [])).all(n, ((has(self.initContainers) ? self.initContainers.map(c, c.name) : []) + (has(self.containers) ? self.containers.map(c, c.name) : [])).filter(m, m == n).size() == 1)").message("container names must be unique across pod.initContainers and pod.containers"),
    validation = Rule::new("!has(self.initContainers) || self.initContainers.all(c, !has(c.restartPolicy) || c.restartPolicy == 'Always')").message("an init container's restartPolicy is Always (a native sidecar) or unset"),
    validation = Rule::new("!has(self.containers) || self.containers.all(c, !has(c.restartPolicy))").message("pod.containers take no restartPolicy: a sidecar that must start first is an init container with restartPolicy: Always")
)]
pub struct PodOptions {
    /// ServiceAccount the pods run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Extra labels on the pods (Weir's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Node labels a node must have to run the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Volumes of the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Where the container mounts the volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Pod security context. Defaults to the restricted profile: non-root and the
    /// RuntimeDefault seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Container security context. Defaults to the restricted profile: no privilege
    /// escalation, all capabilities dropped, non-root, RuntimeDefault seccomp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    /// Secrets for pulling the image from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Seconds a pod has to stop, from the start of its preStop hook (or pause) to SIGKILL.
    /// Defaults to 30 (Kubernetes' default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Containers that run to completion, in order, before the service's container starts
    /// (a schema migration); one with `restartPolicy: Always` is a native sidecar that starts
    /// first and runs beside it (a proxy, an agent). Each gets the container security and
    /// resource defaults for what it does not set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub init_containers: Vec<Container>,
    /// Containers that run beside the service's container, with the same defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub containers: Vec<Container>,
    /// When the service's image is pulled: `Always`, `IfNotPresent` or `Never`. Defaults to
    /// Kubernetes' rule (`Always` for `:latest` or no tag, else `IfNotPresent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(Always|IfNotPresent|Never)$"))]
    pub image_pull_policy: Option<String>,
    /// Node and pod affinity and anti-affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Topology spread constraints added to Weir's spreading over zones and nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub priority_class_name: Option<String>,
    /// RuntimeClass the pods run with (gVisor, Kata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub runtime_class_name: Option<String>,
    /// DNS settings of the pods (nameservers, searches, options such as `ndots`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDNSConfig>,
    /// Extra `/etc/hosts` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub host_aliases: Vec<HostAlias>,
    /// The containers of a pod see each other's processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,
    /// Whether the ServiceAccount's token is mounted. Defaults to Kubernetes' (mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// A last resort for the fields Weir does not type: a strategic-merge patch over the pod
    /// template Weir built (`metadata`, `spec`), applied last. Lists of named items
    /// (containers, volumes, env) merge by name, `$patch: delete` removes an item, `null` a
    /// field. Weir's own labels always win. `status.templatePatch` says what it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub template_patch: Option<serde_json::Value>,
}

/// An object of any fields, kept as written.
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

impl MicroserviceSpec {
    /// `rollout.traffic.gatewayAPI`, when the spec routes through Gateway API.
    pub fn gateway_api(&self) -> Option<&crate::api::GatewayApiTraffic> {
        self.rollout
            .as_ref()?
            .traffic
            .as_ref()?
            .gateway_api
            .as_ref()
    }
}
