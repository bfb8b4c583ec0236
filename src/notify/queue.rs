//! The notification queue in status, pure: which moments a decision makes, which of them a
//! Microservice's subscriptions queue, and what a delivery (or a failed one) does to the queue.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{
    Microservice, MicroserviceStatus, Moment, Notification, NotificationsStatus, Phase,
    conditions::reason,
};
use crate::release::Decision;

/// Delivered ids kept in status, so a moment already delivered is never queued again.
const KEPT_DELIVERED: usize = 16;
/// Notifications waiting at most; a newer one pushes the oldest out (with a warning event).
pub const MAX_PENDING: usize = 32;
/// Tries before a notification is given up (with a warning event): about an hour at the
/// longest back-off.
pub const MAX_ATTEMPTS: i32 = 16;
const LONGEST_BACKOFF: Duration = Duration::from_secs(300);

/// The moments a decision makes, with the words for each. `old` and `new` are the status
/// before and after it.
pub fn moments(
    decision: &Decision,
    old: &MicroserviceStatus,
    new: &MicroserviceStatus,
) -> Vec<(Moment, String)> {
    let mut moments = Vec::new();
    for note in &decision.notes {
        match note.reason {
            reason::RELEASE_STARTED => moments.push((Moment::Started, note.message.clone())),
            reason::PROMOTED => moments.push((Moment::Promoted, note.message.clone())),
            _ => {}
        }
    }
    if let Some((why, message)) = &decision.abort {
        moments.push((Moment::Aborted, message.clone()));
        if why == reason::ANALYSIS_FAILED {
            moments.push((Moment::AnalysisFailed, message.clone()));
        }
    }
    if new.phase == Some(Phase::Paused) && old.phase != Some(Phase::Paused) {
        let message = new.message.clone().unwrap_or_default();
        moments.push((Moment::Paused, message));
    }
    moments
}

/// The queue after `moments` of `revision`, at `now`: each moment is queued once for every
/// sink subscribed to it.
pub fn enqueue(
    queue: Option<NotificationsStatus>,
    ms: &Microservice,
    revision: &str,
    moments: &[(Moment, String)],
    now: Timestamp,
) -> Option<NotificationsStatus> {
    let subscriptions = ms.spec.rollout.as_ref().map_or(&[][..], |r| &r.notify[..]);
    let uid = ms.metadata.uid.as_deref().unwrap_or_default();
    let mut queue = queue.unwrap_or_default();
    for (moment, message) in moments {
        for subscription in subscriptions.iter().filter(|s| s.moments.contains(moment)) {
            let id = format!(
                "{uid}/{revision}/{}/{}/{}",
                moment.as_str(),
                now.as_millisecond(),
                subscription.sink
            );
            let known = queue.pending.iter().any(|n| n.id == id) || queue.delivered.contains(&id);
            if !known {
                queue.pending.push(Notification {
                    id,
                    sink: subscription.sink.clone(),
                    moment: *moment,
                    revision: revision.to_string(),
                    message: message.clone(),
                    at: Time(now),
                    attempts: 0,
                    next_attempt_at: None,
                    last_error: None,
                });
            }
        }
    }
    let excess = queue.pending.len().saturating_sub(MAX_PENDING);
    queue.pending.drain(..excess);
    non_empty(queue)
}

/// The queue as status keeps it: absent when it holds nothing.
pub fn non_empty(queue: NotificationsStatus) -> Option<NotificationsStatus> {
    (queue != NotificationsStatus::default()).then_some(queue)
}

/// The queue without notification `id`, delivered or not.
pub fn dropped(queue: &NotificationsStatus, id: &str) -> NotificationsStatus {
    let mut queue = queue.clone();
    queue.pending.retain(|n| n.id != id);
    queue
}

/// The first notification when it is due at `now`.
pub fn due(queue: Option<&NotificationsStatus>, now: Timestamp) -> Option<&Notification> {
    let first = queue?.pending.first()?;
    let ready = first.next_attempt_at.as_ref().is_none_or(|at| at.0 <= now);
    ready.then_some(first)
}

/// When the first notification falls due, if one waits.
pub fn next_due(queue: Option<&NotificationsStatus>, now: Timestamp) -> Option<Duration> {
    let first = queue?.pending.first()?;
    let at = first.next_attempt_at.as_ref().map_or(now, |t| t.0);
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// The queue once notification `id` was delivered: gone from the queue, its id kept.
pub fn delivered(queue: &NotificationsStatus, id: &str) -> NotificationsStatus {
    let mut queue = dropped(queue, id);
    queue.delivered.push(id.to_string());
    let excess = queue.delivered.len().saturating_sub(KEPT_DELIVERED);
    queue.delivered.drain(..excess);
    queue
}

/// The queue once delivering `id` failed at `now` with `error`: tried again after a back-off
/// that doubles from a second up to five minutes, and given up after [`MAX_ATTEMPTS`]
/// (the second value is true then).
pub fn failed(
    queue: &NotificationsStatus,
    id: &str,
    error: &str,
    now: Timestamp,
) -> (NotificationsStatus, bool) {
    let mut queue = queue.clone();
    let mut given_up = false;
    if let Some(n) = queue.pending.iter_mut().find(|n| n.id == id) {
        n.attempts += 1;
        n.last_error = Some(error.to_string());
        let backoff = Duration::from_secs(1u64 << n.attempts.clamp(0, 16)).min(LONGEST_BACKOFF);
        let later = now
            .checked_add(SignedDuration::try_from(backoff).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        n.next_attempt_at = Some(Time(later));
        given_up = n.attempts >= MAX_ATTEMPTS;
    }
    if given_up {
        queue = dropped(&queue, id);
    }
    (queue, given_up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subscribed() -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1"},
            "spec": {"image": "a:1", "rollout": {"strategy": "Canary", "notify": [
                {"moments": ["Started", "Aborted"], "sink": "team"},
                {"moments": ["Aborted"], "sink": "oncall"}
            ]}}
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn each_moment_is_queued_once_for_each_sink_subscribed_to_it() {
        let ms = subscribed();
        let moments = [
            (Moment::Started, "Releasing a:2".to_string()),
            (
                Moment::Aborted,
                "error-rate = 0.5, above the maximum 0.05".to_string(),
            ),
            (Moment::Promoted, "not subscribed".to_string()),
        ];
        let queue = enqueue(None, &ms, "r2", &moments, now()).unwrap();
        let sent: Vec<_> = queue
            .pending
            .iter()
            .map(|n| (n.moment, n.sink.as_str()))
            .collect();
        assert_eq!(
            sent,
            [
                (Moment::Started, "team"),
                (Moment::Aborted, "team"),
                (Moment::Aborted, "oncall")
            ]
        );
        let again = enqueue(Some(queue.clone()), &ms, "r2", &moments, now()).unwrap();
        assert_eq!(
            again, queue,
            "the same moment at the same time is queued once"
        );
    }

    #[test]
    fn a_delivery_removes_the_first_and_keeps_its_id_so_it_is_never_queued_again() {
        let ms = subscribed();
        let moments = [(Moment::Started, "Releasing".to_string())];
        let queue = enqueue(None, &ms, "r2", &moments, now()).unwrap();
        let first = due(Some(&queue), now()).unwrap().id.clone();
        let queue = delivered(&queue, &first);
        assert!(queue.pending.is_empty());
        assert_eq!(queue.delivered, [first]);
        let again = enqueue(Some(queue.clone()), &ms, "r2", &moments, now()).unwrap();
        assert!(again.pending.is_empty());
        assert_eq!(next_due(Some(&again), now()), None);
    }

    #[test]
    fn a_failed_delivery_backs_off_and_gives_up_in_the_end() {
        let ms = subscribed();
        let moments = [(Moment::Started, "Releasing".to_string())];
        let mut queue = enqueue(None, &ms, "r2", &moments, now()).unwrap();
        let id = queue.pending[0].id.clone();
        let (after_one, given_up) = failed(&queue, &id, "503 Service Unavailable", now());
        assert!(!given_up);
        assert!(
            due(Some(&after_one), now()).is_none(),
            "not due during its back-off"
        );
        assert_eq!(
            next_due(Some(&after_one), now()),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            after_one.pending[0].last_error.as_deref(),
            Some("503 Service Unavailable")
        );
        for _ in 0..MAX_ATTEMPTS {
            let (next, given_up) = failed(&queue, &id, "503", now());
            queue = next;
            if given_up {
                assert!(queue.pending.is_empty());
                return;
            }
            assert!(next_due(Some(&queue), now()).unwrap() <= LONGEST_BACKOFF);
        }
        panic!("never given up");
    }

    #[test]
    fn a_release_that_starts_waiting_for_a_person_is_told_once() {
        let decision = quiet_decision();
        let progressing = MicroserviceStatus {
            phase: Some(Phase::Progressing),
            ..Default::default()
        };
        let paused = MicroserviceStatus {
            phase: Some(Phase::Paused),
            message: Some("Waiting at step 2 of 3 for a promote.".into()),
            ..Default::default()
        };
        let told = moments(&decision, &progressing, &paused);
        assert_eq!(
            told,
            [(
                Moment::Paused,
                "Waiting at step 2 of 3 for a promote.".into()
            )]
        );
        assert!(
            moments(&decision, &paused, &paused).is_empty(),
            "still paused: nothing new"
        );
    }

    fn quiet_decision() -> Decision {
        Decision::at_rest(Default::default())
    }

    #[test]
    fn an_abort_by_analysis_is_told_as_both_moments_with_the_metric() {
        let mut decision = quiet_decision();
        decision.abort = Some((
            "AnalysisFailed".into(),
            "error-rate = 0.5, above the maximum 0.05".into(),
        ));
        let old = MicroserviceStatus::default();
        let told = moments(&decision, &old, &old);
        assert_eq!(told.len(), 2);
        assert_eq!(told[0].0, Moment::Aborted);
        assert_eq!(
            told[1],
            (
                Moment::AnalysisFailed,
                "error-rate = 0.5, above the maximum 0.05".into()
            )
        );
    }
}
