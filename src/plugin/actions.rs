//! `promote`, `abort`, `retry`, `pause`, `resume`: the `weir.dev/action` annotation, set by
//! a JSON merge patch, then a wait until Weir has acted on it (the annotation is gone).

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{self, await_condition};
use serde_json::json;

use super::args::ActionArgs;
use super::client::Target;
use super::error::Error;
use crate::api::{Microservice, MigrationPhase};
use crate::release::{ACTION_ANNOTATION, ManualAction, StepNumber, steps};

/// The field manager of the plugin's writes, as audit logs and managedFields show it.
pub const FIELD_MANAGER: &str = "kubectl-weir";

/// Requests `action` on the Microservice and, unless told not to wait, reports what Weir
/// did with it.
pub async fn request(
    target: &Target,
    action: ManualAction,
    args: &ActionArgs,
) -> Result<String, Error> {
    let name = args.name.as_str();
    let ms = target.microservice(name).await?;
    check_applicable(&ms, &action)?;
    let value = annotation_value(&action, Timestamp::now());
    let patch = json!({"metadata": {"annotations": {ACTION_ANNOTATION: value}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    target
        .microservices()
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| target.not_found(name, e, &format!("cannot request {value} on")))?;
    if args.no_wait {
        return Ok(format!("{name}: requested {value}."));
    }
    let acted_on = tokio::time::timeout(
        args.timeout,
        await_condition(target.microservices(), name, consumed(value.clone())),
    );
    match acted_on.await {
        Err(_) => Err(Error::NotActedOn {
            name: name.into(),
            namespace: target.namespace.clone(),
            value,
            waited: args.timeout,
        }),
        Ok(Err(wait::Error::ProbeFailed(source))) => Err(Error::Watch {
            name: name.into(),
            source: Box::new(source),
        }),
        Ok(Ok(None)) => Err(Error::NotFound {
            name: name.into(),
            namespace: target.namespace.clone(),
        }),
        Ok(Ok(Some(ms))) => Ok(outcome(&action, &ms)),
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
