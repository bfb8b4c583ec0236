use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, Lifecycle, LifecycleHandler, PodAffinityTerm,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecurityContext,
    SleepAction, TCPSocketAction, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::template_patch;
use super::{Defaults, labels, non_empty, object_meta};
use crate::api::{
    DEFAULT_PRE_STOP_SLEEP_SECONDS, DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS, Microservice,
    PodOptions, Protocol, SeparateVersions, Slot, SpreadDomain,
};

/// Default seconds a rollout may stall before the Microservice turns Degraded.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// Name of a slot's Deployment: `<name>-blue` or `<name>-green`.
pub fn deployment_name(name: &str, slot: Slot) -> String {
    format!("{name}-{}", slot.as_str())
}

/// The Deployment of one slot with `replicas` pods, defaults filled in for isolation and
/// zero downtime: requests and limits, a readiness probe, the restricted security profile,
/// spreading over zones and nodes, and a rolling update that never drops a ready pod.
pub fn deployment(ms: &Microservice, slot: Slot, replicas: i32, defaults: &Defaults) -> Deployment {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let pod = ms.spec.pod.clone().unwrap_or_default();
    let rollout = ms.spec.rollout.clone().unwrap_or_default();
    let selector = labels::slot_selector(name, slot);

    let mut pod_labels = pod.labels.clone();
    pod_labels.extend(labels::standard_labels(name));
    pod_labels.extend(selector.clone());

    let max_surge = rollout
        .max_surge
        .unwrap_or(IntOrString::String("25%".into()));
    Deployment {
        metadata: object_meta(ms, &deployment_name(name, slot)),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            progress_deadline_seconds: Some(
                rollout
                    .progress_deadline_seconds
                    .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS),
            ),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(max_surge),
                }),
            }),
            template: with_template_patch(
                PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        annotations: non_empty(pod.annotations.clone()),
                        ..Default::default()
                    }),
                    spec: Some(pod_spec(ms, &pod, &selector, defaults)),
                },
                &pod,
                &selector,
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `template` with `pod.templatePatch` merged in, Weir's labels restored over it; as built
/// when the patch would break it (status says why).
fn with_template_patch(
    template: PodTemplateSpec,
    pod: &PodOptions,
    selector: &BTreeMap<String, String>,
) -> PodTemplateSpec {
    let Some(patch) = &pod.template_patch else {
        return template;
    };
    let Ok(mut patched) = template_patch::patched(&template, patch) else {
        return template;
    };
    let ours = template.metadata.and_then(|m| m.labels).unwrap_or_default();
    let labels = patched
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    labels.extend(ours);
    labels.extend(selector.clone());
    patched
}

/// Weir's spreading, then the spec's constraints. A spec constraint with the same topology
/// key and `whenUnsatisfiable` as one of Weir's replaces it: Kubernetes keys the list by that
/// pair, and a second entry with the same pair is refused.
fn with_spec_spreading(
    defaults: Vec<TopologySpreadConstraint>,
    spec: &[TopologySpreadConstraint],
) -> Vec<TopologySpreadConstraint> {
    let same_key = |a: &TopologySpreadConstraint, b: &TopologySpreadConstraint| {
        a.topology_key == b.topology_key && a.when_unsatisfiable == b.when_unsatisfiable
    };
    let mut spreading: Vec<_> = defaults
        .into_iter()
        .filter(|own| !spec.iter().any(|given| same_key(own, given)))
        .collect();
    spreading.extend(spec.iter().cloned());
    spreading
}

/// The pod of a slot: one container, the restricted security profile unless the spec
/// replaces it, spread over failure domains.
fn pod_spec(
    ms: &Microservice,
    pod: &PodOptions,
    selector: &BTreeMap<String, String>,
    defaults: &Defaults,
) -> PodSpec {
    let security = pod
        .security_context
        .clone()
        .unwrap_or_else(|| PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..Default::default()
        });
    let spread = ms
        .spec
        .placement
        .as_ref()
        .and_then(|p| p.spread_across.clone());
    let spreading = with_spec_spreading(
        spread_constraints(spread, selector),
        &pod.topology_spread_constraints,
    );
    let extra = |containers: &[Container]| {
        let with_defaults = containers.iter().map(|c| with_defaults(c, pod, defaults));
        non_empty(with_defaults.collect::<Vec<_>>())
    };
    let mut containers = vec![container(ms, pod, defaults)];
    containers.extend(extra(&pod.containers).unwrap_or_default());
    PodSpec {
        containers,
        init_containers: extra(&pod.init_containers),
        security_context: Some(security),
        topology_spread_constraints: Some(spreading),
        affinity: separated(pod.affinity.clone(), ms, selector),
        priority_class_name: pod.priority_class_name.clone(),
        runtime_class_name: pod.runtime_class_name.clone(),
        dns_config: pod.dns_config.clone(),
        host_aliases: non_empty(pod.host_aliases.clone()),
        share_process_namespace: pod.share_process_namespace,
        automount_service_account_token: pod.automount_service_account_token,
        service_account_name: pod.service_account_name.clone(),
        node_selector: non_empty(pod.node_selector.clone()),
        tolerations: non_empty(pod.tolerations.clone()),
        volumes: non_empty(pod.volumes.clone()),
        image_pull_secrets: non_empty(pod.image_pull_secrets.clone()),
        termination_grace_period_seconds: pod.termination_grace_period_seconds,
        ..Default::default()
    }
}

/// The service's container, named after the Microservice.
fn container(ms: &Microservice, pod: &PodOptions, defaults: &Defaults) -> Container {
    let spec = &ms.spec;
    let probes = spec.probes.clone().unwrap_or_default();
    let readiness = probes.readiness.or_else(|| default_readiness(ms));
    let ports = spec
        .ports
        .iter()
        .map(|p| ContainerPort {
            name: Some(p.name.clone()),
            container_port: p.target_port.unwrap_or(p.port),
            protocol: Some(p.protocol.map_or("TCP", Protocol::as_str).into()),
            ..Default::default()
        })
        .collect();
    let security = pod
        .container_security_context
        .clone()
        .unwrap_or_else(restricted_container);
    Container {
        name: ms.metadata.name.clone().unwrap_or_default(),
        image: Some(spec.image.clone()),
        image_pull_policy: pod.image_pull_policy.clone(),
        resources: Some(defaults.resources(spec.resources.as_ref())),
        security_context: Some(security),
        command: non_empty(spec.command.clone()),
        args: non_empty(spec.args.clone()),
        env: non_empty(spec.env.clone()),
        env_from: non_empty(spec.env_from.clone()),
        ports: non_empty(ports),
        volume_mounts: non_empty(pod.volume_mounts.clone()),
        // A probe written as `{}` has no handler, and the API server would refuse it.
        readiness_probe: readiness.and_then(non_empty),
        liveness_probe: probes.liveness.and_then(non_empty),
        startup_probe: probes.startup.and_then(non_empty),
        lifecycle: lifecycle(ms, pod),
        ..Default::default()
    }
}

/// The spec's hooks and, when it sets no preStop, a pause before SIGTERM: the pod's removal
/// from the endpoints reaches gateways and proxies while it still serves. The default pause
/// is never longer than the grace period (Kubernetes refuses a sleep that is).
fn lifecycle(ms: &Microservice, pod: &PodOptions) -> Option<Lifecycle> {
    let hooks = ms.spec.lifecycle.clone().unwrap_or_default();
    let grace = pod
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    let pause = hooks
        .pre_stop_sleep_seconds
        .unwrap_or(DEFAULT_PRE_STOP_SLEEP_SECONDS.min(grace));
    let pre_stop = hooks.pre_stop.or_else(|| {
        (pause > 0).then(|| LifecycleHandler {
            sleep: Some(SleepAction { seconds: pause }),
            ..Default::default()
        })
    });
    non_empty(Lifecycle {
        pre_stop,
        post_start: hooks.post_start,
        ..Default::default()
    })
}

/// An extra container as the spec gives it, with the security context (the pod's
/// `containerSecurityContext`, else the restricted profile) and the resources the operator
/// defaults to, where it sets none.
fn with_defaults(given: &Container, pod: &PodOptions, defaults: &Defaults) -> Container {
    let security = given.security_context.clone().unwrap_or_else(|| {
        pod.container_security_context
            .clone()
            .unwrap_or_else(restricted_container)
    });
    Container {
        security_context: Some(security),
        resources: Some(defaults.resources(given.resources.as_ref())),
        ..given.clone()
    }
}

/// The restricted Pod Security Standard for a container.
fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..Default::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..Default::default()
    }
}

/// A TCP check on the first port: a pod gets traffic only once it accepts connections.
fn default_readiness(ms: &Microservice) -> Option<Probe> {
    let first = ms.spec.ports.first()?;
    Some(Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(first.target_port.unwrap_or(first.port)),
            host: None,
        }),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    })
}

fn spread_constraints(
    domains: Option<Vec<SpreadDomain>>,
    selector: &BTreeMap<String, String>,
) -> Vec<TopologySpreadConstraint> {
    let domains = domains.unwrap_or_else(|| vec![SpreadDomain::Zone, SpreadDomain::Node]);
    domains
        .iter()
        .map(|domain| {
            let key = match domain {
                SpreadDomain::Zone => "topology.kubernetes.io/zone",
                SpreadDomain::Node => "kubernetes.io/hostname",
            };
            TopologySpreadConstraint {
                max_skew: 1,
                topology_key: key.into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}

/// The spec's affinity, with a term that keeps this slot's pods off the nodes running the
/// other slot's (`placement.separateVersions`): the other slot is the slot selector with
/// the other slot's name.
fn separated(
    affinity: Option<Affinity>,
    ms: &Microservice,
    selector: &BTreeMap<String, String>,
) -> Option<Affinity> {
    let separate = ms.spec.placement.as_ref().and_then(|p| p.separate_versions);
    let Some(separate) = separate else {
        return affinity;
    };
    let mut other_slot = selector.clone();
    let own = other_slot
        .get(labels::SLOT_LABEL)
        .cloned()
        .unwrap_or_default();
    let other = if own == Slot::Blue.as_str() {
        Slot::Green
    } else {
        Slot::Blue
    };
    other_slot.insert(labels::SLOT_LABEL.into(), other.as_str().into());
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(other_slot),
            ..Default::default()
        }),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    };
    let mut affinity = affinity.unwrap_or_default();
    let anti = affinity
        .pod_anti_affinity
        .get_or_insert_with(Default::default);
    match separate {
        SeparateVersions::Preferred => anti
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: term,
            }),
        SeparateVersions::Required => anti
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term),
    }
    Some(affinity)
}
