//! Notifications of a release's moments (started, paused, promoted, aborted, analysis
//! failed) to sinks configured on the operator: a CloudEvents webhook, Slack or Teams.
//!
//! Once, as manual actions are: a moment is queued in `status.notifications` by the same
//! write that records it, so a restart cannot lose it; the first in the queue is sent, and
//! it leaves the queue (its id kept as delivered) only in a status write after its sink
//! answered 2xx, before the next is sent. An operator killed between a sink's answer and that
//! write sends that one notification again after the restart, with the same id (the
//! CloudEvents `id` and the `Idempotency-Key` header), so a receiver can drop the repeat;
//! nothing else is ever sent twice. A sink that fails is tried again with back-off; the
//! release never waits for it.

pub mod queue;
pub mod send;
pub mod sinks;

pub use sinks::{Sink, Sinks};
