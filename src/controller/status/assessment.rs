//! Where a Microservice stands, in words: from a problem, from the release machine's
//! decision, or from the active Deployment's rollout. Each condition gets its own part:
//! Ready what serves now, Progressing what changes, Reconciling what Weir waits for; the
//! whole sentence is `status.message`, and the Degraded and Stalled conditions.

use crate::controller::cache_form::CachedDeployment;

use crate::api::conditions::{self, reason};
use crate::api::{Microservice, MicroserviceStatus, Phase};
use crate::controller::problem::Problem;
use crate::release::{self, Decision, Step};

/// The phase, its reason, and the sentences that explain it.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub phase: Phase,
    pub reason: String,
    /// The whole sentence.
    pub message: String,
    /// Ready's part: what serves now. None: the whole sentence.
    pub serving: Option<String>,
    /// Progressing's part: what changes and how far it got. None: the whole sentence.
    pub progress: Option<String>,
    /// Reconciling's part: what Weir waits for. None: the progress.
    pub waiting: Option<String>,
}

impl Assessment {
    pub fn new(phase: Phase, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Assessment {
            phase,
            reason: reason.into(),
            message: message.into(),
            serving: None,
            progress: None,
            waiting: None,
        }
    }

    fn with_parts(mut self, serving: String, progress: String, waiting: Option<String>) -> Self {
        self.serving = Some(serving);
        self.progress = Some(progress);
        self.waiting = waiting;
        self
    }
}

/// A problem found while applying, which takes over from everything else.
pub fn of_problem(problem: &Problem) -> Assessment {
    Assessment::new(Phase::Degraded, problem.reason(), problem.message())
}

const STABLE_SERVES_ALL: &str = "The stable version serves all traffic.";
const HOW_TO_RETRY: &str =
    "Change the spec, or retry with the weir.dev/action annotation set to retry.";

/// An aborted release: `why` it ended, where traffic is, what brings it back.
fn aborted(reason: &str, why: &str) -> Assessment {
    Assessment::new(
        Phase::Degraded,
        reason,
        format!("{why} {STABLE_SERVES_ALL} {HOW_TO_RETRY}"),
    )
    .with_parts(
        STABLE_SERVES_ALL.into(),
        why.into(),
        Some(HOW_TO_RETRY.into()),
    )
}

/// Where a release stands (or an aborted one), which takes over from the active
/// Deployment's rollout; None when no release runs or holds.
pub fn of_release(
    ms: &Microservice,
    decision: &Decision,
    revision: &str,
    old: &MicroserviceStatus,
) -> Option<Assessment> {
    if let Some((reason, why)) = &decision.abort {
        return Some(aborted(reason, why));
    }
    if let Some((reason, why)) = &decision.held_back {
        let fix = "Correct what the message names; Weir looks again every few seconds.";
        let message = format!("{why} {STABLE_SERVES_ALL} {fix}");
        let assessment = Assessment::new(Phase::Degraded, *reason, message);
        return Some(assessment.with_parts(
            STABLE_SERVES_ALL.into(),
            why.clone(),
            Some(fix.into()),
        ));
    }
    let fields = &decision.fields;
    let returning = fields
        .release
        .as_ref()
        .is_some_and(|r| r.returning.is_some());
    if let Some((reason, why)) = decision.gate.as_ref().filter(|_| !returning) {
        let serving = match fields.release.as_ref().filter(|r| r.returning.is_none()) {
            Some(release) => running(ms, release),
            None => Assessment::new(Phase::Paused, *reason, STABLE_SERVES_ALL),
        };
        return Some(gated(serving, reason, why));
    }
    if let Some(release) = &fields.release {
        if let Some(returning) = &release.returning {
            let phase = if returning.abort {
                Phase::Degraded
            } else {
                Phase::Progressing
            };
            let back = "Returning traffic to the stable version.";
            let message = format!("{} {back}", returning.message);
            let assessment = Assessment::new(phase, returning.reason.clone(), message);
            return Some(assessment.with_parts(back.into(), returning.message.clone(), None));
        }
        return Some(running(ms, release));
    }
    if fields.aborted_revision.as_deref() != Some(revision) {
        return None;
    }
    // Held after an abort: the reason and the words of the abort stay.
    let previous = old
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::DEGRADED && c.status == "True");
    Some(match previous {
        Some(c) => {
            let why = c
                .message
                .split_once(STABLE_SERVES_ALL)
                .map(|(why, _)| why.trim_end());
            match why {
                Some(why) => aborted(&c.reason, why),
                None => Assessment::new(Phase::Degraded, c.reason.clone(), c.message.clone()),
            }
        }
        None => aborted(
            reason::ABORTED,
            &format!("The release of revision {revision} was aborted."),
        ),
    })
}

/// A release under way: the step it is at, what it waits for, how much traffic the new
/// version has.
fn running(ms: &Microservice, release: &crate::api::Release) -> Assessment {
    let steps = release::steps(ms);
    let step = steps.get(release.step_index.max(0) as usize);
    let at = if release.verifying_since.is_some() {
        "verifying after the promotion: all traffic on the new version while the old one \
         keeps its pods"
            .to_string()
    } else if release.promoting {
        "promoting: moving all traffic to the new version".to_string()
    } else {
        match step {
            Some(step) => format!(
                "step {} of {}, {}",
                release.step_index + 1,
                release.step_count,
                step.describe()
            ),
            None => "every step done, waiting for the analysis to pass".into(),
        }
    };
    let verified = if release.weight_verified {
        "confirmed"
    } else {
        "not yet confirmed"
    };
    let weight = format!(
        "{}% of traffic on the new version ({verified})",
        release.weight
    );
    let image = &ms.spec.image;
    let progress = format!("Releasing {image}: {at}.");
    if let Some(why) = &release.held {
        let next = "Retry (weir.dev/action=retry) resumes this step; abort ends the release.";
        let message = format!(
            "Releasing {image}: held at {at}. {why} Traffic is back on the stable version; \
             the new version keeps its pods. {next}"
        );
        return Assessment::new(Phase::Paused, reason::ANALYSIS_FAILED, message).with_parts(
            STABLE_SERVES_ALL.into(),
            format!("Held at {at}: {why}"),
            Some(next.into()),
        );
    }
    let waiting = !release.promoting && matches!(step, Some(Step::Pause(None)));
    if release.paused || waiting {
        let why = if release.paused {
            "paused by hand; resume with the weir.dev/action annotation set to resume"
        } else {
            "waiting for a promote (weir.dev/action=promote)"
        };
        let message = format!("Releasing {image}: {at}, {why}; {weight}.");
        return Assessment::new(Phase::Paused, reason::PAUSED, message).with_parts(
            format!("{weight}."),
            progress,
            Some(sentence(why)),
        );
    }
    let message = format!("Releasing {image}: {at}; {weight}.");
    Assessment::new(Phase::Progressing, reason::RELEASING, message).with_parts(
        format!("{weight}."),
        progress,
        None,
    )
}

/// A release a freeze or the release windows hold where it is: Paused, saying why.
fn gated(serving: Assessment, reason: &str, why: &str) -> Assessment {
    let message = format!("{} {why}", serving.message);
    let now = serving.serving.unwrap_or(serving.message);
    let progress = match serving.progress {
        Some(progress) => format!("{progress} {why}"),
        None => why.to_string(),
    };
    // Waiting for the rest of a release group is progress; a freeze or a window is a pause.
    let phase = match reason {
        reason::WAITING_FOR_GROUP => Phase::Progressing,
        _ => Phase::Paused,
    };
    Assessment::new(phase, reason, message).with_parts(now, progress, Some(why.into()))
}

/// `text` as a sentence: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// Where the active Deployment's rollout stands, for `desired` pods.
pub fn of_rollout(
    ms: &Microservice,
    deployment: Option<&CachedDeployment>,
    desired: i32,
) -> Assessment {
    let Some(deployment) = deployment else {
        return Assessment::new(
            Phase::Progressing,
            reason::ROLLING_OUT,
            "Creating the Deployment.",
        );
    };
    let status = deployment.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let image = &ms.spec.image;
    let stalled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(stalled) = stalled {
        let deadline = deployment
            .numbers()
            .progress_deadline_seconds
            .unwrap_or_default();
        let message = format!(
            "The rollout of {image} made no progress for {deadline}s: {ready} of {desired} pods \
             ready, {updated} updated. {}",
            stalled.message.as_deref().unwrap_or_default()
        );
        return Assessment::new(Phase::Degraded, reason::PROGRESS_DEADLINE_EXCEEDED, message);
    }
    if status.observed_generation < deployment.metadata.generation {
        return Assessment::new(
            Phase::Progressing,
            reason::WAITING_FOR_CONTROLLER,
            "Waiting for the Deployment controller to see the new spec.",
        );
    }
    if updated < desired || ready < desired || available < desired || replicas > desired {
        let message =
            format!("Rolling out {image}: {updated} of {desired} pods updated, {ready} ready.");
        return Assessment::new(Phase::Progressing, reason::ROLLING_OUT, message).with_parts(
            format!("{ready} of {desired} pods ready."),
            format!("Rolling out {image}: {updated} of {desired} pods updated."),
            None,
        );
    }
    Assessment::new(
        Phase::Healthy,
        reason::AVAILABLE,
        format!("{ready} of {desired} pods ready, running {image}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Release, Returning, Slot};
    use crate::release::ReleaseFields;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
    use serde_json::json;

    fn checkout() -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "checkout", "namespace": "shop", "generation": 2},
            "spec": {"image": "registry.example/checkout:1.5.0", "replicas": 3,
                "rollout": {"strategy": "Canary", "canary": {"steps": [
                    {"setWeight": 20}, {"pause": {"duration": "1h"}},
                    {"setWeight": 50}, {"pause": {}}]}}}
        }))
        .unwrap()
    }

    fn at_step(step_index: i32, weight: i32) -> Release {
        Release {
            revision: "r2".into(),
            step_index,
            step_count: 4,
            step_started_at: MicroTime("2026-01-01T00:00:00Z".parse().unwrap()),
            step_history: vec![],
            weight,
            weight_verified: true,
            mirror_percent: 0,
            header_route: vec![],
            paused: false,
            promoting: false,
            returning: None,
            analysis: None,
            held: None,
            verifying_since: None,
            warm: false,
            step_done: false,
        }
    }

    fn decision(release: Option<Release>, aborted_revision: Option<&str>) -> Decision {
        Decision::at_rest(ReleaseFields {
            active_slot: Slot::Blue,
            stable_revision: Some("r1".into()),
            candidate_revision: release.as_ref().map(|r| r.revision.clone()),
            aborted_revision: aborted_revision.map(Into::into),
            release,
            scale_down_at: None,
        })
    }

    fn assess(decision: &Decision) -> Assessment {
        of_release(&checkout(), decision, "r2", &MicroserviceStatus::default())
            .expect("a release runs")
    }

    #[test]
    fn a_release_waiting_for_a_promote_splits_its_sentence_between_the_conditions() {
        let paused = assess(&decision(Some(at_step(3, 50)), None));
        assert_eq!(
            (paused.phase, paused.reason.as_str()),
            (Phase::Paused, "Paused")
        );
        assert_eq!(
            paused.message,
            "Releasing registry.example/checkout:1.5.0: step 4 of 4, pause until promoted, \
             waiting for a promote (weir.dev/action=promote); 50% of traffic on the new \
             version (confirmed)."
        );
        assert_eq!(
            paused.serving.as_deref(),
            Some("50% of traffic on the new version (confirmed).")
        );
        assert_eq!(
            paused.progress.as_deref(),
            Some("Releasing registry.example/checkout:1.5.0: step 4 of 4, pause until promoted.")
        );
        assert_eq!(
            paused.waiting.as_deref(),
            Some("Waiting for a promote (weir.dev/action=promote).")
        );
    }

    #[test]
    fn a_release_at_a_timed_step_is_progressing_without_a_wait_of_its_own() {
        let mut release = at_step(1, 20);
        release.weight_verified = false;
        let progressing = assess(&decision(Some(release), None));
        assert_eq!(progressing.phase, Phase::Progressing);
        let step = release::steps(&checkout())[1].describe();
        assert_eq!(
            progressing.message,
            format!(
                "Releasing registry.example/checkout:1.5.0: step 2 of 4, {step}; 20% of \
                 traffic on the new version (not yet confirmed)."
            )
        );
        assert_eq!(progressing.waiting, None);
    }

    #[test]
    fn an_abort_says_why_where_traffic_is_and_how_to_go_on() {
        let mut aborting = decision(None, Some("r2"));
        aborting.abort = Some(("Aborted".into(), "The release was aborted by hand.".into()));
        let aborted = assess(&aborting);
        assert_eq!(
            (aborted.phase, aborted.reason.as_str()),
            (Phase::Degraded, "Aborted")
        );
        assert_eq!(
            aborted.message,
            "The release was aborted by hand. The stable version serves all traffic. Change \
             the spec, or retry with the weir.dev/action annotation set to retry."
        );
        assert_eq!(
            aborted.progress.as_deref(),
            Some("The release was aborted by hand.")
        );
        assert_eq!(
            aborted.serving.as_deref(),
            Some("The stable version serves all traffic.")
        );
    }

    #[test]
    fn a_held_abort_keeps_its_reason_and_words_without_repeating_a_warning() {
        let held = decision(None, Some("r2"));
        let degraded = |message: &str| MicroserviceStatus {
            conditions: vec![Condition {
                type_: conditions::DEGRADED.into(),
                status: "True".into(),
                reason: "AnalysisFailed".into(),
                message: message.into(),
                observed_generation: Some(2),
                last_transition_time: Time("2026-01-01T00:00:00Z".parse().unwrap()),
            }],
            ..Default::default()
        };
        let first = aborted(
            "AnalysisFailed",
            "error-rate = 0.5, above the maximum 0.05.",
        );
        let warned = format!("{} Warning: spec.replicas is also set by x.", first.message);
        let again = of_release(&checkout(), &held, "r2", &degraded(&warned)).unwrap();
        assert_eq!(again, first);
        let unknown = of_release(&checkout(), &held, "r2", &degraded("Something else.")).unwrap();
        assert_eq!(
            (unknown.reason.as_str(), unknown.message.as_str()),
            ("AnalysisFailed", "Something else.")
        );
        let fresh = of_release(&checkout(), &held, "r2", &MicroserviceStatus::default()).unwrap();
        assert_eq!(
            fresh.progress.as_deref(),
            Some("The release of revision r2 was aborted.")
        );
        assert_eq!(
            of_release(&checkout(), &held, "r3", &MicroserviceStatus::default()),
            None
        );
    }

    #[test]
    fn returning_traffic_after_a_spec_change_is_progress() {
        let mut release = at_step(1, 20);
        release.returning = Some(Returning {
            reason: "SpecChanged".into(),
            message: "The spec changed during the release of r2.".into(),
            abort: false,
        });
        let returning = assess(&decision(Some(release), None));
        assert_eq!(returning.phase, Phase::Progressing);
        assert_eq!(
            returning.message,
            "The spec changed during the release of r2. Returning traffic to the stable version."
        );
        assert_eq!(
            returning.serving.as_deref(),
            Some("Returning traffic to the stable version.")
        );
    }

    #[test]
    fn a_rollout_reports_pods_ready_apart_from_pods_updated() {
        let deployment: CachedDeployment = serde_json::from_str(
            &json!({
                "metadata": {"name": "checkout-blue", "generation": 3},
                "spec": {"replicas": 3, "selector": {}, "template": {}},
                "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2,
                           "readyReplicas": 1, "availableReplicas": 1}
            })
            .to_string(),
        )
        .unwrap();
        let rolling = of_rollout(&checkout(), Some(&deployment), 3);
        assert_eq!(
            rolling.message,
            "Rolling out registry.example/checkout:1.5.0: 2 of 3 pods updated, 1 ready."
        );
        assert_eq!(rolling.serving.as_deref(), Some("1 of 3 pods ready."));
        let creating = of_rollout(&checkout(), None, 3);
        assert_eq!(
            (creating.reason.as_str(), creating.message.as_str()),
            ("RollingOut", "Creating the Deployment.")
        );
    }
}
