//! Publishing events (events.k8s.io/v1), one per distinct message.
//!
//! kube's `Recorder` folds a repeat into the first event as a series (`x2`), but it knows a
//! repeat by object, type, reason and action, without the message: the Deployment created
//! by a release a minute after the Microservice's first children, or the second promote of
//! a release, were folded into the first event and shown with its words (`Created ... (x2)`
//! naming only the first children). Here the message is part of what makes a repeat, as in
//! client-go's recorder; a true repeat still becomes a series.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Client, ResourceExt};

/// How long an event is remembered, so that a repeat within it becomes a series.
const REPEAT_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// What makes two events the same: the object, the type, the reason, the action and the
/// message.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    regarding: [Option<String>; 5],
    type_: &'static str,
    reason: String,
    action: String,
    note: Option<String>,
}

impl Key {
    fn of(event: &Event, regarding: &ObjectReference) -> Self {
        Key {
            regarding: [
                regarding.api_version.clone(),
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ],
            type_: type_word(event.type_),
            reason: event.reason.clone(),
            action: event.action.clone(),
            note: event.note.clone(),
        }
    }
}

fn type_word(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// Publishes events and remembers them for `REPEAT_WINDOW`.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    recent: Arc<Mutex<HashMap<Key, K8sEvent>>>,
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Recorder {
            client,
            reporter,
            recent: Arc::default(),
        }
    }

    /// Creates the event, or counts a repeat of one published within `REPEAT_WINDOW`.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key::of(event, regarding);
        let previous = {
            let mut recent = self.recent();
            recent.retain(|_, e| last_seen(e).is_some_and(|at| at + REPEAT_WINDOW > now));
            recent.get(&key).cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let published = match previous {
            Some(previous) => {
                let repeat = repeated(previous, now);
                let name = repeat.name_any();
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&repeat))
                    .await?;
                repeat
            }
            None => {
                let first = first(event, regarding, &self.reporter, now);
                api.create(&PostParams::default(), &first).await?;
                first
            }
        };
        self.recent().insert(key, published);
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, HashMap<Key, K8sEvent>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// When an event was last seen: its series' last observation, or its time.
fn last_seen(event: &K8sEvent) -> Option<Timestamp> {
    match &event.series {
        Some(series) => Some(series.last_observed_time.0),
        None => event.event_time.as_ref().map(|t| t.0),
    }
}

/// A repeat of `previous` observed `now`: a series, counted.
fn repeated(mut previous: K8sEvent, now: Timestamp) -> K8sEvent {
    let count = previous.series.as_ref().map_or(2, |s| s.count + 1);
    previous.series = Some(EventSeries {
        count,
        last_observed_time: MicroTime(now),
    });
    previous
}

/// The first occurrence of `event` about `regarding`.
fn first(
    event: &Event,
    regarding: &ObjectReference,
    reporter: &Reporter,
    now: Timestamp,
) -> K8sEvent {
    let object = regarding.name.as_deref().unwrap_or(&reporter.controller);
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..Default::default()
        },
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.clone(),
        type_: Some(type_word(event.type_).to_string()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        series: None,
        deprecated_count: None,
        deprecated_first_timestamp: None,
        deprecated_last_timestamp: None,
        deprecated_source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Create".into(),
            secondary: None,
        }
    }

    fn hello() -> ObjectReference {
        ObjectReference {
            api_version: Some("weir.dev/v1alpha1".into()),
            kind: Some("Microservice".into()),
            name: Some("hello".into()),
            namespace: Some("qs".into()),
            uid: Some("u1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_same_words_about_the_same_object_are_a_repeat() {
        let first = Key::of(&event("Created", "Created Deployment hello-blue"), &hello());
        let again = Key::of(&event("Created", "Created Deployment hello-blue"), &hello());
        let later = Key::of(
            &event("Created", "Created Deployment hello-green"),
            &hello(),
        );
        assert_eq!(first, again);
        assert_ne!(first, later, "another creation is an event of its own");
        let mut other = hello();
        other.uid = Some("u2".into());
        assert_ne!(
            first,
            Key::of(&event("Created", "Created Deployment hello-blue"), &other)
        );
    }

    #[test]
    fn a_repeat_is_counted_on_the_first_event_and_keeps_its_words() {
        let reporter = Reporter {
            controller: "weir".into(),
            instance: Some("weir-1".into()),
        };
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let created = first(
            &event("Created", "Created Service hello"),
            &hello(),
            &reporter,
            at,
        );
        assert_eq!(created.note.as_deref(), Some("Created Service hello"));
        assert_eq!(created.reporting_instance.as_deref(), Some("weir-1"));
        assert_eq!(last_seen(&created), Some(at));
        let later = at + SignedDuration::from_secs(30);
        let twice = repeated(created.clone(), later);
        assert_eq!(twice.series.as_ref().map(|s| s.count), Some(2));
        assert_eq!(last_seen(&twice), Some(later));
        assert_eq!(twice.metadata.name, created.metadata.name);
        let thrice = repeated(twice, later);
        assert_eq!(thrice.series.map(|s| s.count), Some(3));
    }
}
