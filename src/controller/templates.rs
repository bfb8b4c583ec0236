//! MetricTemplates: one cluster-wide cache shared by every namespace's controller, and the
//! resolution of a Microservice's metrics against it.

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use super::watches::without_errors;
use crate::analysis::resolve::resolve_all;
use crate::api::conditions::reason;
use crate::api::{MetricTemplate, Microservice, TemplatedMetric};
use crate::release::HoldBack;

/// The cache of MetricTemplates, or None when the cluster does not serve them (a CRD older
/// than this operator): a metric with a `templateRef` then holds its release back.
pub async fn watch(client: &Client) -> Option<Store<MetricTemplate>> {
    let served = client
        .list_api_group_resources("weir.dev/v1alpha1")
        .await
        .is_ok_and(|list| list.resources.iter().any(|r| r.name == "metrictemplates"));
    if !served {
        tracing::warn!(
            "MetricTemplates are not served (install crds/metrictemplates.weir.dev.yaml): metrics with a templateRef hold their releases back"
        );
        return None;
    }
    let api: Api<MetricTemplate> = Api::all(client.clone());
    let (cache, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|template: &mut MetricTemplate| template.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    let stream = without_errors(stream, "MetricTemplate".into());
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    Some(cache)
}

/// True when a metric of `ms` names a template.
pub fn uses_templates(ms: &Microservice) -> bool {
    metrics(ms).iter().any(|m| m.template_ref.is_some())
}

/// The metrics of `ms` that name a template, resolved against `cache`, or why they cannot
/// be, in words.
pub fn resolve(
    ms: &Microservice,
    cache: Option<&Store<MetricTemplate>>,
) -> Result<Vec<TemplatedMetric>, HoldBack> {
    let lookup = |name: &str| {
        let template = cache?.get(&reflector::ObjectRef::new(name))?;
        Some((template.spec.clone(), template.metadata.generation))
    };
    resolve_all(metrics(ms), lookup)
        .map_err(|problem| (reason::TEMPLATE_NOT_FOUND, problem.to_string()))
}

pub fn metrics(ms: &Microservice) -> &[crate::api::Metric] {
    ms.spec
        .rollout
        .as_ref()
        .and_then(|r| r.analysis.as_ref())
        .map_or(&[], |a| a.metrics.as_slice())
}
