//! Moving in and out. `kubectl weir migrate`: a Microservice written from a running
//! Deployment, its Service, autoscaler and disruption budget, that the API server accepts as
//! it is, with what it could not carry over on stderr. Leaving: `--cascade=orphan` keeps
//! what Weir built running, unowned.

use crate::support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::with_temp_ns;
use weir::api::Microservice;

async fn apply<K>(client: &kube::Client, ns: &str, object: Value)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let object: K = serde_json::from_value(object).expect("an object");
    let name = object.meta().name.clone().expect("a name");
    Api::<K>::namespaced(client.clone(), ns)
        .patch(&name, &PatchParams::apply("team"), &Patch::Apply(&object))
        .await
        .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

#[tokio::test]
async fn migrate_writes_a_microservice_the_api_server_accepts_from_a_running_deployment() {
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        let labels = json!({"app": "checkout"});
        apply::<Deployment>(&client, &ns, json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout"},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                "strategy": {"rollingUpdate": {"maxSurge": 1}},
                "template": {"metadata": {"labels": {"app": "checkout", "team": "payments"}},
                    "spec": {
                        "dnsPolicy": "None",
                        "dnsConfig": {"nameservers": ["10.0.0.10"]},
                        "initContainers": [{"name": "migrate", "image": "registry.example/migrate:1"}],
                        "containers": [
                            {"name": "checkout", "image": "registry.example/checkout:1.4.2",
                             "ports": [{"name": "http", "containerPort": 8080}],
                             "env": [{"name": "MODE", "value": "live"}],
                             "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}},
                             "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                             "stdin": true},
                            {"name": "agent", "image": "registry.example/agent:7"}
                        ]}}}
        })).await;
        apply::<Service>(&client, &ns, json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "checkout"},
            "spec": {"selector": labels, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}
        })).await;
        apply::<HorizontalPodAutoscaler>(&client, &ns, json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "checkout"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
                     "minReplicas": 3, "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                  "target": {"type": "Utilization", "averageUtilization": 70}}}]}
        })).await;
        apply::<PodDisruptionBudget>(&client, &ns, json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "checkout"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
        })).await;

        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-weir"))
            .args(["migrate", "deployment/checkout", "-n", &ns])
            .output()
            .await
            .expect("run kubectl-weir");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{stdout}{stderr}");
        let written: Value = serde_yaml::from_str(&stdout).expect("YAML");
        let spec = &written["spec"];
        assert_eq!(spec["image"], "registry.example/checkout:1.4.2");
        assert_eq!(spec["ports"], json!([{"name": "http", "port": 80, "targetPort": 8080}]));
        assert_eq!(spec["autoscaling"], json!({"minReplicas": 3, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70}));
        assert!(spec.get("replicas").is_none(), "the autoscaler owns the count");
        assert_eq!(spec["disruption"], json!({"maxUnavailable": 1}));
        assert_eq!(spec["rollout"], json!({"maxSurge": 1}));
        assert_eq!(spec["env"], json!([{"name": "MODE", "value": "live"}]));
        assert_eq!(spec["probes"]["readiness"]["httpGet"]["path"], "/ready");
        assert_eq!(spec["pod"]["initContainers"][0]["name"], "migrate");
        assert_eq!(spec["pod"]["containers"][0]["name"], "agent");
        assert_eq!(spec["pod"]["labels"], json!({"team": "payments"}));
        assert_eq!(spec["pod"]["dnsConfig"]["nameservers"], json!(["10.0.0.10"]));
        let reported = [
            "container checkout: stdin",
            "pod dnsPolicy",
            "the selector",
            "service port name \"web\"",
        ];
        for reported in reported {
            assert!(stderr.contains(reported), "{reported:?} in {stderr}");
        }

        // The API server accepts it as written, and Weir reads it.
        let microservice: Microservice = serde_json::from_value(written.clone()).expect("Weir reads it");
        let api: Api<Microservice> = Api::namespaced(client.clone(), &ns);
        let dry_run = PostParams { dry_run: true, ..Default::default() };
        api.create(&dry_run, &microservice).await.expect("the API server accepts it");
    })
    .await;
}

#[tokio::test]
async fn deleting_a_microservice_with_cascade_orphan_leaves_its_service_running_unowned() {
    with_temp_ns(|client, ns| async move {
        let h = support::release::Harness::start(&client, &ns, "leaving", json!({})).await;
        h.wait_ready_pods(weir::api::Slot::Blue, 3).await;
        let deployment = h.slot(weir::api::Slot::Blue);
        let orphan = kube::api::DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
            ..Default::default()
        };
        h.api
            .delete("leaving", &orphan)
            .await
            .expect("delete with orphan");
        support::eventually(
            support::release::DEADLINE,
            "the Microservice gone",
            || async {
                h.api
                    .get_opt("leaving")
                    .await
                    .ok()
                    .flatten()
                    .is_none()
                    .then_some(())
            },
        )
        .await;
        let unowned = |owners: &Option<Vec<_>>| owners.as_ref().is_none_or(Vec::is_empty);
        let kept = support::eventually(
            support::release::DEADLINE,
            "owner references removed",
            || async {
                let d = h.deployments().get_opt(&deployment).await.ok().flatten()?;
                let s = h.services().get_opt("leaving").await.ok().flatten()?;
                (unowned(&d.metadata.owner_references) && unowned(&s.metadata.owner_references))
                    .then_some(d)
            },
        )
        .await;
        assert_eq!(
            kept.spec.and_then(|s| s.replicas),
            Some(3),
            "still running at its size"
        );
        h.wait_ready_pods(weir::api::Slot::Blue, 3).await;
    })
    .await;
}
