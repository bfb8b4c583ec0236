use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;
use crate::api::{Autoscaling, Disruption, Lifecycle, MicroserviceSpec, PodOptions, ServicePort};

fn checkout() -> Microservice {
    let mut ms = Microservice::new(
        "checkout",
        MicroserviceSpec {
            image: "registry.example/checkout:1.4.2".into(),
            replicas: Some(3),
            ports: vec![ServicePort {
                name: "http".into(),
                port: 80,
                target_port: Some(8080),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    ms.metadata.namespace = Some("shop".into());
    ms.metadata.uid = Some("uid-1".into());
    ms
}

#[test]
fn the_deployment_carries_every_default_for_isolation_and_zero_downtime() {
    let built =
        serde_json::to_value(deployment(&checkout(), Slot::Blue, 3, &Defaults::default())).unwrap();
    let selector = json!({"app.kubernetes.io/instance": "checkout", "weir.dev/slot": "blue"});
    assert_eq!(
        built,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "checkout-blue",
                "namespace": "shop",
                "labels": {
                    "app.kubernetes.io/instance": "checkout",
                    "app.kubernetes.io/managed-by": "weir",
                    "app.kubernetes.io/name": "checkout"
                },
                "ownerReferences": [{
                    "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice", "name": "checkout",
                    "uid": "uid-1", "controller": true
                }]
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": selector},
                "progressDeadlineSeconds": 600,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                "template": {
                    "metadata": {"labels": {
                        "app.kubernetes.io/instance": "checkout",
                        "app.kubernetes.io/managed-by": "weir",
                        "app.kubernetes.io/name": "checkout",
                        "weir.dev/slot": "blue"
                    }},
                    "spec": {
                        "containers": [{
                            "name": "checkout",
                            "image": "registry.example/checkout:1.4.2",
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5, "failureThreshold": 3},
                            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"}
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": true,
                                "seccompProfile": {"type": "RuntimeDefault"}
                            }
                        }],
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "topologySpreadConstraints": [
                            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}},
                            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}}
                        ]
                    }
                }
            }
        })
    );
}

#[test]
fn the_service_selects_every_slot_and_maps_ports() {
    let built = serde_json::to_value(service(&checkout(), "checkout", None).unwrap()).unwrap();
    assert_eq!(
        built["spec"]["selector"],
        json!({"app.kubernetes.io/instance": "checkout"})
    );
    assert_eq!(
        built["spec"]["ports"],
        json!([{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    );
}

#[test]
fn a_slot_service_selects_one_slot() {
    let built =
        serde_json::to_value(service(&checkout(), "checkout-green", Some(Slot::Green)).unwrap())
            .unwrap();
    assert_eq!(built["metadata"]["name"], "checkout-green");
    assert_eq!(
        built["spec"]["selector"],
        json!({"app.kubernetes.io/instance": "checkout", "weir.dev/slot": "green"})
    );
}

#[test]
fn no_ports_means_no_service() {
    let mut ms = checkout();
    ms.spec.ports.clear();
    assert!(service(&ms, "checkout", None).is_none());
}

#[test]
fn a_pdb_exists_only_when_more_than_one_pod_can_run() {
    let mut ms = checkout();
    let pdb = serde_json::to_value(pod_disruption_budget(&ms).unwrap()).unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], json!(1));
    ms.spec.disruption = Some(Disruption {
        min_available: Some(IntOrString::String("50%".into())),
        max_unavailable: None,
    });
    let pdb = serde_json::to_value(pod_disruption_budget(&ms).unwrap()).unwrap();
    assert_eq!(pdb["spec"]["minAvailable"], json!("50%"));
    ms.spec.replicas = Some(1);
    assert!(pod_disruption_budget(&ms).is_none());
    ms.spec.autoscaling = Some(Autoscaling {
        max_replicas: 5,
        ..Default::default()
    });
    assert!(
        pod_disruption_budget(&ms).is_some(),
        "autoscaling can add pods"
    );
}

#[test]
fn autoscaled_replicas_are_clamped_to_the_bounds() {
    let mut ms = checkout();
    ms.spec.autoscaling = Some(Autoscaling {
        min_replicas: Some(2),
        max_replicas: 4,
        ..Default::default()
    });
    ms.spec.replicas = Some(10);
    assert_eq!(effective_replicas(&ms), 4);
    ms.spec.replicas = Some(1);
    assert_eq!(effective_replicas(&ms), 2);
    ms.spec.replicas = None;
    assert_eq!(effective_replicas(&ms), 2);
}

#[test]
fn the_hpa_targets_the_microservice_scale_subresource() {
    let mut ms = checkout();
    ms.spec.autoscaling = Some(Autoscaling {
        max_replicas: 6,
        ..Default::default()
    });
    let hpa = serde_json::to_value(horizontal_pod_autoscaler(&ms).unwrap()).unwrap();
    assert_eq!(
        hpa["spec"],
        json!({
            "scaleTargetRef": {"apiVersion": "weir.dev/v1alpha1", "kind": "Microservice", "name": "checkout"},
            "minReplicas": 1,
            "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
        })
    );
}

/// The container of a slot's Deployment, as JSON.
fn container(ms: &Microservice) -> serde_json::Value {
    let built = serde_json::to_value(deployment(ms, Slot::Blue, 1, &Defaults::default())).unwrap();
    built["spec"]["template"]["spec"]["containers"][0].clone()
}

#[test]
fn a_container_pauses_before_it_stops_unless_the_spec_says_otherwise() {
    let mut ms = checkout();
    assert_eq!(
        container(&ms)["lifecycle"],
        json!({"preStop": {"sleep": {"seconds": 5}}}),
        "the default pause"
    );

    ms.spec.lifecycle = Some(Box::new(Lifecycle {
        pre_stop_sleep_seconds: Some(12),
        ..Default::default()
    }));
    assert_eq!(
        container(&ms)["lifecycle"],
        json!({"preStop": {"sleep": {"seconds": 12}}})
    );

    ms.spec.lifecycle = Some(Box::new(Lifecycle {
        pre_stop_sleep_seconds: Some(0),
        ..Default::default()
    }));
    assert!(
        container(&ms).get("lifecycle").is_none(),
        "0 turns the pause off"
    );

    let drain: k8s_openapi::api::core::v1::LifecycleHandler =
        serde_json::from_value(json!({"httpGet": {"path": "/drain", "port": 8080}})).unwrap();
    ms.spec.lifecycle = Some(Box::new(Lifecycle {
        pre_stop: Some(drain),
        post_start: serde_json::from_value(json!({"exec": {"command": ["warm"]}})).unwrap(),
        ..Default::default()
    }));
    assert_eq!(
        container(&ms)["lifecycle"],
        json!({
            "preStop": {"httpGet": {"path": "/drain", "port": 8080}},
            "postStart": {"exec": {"command": ["warm"]}}
        }),
        "a hook of the spec replaces the pause"
    );
}

#[test]
fn the_grace_period_is_the_specs_and_bounds_the_default_pause() {
    let mut ms = checkout();
    let pod = |ms: &Microservice| {
        serde_json::to_value(deployment(ms, Slot::Blue, 1, &Defaults::default())).unwrap()
            ["spec"]["template"]["spec"]
            .clone()
    };
    assert!(
        pod(&ms).get("terminationGracePeriodSeconds").is_none(),
        "Kubernetes' 30 s unless the spec says"
    );
    ms.spec.pod = Some(Box::new(PodOptions {
        termination_grace_period_seconds: Some(3),
        ..Default::default()
    }));
    assert_eq!(pod(&ms)["terminationGracePeriodSeconds"], json!(3));
    assert_eq!(
        container(&ms)["lifecycle"],
        json!({"preStop": {"sleep": {"seconds": 3}}}),
        "never longer than the grace period"
    );
}

#[test]
fn the_hooks_and_the_grace_period_are_part_of_the_revision() {
    let defaults = Defaults::default();
    let base = checkout();
    let mut paused = checkout();
    paused.spec.lifecycle = Some(Box::new(Lifecycle {
        pre_stop_sleep_seconds: Some(10),
        ..Default::default()
    }));
    let mut graceful = checkout();
    graceful.spec.pod = Some(Box::new(PodOptions {
        termination_grace_period_seconds: Some(60),
        ..Default::default()
    }));
    let explicit_default = {
        let mut ms = checkout();
        ms.spec.lifecycle = Some(Box::new(Lifecycle {
            pre_stop_sleep_seconds: Some(5),
            ..Default::default()
        }));
        ms
    };
    assert_ne!(revision(&base, &defaults), revision(&paused, &defaults));
    assert_ne!(revision(&base, &defaults), revision(&graceful, &defaults));
    assert_eq!(
        revision(&base, &defaults),
        revision(&explicit_default, &defaults),
        "the same pod template is the same revision"
    );
}

/// A pod with a migration, a native sidecar, an agent beside the service and the pod
/// settings real services need.
fn complete_pod() -> Microservice {
    let mut ms = checkout();
    ms.spec.pod = Some(
        serde_json::from_value(json!({
            "initContainers": [
                {"name": "migrate", "image": "registry.example/checkout-migrate:1.4.2", "args": ["up"]},
                {"name": "proxy", "image": "registry.example/proxy:2", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "10m"}}}
            ],
            "containers": [{"name": "agent", "image": "registry.example/agent:7",
                            "securityContext": {"runAsUser": 1000, "runAsNonRoot": true}}],
            "imagePullPolicy": "Always",
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["general"]}]}]}}},
            "topologySpreadConstraints": [{"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule"}],
            "priorityClassName": "business-critical",
            "runtimeClassName": "gvisor",
            "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["legacy.internal"]}],
            "shareProcessNamespace": true,
            "automountServiceAccountToken": false
        }))
        .unwrap(),
    );
    ms
}

#[test]
fn a_complete_pod_keeps_every_field_and_gives_extra_containers_the_defaults() {
    let built = deployment(&complete_pod(), Slot::Blue, 3, &Defaults::default());
    let pod = serde_json::to_value(built.spec.unwrap().template.spec.unwrap()).unwrap();
    let restricted = pod["containers"][0]["securityContext"].clone();
    assert_eq!(restricted["allowPrivilegeEscalation"], false);
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
    let init = &pod["initContainers"];
    assert_eq!(init[0]["name"], "migrate");
    assert_eq!(
        init[0]["securityContext"], restricted,
        "the restricted profile"
    );
    assert_eq!(
        init[0]["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    );
    assert_eq!(init[1]["restartPolicy"], "Always", "a native sidecar");
    assert_eq!(
        init[1]["resources"]["requests"]["cpu"], "10m",
        "its own request stays"
    );
    let agent = &pod["containers"][1];
    assert_eq!(agent["name"], "agent");
    assert_eq!(
        agent["securityContext"],
        json!({"runAsUser": 1000, "runAsNonRoot": true})
    );
    let spread = pod["topologySpreadConstraints"].as_array().unwrap();
    assert_eq!(
        spread.len(),
        3,
        "Weir's zone and node spreading, then the spec's"
    );
    assert_eq!(spread[2]["topologyKey"], "rack");
    assert_eq!(pod["priorityClassName"], "business-critical");
    assert_eq!(pod["runtimeClassName"], "gvisor");
    assert_eq!(pod["dnsConfig"]["options"][0]["name"], "ndots");
    assert_eq!(pod["hostAliases"][0]["ip"], "10.0.0.1");
    assert_eq!(pod["shareProcessNamespace"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["key"],
        "pool"
    );
}

#[test]
fn a_spec_spread_constraint_replaces_weirs_of_the_same_key_and_mode() {
    let mut ms = complete_pod();
    ms.spec.pod.as_mut().unwrap().topology_spread_constraints = serde_json::from_value(json!([
        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"},
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}
    ]))
    .unwrap();
    let built = deployment(&ms, Slot::Blue, 3, &Defaults::default());
    let pod = serde_json::to_value(built.spec.unwrap().template.spec.unwrap()).unwrap();
    let keys: Vec<(String, String, i64)> = pod["topologySpreadConstraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap().to_string();
            (
                text("topologyKey"),
                text("whenUnsatisfiable"),
                c["maxSkew"].as_i64().unwrap(),
            )
        })
        .collect();
    let pair = |key: &str, mode: &str, skew| (key.to_string(), mode.to_string(), skew);
    assert_eq!(
        keys,
        [
            pair("topology.kubernetes.io/zone", "ScheduleAnyway", 1),
            pair("kubernetes.io/hostname", "ScheduleAnyway", 2),
            pair("kubernetes.io/hostname", "DoNotSchedule", 1),
        ],
        "one entry per key and mode (the API server refuses two), the spec's winning"
    );
}

#[test]
fn every_pod_field_enters_the_revision() {
    let defaults = Defaults::default();
    let base = revision(&checkout(), &defaults);
    let complete = complete_pod();
    assert_ne!(revision(&complete, &defaults), base);
    let mut migrated = complete.clone();
    migrated.spec.pod.as_mut().unwrap().init_containers[0].image =
        Some("registry.example/checkout-migrate:1.4.3".into());
    assert_ne!(
        revision(&migrated, &defaults),
        revision(&complete, &defaults)
    );
    let mut unmounted = complete.clone();
    unmounted
        .spec
        .pod
        .as_mut()
        .unwrap()
        .automount_service_account_token = Some(true);
    assert_ne!(
        revision(&unmounted, &defaults),
        revision(&complete, &defaults)
    );
}

#[test]
fn a_template_patch_is_applied_last_and_weir_s_labels_win() {
    let mut ms = checkout();
    ms.spec.pod = Some(
        serde_json::from_value(json!({"templatePatch": {
            "metadata": {"labels": {"weir.dev/slot": "green", "team": "payments"},
                         "annotations": {"sidecar.example/inject": "false"}},
            "spec": {"containers": [{"name": "checkout", "env": [{"name": "GOMAXPROCS", "value": "2"}]}],
                     "enableServiceLinks": false}
        }}))
        .unwrap(),
    );
    let built = deployment(&ms, Slot::Blue, 3, &Defaults::default());
    let template = serde_json::to_value(built.spec.unwrap().template).unwrap();
    assert_eq!(template["metadata"]["labels"]["weir.dev/slot"], "blue");
    assert_eq!(template["metadata"]["labels"]["team"], "payments");
    assert_eq!(
        template["metadata"]["annotations"]["sidecar.example/inject"],
        "false"
    );
    let container = &template["spec"]["containers"][0];
    assert_eq!(
        container["env"],
        json!([{"name": "GOMAXPROCS", "value": "2"}])
    );
    assert_eq!(
        container["image"], "registry.example/checkout:1.4.2",
        "merged, not replaced"
    );
    assert_eq!(template["spec"]["enableServiceLinks"], false);
    assert_eq!(
        template_patch_report(&ms).unwrap(),
        "Applied to the pod template: metadata.annotations.sidecar.example/inject, \
         metadata.labels.team, metadata.labels.weir.dev/slot, \
         spec.containers[checkout].env[GOMAXPROCS].value, spec.enableServiceLinks."
    );
    assert_ne!(
        revision(&ms, &Defaults::default()),
        revision(&checkout(), &Defaults::default())
    );
}

#[test]
fn a_template_patch_that_breaks_the_template_is_left_out_and_reported() {
    let mut ms = checkout();
    ms.spec.pod = Some(
        serde_json::from_value(json!({"templatePatch": {"spec": {"containers": "one"}}})).unwrap(),
    );
    let built = deployment(&ms, Slot::Blue, 3, &Defaults::default());
    assert_eq!(
        built,
        deployment(&checkout(), Slot::Blue, 3, &Defaults::default())
    );
    let report = template_patch_report(&ms).unwrap();
    assert!(
        report.starts_with("Not applied: the patched pod template does not read"),
        "{report}"
    );
}

#[test]
fn each_slot_keeps_off_the_nodes_of_the_other_when_versions_are_separated() {
    let mut ms = checkout();
    let affinity = |ms: &Microservice, slot| {
        let built = slot_deployment(ms, slot, 2, &Defaults::default());
        serde_json::to_value(built.spec.unwrap().template.spec.unwrap().affinity).unwrap()
    };
    assert_eq!(
        affinity(&ms, Slot::Blue),
        serde_json::Value::Null,
        "off by default"
    );
    ms.spec.placement =
        Some(serde_json::from_value(json!({"separateVersions": "Preferred"})).unwrap());
    ms.spec.pod = Some(
        serde_json::from_value(json!({"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["web"]}]}]}}}}))
        .unwrap(),
    );
    let blue = affinity(&ms, Slot::Blue);
    assert_eq!(
        blue["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
        json!([{"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "checkout", "weir.dev/slot": "green"}}}}])
    );
    assert!(
        blue["nodeAffinity"].is_object(),
        "the spec's own affinity stays"
    );
    let green = affinity(&ms, Slot::Green);
    assert_eq!(
        green["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["labelSelector"]["matchLabels"]["weir.dev/slot"],
        "blue"
    );
    ms.spec.placement =
        Some(serde_json::from_value(json!({"separateVersions": "Required"})).unwrap());
    let required = affinity(&ms, Slot::Blue);
    assert_eq!(
        required["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
}
