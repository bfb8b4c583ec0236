//! `kubectl weir status NAME [-w]`.

use std::io::IsTerminal;
use std::pin::pin;

use futures::TryStreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};

use super::args::{OutputFormat, StatusArgs};
use super::client::{EVENTS_SHOWN, Target};
use super::error::Error;
use super::print;
use super::render::{status_text, structured};
use super::summary::{StatusSummary, summarize};
use crate::api::{Microservice, Phase};
use crate::release::ACTION_ANNOTATION;

/// Clears a terminal and moves the cursor home.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

pub async fn show(target: &Target, args: &StatusArgs) -> Result<(), Error> {
    let ms = target.microservice(&args.name).await?;
    let summary = summary_of(target, &ms).await?;
    if !args.watch {
        return print(&render(&summary, args.output)?);
    }
    watch(target, args).await
}

/// Redraws on every change of the summary: until Ctrl-C on a terminal; otherwise until the
/// release is over, so that scripts and CI logs get an end.
async fn watch(target: &Target, args: &StatusArgs) -> Result<(), Error> {
    let terminal = std::io::stdout().is_terminal();
    let changes = watcher::watch_object(target.microservices(), &args.name).default_backoff();
    let mut changes = pin!(changes);
    let mut interrupted = pin!(tokio::signal::ctrl_c());
    let mut last: Option<StatusSummary> = None;
    loop {
        let change = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            change = changes.try_next() => change,
        };
        let ms = match change {
            Ok(Some(Some(ms))) => ms,
            Ok(Some(None)) => {
                return Err(Error::NotFound {
                    name: args.name.clone(),
                    namespace: target.namespace.clone(),
                });
            }
            Ok(None) => return Ok(()),
            Err(source) => {
                // The backoff retries; say why the picture may be stale meanwhile.
                let name = args.name.clone();
                let source = Box::new(source);
                eprintln!("{}", Error::Watch { name, source });
                continue;
            }
        };
        let summary = summary_of(target, &ms).await?;
        if last.as_ref() != Some(&summary) {
            let separator = match (terminal, &last, args.output) {
                (true, _, _) => CLEAR_SCREEN,
                (false, None, _) | (false, _, Some(OutputFormat::Json)) => "",
                (false, Some(_), Some(OutputFormat::Yaml)) => "---\n",
                (false, Some(_), None) => "\n",
            };
            print(&format!("{separator}{}", render(&summary, args.output)?))?;
            last = Some(summary);
        }
        if !terminal && release_over(&ms) {
            return Ok(());
        }
    }
}

async fn summary_of(target: &Target, ms: &Microservice) -> Result<StatusSummary, Error> {
    let events = target.events(&ms.name_any()).await?;
    Ok(summarize(ms, &events, EVENTS_SHOWN))
}

fn render(summary: &StatusSummary, output: Option<OutputFormat>) -> Result<String, Error> {
    match output {
        None => Ok(status_text(summary, Timestamp::now())),
        Some(format) => structured(summary, format).map_err(Error::Serialize),
    }
}

/// Weir has seen the latest spec and no release runs or waits to start: the phase is
/// Healthy, Paused by nothing, or Degraded.
pub fn release_over(ms: &Microservice) -> bool {
    let Some(status) = &ms.status else {
        return false;
    };
    status.observed_generation == ms.metadata.generation
        && status.release.is_none()
        && status.phase.is_some_and(|p| p != Phase::Progressing)
        && !ms.annotations().contains_key(ACTION_ANNOTATION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::fixtures::{canary, paused_at_second_step};

    fn observed(mut ms: Microservice, generation: i64, seen: i64) -> Microservice {
        ms.metadata.generation = Some(generation);
        ms.status.as_mut().unwrap().observed_generation = Some(seen);
        ms
    }

    #[test]
    fn a_release_is_over_once_the_latest_spec_settled_without_one() {
        assert!(release_over(&observed(canary(), 2, 2)));
        assert!(
            !release_over(&observed(canary(), 3, 2)),
            "a new spec not seen yet"
        );
        assert!(!release_over(&observed(paused_at_second_step(), 2, 2)));
    }

    #[test]
    fn a_pending_action_is_not_over_yet() {
        let mut ms = observed(canary(), 2, 2);
        ms.annotations_mut()
            .insert(ACTION_ANNOTATION.into(), "retry@1".into());
        assert!(!release_over(&ms));
    }
}
