//! The three controllers side by side: for each, the objects that ask it for the same
//! services, what "converged" means for it, how an image is changed, and how many new pods its
//! first canary step runs.
//!
//! Every side runs one Deployment-like workload per service (BENCH_REPLICAS pods of image
//! `registry.example/bench:1`, one port) with a canary policy and no router:
//!   Weir           a Microservice, canary steps without `traffic` (the ratio of ready pods);
//!   Flagger        a Deployment and a Canary with `provider: kubernetes` (Flagger creates the
//!                  Services; this provider only does blue/green: ten iterations);
//!   Argo Rollouts  a Rollout, canary steps without `trafficRouting` (replica ratio), and its
//!                  Service.

use kube::api::ApiResource;
use serde_json::{Value, json};

/// The image every service starts on; a release moves one service to a tag of its own.
pub const IMAGE_REPO: &str = "registry.example/bench";
/// The weights of the canary steps, each followed by a 1 s pause (the release part's steps).
pub const WEIGHTS: [u64; 5] = [20, 40, 60, 80, 100];
/// Flagger's blue/green has no weights: it runs this many analysis iterations instead.
pub const FLAGGER_ITERATIONS: u64 = 10;
/// Flagger's analysis interval: its own default (60 s), which its CRD requires spelled out.
pub const FLAGGER_INTERVAL: &str = "1m";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Weir,
    Flagger,
    ArgoRollouts,
}

/// In the order they run and are shown.
pub const TOOLS: [Tool; 3] = [Tool::Weir, Tool::Flagger, Tool::ArgoRollouts];

impl Tool {
    /// The key of the JSON and of the raw records' directories.
    pub fn key(self) -> &'static str {
        match self {
            Tool::Weir => "weir",
            Tool::Flagger => "flagger",
            Tool::ArgoRollouts => "argo-rollouts",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Tool::Weir => "Weir",
            Tool::Flagger => "Flagger",
            Tool::ArgoRollouts => "Argo Rollouts",
        }
    }

    /// How the controller's requests start their userAgent in the audit log. Flagger and Argo
    /// Rollouts use client-go's default, named after the binary (`flagger`,
    /// `rollouts-controller`); the benchmark's own clients are kube-rs's and kubectl's.
    pub fn user_agent_prefix(self) -> &'static str {
        match self {
            Tool::Weir => "weir/",
            Tool::Flagger => "flagger/",
            Tool::ArgoRollouts => "rollouts-controller/",
        }
    }

    /// What [`Tool::converged`] checks, in words, for the table and the docs.
    pub fn converged_meaning(self) -> &'static str {
        match self {
            Tool::Weir => concat!(
                "Microservice condition Ready=True and ",
                "status.observedGeneration == metadata.generation"
            ),
            Tool::Flagger => concat!(
                "Canary status.phase Initialized (Flagger sets it once the primary ",
                "Deployment is ready and the target scaled to 0)"
            ),
            Tool::ArgoRollouts => concat!(
                "Rollout status.phase Healthy and ",
                "status.observedGeneration == metadata.generation"
            ),
        }
    }

    /// The kind whose status says whether a service converged.
    pub fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Tool::Weir => ("weir.dev", "v1alpha1", "Microservice", "microservices"),
            Tool::Flagger => ("flagger.app", "v1beta1", "Canary", "canaries"),
            Tool::ArgoRollouts => ("argoproj.io", "v1alpha1", "Rollout", "rollouts"),
        };
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: format!("{group}/{version}"),
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    /// Whether the service's object shows it converged (see [`Tool::converged_meaning`]).
    pub fn converged(self, object: &Value) -> bool {
        let status = &object["status"];
        match self {
            Tool::Weir => {
                condition_true(object, "Ready")
                    && same_generation(
                        &status["observedGeneration"],
                        &object["metadata"]["generation"],
                    )
            }
            Tool::Flagger => status["phase"] == "Initialized",
            Tool::ArgoRollouts => {
                status["phase"] == "Healthy"
                    && same_generation(
                        &status["observedGeneration"],
                        &object["metadata"]["generation"],
                    )
            }
        }
    }

    /// The objects of one service, in the order they are applied.
    pub fn objects(self, name: &str, replicas: u64) -> Vec<Value> {
        let image = format!("{IMAGE_REPO}:1");
        match self {
            Tool::Weir => vec![json!({
                "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
                "metadata": {"name": name},
                "spec": {
                    "image": image, "replicas": replicas,
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    "rollout": {"strategy": "Canary", "canary": {"steps": canary_steps()}},
                },
            })],
            Tool::Flagger => vec![
                json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "labels": {"app": name}},
                    "spec": pod_workload(name, replicas, &image),
                }),
                json!({
                    "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                    "metadata": {"name": name},
                    "spec": {
                        "provider": "kubernetes",
                        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "service": {"port": 80, "targetPort": 8080, "portName": "http"},
                        "analysis": {
                            "interval": FLAGGER_INTERVAL,
                            "threshold": 1,
                            "iterations": FLAGGER_ITERATIONS,
                        },
                    },
                }),
            ],
            Tool::ArgoRollouts => {
                let mut spec = pod_workload(name, replicas, &image);
                spec["strategy"] = json!({"canary": {"steps": canary_steps()}});
                vec![
                    json!({
                        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                        "metadata": {"name": name},
                        "spec": spec,
                    }),
                    json!({
                        "apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name},
                        "spec": {
                            "selector": {"app": name},
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                        },
                    }),
                ]
            }
        }
    }

    /// The object a release changes, and the merge patch that moves it to `image`.
    pub fn image_change(self, image: &str) -> (ApiResource, Value) {
        match self {
            Tool::Weir => (self.resource(), json!({"spec": {"image": image}})),
            Tool::Flagger => (
                ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
                json!({"spec": {"template": {"spec": {"containers": [container(image)]}}}}),
            ),
            Tool::ArgoRollouts => (
                self.resource(),
                json!({"spec": {"template": {"spec": {"containers": [container(image)]}}}}),
            ),
        }
    }

    /// Ready pods of the new version the first canary step asks for: the first weight's
    /// share of the replicas, rounded up (Weir and Argo Rollouts both round up, and run at
    /// least one); Flagger's blue/green starts the new version at full size.
    pub fn first_step_pods(self, replicas: u64) -> u64 {
        match self {
            Tool::Weir | Tool::ArgoRollouts => (replicas * WEIGHTS[0]).div_ceil(100).max(1),
            Tool::Flagger => replicas,
        }
    }

    /// The release each side runs, in words: where the models differ.
    pub fn release_model(self) -> String {
        let weights: Vec<String> = WEIGHTS.iter().map(|w| w.to_string()).collect();
        match self {
            Tool::Weir | Tool::ArgoRollouts => format!(
                "canary by replica ratio: setWeight {}, each followed by pause 1s",
                weights.join(", ")
            ),
            Tool::Flagger => format!(
                "blue/green (provider kubernetes): {FLAGGER_ITERATIONS} iterations \
                 every {FLAGGER_INTERVAL}, then promotion"
            ),
        }
    }
}

/// Ten steps: five weights, each followed by a 1 s pause.
fn canary_steps() -> Vec<Value> {
    WEIGHTS
        .iter()
        .flat_map(|w| {
            [
                json!({"setWeight": w}),
                json!({"pause": {"duration": "1s"}}),
            ]
        })
        .collect()
}

fn container(image: &str) -> Value {
    json!({"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 8080}]})
}

/// The replicas, selector and pod template of a Deployment or a Rollout.
fn pod_workload(name: &str, replicas: u64, image: &str) -> Value {
    json!({
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [container(image)]},
        },
    })
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// Whether a status's observedGeneration is the object's generation. Argo Rollouts writes it
/// as a string ("3"), Weir as a number.
fn same_generation(observed: &Value, generation: &Value) -> bool {
    let observed = match observed {
        Value::String(text) => text.parse::<i64>().ok(),
        other => other.as_i64(),
    };
    observed.is_some() && observed == generation.as_i64()
}
