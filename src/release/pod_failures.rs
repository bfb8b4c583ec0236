//! Why a failed candidate's pods did not serve, in words: the waiting reasons of their
//! containers (`ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerConfigError`, ...),
//! a last termination by `OOMKilled`, and `Unschedulable` with the scheduler's message,
//! counted and deduplicated, for the abort's message, its event and `kubectl weir status`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Waiting reasons that say a container cannot run, as the kubelet words them.
const WAITING_FAILURES: [&str; 7] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];
/// The most reasons a message carries.
const MOST_REASONS: usize = 4;
/// The longest message of one reason.
const LONGEST_MESSAGE: usize = 200;

/// The reasons of `pods`, most frequent first, each with how many pods show it; empty when
/// none shows one.
pub fn reasons(pods: &[Pod]) -> Vec<String> {
    let mut counted: BTreeMap<(String, String), usize> = BTreeMap::new();
    for pod in pods {
        let mut found: Vec<(String, String)> = Vec::new();
        let status = pod.status.clone().unwrap_or_default();
        for condition in status.conditions.iter().flatten() {
            if condition.type_ == "PodScheduled"
                && condition.status == "False"
                && condition.reason.as_deref() == Some("Unschedulable")
            {
                found.push((
                    "Unschedulable".into(),
                    condition.message.clone().unwrap_or_default(),
                ));
            }
        }
        let containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for container in containers {
            found.extend(container_reasons(container));
        }
        found.sort();
        found.dedup();
        for key in found {
            *counted.entry(key).or_default() += 1;
        }
    }
    let mut counted: Vec<_> = counted.into_iter().collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counted
        .into_iter()
        .take(MOST_REASONS)
        .map(|((reason, message), pods)| {
            let pods = if pods == 1 {
                "1 pod".to_string()
            } else {
                format!("{pods} pods")
            };
            match cut(&message) {
                message if message.is_empty() => format!("{reason} ({pods})"),
                message => format!("{reason} ({pods}): {message}"),
            }
        })
        .collect()
}

fn container_reasons(container: &ContainerStatus) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let name = &container.name;
    let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
    if let Some(waiting) = waiting {
        let reason = waiting.reason.clone().unwrap_or_default();
        if WAITING_FAILURES.contains(&reason.as_str()) {
            let message = waiting.message.clone().unwrap_or_default();
            found.push((
                reason,
                format!("container {name}: {message}")
                    .trim_end_matches(": ")
                    .to_string(),
            ));
        }
    }
    let last = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    if last.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled")) {
        found.push((
            "OOMKilled".into(),
            format!("container {name} was killed for using more memory than its limit"),
        ));
    }
    found
}

fn cut(message: &str) -> String {
    let message = message.trim();
    match message.char_indices().nth(LONGEST_MESSAGE) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_string(),
    }
}

/// The sentence added to an abort's message: what the new version's pods show.
pub fn sentence(reasons: &[String]) -> Option<String> {
    (!reasons.is_empty()).then(|| format!("The new version's pods: {}.", reasons.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    fn waiting(reason: &str, message: &str) -> Pod {
        pod(
            json!({"containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}]}),
        )
    }

    #[test]
    fn reasons_are_counted_deduplicated_and_most_frequent_first() {
        let pods = [
            waiting("ImagePullBackOff", "Back-off pulling image \"x:2\""),
            waiting("ImagePullBackOff", "Back-off pulling image \"x:2\""),
            waiting("ContainerCreating", ""),
            pod(
                json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}]}),
            ),
        ];
        assert_eq!(
            reasons(&pods),
            [
                "ImagePullBackOff (2 pods): container app: Back-off pulling image \"x:2\"",
                "Unschedulable (1 pod): 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
            ]
        );
    }

    #[test]
    fn an_oom_kill_is_read_from_the_last_termination() {
        let crashing = pod(
            json!({"containerStatuses": [{"name": "app", "image": "x", "imageID": "",
            "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}),
        );
        assert_eq!(
            reasons(&[crashing]),
            [
                "CrashLoopBackOff (1 pod): container app: back-off 40s restarting failed container",
                "OOMKilled (1 pod): container app was killed for using more memory than its limit",
            ]
        );
        assert_eq!(
            reasons(&[waiting("ContainerCreating", "")]),
            Vec::<String>::new()
        );
        assert_eq!(sentence(&[]), None);
        assert_eq!(
            sentence(&["A (1 pod)".into()]).as_deref(),
            Some("The new version's pods: A (1 pod).")
        );
    }
}
