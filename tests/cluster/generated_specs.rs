//! Generated Microservices against the real API server. Valid specs covering the whole API
//! are accepted (server-side dry run) and come back with every field they were sent; specs
//! that break one rule at a time, for every CEL rule and every schema bound of Weir's own
//! fields in the CRD, are refused with 422 and the rule's message, and nothing is stored.
//! No operator runs: nothing reaches a controller.
//!
//! Values come from proptest strategies driven by a fixed seed, so a run is repeatable;
//! the API calls are async, so the runner draws values instead of running properties.

mod breaches;
mod rules;
mod valid;

use crate::support;

use std::collections::BTreeMap;

use breaches::{Breach, breaches};
use kube::Api;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rules::{Rule, rules_in_crd};
use serde_json::Value;
use support::{in_temp_ns, install_crds};
use valid::valid_microservice;
use weir::api::Microservice;

/// The seed of every run: 32 bytes.
const SEED: &[u8; 32] = b"weir: generated specs, one seed.";
/// Valid Microservices sent per run.
const VALID_SPECS: usize = 300;
/// Invalid Microservices sent per rule, each built on a different valid one.
const VARIANTS: usize = 3;

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, SEED),
    )
}

fn draw<S: Strategy>(runner: &mut TestRunner, strategy: &S) -> S::Value {
    strategy
        .new_tree(runner)
        .expect("a strategy that always yields")
        .current()
}

fn api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("weir.dev", "v1alpha1", "Microservice");
    Api::namespaced_with(client, ns, &ApiResource::from_gvk(&gvk))
}

/// Where `got` lacks or changed what `sent` has (numbers compared as numbers; extra
/// fields in `got`, such as defaults, are fine).
fn differences(sent: &Value, got: &Value, at: &str, found: &mut Vec<String>) {
    match (sent, got) {
        (Value::Object(sent), Value::Object(got)) => {
            for (key, value) in sent {
                match got.get(key) {
                    Some(other) => differences(value, other, &format!("{at}.{key}"), found),
                    None => found.push(format!("{at}.{key} was dropped")),
                }
            }
        }
        (Value::Array(sent), Value::Array(got)) if sent.len() == got.len() => {
            for (i, (a, b)) in sent.iter().zip(got).enumerate() {
                differences(a, b, &format!("{at}[{i}]"), found);
            }
        }
        // serde_json's default float parsing may land one unit in the last place away.
        (Value::Number(a), Value::Number(b))
            if a.as_f64().zip(b.as_f64()).is_some_and(|(a, b)| {
                (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs())
            }) => {}
        (a, b) if a == b => {}
        (a, b) => found.push(format!("{at}: sent {a}, got {b}")),
    }
}

#[tokio::test]
async fn generated_valid_specs_are_accepted_whole() {
    let _cluster = support::shared().await;
    install_crds(&support::client().await).await;
    in_temp_ns(|client, ns| async move {
        let api = api(client, &ns);
        let specs = {
            let mut runner = runner();
            let strategy = valid_microservice();
            (0..VALID_SPECS)
                .map(|_| draw(&mut runner, &strategy))
                .collect::<Vec<_>>()
        };
        let dry_run = PostParams {
            dry_run: true,
            field_manager: None,
        };
        let mut problems = Vec::new();
        let mut features = BTreeMap::<String, usize>::new();
        let mut values = BTreeMap::<String, usize>::new();
        for (i, sent) in specs.into_iter().enumerate() {
            count_features(&sent["spec"], "spec", &mut features);
            count_values(&sent["spec"]["rollout"], "spec.rollout", &mut values);
            if let Err(e) = serde_json::from_value::<Microservice>(sent.clone()) {
                problems.push(format!("#{i}: Weir cannot read it: {e}\n{sent:#}"));
                continue;
            }
            let object: DynamicObject = serde_json::from_value(sent.clone()).expect("an object");
            match api.create(&dry_run, &object).await {
                Ok(created) => {
                    let got = serde_json::to_value(&created).expect("serializable");
                    let mut found = Vec::new();
                    differences(&sent["spec"], &got["spec"], "spec", &mut found);
                    if !found.is_empty() {
                        problems.push(format!("#{i}: {}\n{sent:#}", found.join("; ")));
                    }
                }
                Err(e) => problems.push(format!("#{i}: refused: {e}\n{sent:#}")),
            }
        }
        assert!(
            problems.is_empty(),
            "{} of {VALID_SPECS} valid specs failed:\n{}",
            problems.len(),
            problems.join("\n\n")
        );
        // The generator reached every corner of the API, each more than once.
        for field in [
            "spec.autoscaling.targetMemoryUtilizationPercentage",
            "spec.ports[].protocol",
            "spec.env[].valueFrom.secretKeyRef",
            "spec.envFrom[].configMapRef",
            "spec.probes.startup.grpc",
            "spec.probes.readiness.httpGet.httpHeaders",
            "spec.disruption.minAvailable",
            "spec.placement.spreadAcross",
            "spec.pod.tolerations[].tolerationSeconds",
            "spec.pod.volumeMounts",
            "spec.pod.containerSecurityContext.capabilities",
            "spec.pod.terminationGracePeriodSeconds",
            "spec.lifecycle.preStop.sleep",
            "spec.lifecycle.postStart.httpGet",
            "spec.lifecycle.preStopSleepSeconds",
            "spec.rollout.maxSurge",
            "spec.rollout.traffic.gatewayAPI.parentRefs[].sectionName",
            "spec.rollout.canary.steps[].setHeaderRoute.match[].regex",
            "spec.rollout.canary.steps[].setMirror",
            "spec.rollout.canary.steps[].analysis.metrics",
            "spec.rollout.canary.steps[].pause.duration",
            "spec.rollout.blueGreen.prePromotionAnalysis",
            "spec.rollout.blueGreen.autoPromotionSeconds",
            "spec.rollout.analysis.metrics[].webhook.timeoutSeconds",
            "spec.rollout.analysis.metrics[].prometheus.address",
            "spec.rollout.analysis.inconclusiveLimit",
            "spec.rollout.analysis.metrics[].templateRef",
            "spec.rollout.notify[].moments",
            "spec.rollout.traffic.gatewayAPI.port",
            "spec.rollout.traffic.gatewayAPI.rules[].filters",
            "spec.rollout.traffic.gatewayAPI.rules[].timeouts",
            "spec.rollout.analysis.metrics[].external.selector",
            "spec.rollout.analysis.metrics[].args",
            "spec.rollout.analysis.metrics[].compare.maxDecrease",
            "spec.rollout.analysis.metrics[].prometheus.credentials",
            "spec.pod.initContainers[].restartPolicy",
            "spec.pod.initContainers[].resources",
            "spec.pod.containers[].args",
            "spec.pod.imagePullPolicy",
            "spec.pod.affinity",
            "spec.pod.topologySpreadConstraints",
            "spec.pod.priorityClassName",
            "spec.pod.runtimeClassName",
            "spec.pod.dnsConfig",
            "spec.pod.hostAliases",
            "spec.pod.shareProcessNamespace",
            "spec.pod.automountServiceAccountToken",
            "spec.pod.templatePatch",
            "spec.migrateFrom.scaleDown",
            "spec.rollout.trackConfig.secrets",
            "spec.rollout.canary.minPods",
            "spec.placement.separateVersions",
            "spec.rollout.analysis.metrics[].onFailure",
            "spec.rollout.traffic.gatewayAPI.grpcRules[].matches",
            "spec.rollout.traffic.gatewayAPI.grpcRules[].filters",
            "spec.rollout.windows[].days",
            "spec.rollout.windows[].timeZone",
            "spec.rollout.group",
            "spec.rollout.after",
            "spec.rollout.canary.stableScale",
            "spec.rollout.canary.postPromotionAnalysis.metrics",
            "spec.rollout.blueGreen.postPromotionAnalysis.duration",
            "spec.rollout.blueGreen.postPromotionAnalysis.metrics",
        ] {
            assert!(
                features.get(field).is_some_and(|n| *n >= 2),
                "the generated specs hardly reach {field}: {features:#?}"
            );
        }
        // And each value of the enums that change what a release does.
        for value in [
            "spec.rollout.analysis.metrics[].onFailure=Hold",
            "spec.rollout.analysis.metrics[].onFailure=Record",
            "spec.rollout.canary.stableScale=Dynamic",
            "spec.rollout.canary.stableScale=Full",
        ] {
            assert!(
                values.get(value).is_some_and(|n| *n >= 2),
                "the generated specs hardly reach {value}: {values:#?}"
            );
        }
    })
    .await;
}

/// Counts each field path (arrays as `[]`) the generated specs set.
fn count_features(value: &Value, at: &str, counts: &mut BTreeMap<String, usize>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                let path = format!("{at}.{key}");
                *counts.entry(path.clone()).or_default() += 1;
                count_features(value, &path, counts);
            }
        }
        Value::Array(items) => {
            for item in items {
                count_features(item, &format!("{at}[]"), counts);
            }
        }
        _ => {}
    }
}

/// Counts each string value of the rollout's enums the generated specs set, as
/// `path=value`.
fn count_values(value: &Value, at: &str, counts: &mut BTreeMap<String, usize>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                count_values(value, &format!("{at}.{key}"), counts);
            }
        }
        Value::Array(items) => {
            for item in items {
                count_values(item, &format!("{at}[]"), counts);
            }
        }
        Value::String(s) if at.ends_with(".onFailure") || at.ends_with(".stableScale") => {
            *counts.entry(format!("{at}={s}")).or_default() += 1;
        }
        _ => {}
    }
}

#[tokio::test]
async fn specs_breaking_one_rule_are_refused_with_its_message_and_nothing_is_stored() {
    let _cluster = support::shared().await;
    install_crds(&support::client().await).await;
    in_temp_ns(|client, ns| async move {
        let api = api(client, &ns);
        let rules = rules_in_crd();
        let breaches = breaches();
        breaches_and_rules_match(&rules, &breaches);

        let cases = breach_cases(&rules, &breaches);
        let sent = cases.len();
        let cel: Vec<String> = rules
            .iter()
            .filter_map(|r| match r {
                Rule::Cel(message) => Some(message.clone()),
                Rule::Bound { .. } => None,
            })
            .collect();
        let mut problems = Vec::new();
        for case in cases {
            problems.extend(refusal_problems(&api, &cel, case).await);
        }
        assert!(
            problems.is_empty(),
            "{} of {sent} invalid specs were not refused as they should be:\n{}",
            problems.len(),
            problems.join("\n")
        );
        let stored = api.list(&ListParams::default()).await.expect("list");
        assert!(
            stored.items.is_empty(),
            "refused specs were stored: {:?}",
            stored
                .items
                .iter()
                .map(|o| o.metadata.name.clone())
                .collect::<Vec<_>>()
        );
    })
    .await;
}

/// The rule of the CRD a breach breaks, if the CRD has it.
fn rule_of(rules: &[Rule], breach: &Breach) -> Option<Rule> {
    rules
        .iter()
        .find(|r| match r {
            Rule::Cel(message) => message.starts_with(breach.rule),
            Rule::Bound { .. } => r.id() == breach.rule,
        })
        .cloned()
}

/// Every rule in the CRD is broken by a breach, and every breach names a rule that exists.
fn breaches_and_rules_match(rules: &[Rule], breaches: &[Breach]) {
    let stale: Vec<_> = breaches
        .iter()
        .filter(|b| rule_of(rules, b).is_none())
        .map(|b| b.rule)
        .collect();
    assert!(
        stale.is_empty(),
        "breaches of rules the CRD does not have: {stale:#?}"
    );
    let covered: Vec<String> = breaches
        .iter()
        .filter_map(|b| rule_of(rules, b).map(|r| r.id()))
        .collect();
    let uncovered: Vec<_> = rules
        .iter()
        .map(Rule::id)
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(
        uncovered.is_empty(),
        "rules of the CRD that no generated spec breaks (add a breach for each): {uncovered:#?}"
    );
}

/// One breach on one valid Microservice: the breach, its rule, the variant, the object.
type Case<'a> = (&'a Breach, Rule, usize, Value);

/// Each breach, `VARIANTS` times, on a different valid Microservice.
fn breach_cases<'a>(rules: &[Rule], breaches: &'a [Breach]) -> Vec<Case<'a>> {
    let mut runner = runner();
    let strategy = valid_microservice();
    let mut cases = Vec::new();
    for (b, breach) in breaches.iter().enumerate() {
        let rule = rule_of(rules, breach).expect("checked above");
        for variant in 0..VARIANTS {
            let mut object = draw(&mut runner, &strategy);
            object["metadata"]["name"] = format!("breach-{b}-{variant}").into();
            // A broken port would also break the route's reference to it by name.
            if breach.rule.starts_with(".spec.ports")
                && let Some(gateway) = object.pointer_mut("/spec/rollout/traffic/gatewayAPI")
                && let Some(gateway) = gateway.as_object_mut()
            {
                gateway.remove("port");
            }
            (breach.apply)(&mut object, &rule, variant);
            cases.push((breach, rule.clone(), variant, object));
        }
    }
    cases
}

/// Creates the case's object and says what is wrong with the answer: accepted, refused
/// other than with 422, without the rule's message, or naming other CEL rules (`cel`)
/// than the rule at hand and those the same change must also trip.
async fn refusal_problems(api: &Api<DynamicObject>, cel: &[String], case: Case<'_>) -> Vec<String> {
    let (breach, rule, variant, object) = case;
    let what = format!("{} (variant {variant})", rule.id());
    let created = serde_json::from_value::<DynamicObject>(object.clone()).expect("an object");
    let message = match api.create(&PostParams::default(), &created).await {
        Ok(_) => return vec![format!("{what}: accepted\n{object:#}")],
        Err(kube::Error::Api(status)) if status.code == 422 => status.message,
        Err(e) => return vec![format!("{what}: refused, but not with 422: {e}")],
    };
    let mut problems = Vec::new();
    let expected = rule.expected(breach.field);
    let missing: Vec<_> = expected.iter().filter(|e| !message.contains(*e)).collect();
    if !missing.is_empty() {
        problems.push(format!("{what}: {missing:?} not in {message:?}"));
    }
    // Only the rule at hand (and what the same change must also trip) failed.
    let other: Vec<_> = cel
        .iter()
        .filter(|m| message.contains(m.as_str()) && !expected.contains(m))
        .filter(|m| !breach.also.iter().any(|a| m.starts_with(a)))
        .collect();
    if !other.is_empty() {
        problems.push(format!(
            "{what}: other rules failed too: {other:?} in {message:?}"
        ));
    }
    problems
}
