//! `canary.stableScale: Dynamic`: the stable slot at its share, and an abort or a lower step
//! that grows it before traffic moves back.

use serde_json::json;

use super::tests::Cluster;
use super::*;

fn canary(steps: serde_json::Value) -> serde_json::Value {
    json!({
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}},
        "canary": {"steps": steps, "scaleDownDelaySeconds": 30, "stableScale": "Dynamic"}
    })
}

#[test]
fn a_dynamic_stable_slot_shrinks_to_its_share_and_an_abort_grows_it_before_moving_traffic() {
    let mut cluster = Cluster::running(canary(json!([{"setWeight": 75}, {"pause": {}}])));
    cluster.release_revision("r2");
    cluster.run(5);
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 75);
    assert_eq!(cluster.blue.replicas, 1, "the stable slot keeps its 25%");
    // The stable slot's new pods take time: traffic stays where they cannot take it yet.
    cluster.pods_ready = false;
    cluster.step(Some(ManualAction::Abort));
    cluster.run(5);
    assert_eq!(cluster.blue.replicas, 4, "raised first");
    assert_eq!(
        cluster.live.as_ref().unwrap().split.weight,
        75,
        "not yet back"
    );
    assert_eq!(
        cluster.green.replicas, 3,
        "the candidate keeps its pods meanwhile"
    );
    cluster.blue.ready = 3;
    cluster.step(None);
    assert_eq!(
        cluster.live.as_ref().unwrap().split.weight,
        25,
        "back as far as 3 pods carry"
    );
    cluster.blue.ready = 4;
    cluster.run(3);
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 0);
    assert_eq!(cluster.green.replicas, 0);
    assert_eq!(cluster.status().aborted_revision.as_deref(), Some("r2"));
}

#[test]
fn a_dynamic_stable_slot_promotes_like_any_other() {
    let mut cluster = Cluster::running(canary(json!([{"setWeight": 25}, {"setWeight": 50}])));
    cluster.release_revision("r2");
    let mut stable_sizes = vec![];
    for _ in 0..12 {
        cluster.step(None);
        if cluster.status().release.is_some() {
            stable_sizes.push(cluster.blue.replicas);
        }
    }
    stable_sizes.dedup();
    assert_eq!(
        stable_sizes,
        [4, 3, 2],
        "shrinks as each weight is confirmed"
    );
    assert_eq!(cluster.status().stable_revision.as_deref(), Some("r2"));
    assert_eq!(
        cluster.blue.replicas, 2,
        "the old slot keeps its last share, warm"
    );
}

#[test]
fn a_step_that_lowers_the_weight_grows_a_dynamic_stable_slot_before_moving_traffic() {
    let mut cluster = Cluster::running(canary(json!([
        {"setWeight": 75}, {"pause": {}}, {"setWeight": 25}, {"pause": {}}
    ])));
    cluster.release_revision("r2");
    cluster.run(5);
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 75);
    assert_eq!(cluster.blue.replicas, 1, "the stable slot at its 25%");
    cluster.pods_ready = false;
    cluster.step(Some(ManualAction::Promote));
    cluster.run(5);
    assert_eq!(cluster.blue.replicas, 3, "raised for the 75% it is to take");
    assert_eq!(
        cluster.live.as_ref().unwrap().split.weight,
        75,
        "its pods are not ready: traffic stays"
    );
    cluster.blue.ready = 2;
    cluster.step(None);
    assert_eq!(
        cluster.live.as_ref().unwrap().split.weight,
        50,
        "as far as 2 pods carry"
    );
    cluster.blue.ready = 3;
    cluster.run(3);
    assert_eq!(cluster.live.as_ref().unwrap().split.weight, 25);
}
