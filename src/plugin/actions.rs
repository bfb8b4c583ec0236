//! `promote`, `abort`, `retry`, `pause`, `resume`: the `weir.dev/action` annotation, set by
//! a JSON merge patch, then a wait until Weir has acted on it (the annotation is gone).
//! `promote --group` and `abort --group` set the same value on every member of a release
//! group (`spec.rollout.group`) in the namespace.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{self, await_condition};
use serde_json::json;

use super::args::{Act, Subject};
use super::client::Target;
use super::error::Error;
use crate::api::{Microservice, MigrationPhase};
use crate::release::{ACTION_ANNOTATION, ManualAction, StepNumber, steps};

/// The field manager of the plugin's writes, as audit logs and managedFields show it.
pub const FIELD_MANAGER: &str = "kubectl-weir";

/// Requests `action` on the Microservice, or on every member of a release group, and,
/// unless told not to wait, reports what Weir did with it: one line per Microservice.
pub async fn request<'a>(
    target: &Target,
    action: ManualAction,
    act: impl Into<Act<'a>>,
) -> Result<String, Error> {
    let act = act.into();
    let name = match act.subject {
        Subject::Microservice(name) => name,
        Subject::Group(group) => return request_group(target, action, group, &act).await,
    };
    let ms = target.microservice(name).await?;
    check_applicable(&ms, &action)?;
    let value = annotation_value(&action, Timestamp::now());
    set(target, name, &value).await?;
    settle(target, &action, name, value, &act).await
}

/// The same action on every member of `group` that can take it, the others left out with
/// a warning. The annotations are all set before any wait, so the members act together.
/// When some member fails, the lines of the others are printed before the error.
async fn request_group(
    target: &Target,
    action: ManualAction,
    group: &str,
    act: &Act<'_>,
) -> Result<String, Error> {
    let listed = target.list(false).await?;
    for unreadable in &listed.unreadable {
        eprintln!("warning: not a readable Microservice, its group unknown: {unreadable}");
    }
    let plan = plan(&listed.items, group, &target.namespace, &action)?;
    for reason in &plan.left_out {
        eprintln!("warning: left out: {reason}");
    }
    let value = annotation_value(&action, Timestamp::now());
    let mut requested = Vec::new();
    let mut failed = Vec::new();
    for name in &plan.members {
        match set(target, name, &value).await {
            Ok(()) => requested.push(name.as_str()),
            Err(error) => failed.push(error),
        }
    }
    let waits = requested
        .iter()
        .map(|name| settle(target, &action, name, value.clone(), act));
    let mut lines = Vec::new();
    for outcome in futures::future::join_all(waits).await {
        match outcome {
            Ok(line) => lines.push(line),
            Err(error) => failed.push(error),
        }
    }
    if failed.is_empty() {
        return Ok(lines.join("\n"));
    }
    if !lines.is_empty() {
        super::print(&format!("{}\n", lines.join("\n")))?;
    }
    Err(Error::GroupIncomplete {
        group: group.into(),
        action: action.as_str().into(),
        members: plan.members.len(),
        failed,
    })
}

/// The members of a release group an action goes to, by name, and why the others are
/// left out.
#[derive(Debug)]
pub struct Plan {
    pub members: Vec<String>,
    pub left_out: Vec<Error>,
}

/// Picks, from the Microservices of `namespace`, the members of `group` that can take
/// `action`. No member at all, or none that can take it, is an error.
pub fn plan(
    items: &[Microservice],
    group: &str,
    namespace: &str,
    action: &ManualAction,
) -> Result<Plan, Error> {
    let mut members: Vec<&Microservice> = items
        .iter()
        .filter(|ms| {
            ms.spec
                .rollout
                .as_ref()
                .and_then(|r| r.group.as_deref())
                .is_some_and(|g| g == group)
        })
        .collect();
    if members.is_empty() {
        return Err(Error::NoGroupMembers {
            group: group.into(),
            namespace: namespace.into(),
        });
    }
    members.sort_by_key(|ms| ms.name_any());
    let mut plan = Plan {
        members: Vec::new(),
        left_out: Vec::new(),
    };
    for ms in members {
        match check_applicable(ms, action) {
            Ok(()) => plan.members.push(ms.name_any()),
            Err(reason) => plan.left_out.push(reason),
        }
    }
    if plan.members.is_empty() {
        return Err(Error::NoMemberCanTake {
            group: group.into(),
            namespace: namespace.into(),
            action: action.as_str().into(),
            reasons: plan.left_out,
        });
    }
    Ok(plan)
}

/// Sets the annotation to `value` on `name`.
async fn set(target: &Target, name: &str, value: &str) -> Result<(), Error> {
    let patch = json!({"metadata": {"annotations": {ACTION_ANNOTATION: value}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    target
        .microservices()
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|e| target.not_found(name, e, &format!("cannot request {value} on")))
}

/// Unless told not to wait, waits until Weir has acted on `value` on `name`, and says what
/// it did.
async fn settle(
    target: &Target,
    action: &ManualAction,
    name: &str,
    value: String,
    act: &Act<'_>,
) -> Result<String, Error> {
    if act.no_wait {
        return Ok(format!("{name}: requested {value}."));
    }
    let acted_on = tokio::time::timeout(
        act.timeout,
        await_condition(target.microservices(), name, consumed(value.clone())),
    );
    match acted_on.await {
        Err(_) => Err(Error::NotActedOn {
            name: name.into(),
            namespace: target.namespace.clone(),
            value,
            waited: act.timeout,
        }),
        Ok(Err(wait::Error::ProbeFailed(source))) => Err(Error::Watch {
            name: name.into(),
            source: Box::new(source),
        }),
        Ok(Ok(None)) => Err(Error::NotFound {
            name: name.into(),
            namespace: target.namespace.clone(),
        }),
        Ok(Ok(Some(ms))) => Ok(outcome(action, &ms)),
    }
}

/// `<verb>@<nonce>`: the nonce (unix nanoseconds) makes a repeat of the same verb a new
/// request, and tells requests apart in events and audit logs.
pub fn annotation_value(action: &ManualAction, now: Timestamp) -> String {
    format!("{}@{}", action.as_str(), now.as_nanosecond())
}

/// Refuses what Weir would ignore: actions on a release need one in progress (not already
/// returning to stable), `retry` an aborted revision.
pub fn check_applicable(ms: &Microservice, action: &ManualAction) -> Result<(), Error> {
    let status = ms.status.as_ref();
    let name = ms.name_any();
    let takeover = status
        .and_then(|s| s.migration.as_ref())
        .filter(|_| ms.spec.migrate_from.is_some())
        .map(|m| m.phase);
    match (action, takeover) {
        (
            ManualAction::Abort,
            Some(MigrationPhase::WaitingForPods | MigrationPhase::ScalingDown),
        )
        | (ManualAction::Retry, Some(MigrationPhase::RolledBack | MigrationPhase::Aborted)) => {
            return Ok(());
        }
        _ => {}
    }
    match action {
        ManualAction::Retry if status.and_then(|s| s.aborted_revision.as_ref()).is_none() => {
            Err(Error::NothingToRetry { name })
        }
        ManualAction::Retry => Ok(()),
        _ if status
            .and_then(|s| s.release.as_ref())
            .is_none_or(|r| r.returning.is_some()) =>
        {
            Err(Error::NoRelease { name })
        }
        _ => Ok(()),
    }
}

/// True once the annotation no longer carries `value` (or the object is gone).
fn consumed(value: String) -> impl wait::Condition<Microservice> {
    move |ms: Option<&Microservice>| {
        ms.is_none_or(|ms| ms.annotations().get(ACTION_ANNOTATION) != Some(&value))
    }
}

/// What Weir did, read from the status it wrote when it acted.
pub fn outcome(action: &ManualAction, ms: &Microservice) -> String {
    let did = match action {
        ManualAction::Promote => "promoted",
        ManualAction::PromoteFull => "promoted fully",
        ManualAction::Abort => "aborted",
        ManualAction::Retry => "retrying",
        ManualAction::Pause => "paused",
        ManualAction::Resume => "resumed",
        ManualAction::Unknown(_) => "acted on",
    };
    let phase = ms
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .map_or("unknown", |p| p.as_str());
    format!("{}: {did}; {}, phase {phase}.", ms.name_any(), position(ms))
}

/// Where the release stands, in a few words.
pub fn position(ms: &Microservice) -> String {
    let status = ms.status.clone().unwrap_or_default();
    let Some(release) = status.release else {
        return match (status.aborted_revision, status.stable_revision) {
            (Some(aborted), _) => {
                format!("revision {aborted} is aborted and the stable version serves all traffic")
            }
            (None, Some(stable)) => format!("no release in progress, revision {stable} serves"),
            (None, None) => "no release in progress".into(),
        };
    };
    if let Some(returning) = release.returning {
        return format!(
            "traffic is returning to the stable version ({})",
            returning.reason
        );
    }
    let number = match StepNumber::of(&release) {
        Some(number) if !release.promoting => number,
        _ => return "every step done, the new version is taking all traffic".into(),
    };
    let step = steps(ms)
        .get(release.step_index.max(0) as usize)
        .map(|s| format!(" ({})", s.describe()))
        .unwrap_or_default();
    let held = if release.paused { ", held" } else { "" };
    format!("now at {number}{step}{held}, weight {}%", release.weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Returning;
    use crate::plugin::fixtures::{at, canary, paused_at_second_step};

    /// `ms` renamed `name`, in release group `group` (none for None).
    fn member(mut ms: Microservice, name: &str, group: Option<&str>) -> Microservice {
        ms.metadata.name = Some(name.into());
        ms.spec.rollout.as_mut().unwrap().group = group.map(String::from);
        ms
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.members.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_group_action_goes_to_the_members_of_that_group_only_by_name() {
        let releasing = paused_at_second_step;
        let items = [
            member(releasing(), "payments", Some("shop")),
            member(releasing(), "cart", Some("shop")),
            member(releasing(), "search", Some("catalog")),
            member(releasing(), "checkout", None),
        ];
        let plan = plan(&items, "shop", "prod", &ManualAction::Abort).unwrap();
        assert_eq!(names(&plan), ["cart", "payments"]);
        assert!(plan.left_out.is_empty(), "{plan:?}");
        let plan = super::plan(&items, "catalog", "prod", &ManualAction::Promote).unwrap();
        assert_eq!(names(&plan), ["search"]);
    }

    #[test]
    fn a_member_that_cannot_take_the_action_is_left_out_with_the_reason() {
        // frontend waits for backend (`after`): no release of its own yet.
        let items = [
            member(canary(), "frontend", Some("shop")),
            member(paused_at_second_step(), "backend", Some("shop")),
        ];
        let plan = plan(&items, "shop", "prod", &ManualAction::Promote).unwrap();
        assert_eq!(names(&plan), ["backend"]);
        let reasons: Vec<String> = plan.left_out.iter().map(|e| e.to_string()).collect();
        assert_eq!(reasons, ["frontend has no release in progress"]);
    }

    #[test]
    fn a_group_without_members_is_an_error_that_names_it_and_the_namespace() {
        let items = [member(paused_at_second_step(), "checkout", Some("shop"))];
        let error = plan(&items, "shoes", "prod", &ManualAction::Abort).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"no microservice in namespace "prod" is in release group "shoes" (spec.rollout.group)"#
        );
        assert!(plan(&[], "shop", "prod", &ManualAction::Abort).is_err());
    }

    #[test]
    fn a_group_none_of_whose_members_can_take_the_action_is_refused() {
        let items = [
            member(canary(), "frontend", Some("shop")),
            member(canary(), "backend", Some("shop")),
        ];
        let error = plan(&items, "shop", "prod", &ManualAction::Abort).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"no member of release group "shop" in namespace "prod" can take abort: backend has no release in progress; frontend has no release in progress"#
        );
    }

    #[test]
    fn the_value_is_the_verb_and_a_nonce() {
        let value = annotation_value(&ManualAction::PromoteFull, at(0));
        assert_eq!(value, "promote-full@1800000000000000000");
        assert_eq!(
            crate::release::parse_action(&value),
            ManualAction::PromoteFull
        );
    }

    #[test]
    fn release_actions_need_a_release_in_progress() {
        let settled = canary();
        for action in [
            ManualAction::Promote,
            ManualAction::Abort,
            ManualAction::Pause,
            ManualAction::Resume,
        ] {
            let error = check_applicable(&settled, &action).unwrap_err();
            assert_eq!(error.to_string(), "checkout has no release in progress");
            assert!(check_applicable(&paused_at_second_step(), &action).is_ok());
        }
    }

    #[test]
    fn a_release_already_returning_to_stable_takes_no_more_actions() {
        let mut ms = paused_at_second_step();
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.returning = Some(Returning {
            reason: "Aborted".into(),
            message: "The release was aborted by hand.".into(),
            abort: true,
        });
        assert!(check_applicable(&ms, &ManualAction::Promote).is_err());
    }

    #[test]
    fn retry_needs_an_aborted_revision() {
        let mut ms = canary();
        let error = check_applicable(&ms, &ManualAction::Retry).unwrap_err();
        assert_eq!(
            error.to_string(),
            "checkout has no aborted release to retry"
        );
        ms.status.as_mut().unwrap().aborted_revision = Some("84b7c6d9f".into());
        assert!(check_applicable(&ms, &ManualAction::Retry).is_ok());
    }

    #[test]
    fn the_outcome_names_the_new_step_and_phase() {
        let mut ms = paused_at_second_step();
        let status = ms.status.as_mut().unwrap();
        status.phase = Some(crate::api::Phase::Progressing);
        status.release.as_mut().unwrap().step_index = 2;
        assert_eq!(
            outcome(&ManualAction::Promote, &ms),
            "checkout: promoted; now at step 3 of 4 (setWeight 60), weight 20%, phase Progressing."
        );
    }

    #[test]
    fn after_an_abort_the_outcome_says_the_stable_version_serves() {
        let mut ms = canary();
        let status = ms.status.as_mut().unwrap();
        status.phase = Some(crate::api::Phase::Degraded);
        status.aborted_revision = Some("84b7c6d9f".into());
        assert_eq!(
            outcome(&ManualAction::Abort, &ms),
            "checkout: aborted; revision 84b7c6d9f is aborted and the stable version serves \
             all traffic, phase Degraded."
        );
    }
}
