//! Release groups: members of `rollout.group` in a namespace release in lockstep. Pure: the
//! controller reads the other members' statuses from its cache, and every rule here is a
//! function of them, so a restarted operator (or a new leader) finds the same barrier.
//!
//! - A member moves past a step only once every other member with a release in progress
//!   has reached that step with its traffic confirmed, or gone past it.
//! - A member starts only once the members it names in `rollout.after` have promoted.
//! - An abort of any member aborts every member; each returns its traffic to stable, and
//!   none scales its candidate down until every member's traffic is back.

use crate::api::{Release, conditions::reason};

/// Another member of the group, as its status shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Member {
    pub name: String,
    /// Its spec changed and Weir has not acted on it yet: a release may be about to start.
    pub pending: bool,
    pub release: Option<Release>,
    /// Its newest revision's release was aborted.
    pub aborted: bool,
}

/// The other members of a Microservice's group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub name: String,
    pub others: Vec<Member>,
}

/// How far a release got: its step, or past the last once it promotes.
pub fn position(release: &Release) -> i32 {
    if release.promoting {
        release.step_count + 1
    } else {
        release.step_index
    }
}

/// The release of a member that moves on, or may: not returning.
fn in_progress(member: &Member) -> Option<&Release> {
    member.release.as_ref().filter(|r| r.returning.is_none())
}

/// The members that keep a release at `position` from moving past it: behind it, at it
/// without having finished it (or held there), or about to start.
pub fn behind(group: &Group, position_now: i32) -> Vec<&str> {
    group
        .others
        .iter()
        .filter(|m| match in_progress(m) {
            Some(r) => {
                let at = position(r);
                at < position_now || (at == position_now && (!r.step_done || r.held.is_some()))
            }
            None => m.pending,
        })
        .map(|m| m.name.as_str())
        .collect()
}

/// The members not yet ready to become stable: a member becomes stable only when every
/// other member with a release in progress carries all its traffic, confirmed, and has
/// passed its verification, if it has one (it then says so with `stepDone`).
pub fn not_ready_to_finish(group: &Group) -> Vec<&str> {
    group
        .others
        .iter()
        .filter(|m| {
            in_progress(m).is_some_and(|r| !(r.promoting && r.step_done) || r.held.is_some())
        })
        .map(|m| m.name.as_str())
        .collect()
}

/// A member whose abort aborts the group: its traffic is returning after an abort.
pub fn aborting(group: &Group) -> Option<(&str, &str)> {
    group.others.iter().find_map(|m| {
        let returning = m.release.as_ref()?.returning.as_ref()?;
        returning
            .abort
            .then_some((m.name.as_str(), returning.message.as_str()))
    })
}

/// The members whose traffic is not yet back on stable, after a group abort: none scales
/// its candidate down before all are back.
pub fn still_exposed(group: &Group) -> Vec<&str> {
    group
        .others
        .iter()
        .filter(|m| {
            m.release.as_ref().is_some_and(|r| {
                let back = r.weight == 0
                    && r.mirror_percent == 0
                    && r.header_route.is_empty()
                    && r.weight_verified;
                !back || (r.returning.is_none() && r.held.is_none())
            })
        })
        .map(|m| m.name.as_str())
        .collect()
}

/// The members of `after` that have not promoted yet: a release in progress, a spec not yet
/// acted on, or an aborted release. A name that is not a member holds nothing.
pub fn not_promoted<'a>(group: &'a Group, after: &[String]) -> Vec<(&'a str, &'static str)> {
    group
        .others
        .iter()
        .filter(|m| after.contains(&m.name))
        .filter_map(|m| {
            let why = if m.aborted && m.release.is_none() {
                "its release was aborted"
            } else if m.release.is_some() {
                "its release is in progress"
            } else if m.pending {
                "its new spec is not acted on yet"
            } else {
                return None;
            };
            Some((m.name.as_str(), why))
        })
        .collect()
}

impl super::machine::Machine<'_> {
    /// Another member aborts: so does this release.
    pub(super) fn abort_with_group(&mut self, release: &mut Release) {
        let Some(group) = self.inputs.group.as_ref() else {
            return;
        };
        if release.returning.is_some() {
            return;
        }
        if let Some((name, why)) = aborting(group) {
            let abort = super::decision::Abort {
                reason: reason::GROUP_ABORTED.into(),
                message: format!("{name}, of release group {}, aborted: {why}", group.name),
            };
            self.begin_abort(release, abort);
        }
    }

    /// The members that keep this release where it is (none outside a group).
    pub(super) fn group_behind(&self, release: &Release) -> Vec<String> {
        self.inputs.group.as_ref().map_or_else(Vec::new, |group| {
            behind(group, position(release))
                .into_iter()
                .map(String::from)
                .collect()
        })
    }

    /// True when the group keeps this release from moving past its step, which is done;
    /// says why, and tells the others through status that this one finished the step.
    pub(super) fn waits_for_group(&mut self, release: &mut Release) -> bool {
        let behind = self.group_behind(release);
        if behind.is_empty() {
            return false;
        }
        release.step_done = true;
        let group = self.inputs.group.as_ref().map(|g| g.name.clone());
        self.gate = Some((
            reason::WAITING_FOR_GROUP,
            format!(
                "Waiting for {} of release group {} to reach this step.",
                behind.join(", "),
                group.unwrap_or_default()
            ),
        ));
        self.wake_in(GROUP_RECHECK);
        true
    }

    /// True when this release, ready to become stable, waits for the rest of its group to be
    /// ready too; it tells them so through `stepDone`.
    pub(super) fn waits_to_finish_with_group(&mut self, release: &mut Release) -> bool {
        let Some(group) = self.inputs.group.as_ref() else {
            return false;
        };
        let waiting: Vec<String> = not_ready_to_finish(group)
            .into_iter()
            .map(String::from)
            .collect();
        if waiting.is_empty() {
            return false;
        }
        release.step_done = true;
        self.gate = Some((
            reason::WAITING_FOR_GROUP,
            format!(
                "Ready to become stable; waiting for {} of release group {} to be ready too.",
                waiting.join(", "),
                group.name
            ),
        ));
        self.wake_in(GROUP_RECHECK);
        true
    }

    /// True when a member named in `rollout.after` has not promoted: the release waits.
    pub(super) fn waits_for_after(&mut self) -> bool {
        let after = self
            .ms
            .spec
            .rollout
            .as_ref()
            .map_or(&[][..], |r| r.after.as_slice());
        let Some(group) = self.inputs.group.as_ref().filter(|_| !after.is_empty()) else {
            return false;
        };
        let waiting = not_promoted(group, after);
        if waiting.is_empty() {
            return false;
        }
        let names: Vec<String> = waiting
            .iter()
            .map(|(name, why)| format!("{name} ({why})"))
            .collect();
        self.gate = Some((
            reason::WAITING_FOR_GROUP,
            format!(
                "The release of revision {} waits for {} to be promoted first.",
                self.wanted.revision,
                names.join(", ")
            ),
        ));
        self.wake_in(GROUP_RECHECK);
        true
    }

    /// After an abort in a group: the members whose traffic is not back on stable yet.
    pub(super) fn group_still_exposed(&self) -> Vec<String> {
        self.inputs.group.as_ref().map_or_else(Vec::new, |group| {
            still_exposed(group).into_iter().map(String::from).collect()
        })
    }
}

/// How soon a member waiting on the others looks again, should their changes not reach
/// it (they trigger it through the Microservice watch).
const GROUP_RECHECK: std::time::Duration = std::time::Duration::from_secs(10);
