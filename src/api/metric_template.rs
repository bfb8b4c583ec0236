//! The `MetricTemplate` custom resource (`weir.dev/v1alpha1`, cluster-scoped): a metric a
//! platform team writes once and every Microservice names, with arguments.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::rollout::{PrometheusMetric, WebhookMetric};

// `kube` derives the `MetricTemplate` type itself from this spec struct.
/// A metric shared by many Microservices: the provider, the query with Weir's placeholders
/// and `{{args.<name>}}`, the arguments it declares, and default bounds.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "weir.dev",
    version = "v1alpha1",
    kind = "MetricTemplate",
    shortname = "mtpl",
    category = "weir",
    doc = "A MetricTemplate is a metric a platform team writes once: the query, its arguments and default bounds. A Microservice's metric names it with templateRef and args.",
    printcolumn(
        name = "Description",
        type_ = "string",
        json_path = ".spec.description"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.prometheus) != has(self.webhook)").message("a MetricTemplate sets exactly one of prometheus or webhook"),
    validation = Rule::new("!has(self.min) || !has(self.max) || self.min <= self.max").message("a MetricTemplate's min must not be greater than its max")
)]
pub struct MetricTemplateSpec {
    /// What the metric measures, for the people who pick it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// Arguments the query or URL names as `{{args.<name>}}`. An argument without a default
    /// must be given by every metric that uses the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("argument names must be unique"))]
    pub args: Vec<TemplateArg>,
    /// A PromQL query; `{{args.<name>}}` and the release placeholders are replaced before
    /// it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// A webhook check; `{{args.<name>}}` in its URL is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookMetric>,
    /// Default lower bound; a metric's own `min` replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Default upper bound; a metric's own `max` replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// An argument of a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateArg {
    /// The name the query uses as `{{args.<name>}}`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub name: String,
    /// The value when a metric does not give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub default: Option<String>,
    /// What the argument means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
}
