//! Events: one per real transition, none for a steady object.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::apply::Applied;
use super::context::Context;
use super::status;
use crate::api::{Microservice, MicroserviceStatus, Phase, conditions::reason};
use crate::release::Note;

/// The children created and deleted in one reconcile, in one event each, so that creating
/// a Microservice costs one event write, not one per child.
pub async fn announce(ctx: &Context, ms: &Microservice, applied: &Applied) {
    if !applied.created.is_empty() {
        let note = format!("Created {}", applied.created.join(", "));
        publish(ctx, ms, event(EventType::Normal, "Created", "Create", note)).await;
    }
    if !applied.deleted.is_empty() {
        let note = format!("Deleted {}: no longer wanted", applied.deleted.join(", "));
        publish(ctx, ms, event(EventType::Normal, "Deleted", "Delete", note)).await;
    }
}

/// The release's notable moments.
pub async fn publish_notes(ctx: &Context, ms: &Microservice, notes: &[Note]) {
    for note in notes {
        let type_ = if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let release = event(type_, note.reason, "Release", note.message.clone());
        publish(ctx, ms, release).await;
    }
}

/// Events for real transitions only, so a steady object produces none.
pub async fn publish_transition_events(
    ms: &Microservice,
    old: &MicroserviceStatus,
    new: &MicroserviceStatus,
    ctx: &Context,
) {
    let ready_reason = |s: &MicroserviceStatus| status::ready_reason(s).map(str::to_string);
    let message = new.message.clone().unwrap_or_default();
    match new.phase {
        Some(Phase::Degraded) if ready_reason(old) != ready_reason(new) => {
            let reason = ready_reason(new).unwrap_or_default();
            publish(
                ctx,
                ms,
                event(EventType::Warning, &reason, "Reconcile", message.clone()),
            )
            .await;
        }
        // A new Microservice's first rollout is told by its Created event.
        Some(Phase::Healthy)
            if old.phase != Some(Phase::Healthy) && ms.metadata.generation > Some(1) =>
        {
            let note = format!("Rolled out {}", ms.spec.image);
            publish(
                ctx,
                ms,
                event(EventType::Normal, reason::ROLLED_OUT, "Rollout", note),
            )
            .await;
        }
        _ => {}
    }
    let contested = |s: &MicroserviceStatus| {
        s.message
            .as_deref()
            .is_some_and(|m| m.contains(status::REPLICAS_CONTESTED_TEXT))
    };
    if contested(new) && !contested(old) {
        let warning = event(
            EventType::Warning,
            reason::REPLICAS_CONTESTED,
            "Reconcile",
            message,
        );
        publish(ctx, ms, warning).await;
    }
}

pub fn event(type_: EventType, reason: &str, action: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    }
}

/// Publishes an event about `ms`; a failure to publish is logged, never fatal.
pub async fn publish(ctx: &Context, ms: &Microservice, event: Event) {
    if let Err(error) = ctx.recorder.publish(&event, &ms.object_ref(&())).await {
        tracing::warn!(%error, "could not publish event");
    }
}

/// Publishes an event about an object that is not (or not readably) a Microservice.
pub async fn publish_about(ctx: &Context, reference: &ObjectReference, event: Event) {
    if let Err(error) = ctx.recorder.publish(&event, reference).await {
        tracing::warn!(%error, "could not publish event");
    }
}
