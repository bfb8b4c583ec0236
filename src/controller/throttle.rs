//! A leading-edge throttle in front of the reconcile queue. The first trigger of a quiet
//! Microservice is passed on at once, so a person's change is acted on without waiting;
//! the triggers that follow within the window (the watch events of Weir's own writes, a
//! rollout's burst of Deployment updates) are gathered into one, passed on when the window
//! ends. kube-runtime's debounce delays every trigger, the first included; this one keeps
//! the few writes of a debounce without its wait.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt, stream::Fuse};
use kube::Resource;
use kube::runtime::controller::ReconcileRequest;
use kube::runtime::reflector::ObjectRef;
use tokio::time::{Instant, Sleep};

/// When a key last ran, and the keys held back until their window ends. Pure: the clock is
/// an argument, so the rules are tested without waiting.
#[derive(Debug)]
pub struct Gate<T> {
    window: Duration,
    last_run: HashMap<T, Instant>,
    /// Held keys by the time they are due (with a sequence number, as two may share one).
    due: BTreeMap<(Instant, u64), T>,
    held: HashMap<T, Instant>,
    sequence: u64,
    pruned_at: Option<Instant>,
}

/// Past this many remembered keys, those whose window has ended are forgotten (at most once
/// per window), so the map stays the size of the recently active set.
const PRUNE_ABOVE: usize = 1024;

impl<T: Clone + Eq + Hash> Gate<T> {
    pub fn new(window: Duration) -> Self {
        Gate {
            window,
            last_run: HashMap::new(),
            due: BTreeMap::new(),
            held: HashMap::new(),
            sequence: 0,
            pruned_at: None,
        }
    }

    /// A trigger of `key` at `now`: true when it runs now; false when it is held (or joins
    /// the one already held) until the window after its last run ends.
    pub fn offer(&mut self, key: &T, now: Instant) -> bool {
        if self.held.contains_key(key) {
            return false;
        }
        self.prune(now);
        match self.last_run.get(key) {
            Some(last) if now < *last + self.window => {
                let at = *last + self.window;
                self.sequence += 1;
                self.due.insert((at, self.sequence), key.clone());
                self.held.insert(key.clone(), at);
                false
            }
            _ => {
                self.last_run.insert(key.clone(), now);
                true
            }
        }
    }

    /// The first held key whose time has come at `now`, which runs now.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let entry = self.due.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let key = entry.remove();
        self.held.remove(&key);
        self.last_run.insert(key.clone(), now);
        Some(key)
    }

    /// When the next held key falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.first_key_value().map(|((at, _), _)| *at)
    }

    fn prune(&mut self, now: Instant) {
        let recently = self.pruned_at.is_some_and(|at| now < at + self.window);
        if self.last_run.len() <= PRUNE_ABOVE || recently {
            return;
        }
        let window = self.window;
        self.last_run.retain(|_, last| now < *last + window);
        self.pruned_at = Some(now);
    }
}

/// The reconcile requests of `input`, throttled per object by a [`Gate`]. A held request
/// keeps the reason of the trigger that was held; later ones join it.
pub struct Throttled<S, K: Resource> {
    input: Fuse<S>,
    gate: Gate<ObjectRef<K>>,
    held: HashMap<ObjectRef<K>, ReconcileRequest<K>>,
    timer: Pin<Box<Sleep>>,
}

/// Throttles `input` with `window`; a zero window passes every request on as it comes.
pub fn throttle<S, K, E>(input: S, window: Duration) -> Throttled<S, K>
where
    S: Stream<Item = Result<ReconcileRequest<K>, E>> + Unpin,
    K: Resource,
    K::DynamicType: Eq + Hash + Clone,
{
    Throttled {
        input: input.fuse(),
        gate: Gate::new(window),
        held: HashMap::new(),
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
    }
}

impl<S, K, E> Stream for Throttled<S, K>
where
    S: Stream<Item = Result<ReconcileRequest<K>, E>> + Unpin,
    K: Resource,
    K::DynamicType: Eq + Hash + Clone + Unpin,
{
    type Item = Result<ReconcileRequest<K>, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(key) = this.gate.pop_due(Instant::now())
                && let Some(request) = this.held.remove(&key)
            {
                return Poll::Ready(Some(Ok(request)));
            }
            match this.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(request))) => {
                    if this.gate.offer(&request.obj_ref, Instant::now()) {
                        return Poll::Ready(Some(Ok(request)));
                    }
                    this.held.entry(request.obj_ref.clone()).or_insert(request);
                    continue;
                }
                // A failed trigger stream is the applier's to handle, at once.
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                // The input ends at shutdown: what is held would only delay it.
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
            let Some(due) = this.gate.next_due() else {
                return Poll::Pending;
            };
            this.timer.as_mut().reset(due);
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(200);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_trigger_of_a_quiet_key_runs_at_once() {
        let mut gate = Gate::new(WINDOW);
        let t0 = Instant::now();
        assert!(gate.offer(&"a", t0));
        assert!(gate.offer(&"b", t0 + ms(10)), "another key is not held");
        assert!(
            gate.offer(&"a", t0 + WINDOW),
            "a window later, a is quiet again"
        );
    }

    #[test]
    fn triggers_within_the_window_are_gathered_into_one_at_its_end() {
        let mut gate = Gate::new(WINDOW);
        let t0 = Instant::now();
        assert!(gate.offer(&"a", t0));
        assert!(!gate.offer(&"a", t0 + ms(20)));
        assert!(!gate.offer(&"a", t0 + ms(150)), "joins the held one");
        assert_eq!(gate.next_due(), Some(t0 + WINDOW));
        assert_eq!(gate.pop_due(t0 + ms(199)), None);
        assert_eq!(gate.pop_due(t0 + WINDOW), Some("a"));
        assert_eq!(gate.pop_due(t0 + WINDOW), None, "run once");
        // The held run starts a window of its own.
        assert!(!gate.offer(&"a", t0 + ms(250)));
        assert_eq!(gate.next_due(), Some(t0 + WINDOW + WINDOW));
    }

    #[test]
    fn held_keys_fall_due_in_the_order_of_their_windows() {
        let mut gate = Gate::new(WINDOW);
        let t0 = Instant::now();
        assert!(gate.offer(&"late", t0 + ms(100)));
        assert!(gate.offer(&"early", t0));
        assert!(!gate.offer(&"late", t0 + ms(110)));
        assert!(!gate.offer(&"early", t0 + ms(120)));
        let end = t0 + ms(400);
        assert_eq!(gate.pop_due(end), Some("early"));
        assert_eq!(gate.pop_due(end), Some("late"));
    }

    #[test]
    fn a_zero_window_holds_nothing() {
        let mut gate = Gate::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(gate.offer(&"a", t0));
        assert!(gate.offer(&"a", t0));
        assert_eq!(gate.next_due(), None);
    }

    #[test]
    fn keys_whose_window_ended_are_forgotten_when_many() {
        let mut gate = Gate::new(WINDOW);
        let t0 = Instant::now();
        for key in 0..=PRUNE_ABOVE {
            assert!(gate.offer(&key, t0));
        }
        assert!(gate.offer(&usize::MAX, t0 + WINDOW));
        assert_eq!(gate.last_run.len(), 1, "only the key that just ran");
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_passes_the_first_at_once_and_gathers_the_rest() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::runtime::controller::ReconcileReason;
        let request = |name: &str| {
            Ok::<_, std::convert::Infallible>(ReconcileRequest {
                obj_ref: ObjectRef::<ConfigMap>::new(name).within("n"),
                reason: ReconcileReason::Unknown,
            })
        };
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut throttled = throttle(rx, WINDOW);
        let start = Instant::now();
        tx.unbounded_send(request("a")).unwrap();
        let first = throttled.next().await.unwrap().unwrap();
        assert_eq!(first.obj_ref.name, "a");
        assert_eq!(Instant::now(), start, "no wait for the first");
        for _ in 0..5 {
            tx.unbounded_send(request("a")).unwrap();
        }
        tx.unbounded_send(request("b")).unwrap();
        let second = throttled.next().await.unwrap().unwrap();
        assert_eq!(second.obj_ref.name, "b", "b is quiet: at once");
        let third = throttled.next().await.unwrap().unwrap();
        assert_eq!(third.obj_ref.name, "a");
        assert_eq!(
            Instant::now() - start,
            WINDOW,
            "a's five, once, at the window's end"
        );
        drop(tx);
        assert!(throttled.next().await.is_none());
    }
}
