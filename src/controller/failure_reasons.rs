//! Why a release failed, in words: when an abort begins, before the candidate scales down,
//! Weir lists the candidate's pods (one read, only then) and adds what they show to the
//! abort's message, its events and the status (`crate::release::pod_failures`).

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::context::Context;
use super::decide::Plan;
use super::observe::Observation;
use crate::build::labels::{selector_string, slot_selector};
use crate::release::{other, pod_failures};

/// Adds the candidate's pod states to an abort that begins with this decision.
pub async fn explain(observation: &Observation, plan: &mut Plan, ctx: &Context) {
    if !ctx.pod_failure_reasons || !abort_begins(observation, plan) {
        return;
    }
    let decision = &mut plan.decision;
    let candidate = other(decision.fields.active_slot);
    let selector = selector_string(&slot_selector(&observation.name, candidate));
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &observation.namespace);
    let listed = pods.list(&ListParams::default().labels(&selector)).await;
    let pods = match listed {
        Ok(list) => list.items,
        Err(error) => {
            tracing::warn!(%error, name = %observation.name, "cannot list the candidate's pods; the abort says nothing of them");
            return;
        }
    };
    let Some(sentence) = pod_failures::sentence(&pod_failures::reasons(&pods)) else {
        return;
    };
    let add = |message: &mut String| {
        message.push(' ');
        message.push_str(&sentence);
    };
    if let Some(returning) = decision
        .fields
        .release
        .as_mut()
        .and_then(|r| r.returning.as_mut())
    {
        add(&mut returning.message);
    }
    if let Some((_, message)) = decision.abort.as_mut() {
        add(message);
    }
    for note in decision.notes.iter_mut().filter(|n| n.warning) {
        add(&mut note.message);
    }
}

/// True when this decision starts returning traffic after an abort (or ends a release as
/// aborted in one go): the candidate's pods are still there to read.
fn abort_begins(observation: &Observation, plan: &Plan) -> bool {
    let decision = &plan.decision;
    let was_returning = observation
        .ms
        .status
        .as_ref()
        .and_then(|s| s.release.as_ref())
        .is_some_and(|r| r.returning.is_some());
    let aborting = match &decision.fields.release {
        Some(release) => release.returning.as_ref().is_some_and(|r| r.abort),
        None => decision.abort.is_some(),
    };
    aborting && !was_returning
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Microservice, Release};
    use crate::release::{Decision, ReleaseFields};
    use serde_json::json;

    fn release(returning: Option<bool>) -> Release {
        serde_json::from_value(json!({
            "revision": "r2", "stepIndex": 0, "stepCount": 2, "weight": 0, "weightVerified": false,
            "stepStartedAt": "2026-01-01T00:00:00Z",
            "returning": returning.map(|abort| json!({"reason": "AnalysisFailed", "message": "m", "abort": abort})),
        }))
        .unwrap()
    }

    fn observing(before: Option<Release>) -> Observation {
        let mut ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "shop", "namespace": "ns", "uid": "u1"},
            "spec": {"image": "x:2"},
        }))
        .unwrap();
        ms.status = Some(crate::api::MicroserviceStatus {
            release: before,
            ..Default::default()
        });
        Observation::bare(ms, "r2", "2026-01-01T00:00:00Z".parse().unwrap())
    }

    fn deciding(after: Option<Release>, abort: bool) -> Plan {
        let mut decision = Decision::at_rest(ReleaseFields {
            release: after,
            ..Default::default()
        });
        decision.abort = abort.then(|| ("Aborted".to_string(), "m".to_string()));
        Plan {
            decision,
            takeover: None,
        }
    }

    #[test]
    fn the_pods_are_read_once_when_an_abort_begins() {
        let running = Some(release(None));
        let aborting = Some(release(Some(true)));
        assert!(abort_begins(
            &observing(running.clone()),
            &deciding(aborting.clone(), false)
        ));
        assert!(
            abort_begins(&observing(running.clone()), &deciding(None, true)),
            "begun and ended at once"
        );
        assert!(
            !abort_begins(&observing(aborting.clone()), &deciding(aborting, false)),
            "read already"
        );
        assert!(
            !abort_begins(
                &observing(running.clone()),
                &deciding(Some(release(Some(false))), false)
            ),
            "a restart"
        );
        assert!(!abort_begins(
            &observing(running.clone()),
            &deciding(running, false)
        ));
    }
}
