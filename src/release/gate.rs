//! Whether a release may add exposure now: a freeze (on the namespace, or on the whole
//! cluster by the operator's flag) or outside the spec's release windows, it may not. Steps
//! that reduce exposure, holds and aborts are never gated; nor is a manual promote, which
//! is a person's decision, or a release back to the revision still warm in the old slot,
//! which is a rollback.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::machine::Machine;
use super::progress::{Move, move_release};
use super::traffic::target_split;
use super::window::{WindowState, describe, window_state};
use crate::api::{Microservice, Release, conditions::reason};

/// How soon a frozen release looks again: a freeze is lifted by an annotation, which
/// triggers nothing by itself.
const FROZEN_RECHECK: Duration = Duration::from_secs(30);

/// Why exposure may not grow now, and when that may change.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Closed {
    pub reason: &'static str,
    /// What holds the release, as the end of a sentence.
    pub why: String,
    /// When the next window opens; None for a freeze (or a window Weir cannot read).
    pub opens_at: Option<Timestamp>,
}

/// The gate now: a freeze first, then the windows.
pub(super) fn closed(ms: &Microservice, freeze: Option<&str>, now: Timestamp) -> Option<Closed> {
    if let Some(why) = freeze {
        return Some(Closed {
            reason: reason::FROZEN,
            why: format!("releases are frozen: {why}"),
            opens_at: None,
        });
    }
    let windows = ms
        .spec
        .rollout
        .as_ref()
        .map_or(&[][..], |r| r.windows.as_slice());
    match window_state(windows, now) {
        Ok(WindowState::Open) => None,
        Ok(WindowState::Closed { opens_at }) => Some(Closed {
            reason: reason::OUTSIDE_WINDOW,
            why: format!(
                "outside the release windows ({}); the next opens at {opens_at}",
                describe(windows)
            ),
            opens_at: Some(opens_at),
        }),
        Err(why) => Some(Closed {
            reason: reason::OUTSIDE_WINDOW,
            why,
            opens_at: None,
        }),
    }
}

impl Machine<'_> {
    /// True when moving `release` on `to` would add exposure while the gate is closed: the
    /// release then waits where it is, and the decision says why.
    pub(super) fn gated(&mut self, release: &mut Release, to: Move) -> bool {
        let Some(closed) = self.closed.clone() else {
            return false;
        };
        if release.warm {
            return false;
        }
        let mut moved = release.clone();
        move_release(&mut moved, to, self.now);
        let steps = &self.wanted.steps;
        let active = self.active();
        let (now, next) = (
            target_split(release, steps, active),
            target_split(&moved, steps, active),
        );
        let adds = next.weight > now.weight
            || next.mirror_percent > now.mirror_percent
            || (!next.header_route.is_empty() && next.header_route != now.header_route);
        if adds {
            // The step is done; only the gate holds it, so no deadline runs once it opens.
            release.step_done = true;
            self.wait_for_gate(&closed, "The release waits");
        }
        adds
    }

    /// Says why the release waits, and wakes when the gate may open.
    pub(super) fn wait_for_gate(&mut self, closed: &Closed, what: &str) {
        self.gate = Some((closed.reason, format!("{what}: {}.", closed.why)));
        match closed.opens_at {
            Some(at) => self.wake_at(at),
            None => self.wake_in(FROZEN_RECHECK),
        }
    }
}
