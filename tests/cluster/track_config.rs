//! Configuration released like code (`rollout.trackConfig`): a ConfigMap edit is a new
//! revision released step by step; the candidate's pods mount a snapshot of the new content
//! while the stable pods keep theirs; an abort leaves users on the old content; deleting the
//! Microservice leaves no snapshot behind.

use crate::support;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use support::release::{DEADLINE, Harness};
use support::{eventually, with_temp_ns};
use weir::api::{Phase, Slot};
use weir::build::config::SNAPSHOT_OF_LABEL;

async fn set_config(client: &kube::Client, ns: &str, mode: &str) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-config"},
        "data": {"mode": mode}
    }))
    .expect("a ConfigMap");
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .patch(
            "shop-config",
            &PatchParams::apply("team"),
            &Patch::Apply(&cm),
        )
        .await
        .expect("apply the ConfigMap");
}

/// The ConfigMaps a Deployment's pod template mounts.
fn mounted(deployment: &Deployment) -> BTreeSet<String> {
    let template =
        serde_json::to_value(&deployment.spec.as_ref().expect("a spec").template).expect("json");
    weir::build::config::references_in(&template, weir::build::config::ConfigKind::ConfigMap)
}

async fn snapshots(client: &kube::Client, ns: &str) -> Vec<ConfigMap> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(SNAPSHOT_OF_LABEL))
        .await
        .expect("list snapshots")
        .items
}

#[tokio::test]
async fn a_config_map_edit_is_released_like_code_and_an_abort_keeps_the_old_content() {
    with_temp_ns(|client, ns| async move {
        set_config(&client, &ns, "one").await;
        let spec = json!({
            "pod": {"volumes": [{"name": "conf", "configMap": {"name": "shop-config"}}],
                    "volumeMounts": [{"name": "conf", "mountPath": "/etc/shop"}]},
            "rollout": {"strategy": "Canary", "trackConfig": {"configMaps": true},
                        "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        });
        let h = Harness::start(&client, &ns, "shop", spec).await;
        let first = h
            .deployments()
            .get(&h.slot(Slot::Blue))
            .await
            .expect("slot blue");
        let old = mounted(&first);
        assert_eq!(old.len(), 1, "{old:?}");
        let old_snapshot = old.iter().next().unwrap().clone();
        assert!(
            old_snapshot.starts_with("shop-shop-config-"),
            "the pods mount a snapshot: {old_snapshot}"
        );
        let taken = snapshots(&client, &ns).await;
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].immutable, Some(true));
        assert_eq!(taken[0].data.as_ref().unwrap()["mode"], "one");
        assert!(
            taken[0]
                .metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.len() == 1)
        );
        let stable = h.status().await.stable_revision.expect("a stable revision");

        // The edit: a release of a new revision, its pods on a snapshot of the new content.
        set_config(&client, &ns, "two").await;
        h.wait_release(&[&stable]).await;
        h.wait_paused_at(1).await;
        let candidate = h
            .deployments()
            .get(&h.slot(Slot::Green))
            .await
            .expect("slot green");
        let new = mounted(&candidate);
        assert_eq!(new.len(), 1);
        assert_ne!(new, old, "the candidate mounts the new content");
        let stable_slot = h
            .deployments()
            .get(&h.slot(Slot::Blue))
            .await
            .expect("slot blue");
        assert_eq!(
            mounted(&stable_slot),
            old,
            "the stable pods keep the old content"
        );
        let pods = h
            .pods()
            .list(&ListParams::default().labels(&h.slot_pods(Slot::Green)))
            .await
            .expect("pods");
        assert!(!pods.items.is_empty());
        for pod in &pods.items {
            let volumes = pod
                .spec
                .as_ref()
                .and_then(|s| s.volumes.clone())
                .unwrap_or_default();
            let mounted: Vec<_> = volumes
                .iter()
                .filter_map(|v| v.config_map.as_ref().map(|c| c.name.clone()))
                .collect();
            assert_eq!(
                mounted,
                new.iter().cloned().collect::<Vec<_>>(),
                "pod {:?}",
                pod.metadata.name
            );
        }
        assert_eq!(
            snapshots(&client, &ns).await.len(),
            2,
            "both contents while both run"
        );

        // An abort: users stay on the old content, and the new snapshot is no longer needed.
        h.act("abort").await;
        h.wait_degraded("Aborted").await;
        let stable_slot = h
            .deployments()
            .get(&h.slot(Slot::Blue))
            .await
            .expect("slot blue");
        assert_eq!(mounted(&stable_slot), old);
        let ms = h.ms().await;
        assert_eq!(
            ms.status.as_ref().and_then(|s| s.stable_revision.clone()),
            Some(stable)
        );
        assert_eq!(
            ms.status.as_ref().and_then(|s| s.phase),
            Some(Phase::Degraded)
        );

        // Deleting the Microservice takes every snapshot with it.
        h.api
            .delete("shop", &DeleteParams::foreground())
            .await
            .expect("delete");
        eventually(DEADLINE, "no snapshot left", || async {
            snapshots(&client, &ns).await.is_empty().then_some(())
        })
        .await;
    })
    .await;
}
