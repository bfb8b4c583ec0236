//! Resolving a metric that names a MetricTemplate: the template's provider with the
//! arguments filled in, the metric's bounds over the template's. Pure; the controller reads
//! the templates from its cache and records the result when a release starts.

use std::collections::BTreeMap;

use super::template::substitute;
use crate::api::{Metric, MetricTemplateSpec, TemplatedMetric};

/// A template as the cache holds it: its spec and `metadata.generation`.
pub type FoundTemplate = (MetricTemplateSpec, Option<i64>);

/// Why a metric's template cannot be resolved, for the TemplateNotFound condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    #[error("metric {metric} names MetricTemplate {template}, which does not exist")]
    NotFound { metric: String, template: String },
    #[error(
        "metric {metric} gives no value for argument {arg} of MetricTemplate {template}, which has no default"
    )]
    MissingArg {
        metric: String,
        template: String,
        arg: String,
    },
    #[error(
        "metric {metric} gives argument {arg}, which MetricTemplate {template} does not declare"
    )]
    UnknownArg {
        metric: String,
        template: String,
        arg: String,
    },
    #[error(
        "MetricTemplate {template} uses {{{{args.{arg}}}}} without declaring it in spec.args (metric {metric})"
    )]
    Undeclared {
        metric: String,
        template: String,
        arg: String,
    },
    #[error(
        "metric {metric}: MetricTemplate {template} is a Prometheus query and neither it nor the metric sets a min or max bound, nor the metric a compare"
    )]
    NoBounds { metric: String, template: String },
}

/// The metrics of `metrics` that name a template, each resolved with `lookup`; the first
/// problem when one cannot be.
pub fn resolve_all(
    metrics: &[Metric],
    lookup: impl Fn(&str) -> Option<FoundTemplate>,
) -> Result<Vec<TemplatedMetric>, TemplateProblem> {
    metrics
        .iter()
        .filter_map(|metric| {
            let name = metric.template_ref.as_deref()?;
            Some(resolve(metric, name, lookup(name)))
        })
        .collect()
}

/// `metric` resolved against `found`, the template it names (`template`), if it exists.
pub fn resolve(
    metric: &Metric,
    template: &str,
    found: Option<FoundTemplate>,
) -> Result<TemplatedMetric, TemplateProblem> {
    let problem_with = |arg: &str| (metric.name.clone(), template.to_string(), arg.to_string());
    let Some((spec, generation)) = found else {
        return Err(TemplateProblem::NotFound {
            metric: metric.name.clone(),
            template: template.into(),
        });
    };
    if let Some(unknown) = metric
        .args
        .keys()
        .find(|given| !spec.args.iter().any(|a| &a.name == *given))
    {
        let (metric, template, arg) = problem_with(unknown);
        return Err(TemplateProblem::UnknownArg {
            metric,
            template,
            arg,
        });
    }
    let mut values = BTreeMap::new();
    for arg in &spec.args {
        let Some(value) = metric.args.get(&arg.name).or(arg.default.as_ref()) else {
            let (metric, template, arg) = problem_with(&arg.name);
            return Err(TemplateProblem::MissingArg {
                metric,
                template,
                arg,
            });
        };
        values.insert(format!("args.{}", arg.name), value.as_str());
    }
    let fill = |text: &str| -> Result<String, TemplateProblem> {
        let filled = substitute(text, |key| values.get(key).copied());
        match undeclared_arg(&filled) {
            Some(arg) => {
                let (metric, template, arg) = problem_with(&arg);
                Err(TemplateProblem::Undeclared {
                    metric,
                    template,
                    arg,
                })
            }
            None => Ok(filled),
        }
    };
    let mut prometheus = spec.prometheus.clone();
    if let Some(query) = prometheus.as_mut() {
        query.query = fill(&query.query)?;
    }
    let mut webhook = spec.webhook.clone();
    if let Some(hook) = webhook.as_mut() {
        hook.url = fill(&hook.url)?;
    }
    let (min, max) = (metric.min.or(spec.min), metric.max.or(spec.max));
    if prometheus.is_some() && min.is_none() && max.is_none() && metric.compare.is_none() {
        return Err(TemplateProblem::NoBounds {
            metric: metric.name.clone(),
            template: template.into(),
        });
    }
    Ok(TemplatedMetric {
        metric: metric.name.clone(),
        template: template.into(),
        generation,
        prometheus,
        webhook,
        min,
        max,
    })
}

/// The metric a resolved template measures as.
pub fn as_metric(templated: &TemplatedMetric) -> Metric {
    Metric {
        name: templated.metric.clone(),
        prometheus: templated.prometheus.clone(),
        webhook: templated.webhook.clone(),
        min: templated.min,
        max: templated.max,
        ..Metric::default()
    }
}

/// The first `{{args.<name>}}` left in `text`, spaces inside the braces allowed.
fn undeclared_arg(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let inside = &rest[start + 2..];
        let end = inside.find("}}")?;
        if let Some(name) = inside[..end].trim().strip_prefix("args.") {
            return Some(name.to_string());
        }
        rest = &rest[start + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{PrometheusMetric, TemplateArg, WebhookMetric};

    fn success_rate() -> FoundTemplate {
        let spec = MetricTemplateSpec {
            description: Some("Share of requests answered without a 5xx".into()),
            args: vec![
                TemplateArg {
                    name: "window".into(),
                    default: Some("1m".into()),
                    description: None,
                },
                TemplateArg {
                    name: "job".into(),
                    default: None,
                    description: None,
                },
            ],
            prometheus: Some(PrometheusMetric {
                credentials: None,
                address: None,
                query: r#"rate(ok{job="{{ args.job }}",svc="{{name}}-{{candidateSlot}}"}[{{args.window}}])"#.into(),
            }),
            webhook: None,
            min: Some(0.99),
            max: None,
        };
        (spec, Some(3))
    }

    fn using(template: &str, args: &[(&str, &str)]) -> Metric {
        Metric {
            name: "success".into(),
            template_ref: Some(template.into()),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Metric::default()
        }
    }

    #[test]
    fn fills_the_arguments_and_leaves_the_release_placeholders_for_each_round() {
        let metric = using("success-rate", &[("job", "edge")]);
        let resolved = resolve(&metric, "success-rate", Some(success_rate())).unwrap();
        assert_eq!(
            resolved.prometheus.unwrap().query,
            r#"rate(ok{job="edge",svc="{{name}}-{{candidateSlot}}"}[1m])"#
        );
        assert_eq!((resolved.min, resolved.max), (Some(0.99), None));
        assert_eq!(resolved.generation, Some(3));
        assert_eq!(resolved.template, "success-rate");
    }

    #[test]
    fn the_metric_s_bounds_and_arguments_replace_the_template_s_defaults() {
        let mut metric = using("success-rate", &[("job", "edge"), ("window", "5m")]);
        metric.min = Some(0.9);
        metric.max = Some(1.0);
        let resolved = resolve(&metric, "success-rate", Some(success_rate())).unwrap();
        assert!(resolved.prometheus.unwrap().query.ends_with("[5m])"));
        assert_eq!((resolved.min, resolved.max), (Some(0.9), Some(1.0)));
    }

    #[test]
    fn every_problem_names_the_metric_the_template_and_what_is_missing() {
        let missing = resolve(&using("nope", &[]), "nope", None).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "metric success names MetricTemplate nope, which does not exist"
        );
        let no_job = resolve(&using("t", &[]), "t", Some(success_rate())).unwrap_err();
        assert!(matches!(&no_job, TemplateProblem::MissingArg { arg, .. } if arg == "job"));
        let typo = using("t", &[("job", "a"), ("jobs", "b")]);
        let unknown = resolve(&typo, "t", Some(success_rate())).unwrap_err();
        assert!(matches!(&unknown, TemplateProblem::UnknownArg { arg, .. } if arg == "jobs"));
        let (mut spec, generation) = success_rate();
        spec.prometheus.as_mut().unwrap().query = "x{a=\"{{ args.region }}\"}".into();
        let undeclared = resolve(
            &using("t", &[("job", "a")]),
            "t",
            Some((spec.clone(), generation)),
        )
        .unwrap_err();
        assert_eq!(
            undeclared.to_string(),
            "MetricTemplate t uses {{args.region}} without declaring it in spec.args (metric success)"
        );
        spec.prometheus.as_mut().unwrap().query = "x".into();
        spec.min = None;
        let unbounded = resolve(&using("t", &[("job", "a")]), "t", Some((spec, generation)));
        assert!(matches!(unbounded, Err(TemplateProblem::NoBounds { .. })));
    }

    #[test]
    fn a_webhook_template_fills_its_url_and_needs_no_bounds() {
        let spec = MetricTemplateSpec {
            args: vec![TemplateArg {
                name: "suite".into(),
                default: Some("smoke".into()),
                description: None,
            }],
            webhook: Some(WebhookMetric {
                url: "http://tests.qa.svc/run/{{args.suite}}".into(),
                timeout_seconds: None,
            }),
            ..MetricTemplateSpec::default()
        };
        let resolved = resolve(&using("t", &[]), "t", Some((spec, None))).unwrap();
        let metric = as_metric(&resolved);
        assert_eq!(metric.webhook.unwrap().url, "http://tests.qa.svc/run/smoke");
        assert_eq!(metric.template_ref, None);
    }

    #[test]
    fn only_metrics_with_a_template_are_resolved() {
        let inline = Metric {
            name: "inline".into(),
            prometheus: Some(PrometheusMetric {
                credentials: None,
                address: None,
                query: "q".into(),
            }),
            max: Some(1.0),
            ..Metric::default()
        };
        let metrics = [inline, using("success-rate", &[("job", "edge")])];
        let lookup = |name: &str| (name == "success-rate").then(success_rate);
        let resolved = resolve_all(&metrics, lookup).unwrap();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].metric, "success");
        let missing = resolve_all(&metrics, |_| None).unwrap_err();
        assert!(matches!(missing, TemplateProblem::NotFound { .. }));
    }
}
