//! One stored object that no longer reads as a Microservice (stored under a looser schema)
//! does not stop the controller from serving every other one.
//!
//! This test loosens the CRD for a moment, so it holds the cluster alone
//! (`support::exclusive`): no other test creates a Microservice meanwhile.

use crate::support;

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use support::microservice::{self as ms_support, microservice, wait_ready};
use support::operator::Operator;
use support::{eventually, in_temp_ns, install_crds, kubectl};
use weir::api::{Microservice, conditions::reason};

const DEADLINE: Duration = Duration::from_secs(90);

async fn try_create_unreadable(client: &Client, ns: &str, name: &str) -> bool {
    let resource = ApiResource::erase::<Microservice>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
        "metadata": {"name": name}, "spec": {"image": 42, "ports": "http"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.is_ok()
}

#[tokio::test]
async fn an_unreadable_microservice_is_reported_and_the_others_are_still_served() {
    let _cluster = support::exclusive().await;
    let client = support::client().await;
    install_crds(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let original = crds.get(Microservice::crd_name()).await.unwrap();

    let outcome = tokio::spawn(in_temp_ns(|client, ns| async move {
        let _operator = Operator::start(&ns, "malformed", &[]).await;
        let api = ms_support::create(&client, &ns, &microservice("good-1", json!({}))).await;
        wait_ready(&api, "good-1", 1, DEADLINE).await;

        // An older, looser schema lets an object in that today's type cannot read: any spec,
        // and none of today's rules about the spec's fields.
        let crd = serde_json::to_value(Microservice::crd()).expect("the CRD");
        let root = "/spec/versions/0/schema/openAPIV3Schema";
        let rules = crd
            .pointer(&format!("{root}/x-kubernetes-validations"))
            .cloned();
        let older: Vec<Value> = rules
            .and_then(|r| r.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !r["rule"].as_str().unwrap_or_default().contains("self.spec"))
            .collect();
        let loose = json!([
            {"op": "replace", "path": format!("{root}/properties/spec"),
             "value": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            {"op": "replace", "path": format!("{root}/x-kubernetes-validations"), "value": older}
        ])
        .to_string();
        kubectl(&[
            "patch",
            "crd",
            Microservice::crd_name(),
            "--type=json",
            "-p",
            &loose,
        ])
        .await;
        eventually(
            DEADLINE,
            "the loose schema to admit a malformed object",
            || {
                let client = client.clone();
                let ns = ns.clone();
                async move {
                    try_create_unreadable(&client, &ns, "broken")
                        .await
                        .then_some(())
                }
            },
        )
        .await;
        restore_crd(&client).await;

        let events = eventually(DEADLINE, "an InvalidSpec warning", || {
            let client = client.clone();
            let ns = ns.clone();
            async move {
                let events = ms_support::events(&client, &ns, "broken").await;
                events
                    .iter()
                    .any(|(t, r, _)| t == "Warning" && r == reason::INVALID_SPEC)
                    .then_some(events)
            }
        })
        .await;
        assert!(
            events
                .iter()
                .any(|(_, _, m)| m.contains("cannot be read as a Microservice")),
            "{events:?}"
        );

        // `kubectl weir list` still lists the others, and names the one it leaves out.
        let listing = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-weir"))
            .args(["list", "-n", &ns])
            .output()
            .await
            .expect("run kubectl-weir");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&listing.stdout),
            String::from_utf8_lossy(&listing.stderr),
        );
        assert!(
            listing.status.success(),
            "kubectl weir list failed: {stdout}{stderr}"
        );
        assert!(stdout.contains("good-1"), "{stdout}");
        assert!(stderr.contains(&format!("{ns}/broken")), "{stderr}");

        // (No status check: with the strict schema back, the API server refuses any status
        // write to this object, as it validates the whole object; the event is the report.)

        // Everything else is still served: a new Microservice and a change to an old one.
        let api2 = ms_support::create(&client, &ns, &microservice("good-2", json!({}))).await;
        wait_ready(&api2, "good-2", 1, DEADLINE).await;
        let generation =
            ms_support::edit_spec(&api, "good-1", json!({"image": "registry.example/app:2"})).await;
        wait_ready(&api, "good-1", generation, DEADLINE).await;
    }))
    .await;

    // Put the schema back whatever happened, then report.
    let current = crds.get(Microservice::crd_name()).await.unwrap();
    if current.spec != original.spec {
        restore_crd(&client).await;
    }
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Replaces the CRD's spec with the generated one (a replace, not an apply: the loosened
/// field belongs to another manager and an apply would keep it).
async fn restore_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut current = crds.get(Microservice::crd_name()).await.unwrap();
    current.spec = Microservice::crd().spec;
    crds.replace(Microservice::crd_name(), &PostParams::default(), &current)
        .await
        .expect("restore the CRD");
    eventually(
        DEADLINE,
        "the strict schema to refuse a malformed object again",
        || {
            let client = client.clone();
            async move {
                let ns = "default";
                let refused = !try_create_unreadable(&client, ns, "schema-probe").await;
                if !refused {
                    let _ =
                        kubectl(&["delete", "ms", "schema-probe", "-n", ns, "--wait=false"]).await;
                }
                refused.then_some(())
            }
        },
    )
    .await;
}
