//! Release groups in the controller: the other members of a Microservice's group, read from
//! the Microservice cache (no new kind, no extra request), and the trigger that wakes them
//! when one member changes, its status included. The rules are `release::group`'s.

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::own_writes::OwnWrites;
use super::watches::Watched;
use crate::api::Microservice;
use crate::release::group::{Group, Member};

/// The namespace and group of a Microservice that belongs to one.
pub fn group_of(object: &Watched) -> Option<(String, String)> {
    let ms = object.0.as_ref().ok()?;
    let group = ms.spec.rollout.as_ref()?.group.clone()?;
    Some((object.namespace()?, group))
}

/// Maps a member that changed to the other members of its group.
pub fn other_members(
    microservices: Store<Watched>,
) -> impl Fn(Watched) -> Vec<ObjectRef<Watched>> + Send + Sync + 'static {
    move |changed| {
        let Some(group) = group_of(&changed) else {
            return Vec::new();
        };
        microservices
            .state()
            .into_iter()
            .filter(|w| w.uid() != changed.uid() && group_of(w).as_ref() == Some(&group))
            .map(|w| ObjectRef::from_obj(&*w))
            .collect()
    }
}

/// The other members of `ms`'s group as their statuses show them (this process's own newer
/// writes preferred), or None outside a group.
pub fn view(ms: &Microservice, microservices: &Store<Watched>, own: &OwnWrites) -> Option<Group> {
    let name = ms.spec.rollout.as_ref()?.group.clone()?;
    let namespace = ms.namespace();
    let others = microservices
        .state()
        .into_iter()
        .filter(|w| w.namespace() == namespace && w.uid() != ms.uid())
        .filter_map(|w| {
            let other = w.0.as_ref().ok()?;
            let group = other.spec.rollout.as_ref()?.group.as_ref()?;
            (group == &name).then(|| member(other, own))
        })
        .collect();
    Some(Group { name, others })
}

fn member(ms: &Microservice, own: &OwnWrites) -> Member {
    let resource_version = ms.resource_version().unwrap_or_default();
    let status = own
        .newer_than(&ms.uid().unwrap_or_default(), &resource_version)
        .or_else(|| ms.status.clone())
        .unwrap_or_default();
    Member {
        name: ms.name_any(),
        pending: status.observed_generation != ms.metadata.generation,
        aborted: status.aborted_revision.is_some() && status.release.is_none(),
        release: status.release,
    }
}
