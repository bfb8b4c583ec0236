//! Publishing events (events.k8s.io/v1), one per distinct message.
//!
//! kube's `Recorder` folds a repeat into the first event as a series (`x2`), but it knows a
//! repeat by object, type, reason and action, without the message: the Deployment created
//! by a release a minute after the Microservice's first children, or the second promote of
//! a release, were folded into the first event and shown with its words (`Created ... (x2)`
//! naming only the first children). Here the message is part of what makes a repeat, as in
//! client-go's recorder; a true repeat still becomes a series.
//!
//! What is remembered of a published event is only what a repeat needs: its name, its count
//! and when it was last seen, under a key that names the object by its uid. A Microservice's
//! creation publishes one event, so at a thousand services the whole event kept for six
//! minutes was a couple of megabytes of the operator's memory at rest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// How long an event is remembered, so that a repeat within it becomes a series.
const REPEAT_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// What makes two events the same: the object (its uid, or its kind and name where it has
/// none), the type, the reason, the action and the message.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    regarding: Regarding,
    type_: &'static str,
    reason: String,
    action: String,
    note: Option<String>,
}

impl Key {
    fn of(event: &Event, regarding: &ObjectReference) -> Self {
        let regarding = match &regarding.uid {
            Some(uid) => Regarding::Uid(uid.clone()),
            None => Regarding::Named([
                regarding.api_version.clone(),
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
            ]),
        };
        Key {
            regarding,
            type_: type_word(event.type_),
            reason: event.reason.clone(),
            action: event.action.clone(),
            note: event.note.clone(),
        }
    }
}

/// An object: its uid is unique across kinds and namespaces.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Regarding {
    Uid(String),
    Named([Option<String>; 4]),
}

/// What a repeat of a published event needs: the event to count on, its count so far, and
/// when it was last seen (a repeat within `REPEAT_WINDOW` of it is counted).
#[derive(Clone, Debug, PartialEq)]
struct Published {
    name: String,
    count: i32,
    last_seen: Timestamp,
}

impl Published {
    fn of(event: &K8sEvent, now: Timestamp) -> Self {
        Published {
            name: event.metadata.name.clone().unwrap_or_default(),
            count: 1,
            last_seen: now,
        }
    }

    /// The same event seen again `now`: its series, one more.
    fn repeated(&self, now: Timestamp) -> Published {
        Published {
            name: self.name.clone(),
            count: self.count + 1,
            last_seen: now,
        }
    }

    /// The merge patch that records this count on the event: its series.
    fn series_patch(&self) -> K8sEvent {
        K8sEvent {
            series: Some(EventSeries {
                count: self.count,
                last_observed_time: MicroTime(self.last_seen),
            }),
            ..Default::default()
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
    recent: Arc<Mutex<HashMap<Key, Published>>>,
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
            forget_before(&mut recent, now);
            recent.get(&key).cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let published = match previous {
            Some(previous) => {
                let repeat = previous.repeated(now);
                let patch = Patch::Merge(repeat.series_patch());
                api.patch(&repeat.name, &PatchParams::default(), &patch)
                    .await?;
                repeat
            }
            None => {
                let first = first(event, regarding, &self.reporter, now);
                api.create(&PostParams::default(), &first).await?;
                Published::of(&first, now)
            }
        };
        self.recent().insert(key, published);
        Ok(())
    }

    /// Forgets the events last seen over `REPEAT_WINDOW` ago, every `period`: publishing
    /// forgets them too, but an operator at rest publishes nothing.
    pub async fn forget_old_every(self, period: std::time::Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            forget_before(&mut self.recent(), Timestamp::now());
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Published>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops what was last seen over `REPEAT_WINDOW` before `now`, and the room it took.
fn forget_before(recent: &mut HashMap<Key, Published>, now: Timestamp) {
    recent.retain(|_, published| published.last_seen + REPEAT_WINDOW > now);
    if recent.len() < recent.capacity() / 4 {
        recent.shrink_to_fit();
    }
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
        let remembered = Published::of(&created, at);
        assert_eq!(Some(&remembered.name), created.metadata.name.as_ref());
        let later = at + SignedDuration::from_secs(30);
        let twice = remembered.repeated(later);
        assert_eq!((twice.count, twice.last_seen), (2, later));
        assert_eq!(twice.name, remembered.name);
        let series = twice.series_patch().series.unwrap();
        assert_eq!((series.count, series.last_observed_time.0), (2, later));
        assert_eq!(twice.repeated(later).count, 3);
    }

    #[test]
    fn events_last_seen_over_the_window_ago_are_forgotten() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut recent = HashMap::new();
        for n in 0..100 {
            let mut regarding = hello();
            regarding.uid = Some(format!("u{n}"));
            let key = Key::of(&event("Created", "Created Service hello"), &regarding);
            let last_seen = at + SignedDuration::from_secs(n);
            let name = format!("hello.{n}");
            recent.insert(
                key,
                Published {
                    name,
                    count: 1,
                    last_seen,
                },
            );
        }
        forget_before(
            &mut recent,
            at + REPEAT_WINDOW + SignedDuration::from_secs(90),
        );
        assert_eq!(recent.len(), 9, "seen in the last 9 seconds of the window");
        let kept_from = at + SignedDuration::from_secs(91);
        assert!(recent.values().all(|p| p.last_seen >= kept_from));
        assert!(recent.capacity() < 100, "the room is given back");
    }
}
