//! Release analysis: measuring the new version with Prometheus queries and webhooks.
//! The controller asks for a round of measurements; this module only measures.
//!
//! A measurement never fails as a call: a source that cannot answer makes it Inconclusive,
//! a value out of bounds or a broken configuration (a query Prometheus rejects) makes it
//! Failed. The round's verdict is [`round_outcome`].

mod bounds;
mod ca_bundle;
mod compare;
mod credentials;
mod external;
mod prometheus;
pub mod resolve;
pub mod template;
mod webhook;

pub use ca_bundle::{CaBundle, CaBundleError};
pub use credentials::{CredentialSet, Credentials, CredentialsError, namespace_matches};
pub use external::quantity;
pub use prometheus::{Answer, parse_answer};

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Measurement, Metric, OnFailure, Outcome, PrometheusMetric};

/// What a query template or a webhook may know about the release.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseFacts {
    pub name: String,
    pub namespace: String,
    pub candidate_slot: String,
    pub stable_slot: String,
    pub candidate_revision: String,
    pub stable_revision: String,
    pub weight: i32,
    pub step_index: i32,
}

impl ReleaseFacts {
    /// The facts with the two versions swapped: a query about the candidate asks about the
    /// stable version instead.
    pub fn swapped(&self) -> ReleaseFacts {
        ReleaseFacts {
            candidate_slot: self.stable_slot.clone(),
            stable_slot: self.candidate_slot.clone(),
            candidate_revision: self.stable_revision.clone(),
            stable_revision: self.candidate_revision.clone(),
            ..self.clone()
        }
    }
}

/// Measures metrics over HTTP. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Measurer {
    /// Prometheus for metrics that do not name one (the operator's `--prometheus-address`).
    pub default_prometheus: Option<String>,
    /// Hosts measurements may reach; None for any. `*.suffix` matches subdomains.
    allowed_hosts: Option<Vec<String>>,
    /// Credential sets metrics may name (`--analysis-credentials`).
    credentials: Option<Credentials>,
    /// The operator's Kubernetes client, for external metrics.
    kube: Option<kube::Client>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Measurer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measurer")
            .field("default_prometheus", &self.default_prometheus)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("credentials", &self.credentials)
            .field("kube", &self.kube.is_some())
            .finish()
    }
}

impl Measurer {
    /// Measures with the platform's root certificates (the operator image's, or the files
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` name).
    pub fn new(default_prometheus: Option<String>) -> Self {
        Measurer {
            default_prometheus,
            allowed_hosts: None,
            credentials: None,
            kube: None,
            client: http_client(&[]),
        }
    }

    /// Also trusts the certificates of `bundle` (`--analysis-ca-bundle`): analysis endpoints
    /// served with a cluster CA's certificate.
    pub fn with_ca_bundle(mut self, bundle: Option<&CaBundle>) -> Self {
        if let Some(bundle) = bundle {
            tracing::info!(path = %bundle.path().display(), certificates = bundle.certificates().len(), "analysis trusts the CA bundle too");
            self.client = http_client(bundle.certificates());
        }
        self
    }

    /// Restricts measurements to `hosts` (plus the default Prometheus's host): a tenant's
    /// Microservice cannot make the operator call anywhere else.
    pub fn allowing_only(mut self, hosts: Vec<String>) -> Self {
        let mut hosts = hosts;
        if let Some(host) = self.default_prometheus.as_deref().and_then(host_of) {
            hosts.push(host);
        }
        self.allowed_hosts = Some(hosts);
        self
    }

    /// Reads external metrics through `client` (the operator's).
    pub fn with_kube_client(mut self, client: kube::Client) -> Self {
        self.kube = Some(client);
        self
    }

    /// Also authenticates with the operator's credential sets.
    pub fn with_credentials(mut self, credentials: Option<&Credentials>) -> Self {
        if let Some(credentials) = credentials {
            tracing::info!(?credentials, "analysis credentials loaded");
        }
        self.credentials = credentials.cloned();
        self
    }

    /// The set named `name` when Microservices of `namespace` may use it, else why not.
    fn credential_set(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<(&Credentials, &CredentialSet), String> {
        let Some(credentials) = &self.credentials else {
            return Err(format!(
                "credential set {name:?} is not configured: the operator has no --analysis-credentials"
            ));
        };
        Ok((credentials, credentials.permitted(name, namespace)?))
    }

    /// Whether every Prometheus metric of `ms` (with `templates` resolved) may use the
    /// credential set it names; else the reason a release does not start.
    pub fn may_use_credentials(
        &self,
        ms: &crate::api::Microservice,
        templates: &[crate::api::TemplatedMetric],
    ) -> Result<(), crate::release::HoldBack> {
        use kube::ResourceExt;
        let namespace = ms.namespace().unwrap_or_default();
        let analysis = ms.spec.rollout.as_ref().and_then(|r| r.analysis.as_ref());
        let inline = analysis.into_iter().flat_map(|a| &a.metrics);
        let named = inline
            .filter_map(|m| Some((m.name.as_str(), m.prometheus.as_ref()?)))
            .chain(
                templates
                    .iter()
                    .filter_map(|t| Some((t.metric.as_str(), t.prometheus.as_ref()?))),
            );
        for (metric, prometheus) in named {
            if let Some(set) = &prometheus.credentials
                && let Err(why) = self.credential_set(set, &namespace)
            {
                let reason = crate::api::conditions::reason::CREDENTIALS_REFUSED;
                return Err((reason, format!("metric {metric}: {why}")));
            }
        }
        Ok(())
    }

    /// None when `url` may be reached, else why not.
    fn refusal(&self, metric: &str, url: &str) -> Option<String> {
        let allowed = self.allowed_hosts.as_ref()?;
        let host = host_of(url).unwrap_or_default();
        let permitted = allowed.iter().any(|pattern| host_matches(pattern, &host));
        (!permitted).then(|| {
            format!(
                "{metric}: host {host:?} is not allowed; the operator's \
                 --analysis-allowed-hosts permits {}",
                allowed.join(", ")
            )
        })
    }

    /// One measurement of `metric`; never fails: an unreachable source is Inconclusive.
    pub async fn measure(&self, metric: &Metric, facts: &ReleaseFacts, at: Time) -> Measurement {
        let mut measured = self.measure_value(metric, facts, at).await;
        measured.dry_run = metric.on_failure == Some(OnFailure::Record);
        measured
    }

    async fn measure_value(&self, metric: &Metric, facts: &ReleaseFacts, at: Time) -> Measurement {
        let target = match (&metric.prometheus, &metric.webhook) {
            (Some(query), _) => query.address.clone().or(self.default_prometheus.clone()),
            (None, Some(webhook)) => Some(webhook.url.clone()),
            (None, None) => None,
        };
        if let Some(refusal) = target.and_then(|url| self.refusal(&metric.name, &url)) {
            tracing::warn!(metric = %metric.name, %refusal, "analysis target refused");
            return Verdict::failed(refusal).into_measurement(&metric.name, at);
        }
        let verdict = match (&metric.prometheus, &metric.webhook) {
            (Some(query), _) => self.query_prometheus(metric, query, facts).await,
            (None, Some(webhook)) => webhook::measure(&self.client, metric, webhook, facts).await,
            (None, None) if metric.external.is_some() => self.read_external(metric, facts).await,
            (None, None) => match &metric.template_ref {
                Some(template) => Verdict::inconclusive(format!(
                    "{}: MetricTemplate {template} was not resolved when this release started; it applies from the next release",
                    metric.name
                )),
                None => Verdict::failed(format!(
                    "{}: the metric sets neither prometheus nor webhook",
                    metric.name
                )),
            },
        };
        tracing::debug!(
            metric = %metric.name,
            outcome = ?verdict.outcome,
            message = %verdict.message,
            "measured"
        );
        verdict.into_measurement(&metric.name, at)
    }

    async fn query_prometheus(
        &self,
        metric: &Metric,
        prometheus: &PrometheusMetric,
        facts: &ReleaseFacts,
    ) -> Verdict {
        let address = prometheus
            .address
            .as_deref()
            .or(self.default_prometheus.as_deref())
            .filter(|address| !address.trim().is_empty());
        let Some(address) = address else {
            return Verdict::inconclusive(format!(
                "{}: no Prometheus address: set prometheus.address or the operator's --prometheus-address",
                metric.name
            ));
        };
        let auth = match &prometheus.credentials {
            Some(set) => match self.credential_set(set, &facts.namespace) {
                Ok((credentials, set)) => Some(prometheus::Auth { credentials, set }),
                Err(why) => return Verdict::failed(format!("{}: {why}", metric.name)),
            },
            None => None,
        };
        let source = prometheus::Source {
            client: &self.client,
            address: address.trim(),
            auth,
        };
        let query = template::render(&prometheus.query, facts);
        if metric.compare.is_none() {
            return source.measure(&query, metric).await;
        }
        let stable_query = template::render(&prometheus.query, &facts.swapped());
        let (candidate, stable) = futures::join!(
            source.sample(&query, &metric.name),
            source.sample(&stable_query, &metric.name),
        );
        judge_samples(metric, candidate, Some(stable))
    }

    /// A Kubernetes external metric, through the API server.
    async fn read_external(&self, metric: &Metric, facts: &ReleaseFacts) -> Verdict {
        let (Some(client), Some(external)) = (&self.kube, &metric.external) else {
            return Verdict::inconclusive(format!(
                "{}: external metrics need the operator's Kubernetes client",
                metric.name
            ));
        };
        let name = &metric.name;
        if metric.compare.is_none() {
            let candidate = external::sample(client, external, facts, name).await;
            return judge_samples(metric, candidate, None);
        }
        let swapped = facts.swapped();
        let (candidate, stable) = futures::join!(
            external::sample(client, external, facts, name),
            external::sample(client, external, &swapped, name),
        );
        judge_samples(metric, candidate, Some(stable))
    }
}

/// The verdict on the new version's sample: its bounds, then, with a stable sample, its
/// comparison with it.
fn judge_samples(
    metric: &Metric,
    candidate: Result<f64, Verdict>,
    stable: Option<Result<f64, Verdict>>,
) -> Verdict {
    let Some(stable) = stable else {
        return match candidate {
            Ok(value) => bounds::judge(&metric.name, value, metric.min, metric.max),
            Err(verdict) => verdict,
        };
    };
    let (candidate, stable) = match (candidate, stable) {
        (Ok(candidate), Ok(stable)) => (candidate, stable),
        (Err(verdict), _) => return verdict,
        (_, Err(verdict)) => return verdict.on_the_stable_version(),
    };
    let absolute = bounds::judge(&metric.name, candidate, metric.min, metric.max);
    let mut verdict = match &metric.compare {
        Some(compare) if absolute.outcome == Outcome::Passed => {
            compare::judge(&metric.name, candidate, stable, compare)
        }
        _ => absolute,
    };
    verdict.baseline = stable.is_finite().then_some(stable);
    verdict
}

/// The client of every measurement, trusting the platform's roots and `extra_roots`.
fn http_client(extra_roots: &[reqwest::Certificate]) -> reqwest::Client {
    let build = |platform_roots: bool| {
        let builder = reqwest::Client::builder()
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            // A redirect could lead anywhere: the allow-list is checked on the URL given.
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(platform_roots);
        let builder = extra_roots
            .iter()
            .cloned()
            .fold(builder, reqwest::ClientBuilder::add_root_certificate);
        builder.build()
    };
    build(true)
        .or_else(|error| {
            // Only a store of nothing but unreadable certificates fails; HTTP and the
            // bundle's CAs still work without it.
            tracing::warn!(%error, "the platform's root certificates are unusable; analysis over HTTPS trusts only --analysis-ca-bundle");
            build(false)
        })
        .expect("an HTTP client of certificates checked at load always builds")
}

/// The host of a URL or of a bare `host:port` address, lower-cased.
fn host_of(address: &str) -> Option<String> {
    let address = address.trim();
    let url = if address.contains("://") {
        reqwest::Url::parse(address)
    } else {
        reqwest::Url::parse(&format!("http://{address}"))
    };
    url.ok()?
        .host_str()
        .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
}

/// `pattern` is a host, or `*.suffix` for any subdomain of `suffix`.
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => !pattern.is_empty() && pattern == host,
    }
}

/// What a provider found: the outcome, the value when one was read, and a sentence.
#[derive(Debug)]
struct Verdict {
    outcome: Outcome,
    value: Option<f64>,
    /// The stable version's value, for a metric that compares.
    baseline: Option<f64>,
    message: String,
}

impl Verdict {
    fn passed(message: String) -> Verdict {
        Verdict {
            outcome: Outcome::Passed,
            baseline: None,
            value: None,
            message,
        }
    }

    fn failed(message: String) -> Verdict {
        Verdict {
            outcome: Outcome::Failed,
            baseline: None,
            value: None,
            message,
        }
    }

    fn inconclusive(message: String) -> Verdict {
        Verdict {
            outcome: Outcome::Inconclusive,
            baseline: None,
            value: None,
            message,
        }
    }

    /// This verdict, about the stable version's half of a comparison.
    fn on_the_stable_version(mut self) -> Verdict {
        self.message = format!("{} (the stable version's query, for compare)", self.message);
        self
    }

    fn into_measurement(self, metric: &str, at: Time) -> Measurement {
        Measurement {
            metric: metric.to_string(),
            value: self.value,
            baseline: self.baseline,
            passed: self.outcome == Outcome::Passed,
            outcome: self.outcome,
            message: Some(self.message),
            at,
            dry_run: false,
        }
    }
}

/// Why a request got no answer, in a few words: the innermost cause, not reqwest's wrapper
/// that repeats the whole URL (and with it the query).
fn why(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {}s", timeout.as_secs());
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let cause = cause.to_string();
    if error.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        cause
    }
}

/// The body of `response`, or None when it is longer than `limit` bytes.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The first line of `text`, trimmed and at most 300 characters: enough to say what went
/// wrong without pasting a page into status.
fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let line = text.trim().lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Parses `30s`, `2m`, `1h30m`, `500ms`. None for anything else, and for what overflows:
/// admission bounds these fields, but an object stored before that must not panic the
/// operator.
///
/// Hand-written because it must accept exactly the CRD's pattern `^([0-9]+(ms|s|m|h))+$`
/// and nothing else (the `duration` fuzz target holds it to that). `kube::core::Duration`
/// parses Go's wider format: fractions (`1.5s`), signs (`-1s`, whose sign is lost on
/// conversion), `ns` and `us`, and a bare `0`; it multiplies in `f64`, so a long value in
/// `ms` comes out a few nanoseconds off; and it panics on a value that overflows a
/// `Duration` (`9999999999999999999h` fits the pattern and 32 characters).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        let part = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                Duration::from_millis(n)
            }
            'm' => Duration::from_secs(n.checked_mul(60)?),
            's' => Duration::from_secs(n),
            'h' => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
    }
    (number.is_empty() && total <= MAX_DURATION).then_some(total)
}

/// The longest duration Weir acts on (a year, as admission allows): timestamps stay far
/// from overflow when it is added to them.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The outcome of a round: Failed if any failed, else Inconclusive if any was, else Passed.
pub fn round_outcome(measurements: &[Measurement]) -> Outcome {
    if measurements.iter().any(|m| m.outcome == Outcome::Failed) {
        Outcome::Failed
    } else if measurements
        .iter()
        .any(|m| m.outcome == Outcome::Inconclusive)
    {
        Outcome::Inconclusive
    } else {
        Outcome::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(outcome: Outcome) -> Measurement {
        Verdict {
            outcome,
            baseline: None,
            value: None,
            message: String::new(),
        }
        .into_measurement("m", Time(Default::default()))
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_duration("1m30s250ms"),
            Some(Duration::from_millis(90_250))
        );
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("8784h"), Some(MAX_DURATION));
    }

    #[test]
    fn rejects_malformed_durations() {
        for text in ["30", "s", "1d", "1.5s", "-1s", "1 s", "m5"] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
        for overflowing in ["18446744073709551615s1s", "9999999999999999999h", "8785h"] {
            assert_eq!(parse_duration(overflowing), None, "{overflowing:?}");
        }
    }

    #[test]
    fn passed_is_true_only_for_a_passed_outcome() {
        assert!(measurement(Outcome::Passed).passed);
        assert!(!measurement(Outcome::Failed).passed);
        assert!(!measurement(Outcome::Inconclusive).passed);
    }

    #[test]
    fn a_round_fails_on_any_failure_then_waits_on_any_inconclusive() {
        use Outcome::*;
        let round = |outcomes: &[Outcome]| {
            round_outcome(&outcomes.iter().map(|o| measurement(*o)).collect::<Vec<_>>())
        };
        assert_eq!(round(&[Passed, Inconclusive, Failed]), Failed);
        assert_eq!(round(&[Passed, Inconclusive]), Inconclusive);
        assert_eq!(round(&[Passed, Passed]), Passed);
    }

    #[test]
    fn excerpts_keep_the_first_line_and_cut_long_ones() {
        assert_eq!(excerpt("  first\nsecond "), "first");
        let long = "é".repeat(400);
        assert_eq!(excerpt(&long).chars().count(), 301);
    }

    #[tokio::test]
    async fn without_any_prometheus_address_the_measurement_is_inconclusive() {
        let metric = Metric {
            name: "error-rate".into(),
            prometheus: Some(PrometheusMetric {
                credentials: None,
                address: None,
                query: "vector(0)".into(),
            }),
            max: Some(0.01),
            ..Metric::default()
        };
        let facts = crate::analysis::template::tests::facts();
        let at = Time(Default::default());
        let measured = Measurer::new(None).measure(&metric, &facts, at).await;
        assert_eq!(measured.outcome, Outcome::Inconclusive);
        assert!(!measured.passed);
        assert_eq!(
            measured.message.as_deref(),
            Some(
                "error-rate: no Prometheus address: set prometheus.address or the operator's --prometheus-address"
            )
        );
    }
}

#[cfg(test)]
mod allow_list {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_suffix() {
        assert!(host_matches("*.svc", "smoke.shop.svc"));
        assert!(host_matches(
            "*.svc.cluster.local",
            "smoke.shop.svc.cluster.local"
        ));
        assert!(!host_matches("*.svc", "svc"));
        assert!(!host_matches("*.svc", "evil.example"));
        assert!(host_matches(
            "prometheus.monitoring",
            "prometheus.monitoring"
        ));
        assert!(!host_matches("", ""));
    }

    #[test]
    fn only_allowed_hosts_are_reachable() {
        let measurer = Measurer::new(Some("http://prometheus.monitoring:9090".into()))
            .allowing_only(vec!["*.svc".into()]);
        assert!(measurer.refusal("m", "http://smoke.shop.svc/run").is_none());
        assert!(
            measurer
                .refusal("m", "prometheus.monitoring:9090")
                .is_none()
        );
        let refusal = measurer.refusal("smoke", "https://evil.example/x").unwrap();
        assert!(
            refusal.contains("\"evil.example\" is not allowed"),
            "{refusal}"
        );
        assert!(measurer.refusal("m", "http://127.0.0.1:1").is_some());
        assert!(
            Measurer::new(None)
                .refusal("m", "http://anything")
                .is_none()
        );
    }
}
