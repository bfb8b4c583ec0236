//! How a new version reaches users: the strategy, its steps, the traffic router and the
//! analysis that gates it.

use gateway_api::grpcroutes::{GrpcRouteRulesFilters, GrpcRouteRulesMatches};
use gateway_api::httproutes::{
    HttpRouteRulesFilters, HttpRouteRulesMatches, HttpRouteRulesTimeouts,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::window::ReleaseWindow;

/// How a new version replaces the old one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.canary) || (has(self.strategy) && self.strategy == 'Canary')").message("rollout.canary is only used with strategy: Canary"),
    validation = Rule::new("!has(self.blueGreen) || (has(self.strategy) && self.strategy == 'BlueGreen')").message("rollout.blueGreen is only used with strategy: BlueGreen"),
    validation = Rule::new("!has(self.canary) || !has(self.canary.steps) || self.canary.steps.all(s, !has(s.setHeaderRoute) && !has(s.setMirror)) || (has(self.traffic) && has(self.traffic.gatewayAPI))").message("setHeaderRoute and setMirror steps need rollout.traffic.gatewayAPI: replica ratios cannot route by header or mirror traffic"),
    validation = Rule::new("!has(self.canary) || !has(self.canary.minPods) || (has(self.traffic) && has(self.traffic.gatewayAPI))").message("canary.minPods needs rollout.traffic.gatewayAPI: without a router the ratio of pods is the split"),
    validation = Rule::new("!has(self.canary) || !has(self.canary.steps) || self.canary.steps.all(s, !has(s.analysis)) || has(self.analysis)").message("an analysis step needs rollout.analysis with the metrics to run"),
    validation = Rule::new("!has(self.blueGreen) || !has(self.blueGreen.prePromotionAnalysis) || has(self.analysis)").message("blueGreen.prePromotionAnalysis needs rollout.analysis with the metrics to run"),
    validation = Rule::new("!has(self.canary) || !has(self.canary.steps) || !has(self.analysis) || self.canary.steps.all(s, !has(s.analysis) || !has(s.analysis.metrics) || s.analysis.metrics.all(n, self.analysis.metrics.exists(m, m.name == n)))").message("an analysis step names a metric that rollout.analysis.metrics does not define"),
    validation = Rule::new("!has(self.after) || has(self.group)").message("rollout.after names members of a release group: set rollout.group"),
    validation = Rule::new("(!has(self.canary) || !has(self.canary.postPromotionAnalysis)) && (!has(self.blueGreen) || !has(self.blueGreen.postPromotionAnalysis)) || has(self.analysis)").message("postPromotionAnalysis needs rollout.analysis with the metrics to run"),
    validation = Rule::new("!has(self.canary) || !has(self.canary.stableScale) || self.canary.stableScale != 'Dynamic' || (has(self.traffic) && has(self.traffic.gatewayAPI))").message("canary.stableScale: Dynamic needs rollout.traffic.gatewayAPI: without a router the ratio of pods is the split")
)]
pub struct Rollout {
    /// `RollingUpdate` (default): the pods are replaced in place, a few at a time.
    /// `Canary`: the new version runs beside the old one and receives traffic step by step.
    /// `BlueGreen`: the new version runs at full size behind `<name>-preview`, then all
    /// traffic switches at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Extra pods (a number or a percentage) a rolling update may start. Defaults to 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Seconds a rollout or a release step may go without progress before Weir gives up:
    /// a release is aborted, a rolling update turns Degraded. Pauses do not count. Defaults
    /// to 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: Option<i32>,
    /// The router that splits traffic during a release. Without one, the ratio of ready pods
    /// behind Service `<name>` approximates the weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// Steps of a `Canary` release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Settings of a `BlueGreen` release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
    /// Metrics that judge the new version during a release. They run in the background
    /// while the new version receives traffic, and once at each `analysis` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// Notifications of the release's moments to sinks configured on the operator
    /// (`--notification-sinks`), each moment delivered once per sink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub notify: Vec<Subscription>,
    /// Release configuration like code: the ConfigMaps (and, where the operator allows it,
    /// the Secrets) the pods reference are copied into immutable snapshots named after their
    /// content, and the pods mount the snapshots. An edit then makes a new revision that is
    /// released step by step, while the stable pods keep the old content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_config: Option<TrackConfig>,
    /// When a release may add exposure (a higher weight, a header route, a mirror, the
    /// promotion): outside every window those steps wait, with phase Paused and reason
    /// OutsideWindow, until the next window opens. Steps that reduce exposure and aborts
    /// never wait. Empty: any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub windows: Vec<ReleaseWindow>,
    /// A release group in this namespace: its members' releases move in lockstep. A member
    /// passes a step only once every member with a release in progress has reached the same
    /// step with its traffic confirmed, and an abort of any member aborts them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub group: Option<String>,
    /// Members of the same group whose releases must be promoted before this one starts
    /// (a frontend after its backend, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub after: Vec<String>,
}

/// Which referenced objects a release tracks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackConfig {
    /// Track referenced ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_maps: Option<bool>,
    /// Track referenced Secrets; the operator must also run with `--track-secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<bool>,
}

/// Which moments of a release go to which sink.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The moments: `Started`, `Paused`, `Promoted`, `Aborted`, `AnalysisFailed`. (Not
    /// `on`: kubectl and Helm read YAML 1.1, where an unquoted `on` is `true`.)
    #[schemars(length(min = 1, max = 5))]
    pub moments: Vec<Moment>,
    /// A sink the operator has, by name.
    #[schemars(length(min = 1, max = 63))]
    pub sink: String,
}

/// A moment of a release that a notification tells.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
pub enum Moment {
    /// A release of a new revision began.
    Started,
    /// The release waits for a person (a pause without a duration, or a manual pause).
    Paused,
    /// The new revision became stable.
    Promoted,
    /// The release was aborted, for any reason; traffic is back on the stable version.
    Aborted,
    /// The release was aborted because the analysis failed (also told as `Aborted`).
    AnalysisFailed,
}

impl Moment {
    pub fn as_str(self) -> &'static str {
        match self {
            Moment::Started => "Started",
            Moment::Paused => "Paused",
            Moment::Promoted => "Promoted",
            Moment::Aborted => "Aborted",
            Moment::AnalysisFailed => "AnalysisFailed",
        }
    }
}

/// Release strategies.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Strategy {
    #[default]
    RollingUpdate,
    Canary,
    BlueGreen,
}

/// The traffic router Weir drives.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// Weir owns an HTTPRoute `<name>` with weighted backends to the two slot Services.
    #[serde(
        default,
        rename = "gatewayAPI",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_api: Option<GatewayApiTraffic>,
}

/// Gateway API routing: north-south through Gateways, or east-west in a mesh (GAMMA) with
/// the Microservice's own Service as parent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.kind) || self.kind != 'GRPCRoute' || !has(self.rules)").message("rollout.traffic.gatewayAPI.rules are HTTPRoute rules: a GRPCRoute takes grpcRules"),
    validation = Rule::new("has(self.kind) && self.kind == 'GRPCRoute' || !has(self.grpcRules)").message("rollout.traffic.gatewayAPI.grpcRules need kind: GRPCRoute")
)]
pub struct GatewayApiTraffic {
    /// Gateways the route attaches to, or the Service `<name>` itself for a mesh.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<ParentRef>,
    /// Host names the route answers for; empty means every host of the parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub hostnames: Vec<String>,
    /// The name of the port in `spec.ports` the route sends traffic to. Defaults to the
    /// first port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub port: Option<String>,
    /// The requests the route takes, and what happens to them on the way: Gateway API's own
    /// matches, filters and timeouts. Weir adds the weighted backends (and the header route
    /// and the mirror) to each rule. Empty: every request to the hostnames.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub rules: Vec<RouteRule>,
    /// The kind of route Weir writes: `HTTPRoute` (the default) or `GRPCRoute`, with the
    /// same release: weights, header route, mirror, verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RouteKind>,
    /// For a GRPCRoute: the calls the route takes (by service and method, or headers) and
    /// the filters on the way, Gateway API's own types; Weir adds the backends to each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub grpc_rules: Vec<GrpcRouteRule>,
}

/// The kind of route a release moves traffic with.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum RouteKind {
    #[default]
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    #[serde(rename = "GRPCRoute")]
    GrpcRoute,
}

/// A rule of a GRPCRoute, without backends: the split is Weir's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.filters) || self.filters.all(f, f.type != 'RequestMirror')").message("rollout.traffic.gatewayAPI.grpcRules take no RequestMirror filter: mirroring is a canary step (setMirror)")
)]
pub struct GrpcRouteRule {
    /// Calls the rule takes (service and method, headers); any one matching is enough.
    /// Empty: every call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub matches: Vec<GrpcRouteRulesMatches>,
    /// Filters on the way: header modifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub filters: Vec<GrpcRouteRulesFilters>,
}

/// A rule of the route, without backends: the split is Weir's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.backendRefs)").message("rollout.traffic.gatewayAPI.rules take no backendRefs: Weir routes to the slot Services itself"),
    validation = Rule::new("!has(self.filters) || self.filters.all(f, f.type != 'RequestMirror')").message("rollout.traffic.gatewayAPI.rules take no RequestMirror filter: mirroring is a canary step (setMirror)")
)]
pub struct RouteRule {
    /// Requests the rule takes (path, headers, query parameters, method); any one matching
    /// is enough. Empty: every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub matches: Vec<HttpRouteRulesMatches>,
    /// Filters on the way: header modifiers, URL rewrites, redirects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub filters: Vec<HttpRouteRulesFilters>,
    /// Request and backend timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<HttpRouteRulesTimeouts>,
    /// Refused: the rule's backends are the slot Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "refused_backends")]
    pub backend_refs: Option<serde_json::Value>,
}

/// Any list, so that admission can refuse it with a sentence instead of dropping it.
fn refused_backends(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// A parent of the HTTPRoute: a Gateway (the default kind) or a Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.kind) || self.kind in ['Gateway', 'Service']").message("a parentRef's kind is Gateway (north-south) or Service (a mesh)"),
    validation = Rule::new("!has(self.kind) || self.kind != 'Service' || !has(self.namespace)").message("a Service parent is the Microservice's own Service, in its own namespace: leave namespace out")
)]
pub struct ParentRef {
    /// `gateway.networking.k8s.io` (default) for a Gateway, `""` (core) for a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Gateway` (default) or `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the Gateway or Service.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the parent; defaults to the Microservice's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A listener of the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// A port of the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// A canary release: the new version receives traffic in steps.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Canary {
    /// Steps, in order. After the last, the new version gets all traffic and becomes stable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub steps: Vec<CanaryStep>,
    /// Seconds the old version keeps its pods after promotion, so that going back is
    /// immediate. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_seconds: Option<i32>,
    /// The fewest pods the new version runs while it takes traffic, whatever its share (a
    /// 10% canary of five replicas is one pod otherwise, and one drain leaves it none); a
    /// weight counts only once this many are ready. Needs `traffic.gatewayAPI`: without a
    /// router the pods are the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_pods: Option<i32>,
    /// `Full` (default): the stable version keeps all its pods during the release, so an
    /// abort is instant. `Dynamic`: once the new version's pods are ready for its share, the
    /// stable version shrinks to what its own share needs; an abort then raises the stable
    /// version first and moves traffic back only as fast as its pods become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_scale: Option<StableScale>,
    /// After the promotion, while the old version keeps its pods, the analysis goes on
    /// measuring the new version with all the traffic; a failure switches back to the old
    /// version (reason PostPromotionAnalysisFailed). The old version is scaled down only
    /// after it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<PostPromotionAnalysis>,
}

/// How many pods the stable version keeps during a canary release.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum StableScale {
    #[default]
    Full,
    Dynamic,
}

/// The analysis that goes on after the promotion, with the old version warm.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.duration.matches('^([0-9]+(ms|s|m|h))+$') || duration(self.duration) <= duration('168h')").message("postPromotionAnalysis.duration must be at most 168h (a week)"))]
pub struct PostPromotionAnalysis {
    /// How long the new version is measured with all the traffic, for example `5m`. It
    /// passes when this is over and its last round passed.
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub duration: String,
    /// Names of the metrics to run; empty runs all of `rollout.analysis.metrics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub metrics: Vec<String>,
}

/// One step of a canary release: set exactly one field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.setWeight), has(self.pause), has(self.setHeaderRoute), has(self.setMirror), has(self.analysis)].filter(x, x).size() == 1").message("each canary step sets exactly one of setWeight, pause, setHeaderRoute, setMirror or analysis"))]
pub struct CanaryStep {
    /// Percent of traffic to send to the new version, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,
    /// Wait: for `duration`, or without one until a manual promote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// Send requests with matching headers to the new version (a feature toggle for a
    /// group), from this step until the release ends. An empty `match` removes the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<HeaderRoute>,
    /// Copy a percentage of live traffic to the new version and drop its answers, from this
    /// step until the release ends. `percent: 0` stops mirroring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_mirror: Option<Mirror>,
    /// Run the analysis once as a gate: it must pass for the release to go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisGate>,
}

/// A pause step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.duration) || !self.duration.matches('^([0-9]+(ms|s|m|h))+$') || duration(self.duration) <= duration('8784h')").message("pause.duration must be at most 8784h (a year)"))]
pub struct Pause {
    /// How long to wait, for example `30s`, `2m` or `1h`. Without it the release waits for
    /// a manual promote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub duration: Option<String>,
}

/// Requests to route to the new version by their headers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoute {
    /// Headers a request must all carry.
    #[serde(default, rename = "match")]
    #[schemars(length(max = 16))]
    pub matches: Vec<HeaderMatch>,
}

/// A header a request must carry to be routed to the new version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.value) != has(self.regex)").message("a header match sets exactly one of value or regex"))]
pub struct HeaderMatch {
    /// Header name, for example `x-user-group`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
    )]
    pub name: String,
    /// The exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub value: Option<String>,
    /// A regular expression the value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub regex: Option<String>,
}

/// Traffic mirroring.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    /// Percent of requests copied to the new version, 0 to 100.
    #[schemars(range(min = 0, max = 100))]
    pub percent: i32,
}

/// A one-off run of the analysis.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisGate {
    /// Names of the metrics to run; empty runs all of `rollout.analysis.metrics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub metrics: Vec<String>,
}

/// A blue/green release.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreen {
    /// Seconds to wait, once the new version is ready (and its pre-promotion analysis
    /// passed), before switching traffic on its own. Without it, the switch waits for a
    /// manual promote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub auto_promotion_seconds: Option<i32>,
    /// Seconds the old version keeps its pods after the switch, so that going back is
    /// immediate. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_seconds: Option<i32>,
    /// Analysis the new version must pass, reached through `<name>-preview`, before the
    /// switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<AnalysisGate>,
    /// After the switch, while the old version keeps its pods, the analysis goes on
    /// measuring the new version with all the traffic; a failure switches back to the old
    /// version (reason PostPromotionAnalysisFailed). The old version is scaled down only
    /// after it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<PostPromotionAnalysis>,
}

/// Metrics that judge the new version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.interval) || !self.interval.matches('^([0-9]+(ms|s|m|h))+$') || duration(self.interval) <= duration('24h')").message("analysis.interval must be at most 24h"))]
pub struct Analysis {
    /// Time between measurements, for example `30s`. Defaults to `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub interval: Option<String>,
    /// Failed measurement rounds in a row that are tolerated; one more aborts the release.
    /// Defaults to 0: the first failure aborts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failure_limit: Option<i32>,
    /// Inconclusive rounds in a row (no data, metrics source unreachable) that are
    /// tolerated; the release waits meanwhile, and one more aborts it. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub inconclusive_limit: Option<i32>,
    /// The metrics; each names one provider.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.name == m.name))").message("metric names must be unique"))]
    pub metrics: Vec<Metric>,
}

/// One metric and its bounds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("[has(self.prometheus), has(self.webhook), has(self.templateRef), has(self.external)].filter(x, x).size() == 1").message("a metric sets exactly one of prometheus, webhook, external or templateRef"),
    validation = Rule::new("!has(self.external) || has(self.min) || has(self.max) || has(self.compare)").message("an external metric needs a min or a max bound, or compare"),
    validation = Rule::new("!has(self.args) || has(self.templateRef)").message("a metric's args are for its templateRef: set templateRef or remove args"),
    validation = Rule::new("!has(self.prometheus) || has(self.min) || has(self.max) || has(self.compare)").message("a prometheus metric needs a min or a max bound, or compare"),
    validation = Rule::new("!has(self.compare) || !has(self.webhook)").message("compare runs the metric's query on both versions: it needs prometheus, external or a templateRef, not a webhook"),
    validation = Rule::new("!has(self.min) || !has(self.max) || self.min <= self.max").message("a metric's min must not be greater than its max")
)]
pub struct Metric {
    /// Name shown in status and events.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// A PromQL query whose first sample is the measured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// A Kubernetes external metric (`external.metrics.k8s.io`), read with the operator's
    /// ServiceAccount through the API server: whatever metrics adapter the cluster runs
    /// (Datadog, a cloud provider's, KEDA) answers, with no credentials in Weir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetric>,
    /// A URL that receives a POST describing the release. Any answer but 2xx fails; a 2xx
    /// answer with a numeric `value` in its JSON body is judged against `min` and `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookMetric>,
    /// The name of a MetricTemplate (cluster-scoped) that gives the provider and query. It
    /// is read when a release starts; the release keeps what it read (see
    /// `status.release.analysis.templates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub template_ref: Option<String>,
    /// Values of the template's arguments, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    #[x_kube(validation = Rule::new("self.all(k, size(self[k]) <= 1024)").message("an argument's value must be at most 1024 characters"))]
    pub args: BTreeMap<String, String>,
    /// Judge the new version against the stable one: the same query runs with the slot and
    /// revision placeholders of each, and the new version's value may exceed (or fall short
    /// of) the stable version's by no more than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    /// The value must be at least this. With a template, replaces the template's `min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The value must be at most this. With a template, replaces the template's `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// What a failure of this metric does: `Abort` (the default) counts it against the
    /// limits and aborts the release; `Hold` returns traffic to the stable version but
    /// keeps the new version's pods for a person to look at (phase Paused, until `retry`
    /// resumes at the failing step or `abort` ends the release); `Record` measures it, shows it in status and events,
    /// and never acts on it, so a team can see how a metric behaves before it gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

/// What a metric's failure does.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum OnFailure {
    #[default]
    Abort,
    Hold,
    Record,
}

/// An external metric: its name and the labels that select its series.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetric {
    /// The metric's name as the adapter serves it.
    #[schemars(length(min = 1, max = 253))]
    pub metric: String,
    /// Labels the series must carry; values may use the release placeholders
    /// (`{{candidateSlot}}`, `{{candidateRevision}}`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub selector: BTreeMap<String, String>,
}

/// How far the new version's value may stray from the stable version's, each as a
/// percentage of the stable value (`10%`) or an absolute difference (`0.01`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.maxIncrease) || has(self.maxDecrease)").message("compare sets maxIncrease, maxDecrease or both"))]
pub struct Compare {
    /// How much higher the new version's value may be: for an error rate or a latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,9}(\.[0-9]{1,9})?%?$"))]
    pub max_increase: Option<String>,
    /// How much lower the new version's value may be: for a success rate or a throughput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,9}(\.[0-9]{1,9})?%?$"))]
    pub max_decrease: Option<String>,
}

/// A Prometheus query.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Base URL of the Prometheus server; defaults to the operator's `--prometheus-address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub address: Option<String>,
    /// A credential set configured on the operator (`--analysis-credentials`) that the
    /// queries authenticate with; the operator says which namespaces may use which set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub credentials: Option<String>,
    /// PromQL. `{{name}}`, `{{namespace}}`, `{{candidateSlot}}`, `{{stableSlot}}`,
    /// `{{candidateRevision}}` and `{{stableRevision}}` are replaced before it runs.
    #[schemars(length(min = 1, max = 8192))]
    pub query: String,
}

/// A webhook check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMetric {
    /// `http://` or `https://` URL.
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://"))]
    pub url: String,
    /// Seconds to wait for the answer; no answer in time is inconclusive. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<i32>,
}

impl Rollout {
    pub fn strategy(&self) -> Strategy {
        self.strategy.unwrap_or_default()
    }
}
