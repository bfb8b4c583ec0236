//! The text of `kubectl weir status`.

use k8s_openapi::jiff::Timestamp;

use super::{age, table};
use crate::api::{HeaderMatch, Slot};
use crate::plugin::summary::{ReleaseSummary, StatusSummary, StepState, TrafficSummary};

/// Marks the steps that are done and the current one.
const DONE: &str = "✔";
const CURRENT: &str = "▶";

/// Everything `status` shows, ages counted from `now`.
pub fn status_text(s: &StatusSummary, now: Timestamp) -> String {
    [
        overview(s),
        steps(s),
        traffic(s),
        analysis(s, now),
        conditions(s, now),
        events(s, now),
    ]
    .into_iter()
    .filter(|section| !section.is_empty())
    .collect::<Vec<_>>()
    .join("\n")
}

fn overview(s: &StatusSummary) -> String {
    let field = |label: &str, value: &str| vec![format!("{label}:"), value.to_string()];
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    let mut rows = vec![
        field("Name", &s.name),
        field("Namespace", &s.namespace),
        field("Image", &s.image),
        field("Strategy", &s.strategy),
        field("Phase", &or_dash(&s.phase)),
    ];
    if let Some(message) = &s.message {
        rows.push(field("Message", message));
    }
    let slot = s.active_slot.map(|slot| slot.as_str().to_string());
    rows.push(field("Active slot", &or_dash(&slot)));
    rows.push(field("Stable", &or_dash(&s.stable_revision)));
    if let Some(candidate) = &s.candidate_revision {
        rows.push(field("Candidate", candidate));
    }
    if let Some(aborted) = &s.aborted_revision {
        rows.push(field(
            "Aborted",
            &format!("{aborted} (not retried until the spec changes or a retry)"),
        ));
    }
    table("", &rows)
}

fn steps(s: &StatusSummary) -> String {
    if s.steps.is_empty() {
        let why = match s.strategy.as_str() {
            "RollingUpdate" => "RollingUpdate replaces the pods in place",
            _ => "a release promotes at once",
        };
        return format!("Steps: none ({why})\n");
    }
    let where_ = match &s.release {
        None => "no release in progress".to_string(),
        Some(ReleaseSummary {
            returning: Some(returning),
            ..
        }) => format!(
            "returning traffic to the stable version: {}",
            returning.reason
        ),
        Some(r) if r.promoting => "every step done, promoting".into(),
        Some(r) if r.paused => format!("step {} of {}, paused by hand", r.step, r.step_count),
        Some(r) => format!("step {} of {}", r.step, r.step_count),
    };
    let mut text = format!("Steps ({where_}):\n");
    for step in &s.steps {
        let mark = match step.state {
            StepState::Done => DONE,
            StepState::Current => CURRENT,
            StepState::Pending => " ",
        };
        text.push_str(&format!("  {mark} {}. {}\n", step.number, step.description));
    }
    if s.release
        .as_ref()
        .is_some_and(|r| r.promoting && r.returning.is_none())
    {
        text.push_str(&format!(
            "  {CURRENT} promotion: the new version takes all traffic\n"
        ));
    }
    text
}

fn traffic(s: &StatusSummary) -> String {
    let Some(t) = &s.traffic else {
        return String::new();
    };
    let verified = if t.verified {
        "verified"
    } else {
        "not yet verified"
    };
    let mut text = format!("Traffic ({verified}):\n");
    let rows: Vec<Vec<String>> = [Slot::Blue, Slot::Green]
        .into_iter()
        .map(|slot| {
            vec![
                slot.as_str().to_string(),
                format!("{}%", weight(t, slot)),
                role(s, t, slot).to_string(),
            ]
        })
        .collect();
    text.push_str(&table("  ", &rows));
    if let Some(candidate) = t.candidate_slot {
        if t.mirror_percent > 0 {
            text.push_str(&format!(
                "  mirror: {}% of requests copied to {}\n",
                t.mirror_percent,
                candidate.as_str()
            ));
        }
        if !t.header_route.is_empty() {
            text.push_str(&format!(
                "  header route: {} to {}\n",
                header_matches(&t.header_route),
                candidate.as_str()
            ));
        }
    }
    text
}

fn weight(t: &TrafficSummary, slot: Slot) -> i32 {
    match slot {
        Slot::Blue => t.blue,
        Slot::Green => t.green,
    }
}

fn role(s: &StatusSummary, t: &TrafficSummary, slot: Slot) -> &'static str {
    match t.candidate_slot {
        Some(candidate) if candidate == slot => "candidate",
        Some(_) => "stable",
        None if s.active_slot == Some(slot) => "active",
        None => "",
    }
}

/// `x-user-group=beta, x-client~^4\.`: `=` for an exact value, `~` for a regex.
pub fn header_matches(matches: &[HeaderMatch]) -> String {
    matches
        .iter()
        .map(|m| match (&m.value, &m.regex) {
            (Some(value), _) => format!("{}={value}", m.name),
            (None, Some(regex)) => format!("{}~{regex}", m.name),
            (None, None) => m.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn analysis(s: &StatusSummary, now: Timestamp) -> String {
    if s.analysis.is_empty() {
        return String::new();
    }
    let mut rows = vec![columns(&["METRIC", "VALUE", "OUTCOME", "AGE", "MESSAGE"])];
    rows.extend(s.analysis.iter().map(|m| {
        vec![
            m.metric.clone(),
            m.value.map_or("-".into(), |v| v.to_string()),
            format!("{:?}", m.outcome),
            age(Some(m.at.0), now),
            m.message.clone().unwrap_or_default(),
        ]
    }));
    format!("Analysis:\n{}", table("  ", &rows))
}

fn conditions(s: &StatusSummary, now: Timestamp) -> String {
    if s.conditions.is_empty() {
        return "Conditions: none\n".into();
    }
    let mut rows = vec![columns(&["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"])];
    rows.extend(s.conditions.iter().map(|c| {
        vec![
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            age(Some(c.last_transition_time.0), now),
            c.message.clone(),
        ]
    }));
    format!("Conditions:\n{}", table("  ", &rows))
}

fn events(s: &StatusSummary, now: Timestamp) -> String {
    if s.events.is_empty() {
        return "Events: none\n".into();
    }
    let mut rows = vec![columns(&["AGE", "TYPE", "REASON", "MESSAGE"])];
    rows.extend(s.events.iter().map(|e| {
        let mut when = age(e.last_seen, now);
        if e.count > 1 {
            when = format!("{when} (x{})", e.count);
        }
        vec![when, e.type_.clone(), e.reason.clone(), e.message.clone()]
    }));
    format!("Events:\n{}", table("  ", &rows))
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::fixtures::{canary, event, now, paused_at_second_step};
    use crate::plugin::summary::summarize;

    #[test]
    fn a_paused_canary_marks_its_step_and_splits_the_weight() {
        let summary = summarize(&paused_at_second_step(), &[event("ReleaseStarted", -90)], 5);
        let text = status_text(&summary, now());
        let expected = "\
Name:          checkout
Namespace:     shop
Image:         registry.example/checkout:2
Strategy:      Canary
Phase:         Paused
Message:       Waiting for a promote at step 2 of 4.
Active slot:   blue
Stable:        5d8c7f9b6
Candidate:     84b7c6d9f

Steps (step 2 of 4):
  ✔ 1. setWeight 20
  ▶ 2. pause until promoted
    3. setWeight 60
    4. pause until promoted

Traffic (verified):
  blue    80%   stable
  green   20%   candidate

Conditions:
  TYPE    STATUS   REASON      AGE   MESSAGE
  Ready   True     Available   50m   3 of 3 pods ready.

Events:
  AGE   TYPE     REASON           MESSAGE
  90s   Normal   ReleaseStarted   ReleaseStarted happened.
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn a_settled_canary_lists_its_steps_unmarked_and_the_active_slot() {
        let text = status_text(&summarize(&canary(), &[], 5), now());
        assert!(
            text.contains("Steps (no release in progress):\n    1. setWeight 20\n"),
            "{text}"
        );
        assert!(
            text.contains("  blue    100%   active\n  green   0%\n"),
            "{text}"
        );
        assert!(text.contains("Events: none\n"), "{text}");
    }

    #[test]
    fn mirror_and_header_route_name_the_candidate_slot() {
        let mut ms = paused_at_second_step();
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.mirror_percent = 50;
        release.weight_verified = false;
        release.header_route = vec![HeaderMatch {
            name: "x-user-group".into(),
            value: Some("beta".into()),
            regex: None,
        }];
        let text = status_text(&summarize(&ms, &[], 5), now());
        assert!(text.contains("Traffic (not yet verified):"), "{text}");
        assert!(
            text.contains("  mirror: 50% of requests copied to green\n"),
            "{text}"
        );
        assert!(
            text.contains("  header route: x-user-group=beta to green\n"),
            "{text}"
        );
    }

    #[test]
    fn a_release_returning_to_stable_says_why() {
        let mut ms = paused_at_second_step();
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.returning = Some(crate::api::Returning {
            reason: "AnalysisFailed".into(),
            message: "error-rate = 0.04, above the maximum 0.01".into(),
            abort: true,
        });
        let text = status_text(&summarize(&ms, &[], 5), now());
        assert!(
            text.contains("Steps (returning traffic to the stable version: AnalysisFailed):"),
            "{text}"
        );
    }

    #[test]
    fn a_promoting_release_shows_the_promotion_as_current() {
        let mut ms = paused_at_second_step();
        let release = ms.status.as_mut().unwrap().release.as_mut().unwrap();
        release.step_index = 4;
        release.promoting = true;
        let text = status_text(&summarize(&ms, &[], 5), now());
        assert!(
            text.contains("Steps (every step done, promoting):"),
            "{text}"
        );
        assert!(
            text.contains(
                "  ✔ 4. pause until promoted\n  ▶ promotion: the new version takes all traffic\n"
            ),
            "{text}"
        );
    }
}
